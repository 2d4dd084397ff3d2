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
"""

from __future__ import annotations

import numpy as np

from visionsuite.tasks.segment.mask_classes import IGNORE
from visionsuite.tasks.segment.metrics import mean_known

MATCH_IOU = 0.5
AP_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)  # the Data Science Bowl 2018's


def predicted_objects(classes: np.ndarray) -> np.ndarray:
    """Numbers (int32, 0 for class 0) of the 8-connected components of each class but 0 of
    (H, W) class indices (a bool mask: its foreground's): touching nuclei of two classes
    are two objects."""
    import cv2

    numbers, count = np.zeros(classes.shape, np.int32), 0
    for number in np.flatnonzero(np.bincount(classes.ravel()))[1:]:
        found, components = cv2.connectedComponents((classes == number).view(np.uint8),
                                                    connectivity=8, ltype=cv2.CV_32S)
        if count:  # numbered on from the classes before: the classes do not overlap
            components[components > 0] += count
        numbers += components
        count += found - 1
    return numbers


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
                        of_class: int | None = None) -> dict:
    """One image's counts: truth and predicted objects, the IoU of each match above
    MATCH_IOU, and the matches above each AP threshold. `predicted`: class indices (the
    foreground is every class but 0); `target`: class indices with IGNORE outside the
    region of interest; `objects`: the truth's object numbers. `of_class`: that class's
    objects alone, on both sides."""
    inside = target != IGNORE
    if of_class is None:
        found = predicted_objects(np.where(inside, predicted, 0))
    else:
        found = predicted_objects((predicted == of_class) & inside)
        inside &= target == of_class
    ious, truths, founds = matched_ious(np.where(inside, objects, 0), found)
    return {"truth": truths, "predicted": founds,
            "matched_ious": ious[ious > MATCH_IOU],
            "matches_above": [int((ious > threshold).sum()) for threshold in AP_THRESHOLDS]}


def add_object_scores(metrics: dict, predicted: list[np.ndarray], targets: list[np.ndarray],
                      objects: list[np.ndarray | None], labels: list[str]) -> None:
    """metrics["objects"] (object_metrics) of the images whose truth numbers its objects,
    and each one's F1 in its per_image row ("object_f1"); with classes of objects (more
    than 2 `labels`), also each class's ("per_class") and the mean of their PQs ("mpq")."""
    numbered = [index for index, numbers in enumerate(objects) if numbers is not None]
    if not numbered:
        return
    scored = {index: image_object_scores(predicted[index], targets[index], objects[index])
              for index in numbered}
    metrics["objects"] = object_metrics(list(scored.values()))
    for index, row in enumerate(metrics.get("per_image") or []):
        if index in scored:
            row["object_f1"] = image_f1(scored[index])
    if len(labels) > 2:
        per_class = {name: object_metrics([image_object_scores(
            predicted[index], targets[index], objects[index], number) for index in numbered])
            for number, name in enumerate(labels[1:], start=1)}
        metrics["objects"]["per_class"] = per_class
        metrics["objects"]["mpq"] = mean_known(scores["panoptic_quality"]
                                               for scores in per_class.values())


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

