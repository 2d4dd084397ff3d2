"""Surface distances between a structure's true and predicted masks: the 95th percentile
Hausdorff distance (HD95) and the average symmetric surface distance (ASSD), which medical
segmentation reports beside Dice (BraTS ranks by both): Dice barely moves when a boundary
is off by a few pixels or a speck is predicted far away; these measure exactly that. With a
tolerance, also the normalised surface Dice (NSD, the Medical Segmentation Decathlon's second
metric): the share of both surfaces' voxels within the tolerance of the other surface, as
MONAI's compute_surface_dice counts it (voxels, not DeepMind's surface-element areas).

Definitions as MedPy's (`hd95`, `assd`), which most papers use: a surface voxel is one of
the structure with a face neighbour outside it (outside the image counts as outside); HD95
is the 95th percentile of the distances from every surface voxel of each mask to the nearest
of the other, both directions pooled; ASSD the mean of the two directions' mean distances.
Distances are exact and Euclidean: per slice by OpenCV's exact distance transform, across
slices from each slice's transform plus the distance between the slices (in a volume the
nearest surface voxel is the nearest one of some slice), in the voxel spacing given.
"""

from __future__ import annotations

import numpy as np

SQUARE = 1e-3  # in-plane spacings this close (relatively) count as square pixels


def measurable(spacing: tuple[float, float, float] | None) -> bool:
    """Whether distances can be measured in `spacing` (between slices, rows, columns): known,
    positive, and of square pixels (OpenCV's transform has one step for rows and columns)."""
    return spacing is not None and min(spacing[1:]) > 0 \
        and abs(spacing[1] - spacing[2]) <= SQUARE * max(spacing[1:])


def surface(mask: np.ndarray) -> np.ndarray:
    """The surface voxels of a (S, H, W) bool mask; a single slice (S = 1) is a 2-D image,
    whose surface is its outline (no neighbours above and below)."""
    axes = (1, 2) if mask.shape[0] == 1 else (0, 1, 2)
    padded = np.pad(mask, [(1, 1) if axis in axes else (0, 0) for axis in range(3)])
    inside = mask.copy()
    for axis in axes:
        for start in (0, 2):  # the neighbour before, and after, along this axis
            window = [slice(1, -1) if other in axes else slice(None) for other in range(3)]
            window[axis] = slice(start, start + mask.shape[axis])
            inside &= padded[tuple(window)]
    return mask & ~inside


def nearest_distances(points: np.ndarray, targets: np.ndarray,
                      spacing: tuple[float, float, float]) -> np.ndarray:
    """Distance from each of `points` ((N, 3) voxel indices: slice, row, column) to the
    nearest voxel of `targets` ((S, H, W) bool, not empty), in `spacing` (measurable)."""
    import cv2

    across, along = spacing[0], spacing[1]
    squared = np.zeros(len(points))
    # Points on a target are 0 away: most of them where two surfaces agree (the image's edges
    # for a background class), so only the others are measured.
    away = ~targets[points[:, 0], points[:, 1], points[:, 2]]
    rest, best = points[away], np.full(int(away.sum()), np.inf)
    for index in np.flatnonzero(targets.any(axis=(1, 2))) if len(rest) else ():
        # cv2 measures to the nearest 0: the targets are the zeros
        plane = cv2.distanceTransform((~targets[index]).astype(np.uint8), cv2.DIST_L2,
                                      cv2.DIST_MASK_PRECISE)
        np.minimum(best, (plane[rest[:, 1], rest[:, 2]].astype(np.float64) * along) ** 2
                   + ((rest[:, 0] - index) * across) ** 2, out=best)
    squared[away] = best
    return np.sqrt(squared)


def surface_distances(truth: np.ndarray, predicted: np.ndarray,
                      spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
                      tolerance: float | None = None) -> dict[str, float] | None:
    """{"hd95", "assd"} between two (S, H, W) bool masks, in the units of `spacing`, and
    "nsd" with a `tolerance` (in those units); None where either mask is empty (no surface to
    measure from: Dice tells that case)."""
    if not measurable(spacing):
        raise ValueError(f"spacing {spacing}: not positive, square pixels")
    true_surface, predicted_surface = surface(truth), surface(predicted)
    if not true_surface.any() or not predicted_surface.any():
        return None
    to_predicted = nearest_distances(np.argwhere(true_surface), predicted_surface, spacing)
    to_truth = nearest_distances(np.argwhere(predicted_surface), true_surface, spacing)
    pooled = np.concatenate([to_predicted, to_truth])
    found = {"hd95": float(np.percentile(pooled, 95)),
             "assd": float((to_predicted.mean() + to_truth.mean()) / 2)}
    if tolerance is not None:
        found["nsd"] = float((pooled <= tolerance).mean())
    return found
