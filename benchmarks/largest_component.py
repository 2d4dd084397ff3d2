"""One organ among look-alikes: Dice and HD95 with and without keeping the largest component.

    python benchmarks/largest_component.py [--seeds 3] [--epochs 15]

Two generated sets (written under runs/benchmark/largest_component, never into a dataset):
- organs: 60 train and 12 val 160x160 grey images, each with one labelled organ (an
  ellipse of 20-32 px half-axes) and up to four smaller unlabelled discs (10-16 px radii)
  of the same brightness and texture (other tissue that looks alike), which a small U-Net,
  seeing 64-px crops, partly takes for organ;
- nuclei: the embedded default (many nuclei an image), where keeping one component would
  remove most of them and training's val check must refuse it.
A small U-Net is trained on each (model.keep_largest_component=true, the default); its val
images are scored with the post-processing training chose and without any. Prints a table,
writes JSON (default benchmarks/results/largest_component.json).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.models import KerasPredictor, load_keras_model, read_settings  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.datasets import cells_dataset  # noqa: E402
from visionsuite.tasks.segment import TASK  # noqa: E402

from common import small_unet_arguments, train_small_unet  # noqa: E402

OUTPUT = Path("runs/benchmark/largest_component")
SIZE = 160


def make_organs(root: Path, seed: int = 0) -> Path:
    """The organs set: images, and 0/255 masks of the one organ in each."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE]
    for split, count in (("train", 60), ("val", 12)):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for number in range(count):
            image = rng.normal(90, 18, (SIZE, SIZE))
            cy, cx = rng.integers(40, SIZE - 40, 2)
            ry, rx = rng.integers(20, 33, 2)
            organ = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
            image[organ] += 40
            for _ in range(4):  # alike, smaller, apart from the organ
                by, bx = rng.integers(12, SIZE - 12, 2)
                blob = (y - by) ** 2 + (x - bx) ** 2 <= rng.integers(10, 17) ** 2
                if not (blob & organ).any():
                    image[blob] += 40
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                root / split / "images" / f"{number}.png")
            Image.fromarray(organ.astype(np.uint8) * 255).save(
                root / split / "masks" / f"{number}.png")
    return root


def scored(run: Path, config) -> dict:
    """The run's val metrics with its saved post-processing and without any."""
    settings = read_settings(run / "inference.json") if (run / "inference.json").is_file() \
        else {}
    data = TASK.load_data(config, train=False)
    outputs = TASK.predict(KerasPredictor(load_keras_model(run / "model.keras")), data.val,
                           config)
    return {"kept": settings.get("keep_largest_component", []),
            "without": TASK.evaluate(outputs, data.val, data.labels, {}),
            "with": TASK.evaluate(outputs, data.val, data.labels, settings)}


def main() -> None:
    args = small_unet_arguments(__doc__)
    shutil.rmtree(OUTPUT, ignore_errors=True)  # this benchmark's own folder, made anew
    sets = {"organs": make_organs(OUTPUT / "data"), "nuclei": cells_dataset()}
    rows = []
    for name, data in sets.items():
        for seed in range(args.seeds):
            run, config, seconds = train_small_unet(data, seed, args.epochs, OUTPUT / "runs",
                                                    f"{name}_seed{seed}")
            found = scored(run, config)
            without, kept = found["without"], found["with"]
            structure = list(without["per_class"])[1]  # the foreground class
            rows.append({
                "data": name, "seed": seed,
                "kept": "+".join("/".join(each) for each in found["kept"]) or "-",
                "dice_without": without["per_class"][structure]["dice"],
                "dice_with": kept["per_class"][structure]["dice"],
                "hd95_px_without": without["per_class"][structure]["hd95"],
                "hd95_px_with": kept["per_class"][structure]["hd95"],
                "train_seconds": round(seconds, 1)})
    summary = [{"data": name, "seeds": args.seeds,
                **{key: float(np.mean([row[key] for row in rows if row["data"] == name]))
                   for key in ("dice_without", "dice_with", "hd95_px_without", "hd95_px_with")},
                "kept_in": sum(row["kept"] != "-" for row in rows if row["data"] == name)}
               for name in sets]
    print(table(rows))
    print()
    print(table(summary))
    path = args.json or Path("benchmarks/results/largest_component.json")
    write_json(path, {"epochs": args.epochs, "runs": rows, "summary": summary})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
