"""Segmentation benchmark: training throughput against a plain Keras U-Net loop, the shipped
recipe's accuracy, and tiled inference time per megapixel for Keras and every TFLite variant.

    python benchmarks/segment.py --data ../shared/datasets/segment/membrane [--run RUN]

1. Throughput: crops/s of `visionsuite train segment` (random crops with augmentation, EMA,
   checkpoints and logs) against a minimal hand-written `model.fit` of the same U-Net on
   fixed crops of the same images, validating on the same val tiles, epochs interleaved,
   median epoch after the first: `ratio` against the same model at the same precision (the
   cost of our pipeline), `ratio_to_textbook` against it in float32 with Keras' own batch norm
   (what a textbook script trains).
2. Accuracy: a full `visionsuite train segment` with the shipped configs/segment.yaml (skipped
   when --run names a finished run): wall time, crops/s, Dice of each class, pixel accuracy.
3. Export: none, float16, dynamic and int8; size, Dice and pixel accuracy of Keras and .tflite
   on the whole val images (tiled), and tiled inference time per megapixel at 1 thread.
Prints tables, writes JSON (default benchmarks/results/segment.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import keras  # noqa: E402
import numpy as np  # noqa: E402

from common import (interleaved_throughput, keras_batch_norm_twin, machine_facts,  # noqa: E402
                    timed_training, training_or_finished_run)
from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.evaluate import load_run_config  # noqa: E402
from visionsuite.core.export import QUANTIZATIONS, export_all  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.models import (KerasPredictor, TFLitePredictor, load_keras_model,  # noqa: E402
                                     resolve_model)
from visionsuite.core.report import table  # noqa: E402
from visionsuite.core.train import compute_policy, dtype_policy, float32_twin  # noqa: E402
from visionsuite.tasks.segment import TASK  # noqa: E402
from visionsuite.tasks.segment.mask_classes import IGNORE  # noqa: E402
from visionsuite.tasks.segment.tiles import val_tiles  # noqa: E402


def fixed_crops(data, size: int, count: int, seed: int = 0):
    """`count` random crops (no augmentation) of the train images and masks, for plain Keras."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for _ in range(count):
        index = rng.integers(len(data.train))
        image, mask = data.train.images[index], data.train.targets[index]
        y = rng.integers(image.shape[0] - size + 1)
        x = rng.integers(image.shape[1] - size + 1)
        images.append(image[y:y + size, x:x + size])
        masks.append(mask[y:y + size, x:x + size])
    return np.stack(images).astype("float32"), np.stack(masks).astype("int32")


def throughput(data_path: str, epochs: int) -> dict:
    config = load_config("segment", overrides={"data.path": data_path},
                         sets=[f"train.epochs={epochs}", "train.patience=0"])
    keras.utils.set_random_seed(0)
    data = TASK.load_data(config)
    size = config.data.image_size
    crops = len(data.train) * config.data.crops_per_image
    train_xy = fixed_crops(data, size, crops)
    # The val tiles that `visionsuite train` validates on every epoch, so both do the same work.
    val_x, val_y = val_tiles(data.val, size)
    val_x, val_y = val_x.astype("float32"), np.where(val_y == IGNORE, 0, val_y)
    # At the precision ours computes in (bfloat16 where auto picks it), so that the ratio is the
    # cost of our pipeline; benchmarks/train_step.py times the precisions and batch norms.
    policy = compute_policy(config.train.mixed_precision)
    with dtype_policy(policy):
        plain = TASK.build_model(config, data.labels)
    # And as a textbook script writes it: float32 and Keras' own batch norm.
    textbook = keras_batch_norm_twin(float32_twin(plain))
    for model in (plain, textbook):
        # The textbook loop: Adam and per-pixel cross-entropy on the model's softmax.
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(),
                      metrics=["accuracy"])
    result = interleaved_throughput(config, plain, train_xy, (val_x, val_y), crops, "crops",
                                    textbook)
    return {**result, "crop": size, "filters": config.model.filters,
            "levels": config.model.levels, "precision": policy}


def summary(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    result = {"pixel_accuracy": metrics["pixel_accuracy"], "mean_dice": metrics["dice"]}
    for name, values in metrics["per_class"].items():
        result[f"dice_{name}"] = values["dice"]
    return result


def per_megapixel(predictor, data, config) -> float:
    """Seconds of tiled inference per megapixel over the whole val images."""
    started = time.perf_counter()
    TASK.predict(predictor, data.val, config)
    pixels = sum(image.shape[0] * image.shape[1] for image in data.val.images)
    return (time.perf_counter() - started) / (pixels / 1e6)


def export_table(run: Path) -> list[dict]:
    source = resolve_model(run)
    config = load_run_config(source)
    data = TASK.load_data(config, train=False, labels=source.labels)
    keras_row = {"model": "keras", "s_per_megapixel": round(per_megapixel(
        KerasPredictor(load_keras_model(source.path)), data, config), 3)}
    rows = [keras_row]
    for report in export_all(run, list(QUANTIZATIONS)):  # into RUN/exported
        quantize = report["quantize"]
        predictor = TFLitePredictor(Path(report["file"]), threads=1)
        rows.append({"model": f"tflite {quantize}",
                     "size_mb": round(report["size_bytes"] / 2**20, 3),
                     "keras_dice": report["keras"]["dice"], "tflite_dice": report["tflite"]["dice"],
                     "tflite_pixel_accuracy": report["tflite"]["pixel_accuracy"],
                     "agreement": report["agreement"],
                     "s_per_megapixel_1t": round(per_megapixel(predictor, data, config), 3)})
    base = rows[1]
    for row in rows[1:]:
        row["size_vs_float32"] = round(row["size_mb"] / base["size_mb"], 3)
        row["speedup_1t"] = round(base["s_per_megapixel_1t"] / row["s_per_megapixel_1t"], 2)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/segment/membrane")
    parser.add_argument("--run", help="a finished run to export instead of training one")
    parser.add_argument("--throughput-epochs", type=int, default=10)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--workdir", default="runs/benchmark")
    parser.add_argument("--output", default="benchmarks/results/segment.json")
    args = parser.parse_args()
    earlier = json.loads(Path(args.output).read_text()) if Path(args.output).is_file() else {}
    results = {"data": args.data, "machine": machine_facts()}

    if args.skip_throughput and "throughput" in earlier:
        results["throughput"] = earlier["throughput"]
    else:
        results["throughput"] = throughput(args.data, args.throughput_epochs)
    shown = {k: v for k, v in results["throughput"].items() if not k.endswith("epoch_s")}
    print("\ntraining throughput (crops/s)\n" + table([shown]), flush=True)

    run, results["training"] = training_or_finished_run(
        args.run, earlier, args.data, args.workdir,
        lambda data, workdir: timed_training("segment", data, workdir, summary, "crops"),
        summary)
    print("\ntraining with configs/segment.yaml\n" + table([results["training"]]), flush=True)

    results["export"] = export_table(run)
    print("\nexport (whole val images, tiled; latency at 1 thread)\n" + table(results["export"]))
    write_json(args.output, results)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
