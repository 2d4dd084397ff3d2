"""16-bit images that hold fewer bits (a 12-bit camera's): read from the dataset's bit depth,
as a new run measures it, against from the full 0..65535 range, as before; segment or
classify.

    python benchmarks/bit_depth.py [--task segment] [--data ../shared/datasets/segment/membrane]
                                   [--bits 12] [--epochs 15]
    python benchmarks/bit_depth.py --task classify  # sign-digits, in grey

The dataset's images are written as grey 16-bit TIFFs holding `bits` bits (each 8-bit value
times 2**(bits - 8)), masks as they are, under runs/benchmark/bit_depth/data (never into the
dataset). The task's shipped config trains on them for `epochs` epochs twice: with the
window measured from the set (0..2**bits - 1, the default) and with data.window set to the
full 16-bit range (0..65535: the scaling before; 2**(8 - bits) of the grey levels), and
once on the 8-bit images in grey for reference. Prints a table, writes JSON (default
benchmarks/results/bit_depth.json, bit_depth_classify.json for classify).
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
from visionsuite.tasks.classify import index_image_folders  # noqa: E402
from visionsuite.tasks.segment.index import index_pairs  # noqa: E402

OUTPUT = Path("runs/benchmark/bit_depth")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATA = {"segment": SHARED / "segment" / "membrane", "classify": SHARED / "classify" / "sign-digits"}


def save_grey(image: Path, path: Path, bits: int | None) -> None:
    """`image` in grey as a TIFF: 8-bit, or 16-bit holding `bits` bits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.asarray(Image.open(image).convert("L"), np.uint16)
    Image.fromarray(grey << (bits - 8) if bits else grey.astype(np.uint8)).save(path)


def grey_copy(task: str, data: Path, root: Path, bits: int | None) -> Path:
    """`data`'s train and val images in grey (16-bit of `bits` bits, else 8-bit), in our
    layout; segment's masks as they are."""
    if task == "classify":
        index = index_image_folders(data)
        for split in ("train", "val"):
            for image, label in index.splits[split]:
                save_grey(image, root / split / index.classes[label] / f"{image.stem}.tif", bits)
        return root
    for split in ("train", "val"):
        for pair in index_pairs(data).splits[split]:
            save_grey(pair.image, root / split / "images" / f"{pair.image.stem}.tif", bits)
            (root / split / "masks").mkdir(parents=True, exist_ok=True)
            shutil.copy(pair.mask, root / split / "masks" / pair.mask.name)
    return root


def scores(task: str, metrics: dict) -> dict:
    if task == "classify":
        return {"accuracy": metrics["accuracy"]}
    first_class, found = next(iter(metrics["per_class"].items()))  # membrane's: 0
    return {f"dice_{first_class}": found["dice"], "pixel_accuracy": metrics["pixel_accuracy"],
            "mean_dice": metrics["dice"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(DATA), default="segment")
    parser.add_argument("--data", type=Path, help="default: membrane, or sign-digits")
    parser.add_argument("--bits", type=int, default=12, choices=range(9, 16))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/bit_depth.json "
                        "(segment), bit_depth_classify.json (classify)")
    args = parser.parse_args()
    data = args.data or DATA[args.task]
    output = args.output or Path("benchmarks/results") / (
        "bit_depth.json" if args.task == "segment" else f"bit_depth_{args.task}.json")
    shutil.rmtree(OUTPUT, ignore_errors=True)  # this benchmark's own folder, made anew
    deep = grey_copy(args.task, data, OUTPUT / "data", args.bits)
    variants = [("depth", f"{args.bits}-bit, window measured (default)", deep, []),
                ("full", f"{args.bits}-bit, window 0..65535 (before)", deep,
                 ["data.window=[32767.5, 65535]"]),
                ("eight", "8-bit originals", args.data or data, [])]
    if args.task == "classify":  # the references in grey too, as the 16-bit copies are
        variants[2] = ("eight", "8-bit, grey", grey_copy(args.task, data, OUTPUT / "grey", None),
                       [])
    rows = []
    for name, images, folder, sets in variants:
        config = load_config(args.task, overrides={"data.path": str(folder)}, sets=[
            f"train.epochs={args.epochs}", "train.max_minutes=600", *sets])
        started = time.perf_counter()
        run = train(config, output=OUTPUT / "runs", name=name)
        metrics = json.loads((run / "metrics.json").read_text())
        window = read_yaml(run / "config.yaml")["data"]["window"]
        rows.append({"images": images, "window": str(window) if window else "-",
                     **scores(args.task, metrics),
                     "minutes": round((time.perf_counter() - started) / 60, 1)})
    print(table(rows))
    write_json(output, {"task": args.task, "data": str(data), "bits": args.bits,
                        "epochs": args.epochs, "runs": rows})
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
