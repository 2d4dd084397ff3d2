"""16-bit images that hold fewer bits (a 12-bit camera's): segment read from the dataset's bit
depth, as a new run measures it, against from the full 0..65535 range, as before.

    python benchmarks/bit_depth.py [--data ../shared/datasets/segment/membrane] [--bits 12]
                                   [--epochs 15]

The dataset's images are written as 16-bit TIFFs holding `bits` bits (each 8-bit value
times 2**(bits - 8)), masks as they are, under runs/benchmark/bit_depth/data (never into the
dataset). The shipped segment config trains on them for `epochs` epochs twice: with the
window measured from the set (0..2**bits - 1, the default) and with data.window set to the
full 16-bit range (0..65535: the scaling before; 2**(8 - bits) of the grey levels), and
once on the 8-bit originals for reference. Prints a table, writes JSON (default
benchmarks/results/bit_depth.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visionsuite.config import load_config, read_yaml  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.core.train import train  # noqa: E402
from visionsuite.tasks.segment.index import index_pairs  # noqa: E402

OUTPUT = Path("runs/benchmark/bit_depth")
MEMBRANE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "segment" / "membrane"


def deep_copy(data: Path, root: Path, bits: int) -> Path:
    """`data`'s train and val pairs with each image as a 16-bit grey TIFF of `bits` bits."""
    index = index_pairs(data)
    for split in ("train", "val"):
        for pair in index.splits[split]:
            for kind in ("images", "masks"):
                (root / split / kind).mkdir(parents=True, exist_ok=True)
            grey = np.asarray(Image.open(pair.image).convert("L"), np.uint16)
            Image.fromarray(grey << (bits - 8)).save(root / split / "images" /
                                                     f"{pair.image.stem}.tif")
            shutil.copy(pair.mask, root / split / "masks" / pair.mask.name)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=MEMBRANE)
    parser.add_argument("--bits", type=int, default=12, choices=range(9, 16))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/bit_depth.json"))
    args = parser.parse_args()
    shutil.rmtree(OUTPUT, ignore_errors=True)  # this benchmark's own folder, made anew
    deep = deep_copy(args.data, OUTPUT / "data", args.bits)
    variants = [("depth", f"{args.bits}-bit, window measured (default)", deep, []),
                ("full", f"{args.bits}-bit, window 0..65535 (before)", deep,
                 ["data.window=[32767.5, 65535]"]),
                ("eight", "8-bit originals", args.data, [])]
    rows = []
    for name, images, data, sets in variants:
        config = load_config("segment", overrides={"data.path": str(data)}, sets=[
            f"train.epochs={args.epochs}", "train.max_minutes=600", *sets])
        started = time.perf_counter()
        run = train(config, output=OUTPUT / "runs", name=name)
        metrics = json.loads((run / "metrics.json").read_text())
        window = read_yaml(run / "config.yaml")["data"]["window"]
        first_class, scores = next(iter(metrics["per_class"].items()))  # membrane's: 0
        rows.append({"images": images, "window": str(window) if window else "-",
                     f"dice_{first_class}": scores["dice"],
                     "pixel_accuracy": metrics["pixel_accuracy"], "mean_dice": metrics["dice"],
                     "minutes": round((time.perf_counter() - started) / 60, 1)})
    print(table(rows))
    write_json(args.output, {"data": str(args.data), "bits": args.bits, "epochs": args.epochs,
                             "runs": rows})
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
