"""Object-level scores where the masks number objects (instance masks: Cellpose's and
StarDist's label images, the Cell Tracking Challenge's, HoVer-Net's inst_map). Read as
foreground, they train a semantic model, but their users count and outline cells: a Dice
of 0.9 can hide touching nuclei predicted as one. So the predicted foreground's connected
components (8-connected, each image or slice on its own; each class's apart, so that
touching nuclei of two classes are two) are matched with the truth's numbered objects, as
the cell-segmentation benchmarks match them:

- at IoU > 0.5 a match is one to one (two objects cannot both overlap one by more than
  half of their union), so no assignment has to be solved;
- precision, recall and F1 of the matches (StarDist's matching_dataset: counts pooled over
  the split), their mean IoU (segmentation quality, SQ) and panoptic quality PQ = F1 x SQ
  (Kirillov et al. 2019; PanNuke's, Lizard's and HoVer-Net's measure);
- mean AP of the 2018 Data Science Bowl: per image, TP / (TP + FP + FN) averaged over the
  IoU thresholds 0.5, 0.55, ..., 0.95, then over the images.

With classes of nuclei (CoNSeP's type_map beside its inst_map, Lizard's, PanNuke's layers),
all foreground classes are matched together (PQ there is HoVer-Net's and PanNuke's bPQ), and
each class on its own: its predicted components against the objects of its class, and mPQ
is the mean of their PQs.

Pixels outside the region of interest (IGNORE) belong to no object on either side.

A semantic model predicts touching nuclei of one class as one component. Where round objects
touch, the predicted foreground's distance map has a peak in each (model.split_touching):
split_touching cuts such components along the watershed of that map, seeded by its peaks that
rise at least a tolerance (px) above the saddle between them (h-maxima): ImageJ's binary
Watershed, CellProfiler's declumping by shape. Training chooses it on val (choose_split):
off, or the tolerance of SPLIT_TOLERANCES whose panoptic quality is highest.
"""

from __future__ import annotations

import numpy as np

from visionsuite.tasks.segment.mask_classes import IGNORE
from visionsuite.tasks.segment.metrics import mean_known

MATCH_IOU = 0.5
AP_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)  # the Data Science Bowl 2018's
# model.split_touching=auto: the tolerances (px) tried on val; ImageJ's Watershed uses 0.5
SPLIT_TOLERANCES = (0.5, 1.0, 2.0)


def predicted_objects(classes: np.ndarray, split: float | None = None) -> np.ndarray:
    """Numbers (int32, 0 for class 0) of the 8-connected components of each class but 0 of
    (H, W) class indices (a bool mask: its foreground's): touching nuclei of two classes
    are two objects. `split`: touching round objects of a class split too (split_touching,
    at that tolerance)."""
    import cv2

    numbers, count = np.zeros(classes.shape, np.int32), 0
    for number in np.flatnonzero(np.bincount(classes.ravel()))[1:]:
        mask = classes == number
        if split:
            components = split_touching(mask, split)
            found = int(components.max(initial=0)) + 1
        else:
            found, components = cv2.connectedComponents(mask.view(np.uint8), connectivity=8,
                                                        ltype=cv2.CV_32S)
        if count:  # numbered on from the classes before: the classes do not overlap
            components[components > 0] += count
        numbers += components
        count += found - 1
    return numbers


