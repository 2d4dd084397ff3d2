"""Whole images of any size through a fixed-size model: overlapping tiles blended with a smooth
window, optionally averaged over the symmetries the model trained with (test-time
augmentation), and the non-overlapping val tiles Keras validates on during training."""

from __future__ import annotations

import math

import numpy as np

from visionsuite.tasks.base import Split
from visionsuite.tasks.segment.mask_classes import IGNORE


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets covering 0..length, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_window(tile: int) -> np.ndarray:
    """A (tile, tile) weight that falls smoothly towards the tile borders, where a U-Net sees
    the least context; never 0, so that a pixel covered by one tile only keeps its value."""
    ramp = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


# A symmetry of the square, as (quarter turns, mirrored): the tile is mirrored left-right
# first, then turned counter-clockwise; its inverse undoes the turns, then the mirror.
Symmetry = tuple[int, bool]

# The view that training's augmentation (core/augment.py) makes of a crop with each of its
# exact operations, (flip, vflip, quarter turn) on or off: its quarter turn is clockwise and
# comes before the flips. A test derives the same table from make_augment itself.
AUGMENTED_VIEWS: dict[tuple[bool, bool, bool], Symmetry] = {
    (False, False, False): (0, False), (False, False, True): (3, False),
    (False, True, False): (2, True), (False, True, True): (3, True),
    (True, False, False): (0, True), (True, False, True): (1, True),
    (True, True, False): (2, False), (True, True, True): (1, False),
}


def trained_symmetries(augment) -> list[Symmetry]:
    """The views of a tile that a run's augmentation (augment.flip, vflip, rotate90) showed
    its model: all 8 symmetries of the square with both flips and quarter turns, 2 with a
    horizontal flip alone. Averaging over those a model has learned is nnU-Net's test-time
    mirroring; over others it would blur a model that knows up from down."""
    flips = (False, True) if augment.flip > 0 else (False,)
    vflips = (False, True) if augment.vflip > 0 else (False,)
    turns = (False, True) if augment.rotate90 > 0 else (False,)
    return sorted({AUGMENTED_VIEWS[(flip, vflip, turn)]
                   for flip in flips for vflip in vflips for turn in turns})


def with_symmetries(predict_tiles, symmetries: list[Symmetry]):
    """`predict_tiles` averaged over each symmetry: the tiles transformed, predicted, and the
    outputs transformed back. Tiles are square, so quarter turns keep their shape."""
    if len(symmetries) <= 1:
        return predict_tiles

    def predict(tiles: np.ndarray) -> np.ndarray:
        total = None
        for turns, mirrored in symmetries:
            seen = tiles[:, :, ::-1] if mirrored else tiles
            seen = np.ascontiguousarray(np.rot90(seen, turns, axes=(1, 2)))
            output = np.rot90(np.asarray(predict_tiles(seen), np.float32), -turns, axes=(1, 2))
            output = output[:, :, ::-1] if mirrored else output
            total = output if total is None else total + output
        return total / len(symmetries)

    return predict


def sliding_window(predict_tiles, image: np.ndarray, tile: int, overlap: float,
                   batch: int = 16) -> np.ndarray:
    """Class probabilities (H, W, K) of a whole image of any size from a model that takes
    (N, tile, tile, C) uint8 tiles: overlapping tiles, blended with `blend_window`. Images
    smaller than a tile are reflected up to its size, and the result cropped back."""
    height, width = image.shape[:2]
    padded = image
    if height < tile or width < tile:
        pad = [(0, max(0, tile - height)), (0, max(0, tile - width)), (0, 0)]
        padded = np.pad(image, pad, mode="symmetric")
    full_h, full_w = padded.shape[:2]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    corners = [(y, x) for y in tile_starts(full_h, tile, stride)
               for x in tile_starts(full_w, tile, stride)]
    window = blend_window(tile)[..., None]
    total = None
    weight = np.zeros((full_h, full_w, 1), np.float32)
    for start in range(0, len(corners), batch):
        chunk = corners[start:start + batch]
        tiles = np.stack([padded[y:y + tile, x:x + tile] for y, x in chunk])
        outputs = np.asarray(predict_tiles(tiles), np.float32)
        if total is None:
            total = np.zeros((full_h, full_w, outputs.shape[-1]), np.float32)
        for (y, x), output in zip(chunk, outputs):
            total[y:y + tile, x:x + tile] += output * window
            weight[y:y + tile, x:x + tile] += window
    return (total / weight)[:height, :width]


def val_tiles(split: Split, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping tiles covering every val image (reflected at the borders, with IGNORE
    masks there), for the quick val metrics Keras reports each epoch; written in place, in
    memory a tensor can share (core.data.aligned_empty)."""
    from visionsuite.core.data import aligned_empty

    grids = [(math.ceil(mask.shape[0] / tile), math.ceil(mask.shape[1] / tile))
             for mask in split.targets]
    count = sum(rows * columns for rows, columns in grids)
    image_type = np.result_type(*{image.dtype for image in split.images})
    mask_type = np.result_type(*{mask.dtype for mask in split.targets})
    images = aligned_empty((count, tile, tile, split.images[0].shape[-1]), image_type)
    masks = aligned_empty((count, tile, tile), mask_type)
    index = 0
    for image, mask, (rows, columns) in zip(split.images, split.targets, grids):
        height, width = mask.shape
        full_h, full_w = rows * tile, columns * tile
        padded = np.pad(image, [(0, full_h - height), (0, full_w - width), (0, 0)],
                        mode="symmetric")
        padded_mask = np.pad(mask, [(0, full_h - height), (0, full_w - width)],
                             constant_values=IGNORE)
        for y in range(0, full_h, tile):
            for x in range(0, full_w, tile):
                images[index] = padded[y:y + tile, x:x + tile]
                masks[index] = padded_mask[y:y + tile, x:x + tile]
                index += 1
    return images, masks
