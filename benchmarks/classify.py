"""Classification benchmark: training throughput against plain Keras, accuracy, and the export
table (size, val accuracy and latency for none, float16, dynamic and int8).

    python benchmarks/classify.py --data ../shared/datasets/classify/sign-digits [--run RUN]

1. Throughput: images/s of `visionsuite train` (augmentation, EMA, checkpoints and logs
   included) against a minimal hand-written `model.fit` on the same model and decoded images,
   over epochs 2.. of a short run (epoch 1 traces the graph).
2. Accuracy: a full `visionsuite train` with the shipped configs/classify.yaml (skipped when
   --run names a finished run), its wall time and val accuracy.
3. Export: every quantization of that run, its size, the val accuracy of Keras and .tflite,
   and LiteRT latency at each thread count.
Prints tables, writes JSON (default benchmarks/results/classify.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.benchmark import summarize, time_tflite  # noqa: E402
from visionsuite.core.export import QUANTIZATIONS, export  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.core.train import train  # noqa: E402
from visionsuite.tasks.classify import TASK  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, measured after every other callback of that epoch has run."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def images_per_second(timer: EpochTimer, images_per_epoch: int) -> float:
    measured = timer.seconds[1:]  # the first epoch traces and compiles
    return images_per_epoch * len(measured) / sum(measured)


def throughput(data_path: str, epochs: int) -> dict:
    config = load_config("classify", sets=[f"train.epochs={epochs}", "train.patience=0"])
    config.data.path = data_path
    images_per_epoch = None
    with tempfile.TemporaryDirectory() as folder:
        ours = EpochTimer()
        run = train(config, output=folder, name="throughput", callbacks=[ours])
        steps = len((run / "history.csv").read_text().splitlines()) - 1
        assert steps == epochs

        keras.utils.set_random_seed(0)
        data = TASK.load_data(config)
        batches = len(data.train) // config.train.batch_size
        images_per_epoch = batches * config.train.batch_size  # visionsuite drops the remainder
        model = TASK.build_model(config, data.labels)
        model.compile(keras.optimizers.AdamW(), keras.losses.CategoricalCrossentropy(
            label_smoothing=0.1), metrics=["accuracy"])
        x, y = data.train.images.astype("float32"), keras.utils.to_categorical(data.train.targets)
        xv = data.val.images.astype("float32")
        yv = keras.utils.to_categorical(data.val.targets, len(data.labels))
        plain = EpochTimer()
        model.fit(x, y, batch_size=config.train.batch_size, epochs=epochs, verbose=2,
                  validation_data=(xv, yv), callbacks=[plain])
    ours_rate = images_per_second(ours, images_per_epoch)
    plain_rate = images_per_second(plain, len(x))
    return {"epochs": epochs, "visionsuite_images_per_s": round(ours_rate, 1),
            "plain_keras_images_per_s": round(plain_rate, 1),
            "ratio": round(ours_rate / plain_rate, 3),
            "backbone": config.model.backbone, "width": config.model.width,
            "image_size": config.data.image_size, "batch_size": config.train.batch_size}


def full_training(data_path: str, output: str) -> tuple[Path, dict]:
    config = load_config("classify")
    config.data.path = data_path
    started = time.perf_counter()
    run = train(config, output=output)
    minutes = (time.perf_counter() - started) / 60
    metrics = json.loads((run / "metrics.json").read_text())
    state = json.loads((run / "state.json").read_text())
    return run, {"run": str(run), "wall_minutes": round(minutes, 2),
                 "epochs": state["epoch"] + 1, "best_epoch": state.get("best_epoch", 0) + 1,
                 "val_accuracy": metrics["accuracy"], "val_images": metrics["images"]}


def export_table(run: Path, output: Path, threads: list[int], runs: int) -> list[dict]:
    rows = []
    for quantize in QUANTIZATIONS:
        report = export(run, quantize, output)
        row = {"quantize": quantize, "size_mb": round(report["size_bytes"] / 2**20, 3),
               "keras_acc": report["keras"]["accuracy"],
               "tflite_acc": report["tflite"]["accuracy"], "agreement": report["agreement"]}
        for count in threads:
            timing = summarize(time_tflite(Path(report["file"]), count, runs))
            row[f"p50_ms_{count}t"] = timing["p50_ms"]
            row[f"p90_ms_{count}t"] = timing["p90_ms"]
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["size_vs_float32"] = round(row["size_mb"] / base["size_mb"], 3)
        row["speedup_1t"] = round(base[f"p50_ms_{threads[0]}t"] / row[f"p50_ms_{threads[0]}t"], 2)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/classify/sign-digits")
    parser.add_argument("--run", help="a finished run to export instead of training one")
    parser.add_argument("--throughput-epochs", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=300, help="timed inferences per model")
    parser.add_argument("--workdir", default="runs/benchmark")
    parser.add_argument("--output", default="benchmarks/results/classify.json")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    results = {"data": args.data, "machine": {"cpus": os.cpu_count()}}

    results["throughput"] = throughput(args.data, args.throughput_epochs)
    print("\ntraining throughput (images/s)\n" + table([results["throughput"]]), flush=True)

    if args.run:
        run = Path(args.run)
        metrics = json.loads((run / "metrics.json").read_text())
        results["training"] = {"run": str(run), "val_accuracy": metrics["accuracy"]}
    else:
        run, results["training"] = full_training(args.data, args.workdir)
    print("\ntraining with configs/classify.yaml\n" + table([results["training"]]), flush=True)

    results["export"] = export_table(run, Path(args.workdir) / "exported", threads, args.runs)
    print("\nexport (val accuracy, LiteRT latency at batch 1)\n" + table(results["export"]))
    write_json(args.output, results)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
