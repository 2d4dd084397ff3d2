"""Small lesions in large images: lesion Dice with and without augment.foreground_crops.

    python benchmarks/foreground_crops.py [--organs] [--seeds 5] [--epochs 25]
                                          [--shares 0 0.33]

The data is generated here (written under runs/benchmark/foreground_crops/data, never into
a dataset): 80 train and 10 val 192x192 grey images with three larger, dim blobs that are not
lesions each; every val image and half the train images (as a scan's slices through a
tumour) also hold one or two faint 7-px discs, the lesions, labelled. A random 64-px crop of
an image with lesions holds one about a fifth of the time. With --organs the blobs are
labelled too, as a second class ("organ", 1; "lesion", 2): 95% of the labelled
pixels are then organ, so a crop centred on any labelled pixel would seldom be a lesion's.
A small U-Net is trained on each seed with each share of foreground crops, and scored on the
whole val images. Prints a table, writes JSON (default
benchmarks/results/foreground_crops.json, or foreground_crops_organs.json with --organs).
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


def make_small_lesions(root: Path, seed: int = 0, organs: bool = False) -> Path:
    """The images and masks (0/255 lesion masks; with `organs` class indices: 1 organ,
    2 lesion) of the module's data."""
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
                mask[disc] = 2 if organs else 255
            for _ in range(3):  # larger, dimmer: not lesions (organs, where labelled)
                cy, cx = rng.integers(10, SIZE - 10, 2)
                blob = (y - cy) ** 2 + (x - cx) ** 2 <= 60
                image[blob] += 25
                if organs:
                    mask[blob & (mask == 0)] = 1
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                root / split / "images" / f"{number}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{number}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.33])
    parser.add_argument("--organs", action="store_true",
                        help="label the blobs as a second class, organ")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    shutil.rmtree(OUTPUT, ignore_errors=True)  # this benchmark's own folder, made anew
    data = make_small_lesions(OUTPUT / "data", organs=args.organs)
    classes = ["data.classes=[background, organ, lesion]"] if args.organs else []
    lesion = "lesion" if args.organs else "foreground"
    rows = []
    for share in args.shares:
        for seed in range(args.seeds):
            config = load_config("segment", overrides={"data.path": str(data)}, sets=[
                "data.image_size=64", f"train.epochs={args.epochs}", "model.levels=3",
                "model.filters=8", "train.tensorboard=false", "data.crops_per_image=4",
                f"augment.foreground_crops={share}", f"train.seed={seed}", *classes])
            started = time.perf_counter()
            run = train(config, output=OUTPUT / "runs", name=f"share{share}_seed{seed}")
            metrics = json.loads((run / "metrics.json").read_text())
            rows.append({"foreground_crops": share, "seed": seed,
                         "lesion_dice": metrics["per_class"][lesion]["dice"],
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
    path = args.json or Path("benchmarks/results/foreground_crops"
                             f"{'_organs' if args.organs else ''}.json")
    write_json(path, {"data": "organs and lesions" if args.organs else "lesions",
                      "runs": rows, "summary": summary})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
