"""`visionsuite data check` for detection datasets: read-only, every problem named."""

from __future__ import annotations

from collections import Counter

from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport
from visionsuite.tasks.detect.data import (BOX_PROBLEMS, clean_boxes, index_detection,
                                           split_ignored, upright_annotation)

SHOWN = 5  # problem lines shown per kind


def check_detection_folder(path: str, held_out: str = "val") -> DataReport:
    """`visionsuite data check detect PATH`: images and boxes per class in each split, and
    every box problem by file; `held_out` "test": the test split alone."""
    from visionsuite.core.data import load_in_parallel
    from visionsuite.core.images import stored_geometry
    from visionsuite.core.splits import test_set_note

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
    for message in index.missing:
        lines.append(f"  missing image: {message}")
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
