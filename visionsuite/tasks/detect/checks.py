"""`visionsuite data check` for detection datasets: read-only, every problem named."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport
from visionsuite.tasks.detect.data import (BOX_PROBLEMS, clean_boxes, index_detection,
                                           split_ignored, upright_annotation)

SHOWN = 5  # problem lines shown per kind


def check_detection_folder(path: str, held_out: str = "val") -> DataReport:
    """`visionsuite data check detect PATH`: images and boxes per class in each split, and
    every box problem by file; `held_out` "test": the test split alone."""
    from visionsuite.core.data import bit_depth_check, load_in_parallel
    from visionsuite.core.images import stored_geometry
    from visionsuite.core.splits import test_set_note
    from visionsuite.tasks.detect import TASK

    try:
        index = index_detection(path, held_out=held_out, train=held_out != "test")
    except VisionsuiteError as err:
        return DataReport(f"detect dataset {path}", False, str(err))
    lines = [f"detect dataset {path} ({index.format}): classes: {', '.join(index.labels)}"]
    lines += [f"  {test_set_note(held_out)}"] if held_out == "test" else []
    problems: dict[str, list[str]] = {kind: [] for kind in BOX_PROBLEMS}
    unreadable: list[str] = []
    for split in ("train", "val") if held_out == "val" else ("val",):
        annotations, shown = getattr(index, split), held_out if split == "val" else split
        geometries, messages = load_in_parallel(
            lambda a: stored_geometry(a.image, decode=True), annotations, desc=f"checking {shown}")
        unreadable += messages
        per_class: Counter = Counter()
        negatives = ignored = 0
        for annotation, found in zip(annotations, geometries):
            if found is None:
                continue
            upright, size = upright_annotation(annotation, *found)
            objects, regions = split_ignored(upright)
            ignored += len(regions.boxes)
            _, classes, counts = clean_boxes(objects, size, len(index.labels))
            per_class.update(index.labels[c] for c in classes)
            negatives += not len(classes)
            for kind, count in counts.items():
                where = annotation.source or annotation.image
                problems[kind].append(f"{where}: {count} box{'es' if count > 1 else ''}")
        readable = sum(g is not None for g in geometries)
        boxes = ", ".join(f"{name} {per_class[name]}" for name in index.labels)
        lines.append(f"  {shown}: {readable} images ({negatives} without boxes); boxes: "
                     f"{boxes or 'none'}" + (f"; {ignored} difficult or crowd (not trained on, "
                                             "ignored by mAP)" if ignored else ""))
    _, depth_lines = bit_depth_check([a.image for a in index.train + index.val])
    lines += [f"  {line}" for line in depth_lines]
    for message in index.missing:
        lines.append(f"  missing image: {message}")
    if held_out == "val" and TASK.unread_test_split(Path(path)) is None:
        lines += unused_images(index.train + index.val)
    for message in unreadable[:SHOWN]:
        lines.append(f"  unreadable: {message}")
    for kind, entries in problems.items():
        if entries:
            lines.append(f"  {len(entries)} image(s) with boxes {kind}"
                         f"{' (kept, clipped)' if kind.startswith('clipped') else ' (left out)'}:")
            lines += [f"    {entry}" for entry in entries[:SHOWN]]
    usable = (bool(index.train) or held_out == "test") and bool(index.val)
    problem = "" if usable else f"{path}: a split is empty"
    return DataReport("\n".join(lines), usable, problem)


def unused_images(annotations: list) -> list[str]:
    """Lines on the images beside the annotated ones that neither train nor val reads: photos
    added to the folder but left out of the annotation file or lists, so never trained on.
    (Not asked of a set with a test split, whose images may share the folder.)"""
    from visionsuite.core.files import holds_data
    from visionsuite.core.images import is_image_file

    read = {a.image.resolve() for a in annotations}
    # listed, never opened: no file here is read, so none needs the dataset-root check
    unused = sorted(path for folder in {a.image.parent for a in annotations} if folder.is_dir()
                    for path in folder.iterdir()
                    if holds_data(path.name) and is_image_file(path)
                    and path.resolve() not in read)
    if not unused:
        return []
    shown = ", ".join(str(path) for path in unused[:SHOWN])
    more = f" and {len(unused) - SHOWN} more" if len(unused) > SHOWN else ""
    return [f"  {len(unused)} image(s) beside the annotated ones are in no split (not in the "
            f"annotations or lists; not trained on): {shown}{more}"]
