"""The decoded splits a segmentation model trains and is evaluated on (SegmentSplit), and the
training crops' sampler that oversamples labelled slices (labelled_crop_batches). Reading a
dataset: index.py (its layout), folders.py and annotations.py (its pairs), decode.py,
mask_classes.py and channels.py; data check: check.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.core.data import aligned_empty
from visionsuite.core.medical import file_stem
from visionsuite.tasks.base import Split
from visionsuite.tasks.segment.decode import DecodedPair
from visionsuite.tasks.segment.folders import CHANNEL_FILE
from visionsuite.tasks.segment.mask_classes import IGNORE, ClassMap, apply_class_map
from visionsuite.tasks.segment.pairs import Pair


@dataclass
class SegmentSplit(Split):
    """images and targets: lists of (H, W, C) uint8 images and (H, W) class-index masks
    (IGNORE outside a region of interest), of their own sizes; spacing: each image's voxel
    size in mm (between slices, rows, columns) where its file says (DICOM, NIfTI), else
    None: surface distances are measured in it. objects: each image's object numbers
    where its mask numbers them (instance masks; else None), scored as objects too
    (objects.py). regions, surface_tolerance, choose_largest_component and split_touching:
    how the val split's metrics score it, from the config (Task.evaluate sees the split,
    not the config)."""

    spacing: list[tuple[float, float, float] | None] = field(default_factory=list)
    objects: list[np.ndarray | None] = field(default_factory=list)
    # data.regions as class indices: classes scored together as well (BraTS' whole tumour)
    regions: dict[str, list[int]] = field(default_factory=dict)
    # data.surface_tolerance: NSD's, or each named structure's
    surface_tolerance: float | dict[str, float] | None = None
    # model.keep_largest_component: training's evaluation chooses that post-processing
    choose_largest_component: bool = False
    # model.split_touching: auto (training's evaluation chooses it), false, or a tolerance
    split_touching: bool | float | str = False


def to_split(decoded: list[DecodedPair], pairs: list[Pair], skipped: list[str],
             mapping: ClassMap) -> SegmentSplit:
    masks = []
    for item, pair in zip(decoded, pairs):
        mask = apply_class_map(item.mask, mapping, item.named(pair.mask))
        if item.roi is not None:
            mask = np.where(item.roi, mask, IGNORE).astype(np.uint8)
        masks.append(mask)
    names = [item.named(_shown_image(pair)) for item, pair in zip(decoded, pairs)]
    return SegmentSplit([item.image for item in decoded], masks, names, skipped,
                        spacing=[item.spacing for item in decoded],
                        objects=[item.objects for item in decoded])


def _shown_image(pair: Pair) -> Path:
    """How metrics and plots name a pair's image: an image of a file per channel by its case
    (case_008 for case_008_0000.nii.gz, ...; BraTS2021_00001 for its folder's files)."""
    if not pair.channels:
        return pair.image
    numbered = CHANNEL_FILE.fullmatch(file_stem(pair.image))
    return pair.image.parent / (numbered["case"] if numbered else pair.image.parent.name)


def pad_stack(arrays: list[np.ndarray], fill: int | None) -> np.ndarray:
    """Stack arrays of different heights and widths, padded at the bottom and right to the
    largest: images by reflection (fill None), masks with `fill` (IGNORE). Each is written
    into its place (no padded copies of them all first), in memory that training's tensor
    shares (core.data.aligned_empty)."""
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    rest = arrays[0].shape[2:]
    if any(array.shape[2:] != rest for array in arrays):
        raise ValueError(f"cannot stack arrays of shapes {sorted({a.shape for a in arrays})}")
    dtype = np.result_type(*{array.dtype for array in arrays})
    out = aligned_empty((len(arrays), height, width, *rest), dtype)
    for slot, array in zip(out, arrays):
        pad = [(0, height - array.shape[0]), (0, width - array.shape[1])]
        pad += [(0, 0)] * (array.ndim - 2)
        if not any(after for _, after in pad):
            slot[...] = array
        elif fill is None:
            slot[...] = np.pad(array, pad, mode="symmetric")
        else:
            slot[...] = np.pad(array, pad, constant_values=fill)
    return out


def labelled_crop_batches(labelled: np.ndarray, repeat: int, share: float, batch_size: int,
                          seed: int = 0):
    """A generator function of epochs of index batches for segmentation crops, as nnU-Net
    oversamples small lesions: of each image's `repeat` crops an epoch, each is, with
    probability `share`, replaced by a crop of a random image that holds labels
    (`labelled`, one bool per image), marked to be centred on them: its index is given as
    -(index + 1) (make_dataset's `labelled_flags`). Shuffled; the last, partial batch is
    dropped (unless it is the only one). One seeded generator serves all epochs."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(labelled)
    count = len(labelled) * repeat

    def epoch():
        indices = rng.permutation(count) % len(labelled)
        forced = (rng.random(count) < share) & (len(pool) > 0)
        if len(pool):
            indices[forced] = -rng.choice(pool, int(forced.sum())) - 1
        for start in range(0, max(count - batch_size + 1, 1), batch_size):
            yield indices[start:start + batch_size]

    return epoch
