"""Segmentation masks against their images: how far the masks sit from what they trace, and
what moving a trained model's predictions by such an offset does to its val metrics.

    python benchmarks/mask_offset.py --run runs/segment/exp [--data DIR]

1. Offset: for each train pair, the correlation of the mask's class-0 pixels with the
   standardised image intensity, at whole-pixel shifts of the mask within +-2 px; the best
   shift per image, and a parabola through the scores for the sub-pixel offset along y and x.
   (On membrane, class 0 is membrane, drawn over dark lines.)
2. Moved predictions: the run's tiled val probabilities moved by sub-pixel amounts (linear
   interpolation), scored with the task's own metrics (pixel accuracy, Dice per class).
Prints tables, writes JSON (default benchmarks/results/mask_offset.json).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import numpy as np  # noqa: E402

from visionsuite.core.evaluate import load_run_config  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.models import load_predictor, resolve_model  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.tasks.segment import TASK  # noqa: E402
from visionsuite.tasks.segment.mask_classes import IGNORE  # noqa: E402
from visionsuite.tasks.segment.metrics import segmentation_metrics  # noqa: E402

REACH = 2  # whole-pixel shifts tried, each way
MOVES = [(0.0, 0.0), (-0.5, 0.0), (-1.0, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5)]


def correlations(image: np.ndarray, mask: np.ndarray) -> dict[tuple[int, int], float]:
    """Mean standardised intensity under the mask's class-0 pixels, the mask moved by (dy, dx)."""
    gray = image.astype(np.float32).mean(-1)
    gray = (gray - gray.mean()) / max(float(gray.std()), 1e-6)
    marked = ((mask == 0) & (mask != IGNORE)).astype(np.float32)
    height, width = mask.shape
    inner = marked[REACH:height - REACH, REACH:width - REACH]
    return {(dy, dx): float((inner * gray[REACH + dy:height - REACH + dy,
                                          REACH + dx:width - REACH + dx]).mean())
            for dy in range(-REACH, REACH + 1) for dx in range(-REACH, REACH + 1)}


def offset(scores: dict[tuple[int, int], float]) -> dict:
    """The best whole-pixel shift (by the size of the correlation, whatever its sign) and the
    sub-pixel offset of a parabola through it and its neighbours along each axis."""
    sign = 1.0 if scores[(0, 0)] >= 0 else -1.0
    # Ties go to the smaller shift.
    best = max(scores, key=lambda shift: (sign * scores[shift], -abs(shift[0]) - abs(shift[1])))

    def vertex(axis: int) -> float:
        step = np.eye(2, dtype=int)[axis]
        if abs(best[axis]) == REACH:
            return float(best[axis])
        before = sign * scores[tuple(np.subtract(best, step))]
        at = sign * scores[best]
        after = sign * scores[tuple(np.add(best, step))]
        curve = before - 2 * at + after
        return float(best[axis] + (0.5 * (before - after) / curve if curve else 0.0))

    return {"best": best, "dy": vertex(0), "dx": vertex(1)}


def moved(probabilities: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Content moved by (dy, dx) pixels (positive: down, right), by linear interpolation, the
    edge rows and columns repeated."""
    for axis, amount in ((0, dy), (1, dx)):
        if not amount:
            continue
        whole = int(np.floor(amount))
        fraction = amount - whole
        length = probabilities.shape[axis]
        source = np.arange(length)

        def take(shift):
            return np.take(probabilities, np.clip(source - shift, 0, length - 1), axis=axis)

        probabilities = (1 - fraction) * take(whole) + fraction * take(whole + 1)
    return probabilities


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished segment run")
    parser.add_argument("--data", help="dataset folder [the run's]")
    parser.add_argument("--output", default="benchmarks/results/mask_offset.json")
    args = parser.parse_args()

    source = resolve_model(args.run)
    predictor = load_predictor(source)
    config = load_run_config(source, args.data, predictor.image_size, predictor.channels)
    data = TASK.load_data(config, labels=source.labels)

    fits = [offset(correlations(image, mask))
            for image, mask in zip(data.train.images, data.train.targets)]
    votes = Counter(fit["best"] for fit in fits)
    dys = np.array([fit["dy"] for fit in fits])
    dxs = np.array([fit["dx"] for fit in fits])
    print(f"mask offset over {len(fits)} train pairs (class-0 pixels against intensity):")
    print(table([{"best_shift_dy_dx": str(shift), "images": count}
                 for shift, count in votes.most_common()]))
    print(f"sub-pixel dy: mean {dys.mean():.2f}, {dys.min():.2f} to {dys.max():.2f}; "
          f"dx: mean {dxs.mean():.2f}, {dxs.min():.2f} to {dxs.max():.2f} "
          "(positive: the mask lies that far up / left of what it traces)\n")

    probabilities = TASK.predict(predictor, data.val, config)
    rows = []
    for dy, dx in MOVES:
        metrics = segmentation_metrics([moved(p, dy, dx) for p in probabilities],
                                       data.val.targets, data.labels)
        rows.append({"moved_dy": dy, "moved_dx": dx,
                     "pixel_accuracy": metrics["pixel_accuracy"],
                     **{f"dice_{name}": values["dice"]
                        for name, values in metrics["per_class"].items()}})
    print(f"{args.run} on {len(data.val)} val images, predictions moved "
          "(negative dy: up, negative dx: left):")
    print(table(rows))
    write_json(args.output, {
        "run": args.run, "data": data.source,
        "offset": {"best_shift_votes": {str(k): v for k, v in votes.items()},
                   "dy_mean": float(dys.mean()), "dy_range": [float(dys.min()), float(dys.max())],
                   "dx_mean": float(dxs.mean()), "dx_range": [float(dxs.min()), float(dxs.max())]},
        "moved_predictions": rows})


if __name__ == "__main__":
    main()
