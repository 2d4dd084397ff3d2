"""Touching nuclei: object scores with and without splitting them (model.split_touching).

    python benchmarks/split_touching.py [--seeds 3] [--epochs 15]

A generated set (written under runs/benchmark/split_touching, never into a dataset): 60
train and 12 val 160x160 grey images of nuclei (ellipses of 5-11 px half-axes, grainy,
blurred, noisy), most in clumps of 2-4 that touch, numbered in 16-bit masks as Cellpose's
and StarDist's label images number cells. A small U-Net is trained on it with
model.split_touching=auto (the default); its val images are scored with the predicted
foreground's connected components as they are, and split at the tolerance training chose
on val. The truth's own foreground, split and not, shows what the post-processing alone can
do. Also the time to number the objects of a megapixel of predictions, split and not.
Prints tables, writes JSON (default benchmarks/results/split_touching.json).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.models import KerasPredictor, load_keras_model, read_settings  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.tasks.segment import TASK  # noqa: E402
from visionsuite.tasks.segment.metrics import predict_classes  # noqa: E402
from visionsuite.tasks.segment.objects import (SPLIT_TOLERANCES, image_object_scores,  # noqa: E402
                                               object_metrics, predicted_objects)

from common import small_unet_arguments, train_small_unet  # noqa: E402

OUTPUT = Path("runs/benchmark/split_touching")
SIZE = 160
SHOWN = ("predicted", "matched", "f1", "panoptic_quality", "mean_ap")


def clumped_nuclei(rng: np.random.Generator) -> np.ndarray:
    """(SIZE, SIZE) uint16 numbers of nuclei: clumps of 1-4 ellipses, each next one centred
    about its radius and the last one's apart (so they touch), a nucleus not over another."""
    rows, columns = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    numbers, count = np.zeros((SIZE, SIZE), np.uint16), 0
    for _ in range(int(rng.integers(5, 9))):
        cy, cx = rng.uniform(10, SIZE - 10, 2)
        for _ in range(int(rng.choice([1, 2, 2, 3, 3, 4]))):
            a, b, turn = rng.uniform(7, 11), rng.uniform(5, 8), rng.uniform(0, math.pi)
            u = (columns - cx) * math.cos(turn) + (rows - cy) * math.sin(turn)
            v = -(columns - cx) * math.sin(turn) + (rows - cy) * math.cos(turn)
            inside = ((u / a) ** 2 + (v / b) ** 2 <= 1) & (numbers == 0)
            if inside.sum() > 60:  # left out where others cover most of it
                count += 1
                numbers[inside] = count
            step, angle = rng.uniform(1.5, 1.9) * a, rng.uniform(0, 2 * math.pi)
            cy, cx = cy + step * math.sin(angle), cx + step * math.cos(angle)
    return numbers


def nuclei_image(numbers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fluorescence-like picture of the nuclei: each its own brightness, grainy, blurred,
    noisy."""
    brightness = rng.uniform(90, 200, int(numbers.max()) + 1)
    brightness[0] = 0
    stain = brightness[numbers] * (1 + 0.2 * rng.standard_normal(numbers.shape))
    blurred = Image.fromarray(np.clip(stain, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.2))
    pixels = 20 + np.asarray(blurred, np.float64) + rng.normal(0, 8, numbers.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_set(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in (("train", 60), ("val", 12)):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            numbers = clumped_nuclei(rng)
            Image.fromarray(nuclei_image(numbers, rng)).save(
                root / split / "images" / f"{index}.png")
            Image.fromarray(numbers).save(root / split / "masks" / f"{index}.png")  # 16-bit
    return root


def split_scores(predicted: list[np.ndarray], val, split) -> dict:
    """Object scores of `val`'s class maps `predicted`, split at `split`."""
    return {key: value for key, value in object_metrics([
        image_object_scores(classes, target, objects, split=split)
        for classes, target, objects in zip(predicted, val.targets, val.objects)]).items()
        if key in SHOWN}


def numbering_seconds(predicted: list[np.ndarray], split) -> float:
    """Seconds to number the objects of a megapixel of `predicted`."""
    started = time.perf_counter()
    for classes in predicted:
        predicted_objects(classes, split)
    return (time.perf_counter() - started) / (sum(p.size for p in predicted) / 1e6)


def main() -> None:
    args = small_unet_arguments(__doc__)
    shutil.rmtree(OUTPUT, ignore_errors=True)  # this benchmark's own folder, made anew
    data = make_set(OUTPUT / "data")
    base = load_config("segment", overrides={"data.path": str(data)})
    val = TASK.load_data(base, train=False).val
    truths = [(target > 0).astype(np.uint8) for target in val.targets]
    upper = [{"foreground": "truth's", "split_touching": tolerance or "off",
              **split_scores(truths, val, tolerance)}
             for tolerance in (None,) + SPLIT_TOLERANCES]
    rows, timings = [], []
    for seed in range(args.seeds):
        run, config, seconds = train_small_unet(data, seed, args.epochs, OUTPUT / "runs",
                                                f"seed{seed}")
        chosen = read_settings(run / "inference.json").get("split_touching")
        outputs = TASK.predict(KerasPredictor(load_keras_model(run / "model.keras")), val,
                               config)
        predicted = [predict_classes(probs).astype(np.uint8) for probs in outputs]
        dice = TASK.evaluate(outputs, val, ["background", "foreground"], {})["dice"]
        for tolerance in (None, chosen) if chosen else (None,):
            rows.append({"seed": seed, "dice": dice, "chosen": chosen or "off",
                         "split_touching": tolerance or "off",
                         **split_scores(predicted, val, tolerance),
                         "train_seconds": round(seconds, 1)})
        timings.append({"seed": seed, **{f"seconds_per_mp_{tolerance or 'off'}":
                                         numbering_seconds(predicted, tolerance)
                                         for tolerance in (None,) + SPLIT_TOLERANCES}})
    truth = sum(len(np.unique(objects[objects > 0])) for objects in val.objects)
    print(f"val: {len(val.targets)} images of {truth} nuclei\n")
    print(table(upper))
    print()
    print(table(rows))
    print()
    print(table(timings))
    path = args.json or Path("benchmarks/results/split_touching.json")
    write_json(path, {"epochs": args.epochs, "val_nuclei": truth, "truth_foreground": upper,
                      "runs": rows, "numbering_seconds": timings})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
