"""How raw mask values become classes: class indices, 0/255 and 0/1 binary masks, grey levels
that code classes, and masks that number objects (data.binary_masks=auto)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.arrays import is_array_file, read_array
from visionsuite.core.images import UnreadableImage, is_colour_mask, mask_values
from visionsuite.core.medical import is_medical_file
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.pairs import Pair, PairIndex

IGNORE = 255  # target value of pixels left out of the loss and the metrics
# data.binary_masks=auto (numbers_objects): the masks looked at, and how many values running
# 1..N in a mask make it one that numbers objects
INSTANCE_SAMPLE, OBJECT_COUNT = 16, 8
GREY_LEVELS = 16  # grey masks of at most so many levels spread over 0..255 code classes


@dataclass
class ClassMap:
    names: list[str]
    lookup: np.ndarray  # 256 entries: raw mask value -> class index, IGNORE, or -1 (invalid)
    binary_255: bool  # masks are 0/255
    levels: list[int] | None = None  # grey masks coding classes: each class's value


def read_as_objects(index: PairIndex, pairs: list[Pair]) -> bool:
    """Whether data.binary_masks=auto reads the masks of `pairs` as foreground: the layout's
    masks number objects (the CTC's), or they are seen to (numbers_objects)."""
    return index.numbered_masks or numbers_objects(pairs)


def numbers_objects(pairs: list[Pair]) -> bool:
    """Whether the masks number objects rather than classes (instance masks, as Cellpose's
    and StarDist's label images come): of up to INSTANCE_SAMPLE mask files spread over
    `pairs`, one holds values above 255 (no class index here), or most number OBJECT_COUNT
    or more objects 1..N without a gap, each one region (_numbered_objects), N not the same
    in all. Class-index masks hold a few values, or the same classes, or classes spread over
    several regions (cars, poles), or with gaps, image after image. Drawn, per-class and
    medical masks are class masks; arrays are looked at (HoVer-Net's inst_map: CPM-17's,
    Lizard's nuclei)."""
    files = [pair.mask for pair in pairs if pair.shapes is None and not pair.class_masks
             and pair.mask.is_file()
             and (is_array_file(pair.mask) or not is_medical_file(pair.mask))]
    counts = []
    for path in files[::max(1, len(files) // INSTANCE_SAMPLE)][:INSTANCE_SAMPLE]:
        try:
            values = _raw_values(path)
        except (UnreadableImage, OSError, ValueError):
            continue  # decoding reports it
        if values is None or is_colour_mask(values) or values.ndim != 2:
            return False
        if values.max(initial=0) > 255:
            return True
        counts.append(_numbered_objects(values))
    numbered = [count for count in counts if count]
    return 2 * len(numbered) > len(counts) and len(set(numbered)) > 1


def _raw_values(path: Path) -> np.ndarray | None:
    """A mask file's raw values: mask_values, or an array file's first slice as integers
    (HoVer-Net saves inst_map as floats); None for an array of other values."""
    if not is_array_file(path):
        return mask_values(path)
    values = read_array(path, labels=True)[0]
    if values.dtype.kind in "iu":
        return values
    return values.astype(np.int64) if np.array_equal(values, np.round(values)) else None


def _numbered_objects(mask: np.ndarray) -> int:
    """N where the mask's values other than 0 run 1..N without a gap, N >= OBJECT_COUNT,
    and each of nine in ten is one connected region; else 0."""
    import cv2

    if mask.min(initial=0) < 0:
        return 0
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=1))  # no sort: most masks
    count = len(present) - (present[0] == 0)                         # stop here
    if count < OBJECT_COUNT or present[-1] != count:
        return 0
    order = np.argsort(mask, axis=None, kind="stable")
    values, starts = np.unique(mask.ravel()[order], return_index=True)
    rows, columns = np.unravel_index(order, mask.shape)
    whole = 0
    for value, start, end in zip(values, starts, [*starts[1:], order.size]):
        if value == 0:
            continue
        ys, xs = rows[start:end], columns[start:end]
        crop = np.zeros((ys.max() - ys.min() + 1, xs.max() - xs.min() + 1), np.uint8)
        crop[ys - ys.min(), xs - xs.min()] = 1
        whole += cv2.connectedComponents(crop, connectivity=8)[0] == 2  # background + one
    return count if 10 * whole >= 9 * count else 0


def class_map(values: set[int], names: list[str] | None,
              levels: list[int] | None = None) -> ClassMap:
    """How raw mask values become class indices. Grey `levels` (data.mask_values), or
    values that are grey levels (grey_levels), are the classes in that order (in value
    order), named by `names` or by their values. With `names` (K classes): values 0..K-1,
    and 255 as the foreground of a 2-class 0/255 mask. Without: 0/255 and 0/1 masks are
    binary (background, foreground); otherwise values 0..max are classes and 255 is
    'ignore'."""
    lookup = np.full(256, -1, np.int16)
    binary_255 = values <= {0, 255} and 255 in values
    if levels or grey_levels(values, names):
        levels = list(levels or sorted(values))
        if names and len(names) != len(levels):
            raise VisionsuiteError(f"data.classes names {len(names)} classes, but the masks "
                                   f"code {len(levels)} as grey levels ({levels})")
        lookup[levels] = np.arange(len(levels))
        named = names or (["background", "foreground"] if len(levels) == 2
                          else [f"value_{level}" for level in levels])
        return ClassMap(list(named), lookup, False, levels)
    if names:
        count = len(names)
        if count < 2:
            raise VisionsuiteError("data.classes needs at least 2 names (background first)")
        lookup[:min(count, 256)] = np.arange(min(count, 256))
        if count == 2 and values <= {0, 255}:
            lookup[255] = 1
        elif count < 255:
            lookup[255] = IGNORE
        return ClassMap(list(names), lookup, count == 2 and binary_255)
    if values <= {0, 1} or binary_255:
        lookup[0], lookup[1 if not binary_255 else 255] = 0, 1
        return ClassMap(["background", "foreground"], lookup, binary_255)
    classes = sorted(values - {IGNORE})
    top = max(classes, default=0)
    count = max(top + 1, 2)
    lookup[:count] = np.arange(count)
    lookup[IGNORE] = IGNORE
    return ClassMap([f"class_{i}" for i in range(count)], lookup, False)


def grey_levels(values: set[int], names: list[str] | None = None) -> bool:
    """Whether grey mask values are a few levels spread over 0..255 that code classes
    (REFUGE's 0, 128 and 255; 0, 85, 170, 255), rather than class indices 0..K-1 (255 their
    void) or a 0/255 or 0/1 mask: at most GREY_LEVELS values, one other than 255 at least
    64, not 0..K-1; as many as `names` where they are given."""
    indices = sorted(values - {IGNORE})
    return (2 <= len(values) <= GREY_LEVELS and not values <= {0, 255}
            and max(indices, default=0) >= 64 and indices != list(range(len(indices)))
            and (not names or len(names) == len(values)))


def apply_class_map(mask: np.ndarray, mapping: ClassMap, path: Path) -> np.ndarray:
    mapped = mapping.lookup[mask]
    if (mapped < 0).any():
        bad = sorted(int(v) for v in np.unique(mask[mapped < 0]))
        raise VisionsuiteError(
            f"{path}: mask values {bad[:8]} are outside the {len(mapping.names)} classes "
            f"({', '.join(mapping.names)}); set data.classes to name every class")
    return mapped.astype(np.uint8)
