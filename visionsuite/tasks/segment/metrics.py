"""Per-class Dice, IoU and pixel accuracy; sensitivity, specificity and ROC AUC for two classes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from visionsuite.tasks.segment.data import IGNORE, volume_of

AUC_BINS = 10000  # ROC AUC from probability histograms: exact up to 1e-4 in probability


def segmentation_metrics(probabilities: list[np.ndarray], masks: list[np.ndarray],
                         labels: list[str], threshold: float = 0.5,
                         names: list[str] | None = None,
                         paths: list[str] | None = None) -> dict:
    """Per class and mean Dice and IoU, pixel accuracy; for 2 classes also sensitivity,
    specificity and ROC AUC of the foreground (class 1) probability. Pixels marked IGNORE
    (outside the region of interest) are left out. With `names`, also each image's Dice and
    pixel accuracy ("per_image"), to find the slides, patients or labels that fail; where
    names are slices of volumes ('ct.nii.gz[12]'), each volume's ("per_volume", its slices
    pooled) and the mean over volumes ("volume_dice", and of each class over the volumes
    that hold it or were predicted to: the per-case figure radiology papers report). `paths`
    (the slices' whole paths, else `names`) tell volumes of one file name apart (KiTS-like
    `case_00001/imaging.nii.gz`)."""
    count = len(labels)
    confusion = np.zeros((count, count), np.int64)
    positives = np.zeros(AUC_BINS + 1, np.int64)
    negatives = np.zeros(AUC_BINS + 1, np.int64)
    per_image, volumes = [], {}
    for index, (probs, mask) in enumerate(zip(probabilities, masks)):
        image_confusion, valid = _confusion(probs, mask, count, threshold)
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
    return metrics


def _volume_scores(volumes: dict, labels: list[str]) -> dict:
    """Scores of each volume (its pooled confusion, its slice count), named by its file name
    where that is unique, else by its whole path."""
    names = Counter(Path(volume).name for volume in volumes)
    rows = [{"volume": Path(volume).name if names[Path(volume).name] == 1 else volume,
             "slices": slices, **_image_scores(pooled, labels)}
            for volume, (pooled, slices) in volumes.items()]
    per_class = {name: [row["dice_per_class"][name] for row in rows
                        if row["dice_per_class"][name] is not None] for name in labels}
    return {"volumes": len(rows), "volume_dice": float(np.mean([row["dice"] for row in rows])),
            "volume_dice_per_class": {name: float(np.mean(values)) if values else None
                                      for name, values in per_class.items()},
            "per_volume": rows}


def per_image_scores(probabilities: list[np.ndarray], masks: list[np.ndarray],
                     labels: list[str], names: list[str], threshold: float = 0.5) -> list[dict]:
    """segmentation_metrics' "per_image" alone, without its ROC histograms."""
    return [{"image": str(name), **_image_scores(_confusion(probs, mask, len(labels),
                                                             threshold)[0], labels)}
            for probs, mask, name in zip(probabilities, masks, names)]


def _confusion(probs: np.ndarray, mask: np.ndarray, count: int, threshold: float):
    """(count x count confusion of one image, truth rows; its mask of valid pixels)."""
    valid = mask != IGNORE
    truth = mask[valid].astype(np.int64)
    predicted = predict_classes(probs, threshold)[valid]
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
