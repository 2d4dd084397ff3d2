"""`visionsuite data check segment`: how the dataset reads, its sizes, modes, mask values and
classes, the RAM to train, and what is left out or unreadable."""

from __future__ import annotations

from collections import Counter

import numpy as np

from visionsuite.core.files import held_out_only
from visionsuite.core.images import INSTANCE_HINT, inspect_image
from visionsuite.core.medical import (UnreadableMedical, file_channels_windowed_apart,
                                      is_medical_file)
from visionsuite.core.progress import warn
from visionsuite.core.splits import EVERY_IMAGE, test_set_note
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport
from visionsuite.tasks.segment.channels import channel_names, image_channels
from visionsuite.tasks.segment.colours import (colour_class_names, colour_name, grey_colour,
                                               parse_colours)
from visionsuite.tasks.segment.decode import MAX_SIZE_ADVICE, decode_pair, memory_to_train
from visionsuite.tasks.segment.index import index_pairs
from visionsuite.tasks.segment.mask_classes import IGNORE, class_map, read_as_objects
from visionsuite.tasks.segment.pairs import Pair, PairIndex, pair_image_files
from visionsuite.tasks.segment.surface import measurable

SHOWN_CLASSES = 20  # classes listed by data check


def _memory_line(index: PairIndex, channels: int) -> str:
    from visionsuite.core.data import available_memory

    needed = memory_to_train(index.splits, channels, None)[0]
    available = available_memory()
    line = f"RAM to train at the images' own size: about {needed / 2**30:.1f} GiB"
    if available is None:
        return line
    line += f" ({available / 2**30:.1f} GiB available)"
    return line + (f"; {MAX_SIZE_ADVICE}" if needed > available else "")


def _summarise_pair(pair: Pair, channels: int, binary: bool
                    ) -> list[tuple[str, Counter, Counter, bool, tuple | None, bool]]:
    """For data check, each slice of a pair as its size ("WxH") and the pixel counts of each
    raw mask value (of a colour mask: each colour code; `binary`: 0 or 255), everywhere and
    inside its region of interest, whether it is a colour mask, its voxel size, and whether
    it is an image of a stack of separate images (decode.py), not a volume's slice."""
    summaries = []
    for item in decode_pair(pair, channels, None, binary):
        inside = item.mask if item.roi is None else item.mask[item.roi]
        keys = item.colours if item.colours is not None else np.arange(256)
        summaries.append((f"{item.image.shape[1]}x{item.image.shape[0]}",
                          _pixel_counts(item.mask, keys), _pixel_counts(inside, keys),
                          item.colours is not None, item.spacing, item.separate))
    return summaries


def _voxels_line(voxels: Counter) -> list[str]:
    """data check's line on the files' voxel sizes (a count per size, None for a file that
    gives none), which decide whether surface distances are in mm; none for photos."""
    known = {spacing: count for spacing, count in voxels.items() if spacing is not None}
    if not known:
        return []
    shown = []
    for (across, row, column), count in Counter(known).most_common(5):
        apart = f", slices {across:.3g} mm apart" if across else ""
        shown.append(f"{row:.3g} x {column:.3g} mm{apart} ({count})")
    line = "voxel sizes: " + ", ".join(shown)
    if voxels.get(None):
        line += f"; {voxels[None]} file(s) give none: HD95 and ASSD in pixels"
    elif not all(measurable(spacing) for spacing in known):
        line += "; pixels not square: HD95 and ASSD in pixels"
    return [line]


def _pixel_counts(values: np.ndarray, keys: np.ndarray) -> Counter:
    counts = np.bincount(values.ravel(), minlength=len(keys))
    return Counter({int(keys[i]): int(counts[i]) for i in np.flatnonzero(counts)})


