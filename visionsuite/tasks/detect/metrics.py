"""COCO-style detection metrics, computed by pycocotools (the reference users trust), plus
precision and recall at a chosen confidence, and PR curves."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

RECALLS = np.linspace(0, 1, 101)  # COCO's 101 recall points


def detection_metrics(outputs: list[dict], targets: list[np.ndarray], sizes: list,
                      labels: list[str], conf: float = 0.25,
                      ignored: list[np.ndarray] | None = None) -> dict:
    """mAP@0.5, mAP@0.5:0.95, per-class AP, and precision/recall at `conf`.
    outputs: per image {'boxes' x1 y1 x2 y2, 'scores', 'classes'}; targets: per image (M, 5)
    rows (class, x1, y1, x2, y2), in the same pixels; ignored: per image (K, 5) rows of regions
    (VOC difficult, COCO crowd) that are not objects to find, and where a detection of their
    class is not a false one (pycocotools' crowd matching)."""
    ignored = _regions_or_none(ignored, targets)
    evaluation = coco_evaluation(outputs, targets, sizes, len(labels), ignored)
    precision = evaluation.eval["precision"] if evaluation is not None else None
    per_class, curves = {}, {}
    for k, name in enumerate(labels):
        if precision is None:
            per_class[name] = {"ap50": 0.0, "ap50_95": 0.0}
            continue
        at50 = precision[0, :, k, 0, -1]
        every = precision[:, :, k, 0, -1]
        present = at50 > -1
        per_class[name] = {"ap50": float(at50[present].mean()) if present.any() else 0.0,
                           "ap50_95": float(every[every > -1].mean()) if (every > -1).any()
                           else 0.0}
        curves[name] = np.where(at50 > -1, at50, 0.0).round(4).tolist()
    stats = evaluation.stats if evaluation is not None else np.zeros(12)
    precision_at, recall_at = precision_recall(outputs, targets, len(labels), conf,
                                               ignored=ignored)
    return {
        "map50": round(max(float(stats[1]), 0.0), 4),
        "map50_95": round(max(float(stats[0]), 0.0), 4),
        "precision": round(precision_at, 4),
        "recall": round(recall_at, 4),
        "conf": conf,
        "images": len(targets),
        "boxes": int(sum(len(t) for t in targets)),
        "ignored_regions": int(sum(len(r) for r in ignored)),
        "per_class": per_class,
        "pr_curves": {"recall": RECALLS.round(2).tolist(), "precision": curves},
    }


def coco_evaluation(outputs, targets, sizes, classes: int, ignored=None):
    """A finished pycocotools COCOeval (bbox), or None when the split has no boxes at all.
    `ignored` regions go in as crowd annotations: pycocotools' only way to ignore a region."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    ignored = _regions_or_none(ignored, targets)
    for index, (output, target, size, regions) in enumerate(zip(outputs, targets, sizes,
                                                                 ignored)):
        images.append({"id": index, "width": int(size[0]), "height": int(size[1])})
        for crowd, rows in ((0, target), (1, regions)):
            for row in rows:
                x1, y1, x2, y2 = (float(v) for v in row[1:])
                annotations.append({"id": len(annotations) + 1, "image_id": index,
                                    "category_id": int(row[0]),
                                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                                    "area": (x2 - x1) * (y2 - y1), "iscrowd": crowd})
        for box, score, label in zip(output["boxes"], output["scores"], output["classes"]):
            x1, y1, x2, y2 = (float(v) for v in box)
            detections.append({"image_id": index, "category_id": int(label),
                               "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    if not any(len(t) for t in targets):
        return None
    truth = COCO()
    truth.dataset = {"images": images, "annotations": annotations,
                     "categories": [{"id": k, "name": str(k)} for k in range(classes)]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth.createIndex()
        found = truth.loadRes(detections) if detections else COCO()
        if not detections:
            found.dataset = {"images": images, "annotations": [], "categories":
                             truth.dataset["categories"]}
            found.createIndex()
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.params.maxDets = [1, 10, 100]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), corners x1 y1 x2 y2."""
    inter = _intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def precision_recall(outputs, targets, classes: int, conf: float, iou: float = 0.5,
                     ignored=None):
    """Precision and recall of the detections scoring >= conf, matched greedily by score to
    unmatched boxes of their class at IoU >= iou. A detection left unmatched inside an ignored
    region of its class (pycocotools' crowd overlap: the share of the detection inside it is
    >= iou) counts neither way."""
    hits = false = 0
    total = sum(len(t) for t in targets)
    ignored = _regions_or_none(ignored, targets)
    for output, target, regions in zip(outputs, targets, ignored):
        keep = output["scores"] >= conf
        boxes, labels = output["boxes"][keep].reshape(-1, 4), output["classes"][keep]
        used = np.zeros(len(target), bool)
        overlaps = box_iou(boxes, target[:, 1:])
        covered = share_inside(boxes, regions[:, 1:])
        for index in np.argsort(-output["scores"][keep], kind="stable"):
            candidates = np.where((target[:, 0] == labels[index]) & ~used,
                                  overlaps[index], 0.0)
            best = int(candidates.argmax()) if len(target) else 0
            if len(target) and candidates[best] >= iou:
                used[best] = True
                hits += 1
            elif not (covered[index] * (regions[:, 0] == labels[index]) >= iou).any():
                false += 1
    predicted = hits + false
    return (hits / predicted if predicted else 0.0), (hits / total if total else 0.0)


def _regions_or_none(ignored, targets) -> list[np.ndarray]:
    return ignored or [np.zeros((0, 5), np.float32)] * len(targets)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def share_inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The share of each box in a (N, 4) that lies inside each box in b (M, 4)."""
    inter = _intersection(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return inter / np.maximum(area_a[:, None], 1e-9)


def plot_pr_curves(metrics: dict, path: Path) -> Path:
    from visionsuite.core.plots import _pyplot, _save

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4.5))
    recall = metrics["pr_curves"]["recall"]
    for name, precision in metrics["pr_curves"]["precision"].items():
        axis.plot(recall, precision, label=f"{name} AP50 {metrics['per_class'][name]['ap50']:.3f}")
    axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
             title=f"PR at IoU 0.5 (mAP@0.5 {metrics['map50']:.3f})")
    if metrics["pr_curves"]["precision"]:
        axis.legend(fontsize=7, loc="lower left")
    axis.grid(alpha=0.3)
    _save(figure, path)
    return path
