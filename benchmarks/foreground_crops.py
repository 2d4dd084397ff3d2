"""Small lesions in large images: lesion Dice with and without augment.foreground_crops.

    python benchmarks/foreground_crops.py [--seeds 5] [--epochs 25] [--shares 0 0.33]

The data is generated here (written under runs/benchmark/foreground_crops/data, never into
a dataset): 80 train and 10 val 192x192 grey images with three larger, dim blobs that are not
lesions each; every val image and half the train images (as a scan's slices through a
tumour) also hold one or two faint 7-px discs, the lesions, labelled. A random 64-px crop of
an image with lesions holds one about a fifth of the time. A small U-Net is trained on each
seed with each share of foreground crops, and scored on the whole val images.
Prints a table, writes JSON (default benchmarks/results/foreground_crops.json).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import json  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.core.train import train  # noqa: E402

OUTPUT = Path("runs/benchmark/foreground_crops")
SIZE = 192


def make_small_lesions(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE]
    for split, count in (("train", 80), ("val", 10)):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for number in range(count):
            image = rng.normal(100, 20, (SIZE, SIZE))
            mask = np.zeros((SIZE, SIZE), np.uint8)
            lesions = rng.integers(1, 3) if split == "val" or number % 2 == 0 else 0
            for _ in range(lesions):
                cy, cx = rng.integers(10, SIZE - 10, 2)
                disc = (y - cy) ** 2 + (x - cx) ** 2 <= 12
                image[disc] += 45
                mask[disc] = 255
            for _ in range(3):  # distractors: larger, dimmer, not lesions
                cy, cx = rng.integers(10, SIZE - 10, 2)
                image[(y - cy) ** 2 + (x - cx) ** 2 <= 60] += 25
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                root / split / "images" / f"{number}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{number}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.33])
    parser.add_argument("--json", type=Path,
                        default=Path("benchmarks/results/foreground_crops.json"))
    args = parser.parse_args()
    shutil.rmtree(OUTPUT, ignore_errors=True)  # this benchmark's own folder, made anew
    data = make_small_lesions(OUTPUT / "data")
    rows = []
    for share in args.shares:
        for seed in range(args.seeds):
            config = load_config("segment", overrides={"data.path": str(data)}, sets=[
                "data.image_size=64", f"train.epochs={args.epochs}", "model.levels=3",
                "model.filters=8", "train.tensorboard=false", "data.crops_per_image=4",
                f"augment.foreground_crops={share}", f"train.seed={seed}"])
            started = time.perf_counter()
            run = train(config, output=OUTPUT / "runs", name=f"share{share}_seed{seed}")
            metrics = json.loads((run / "metrics.json").read_text())
            rows.append({"foreground_crops": share, "seed": seed,
                         "lesion_dice": metrics["per_class"]["foreground"]["dice"],
                         "mean_dice": metrics["dice"],
                         "seconds": round(time.perf_counter() - started, 1)})
    summary = [{"foreground_crops": share,
                "lesion_dice_mean": float(np.mean([r["lesion_dice"] for r in rows
                                                   if r["foreground_crops"] == share])),
                "lesion_dice_min": float(np.min([r["lesion_dice"] for r in rows
                                                 if r["foreground_crops"] == share])),
                "seeds": args.seeds, "epochs": args.epochs} for share in args.shares]
    print(table(rows))
    print()
    print(table(summary))
    write_json(args.json, {"runs": rows, "summary": summary})
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