def _mask_classes(every: Counter, inside: Counter, colour: bool, names: list[str] | None,
                  colours: list[str] | None = None):
    """data check's reading of the pixels of each (mask value or colour code, colour?) found:
    the line that lists the values (or colours), the class map, the pixels of each class
    inside the regions of interest and "", or the line, None, None and the error where the
    values make no classes. `names`: the dataset's own class names (dataset.json), for masks
    of class values, and `colours` their colours (CVAT's labelmap.txt), for colour masks."""
    if colour:  # a grey mask among colour ones: value v is the colour (v, v, v)
        every, inside = ({(k if c else grey_colour(k)): n for (k, c), n in counts.items()}
                         for counts in (every, inside))
        line = "mask colours: " + ", ".join(colour_name(c) for c in sorted(every)[:20])
        codes = parse_colours(colours) if colours else sorted(every)
        unknown = sorted(set(every) - set(codes))
        if unknown:
            return line, None, None, (f"mask colours {', '.join(map(colour_name, unknown[:4]))}"
                                      f" are none of the classes' ({', '.join(colours)})")
        values, names = set(range(len(codes))), names if colours else colour_class_names(codes)
        inside = Counter({codes.index(k): n for k, n in inside.items()})
    else:
        every, inside = ({k: n for (k, _), n in counts.items()} for counts in (every, inside))
        values = set(every)
        line = "mask values: " + ", ".join(str(v) for v in sorted(values)[:20])
    try:
        mapping = class_map(values, names)
    except VisionsuiteError as err:
        return line, None, None, str(err)
    if not colour and IGNORE in values and mapping.lookup[IGNORE] == IGNORE:
        line += f" ({IGNORE}: void, left out of the loss and the metrics)"
    if mapping.levels:
        line += (f" (grey levels coding {len(mapping.levels)} classes, in value order: "
                 "data.mask_values)")
    outside = sorted(value for value in values if mapping.lookup[value] < 0)
    if outside:
        return line, None, None, (f"mask values {outside[:8]} are outside the "
                                  f"{len(mapping.names)} classes ({', '.join(mapping.names)})")
    counts = np.zeros(len(mapping.names), np.int64)
    for value, pixels in inside.items():
        if mapping.lookup[value] != IGNORE:
            counts[mapping.lookup[value]] += pixels
    return line, mapping, counts, ""


def _windowed_per_channel(pairs: list[Pair]) -> bool:
    """Whether the images' channels are each windowed on its own: a file per channel's
    (segment/channels.py), or as core/medical.py decides of the set's first DICOM, NIfTI or
    array file (a set's files are alike: PanNuke's RGB tiles share one window)."""
    first = next((pair for pair in pairs if pair.channels or is_medical_file(pair.image)), None)
    if first is None or first.channels:
        return first is not None
    try:
        return file_channels_windowed_apart(first.image)
    except UnreadableMedical:
        return False  # decoding reports it