def split_touching(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """Numbers 1..N (int32) of a bool mask's objects: its 8-connected components, those that
    hold two or more peaks of the distance map (each rising `tolerance` px above where it
    meets a higher one) cut along the watershed of the map between them."""
    import cv2
    from skimage.segmentation import watershed

    count, components = cv2.connectedComponents(mask.view(np.uint8), connectivity=8,
                                                ltype=cv2.CV_32S)
    distance = _distance_map(mask)
    # In 1/16 px, whole numbers (float32 holds them exactly), so that plateaus are equal
    levels = np.round(distance * 16)
    # Only a component of two or more local maxima can hold two peaks: the others are left
    # as they are, and the peaks are looked for in the box around these alone.
    local_maxima = (levels == cv2.dilate(levels, np.ones((3, 3), np.uint8))) & mask
    candidates = np.flatnonzero(_blobs_per_component(local_maxima, components, count)[0] > 1)
    if not len(candidates):
        return components
    inside = np.isin(components, candidates)
    left, top, width, height = cv2.boundingRect(inside.view(np.uint8))
    box = np.s_[top:top + height, left:left + width]
    inside, boxed = inside[box], np.where(inside[box], levels[box], 0)
    # the h-maxima: the regional maxima of the map reconstructed from itself less the
    # tolerance (0 outside, and not below: what is 0 around does not have to be swept)
    domes = _reconstructed(np.maximum(boxed - max(1.0, round(tolerance * 16)), 0), boxed)
    peaks = (domes - _reconstructed(np.where(inside, domes - 1, domes), domes) == 1) & inside
    held, seeded = _blobs_per_component(peaks, components[box], count)
    cut = np.isin(components[box], np.flatnonzero(held > 1))
    if not cut.any():
        return components
    parts = components.copy()  # the components left whole first, then the clumps' parts
    parts[box] = np.where(cut, watershed(-distance[box], np.where(cut, seeded, 0), mask=cut)
                          + count, parts[box])
    present = np.zeros(int(parts.max()) + 1, bool)
    present[parts] = True  # numbered 1..N by a table: np.unique sorts, 5x slower
    return (np.cumsum(present, dtype=np.int32) - present[0])[parts]


def _distance_map(mask: np.ndarray) -> np.ndarray:
    """Each pixel's Euclidean distance to the nearest pixel out of the bool `mask` (float32),
    the same from run to run. OpenCV's exact transform is a few float32 steps off, by amounts
    that change between runs (and with them the watershed's ties); the squares of its
    distances, rounded, are the exact squared distances while they are below 360 px. Farther,
    scipy's exact transform (10x slower)."""
    import cv2

    distance = cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if distance.max(initial=0) < 360:
        return np.sqrt(np.round(np.square(distance, dtype=np.float64))).astype(np.float32)
    from scipy import ndimage

    return ndimage.distance_transform_edt(mask).astype(np.float32)


def _blobs_per_component(blobs: np.ndarray, components: np.ndarray, count: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """How many 8-connected blobs of the bool mask `blobs` each of `count` numbered
    `components` holds (blobs lie within them), and the blobs numbered."""
    import cv2

    found, numbered = cv2.connectedComponents(blobs.view(np.uint8), connectivity=8,
                                              ltype=cv2.CV_32S)
    holder = np.zeros(found, np.int32)  # the component that holds each blob
    holder[numbered.ravel()] = components.ravel()
    return np.bincount(holder[1:], minlength=count), numbered


def _reconstructed(marker: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Morphological reconstruction by dilation of `marker` under `mask` (8-connected).
    cv2's 3x3 dilations until nothing grows: for a 2048x2048 image of 7,000 nuclei, 40
    rounds in 0.19 s against skimage.morphology.reconstruction's 3.3 s."""
    import cv2

    kernel = np.ones((3, 3), np.uint8)
    while True:
        before = marker
        for _ in range(4):  # checked every 4 rounds: the check costs about as much as one
            marker = np.minimum(cv2.dilate(marker, kernel), mask)
        if np.array_equal(marker, before):
            return marker


def matched_ious(truth: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, int, int]:
    """IoU of every overlapping (truth object, found object) pair, and how many objects
    each side holds; objects are the values other than 0."""
    truth_numbers, truth_areas = np.unique(truth[truth > 0], return_counts=True)
    found_numbers, found_areas = np.unique(found[found > 0], return_counts=True)
    both = (truth > 0) & (found > 0)
    base = int(found_numbers[-1]) + 1 if len(found_numbers) else 1
    # each overlapping pair once, as one number (1-D unique sorts fast)
    pairs, overlaps = np.unique(truth[both].astype(np.int64) * base + found[both],
                                return_counts=True)
    first, second = np.divmod(pairs, base)
    unions = (truth_areas[np.searchsorted(truth_numbers, first)]
              + found_areas[np.searchsorted(found_numbers, second)] - overlaps)
    return overlaps / unions, len(truth_numbers), len(found_numbers)


def image_object_scores(predicted: np.ndarray, target: np.ndarray, objects: np.ndarray,
                        split: float | None = None, classes: int = 0) -> dict:
    """One image's counts: truth and predicted objects, the IoU of each match above
    MATCH_IOU, and the matches above each AP threshold. `predicted`: class indices (the
    foreground is every class but 0); `target`: class indices with IGNORE outside the
    region of interest; `objects`: the truth's object numbers. `split`: predicted_objects'.
    With `classes` (how many), also "per_class": each class but 0's counts, of its objects
    alone on both sides (the predicted objects of that class: each class's apart)."""
    inside = target != IGNORE
    found = predicted_objects(np.where(inside, predicted, 0), split)
    score = _counts(np.where(inside, objects, 0), found)
    if classes:
        score["per_class"] = [_counts(np.where(inside & (target == number), objects, 0),
                                      np.where(predicted == number, found, 0))
                              for number in range(1, classes)]
    return score


def _counts(truth: np.ndarray, found: np.ndarray) -> dict:
    """image_object_scores' counts of the numbered objects `truth` against `found`."""
    ious, truths, founds = matched_ious(truth, found)
    return {"truth": truths, "predicted": founds,
            "matched_ious": ious[ious > MATCH_IOU],
            "matches_above": [int((ious > threshold).sum()) for threshold in AP_THRESHOLDS]}


def add_object_scores(metrics: dict, predicted: list[np.ndarray], targets: list[np.ndarray],
                      objects: list[np.ndarray | None], labels: list[str],
                      split: bool | float | str = False) -> None:
    """metrics["objects"] (object_metrics) of the images whose truth numbers its objects,
    and each one's F1 in its per_image row ("object_f1"); with classes of objects (more
    than 2 `labels`), also each class's ("per_class") and the mean of their PQs ("mpq").
    `split`: touching objects split at that tolerance (split_touching; false: not split;
    "auto": choose_split chooses, and metrics["split_touching_trials"] shows its trials);
    metrics["split_touching"] is the tolerance applied, where one is."""
    numbered = [index for index, numbers in enumerate(objects) if numbers is not None]
    if not numbered:
        return
    classes = len(labels) if len(labels) > 2 else 0
    scored = None
    if split == "auto":
        split, metrics["split_touching_trials"], chosen = choose_split(
            [(predicted[index], targets[index], objects[index]) for index in numbered])
        if not classes:  # the chosen trial scored them already
            scored = dict(zip(numbered, chosen))
    split = float(split) if split else None
    if split:
        metrics["split_touching"] = split
    if scored is None:
        scored = {index: image_object_scores(predicted[index], targets[index], objects[index],
                                             split, classes) for index in numbered}
    metrics["objects"] = object_metrics(list(scored.values()))
    for index, row in enumerate(metrics.get("per_image") or []):
        if index in scored:
            row["object_f1"] = image_f1(scored[index])
    if classes:
        per_class = {name: object_metrics([scored[index]["per_class"][number - 1]
                                           for index in numbered])
                     for number, name in enumerate(labels[1:], start=1)}
        metrics["objects"]["per_class"] = per_class
        metrics["objects"]["mpq"] = mean_known(scores["panoptic_quality"]
                                               for scores in per_class.values())


def choose_split(images: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                 ) -> tuple[float | None, list[dict], list[dict]]:
    """The tolerance of SPLIT_TOLERANCES, or None (not split), whose panoptic quality of all
    foreground is highest on (predicted, target, objects) `images`; None unless one beats
    it. With each trial's scores, in the order tried, and the chosen trial's
    image_object_scores of each image (all foreground: no per_class)."""
    trials, best = [], None
    for tolerance in (None,) + SPLIT_TOLERANCES:
        per_image = [image_object_scores(*image, split=tolerance) for image in images]
        scores = object_metrics(per_image)
        trials.append({"split_touching": tolerance or "off",
                       **{key: scores[key] for key in ("predicted", "matched", "f1",
                                                       "panoptic_quality", "mean_ap")}})
        quality = scores["panoptic_quality"] or 0.0
        if best is None or quality > best[1]:
            best = (tolerance, quality, per_image)
    return best[0], trials, best[2]


def object_metrics(scores: list[dict]) -> dict:
    """The split's object scores (see the module) from each image's image_object_scores."""
    truths = sum(score["truth"] for score in scores)
    founds = sum(score["predicted"] for score in scores)
    ious = np.concatenate([score["matched_ious"] for score in scores] + [np.zeros(0)])
    matched = len(ious)
    f1 = 2 * matched / (truths + founds) if truths + founds else None
    quality = float(ious.mean()) if matched else None
    return {"iou_threshold": MATCH_IOU, "images": len(scores), "truth": truths,
            "predicted": founds, "matched": matched,
            "precision": matched / founds if founds else None,
            "recall": matched / truths if truths else None, "f1": f1,
            "segmentation_quality": quality,
            "panoptic_quality": f1 * (quality or 0.0) if f1 is not None else None,
            "mean_ap": mean_known(image_ap(score) for score in scores)}


def image_f1(score: dict) -> float | None:
    """An image's F1 of the matches at MATCH_IOU; None where neither side holds objects."""
    total = score["truth"] + score["predicted"]
    return 2 * len(score["matched_ious"]) / total if total else None


def image_ap(score: dict) -> float | None:
    """An image's Data Science Bowl 2018 score: TP / (TP + FP + FN) averaged over the AP
    thresholds; None where neither side holds objects."""
    total = score["truth"] + score["predicted"]
    if not total:
        return None
    return float(np.mean([matched / (total - matched) for matched in score["matches_above"]]))

