"""Per-class Dice, IoU and pixel accuracy; surface distances (HD95, ASSD); sensitivity,
specificity and ROC AUC for two classes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from visionsuite.tasks.segment.decode import case_members, volume_of
from visionsuite.tasks.segment.mask_classes import IGNORE
from visionsuite.tasks.segment.surface import measurable, surface_distances

AUC_BINS = 10000  # ROC AUC from probability histograms: exact up to 1e-4 in probability


def segmentation_metrics(probabilities: list[np.ndarray], masks: list[np.ndarray],
                         labels: list[str], threshold: float = 0.5,
                         names: list[str] | None = None,
                         paths: list[str] | None = None,
                         spacing: list[tuple[float, float, float] | None] | None = None,
                         regions: dict[str, list[int]] | None = None,
                         tolerance: float | dict[str, float] | None = None,
                         predicted: list[np.ndarray] | None = None) -> dict:
    """Per class and mean Dice and IoU, pixel accuracy; for 2 classes also sensitivity,
    specificity and ROC AUC of the foreground (class 1) probability. Pixels marked IGNORE
    (outside the region of interest) are left out. With `names`, also each image's Dice and
    pixel accuracy ("per_image"), to find the slides, patients or labels that fail; where
    names are slices of volumes ('ct.nii.gz[12]'), each volume's ("per_volume", its slices
    pooled) and the mean over volumes ("volume_dice", and of each class over the volumes
    that hold it or were predicted to: the per-case figure radiology papers report). `paths`
    (the slices' whole paths, else `names`) tell volumes of one file name apart (KiTS-like
    `case_00001/imaging.nii.gz`). Surface distances (see surface_distances): in mm, each
    volume as a whole, where `spacing` gives every image's voxel size (DICOM, NIfTI), else
    in pixels, each image or slice on its own; with a `tolerance` (in that unit), also the
    normalised surface Dice ("nsd"): of every structure, or with {name: tolerance} of the
    classes and regions named, each at its own. `regions`: name to class indices scored together
    ("per_region", see _add_case_scores). `predicted`: each image's classes where they are not
    the probabilities' (post-processed, see components.py); ROC AUC stays the probabilities'."""
    count = len(labels)
    confusion = np.zeros((count, count), np.int64)
    positives = np.zeros(AUC_BINS + 1, np.int64)
    negatives = np.zeros(AUC_BINS + 1, np.int64)
    per_image, volumes = [], {}
    # One class map per image (uint8: 1 byte a pixel beside the probabilities' 4 a class),
    # shared by the overlap and the surface scores.
    if predicted is None:
        predicted = [predict_classes(probs, threshold).astype(np.uint8)
                     for probs in probabilities]
    for index, (probs, mask) in enumerate(zip(probabilities, masks)):
        image_confusion, valid = _confusion(predicted[index], mask, count)
        confusion += image_confusion
        if names is not None:
            per_image.append({"image": str(names[index]),
                              **_image_scores(image_confusion, labels)})
            volume = volume_of(str((paths or names)[index]))
            pooled, slices = volumes.get(volume, (0, 0))
            volumes[volume] = (pooled + image_confusion, slices + 1)
        if count == 2:
            truth = mask[valid]
            bins = np.clip(np.round(probs[..., 1][valid] * AUC_BINS), 0, AUC_BINS).astype(int)
            positives += np.bincount(bins[truth == 1], minlength=AUC_BINS + 1)
            negatives += np.bincount(bins[truth == 0], minlength=AUC_BINS + 1)
    true_pos = np.diag(confusion).astype(float)
    truth_sum, pred_sum = confusion.sum(1).astype(float), confusion.sum(0).astype(float)
    dice, present = _dice(confusion)
    iou = _ratio(true_pos, truth_sum + pred_sum - true_pos)
    overall = _image_scores(confusion, labels)  # the whole split scored as one image
    metrics = {
        "dice": overall["dice"],
        "iou": float(iou[present].mean()) if present.any() else 0.0,
        "pixel_accuracy": overall["pixel_accuracy"],
        "images": len(masks),
        "pixels": int(confusion.sum()),
    }
    if count == 2:
        tp, fn, fp, tn = confusion[1, 1], confusion[1, 0], confusion[0, 1], confusion[0, 0]
        metrics["sensitivity"] = float(tp / max(tp + fn, 1))
        metrics["specificity"] = float(tn / max(tn + fp, 1))
        metrics["roc_auc"] = _auc(positives, negatives)
    # A class in neither the truth nor the prediction has no Dice (None), as per image: it
    # is left out of the mean (BraTS 2021's labels 0, 1, 2, 4 leave class 3 empty).
    metrics["per_class"] = {
        name: {"dice": float(dice[i]) if present[i] else None,
               "iou": float(iou[i]) if present[i] else None, "pixels": int(truth_sum[i]),
               "pixel_fraction": float(truth_sum[i] / max(confusion.sum(), 1))}
        for i, name in enumerate(labels)}
    metrics["confusion_matrix"] = confusion.tolist()
    if names is not None:
        metrics["per_image"] = per_image
        if len(volumes) < len(per_image):  # some names are slices of one volume
            metrics.update(_volume_scores(volumes, labels))
    _add_case_scores(metrics, predicted, masks, labels,
                     [str(name) for name in paths or names or []], spacing, regions or {},
                     tolerance)
    return metrics


def _add_case_scores(metrics: dict, predicted: list[np.ndarray], masks: list[np.ndarray],
                     labels: list[str], paths: list[str], spacing: list | None,
                     regions: dict[str, list[int]],
                     tolerance: float | dict[str, float] | None) -> None:
    """HD95 and ASSD (and with a tolerance NSD) of each class: of each case (a volume in mm,
    else an image), its mean over the cases where truth and prediction both hold the class,
    and the mean over the classes; each case's are added to its per_volume or per_image row.
    Each region (classes scored together) gets its pooled Dice, its mean Dice over the cases
    that hold it or were predicted to ("case_dice"), and its distances ("per_region")."""
    unit = "mm" if spacing and all(measurable(each) for each in spacing) else "px"
    cases = case_members(paths) if unit == "mm" and paths \
        else [[index] for index in range(len(masks))]
    structures = [[number] for number in range(len(labels))] + list(regions.values())
    tolerances = [tolerance.get(name) if isinstance(tolerance, dict) else tolerance
                  for name in labels + list(regions)]
    scored = [_case_scores([predicted[i] for i in members], [masks[i] for i in members],
                           structures, spacing[members[0]] if unit == "mm" else (1.0, 1.0, 1.0),
                           tolerances)
              for members in cases]
    measures = ("hd95", "assd") + (("nsd",) if tolerance is not None else ())
    per_class = metrics["per_class"]
    for measure in measures:
        for number, name in enumerate(labels):
            per_class[name][measure] = mean_known(case[number][measure] for case in scored)
        metrics[measure] = mean_known(per_class[name][measure] for name in labels)
    metrics["distance_unit"] = unit
    if tolerance is not None:
        metrics["surface_tolerance"] = tolerance
    if regions:
        metrics["per_region"] = {name: _region_scores([case[number] for case in scored],
                                                      measures)
                                 for number, name in enumerate(regions, start=len(labels))}
    rows = metrics.get("per_volume" if unit == "mm" and "per_volume" in metrics
                       else "per_image")
    if rows and len(rows) == len(scored):
        for row, case in zip(rows, scored):
            for measure in measures:
                row[measure] = mean_known(scores[measure] for scores in case[:len(labels)])


def _case_scores(predicted: list[np.ndarray], masks: list[np.ndarray],
                 structures: list[list[int]], spacing: tuple[float, float, float],
                 tolerances: list[float | None]) -> list[dict]:
    """Per structure (a set of classes), between the case's truth and predicted classes (its
    slices stacked): pixels in both, in the truth, predicted; HD95, ASSD and with its
    tolerance NSD (None where either lacks it). Ignored pixels belong to neither."""
    truth = np.stack(masks)
    predicted = np.where(truth == IGNORE, IGNORE, np.stack(predicted))  # IGNORE is no class
    scores = []
    for classes, tolerance in zip(structures, tolerances):
        true, found = np.isin(truth, classes), np.isin(predicted, classes)
        distances = surface_distances(true, found, spacing, tolerance) or {}
        distances = {measure: distances.get(measure) for measure in ("hd95", "assd", "nsd")}
        scores.append({"both": int((true & found).sum()), "truth": int(true.sum()),
                       "predicted": int(found.sum()), **distances})
    return scores


def _region_scores(cases: list[dict], measures: tuple[str, ...]) -> dict:
    """A region's Dice of all its pixels pooled, its mean Dice over the cases that hold it or
    were predicted to, its pixels in the truth, and its mean distances."""
    both = sum(case["both"] for case in cases)
    total = sum(case["truth"] + case["predicted"] for case in cases)
    return {"dice": 2 * both / total if total else None,
            "case_dice": mean_known(2 * case["both"] / (case["truth"] + case["predicted"])
                               if case["truth"] + case["predicted"] else None
                               for case in cases),
            "pixels": sum(case["truth"] for case in cases),
            **{measure: mean_known(case[measure] for case in cases) for measure in measures}}


def mean_known(values) -> float | None:
    """The mean of the values that are not None; None where every one is."""
    found = [value for value in values if value is not None]
    return float(np.mean(found)) if found else None


def _volume_scores(volumes: dict, labels: list[str]) -> dict:
    """Scores of each volume (its pooled confusion, its slice count), named by its file name
    where that is unique, else by its whole path."""
    names = Counter(Path(volume).name for volume in volumes)
    rows = [{"volume": Path(volume).name if names[Path(volume).name] == 1 else volume,
             "slices": slices, **_image_scores(pooled, labels)}
            for volume, (pooled, slices) in volumes.items()]
    return {"volumes": len(rows), "volume_dice": float(np.mean([row["dice"] for row in rows])),
            "volume_dice_per_class": {name: mean_known(row["dice_per_class"][name] for row in rows)
                                      for name in labels},
            "per_volume": rows}


def _confusion(classes: np.ndarray, mask: np.ndarray, count: int):
    """(count x count confusion of one image's predicted `classes`, truth rows; its mask of
    valid pixels)."""
    valid = mask != IGNORE
    truth = mask[valid].astype(np.int64)
    predicted = classes[valid].astype(np.int64)
    return np.bincount(truth * count + predicted,
                       minlength=count * count).reshape(count, count), valid


def _dice(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dice per class, and which classes are in the truth or the prediction at all."""
    sums = (confusion.sum(1) + confusion.sum(0)).astype(float)
    return _ratio(2 * np.diag(confusion).astype(float), sums), sums > 0


def _image_scores(confusion: np.ndarray, labels: list[str]) -> dict:
    """One image's mean Dice (over the classes in its mask or prediction), pixel accuracy
    and Dice per class (None for a class in neither)."""
    dice, present = _dice(confusion)
    return {"dice": float(dice[present].mean()) if present.any() else 0.0,
            "pixel_accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
            "dice_per_class": {name: float(dice[i]) if present[i] else None
                               for i, name in enumerate(labels)}}


def predict_classes(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class index per pixel: the most probable class, or for 2 classes foreground where its
    probability reaches `threshold`."""
    if probs.shape[-1] == 2:
        return (probs[..., 1] >= threshold).astype(np.int64)
    return probs.argmax(-1)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    return np.divide(top, bottom, out=np.zeros_like(top, dtype=float), where=bottom > 0)


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve from score histograms; ties count half, as in Mann-Whitney."""
    total_pos, total_neg = positives.sum(), negatives.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    below = np.cumsum(negatives) - negatives  # negatives scored strictly lower
    wins = (positives * below).sum() + 0.5 * (positives * negatives).sum()
    return float(wins / (total_pos * total_neg))