def check_segmentation_folders(path: str, held_out: str = "val") -> DataReport:
    from visionsuite.core.report import table

    test_set = held_out == "test" or held_out_only(path)
    try:
        index = index_pairs(path, EVERY_IMAGE if test_set else 0.2, held_out=held_out)
        for message in index.warnings:
            warn(message)
        every_pair = [pair for pairs in index.splits.values() for pair in pairs]
        own_channels = image_channels(every_pair)
    except VisionsuiteError as err:
        return DataReport(f"segment dataset {path}", False, str(err))
    from visionsuite.core.data import bit_depth_check, load_in_parallel

    channels = own_channels or 3
    # as training reads them with data.binary_masks=auto
    binary = not index.class_names and read_as_objects(
        index, [pair for name, pairs in index.splits.items() if name != "train" or not test_set
                for pair in pairs])

    rows, sizes, modes, voxels, unreadable = [], Counter(), Counter(), Counter(), []
    # pixels of each (raw mask value or colour code, colour mask?), everywhere and inside the
    # regions of interest
    every_value, inside, colour = Counter(), Counter(), False
    problem, checked_slices, stacks = "", 0, {}  # stacks of separate images: their count
    for name, pairs in index.splits.items():
        if test_set and name == "train":
            continue
        split = held_out if name == "val" else name
        try:  # each pair is summarised where it is decoded: a large set never sits in RAM
            summaries, skipped = load_in_parallel(
                lambda pair: _summarise_pair(pair, channels, binary), pairs,
                desc=f"checking {split}")
        except VisionsuiteError as err:
            return DataReport(f"segment dataset {index.root}", False, str(err))
        unreadable += skipped
        slices = 0
        for pair, found in zip(pairs, summaries):
            if found is None:
                continue
            voxels.update([found[0][4]] if found else [])  # a file's slices share one size
            if found and found[0][5]:
                stacks[pair.image] = len(found)
            for size, values, values_inside, is_colour, _, _ in found:
                sizes[size] += 1
                every_value.update({(k, is_colour): n for k, n in values.items()})
                inside.update({(k, is_colour): n for k, n in values_inside.items()})
                colour |= is_colour
            slices += len(found)
            modes[inspect_image(pair.image, decode=False)[1]] += 1  # decoded: header enough
        checked_slices += slices if split == "train" or test_set else 0
        rows.append({"split": split, "files": len(pairs) - len(skipped), "pairs": slices,
                     "skipped": len(skipped),
                     "roi": "yes" if any(p.roi for p in pairs) else "no"})
    values_line, mapping, counts, error = _mask_classes(every_value, inside, colour,
                                                        index.class_names, index.class_colours)
    if error:
        problem = f"{path}: {error}"
    split_note = " (val split by val_fraction 0.2, seed 0)" if index.split_by_fraction else ""
    lines = [f"segment dataset {index.root}{split_note}"]
    lines += [f"  {folder}" for folder in index.folders]
    lines += [f"  {test_set_note(held_out)}"] if test_set else []
    if own_channels:
        each = ", each windowed on its own" if _windowed_per_channel(every_pair) else ""
        lines.append(f"  images of {own_channels} channels{each}: "
                     + ", ".join(channel_names(index, own_channels)))
    if stacks:
        files = f"{len(stacks)} stack" + ("s" if len(stacks) > 1 else "")
        lines.append(f"  {files} of separate images ({sum(stacks.values()):,} in all, not a "
                     "volume's slices), each scored on its own")
    lines += [table(rows), "",
              "sizes: " + ", ".join(f"{s} ({n})" for s, n in sizes.most_common(5)),
              "modes: " + ", ".join(f"{m} ({n})" for m, n in modes.most_common()),
              *bit_depth_check(pair_image_files(every_pair), modes)[1],
              *_voxels_line(voxels), values_line]
    if mapping is not None:
        total = max(int(counts.sum()), 1)
        shown = [f"{i} {name} ({100 * counts[i] / total:.1f}% of pixels)"
                 for i, name in enumerate(mapping.names[:SHOWN_CLASSES])]
        more = len(mapping.names) - SHOWN_CLASSES
        named = f" (named in {index.names_from})" if index.class_names \
            and (index.class_colours or not colour) else ""
        lines.append(f"classes{named}: " + ", ".join(shown)
                     + (f", ... ({more} more)" if more > 0 else ""))
        if more > 0 and not index.class_names:
            lines.append(f"  {len(mapping.names)} classes: {INSTANCE_HINT}")
    if binary:
        lines.append("  the masks number objects 1..N (instance masks): read as foreground, as "
                     "training reads them (data.binary_masks=auto)")
    if not test_set:
        lines.append(_memory_line(index, channels))
    lines.append(f"unreadable pairs: {len(unreadable)}")
    lines += [f"  {message}" for message in unreadable]
    lines.append(f"files that are not images (ignored): {len(index.odd_files)}")
    lines += [f"  {p}" for p in index.odd_files[:20]]
    if not problem and not checked_slices:
        problem = f"{path}: no readable image/mask pairs in {held_out if test_set else 'train'}"
    return DataReport("\n".join(lines), not problem, problem)
