"""Classification benchmark: training throughput against plain Keras, accuracy, and the export
table (size, val accuracy and latency for none, float16, dynamic and int8).

    python benchmarks/classify.py --data ../shared/datasets/classify/sign-digits [--run RUN]

1. Throughput: images/s of `visionsuite train` (augmentation, EMA, checkpoints and logs
   included) against a minimal hand-written `model.fit` on the same model and decoded images,
   from the median epoch time of epochs 2.. of a short run (epoch 1 traces the graph).
2. Accuracy: a full `visionsuite train` with the shipped configs/classify.yaml (skipped when
   --run names a finished run), its wall time and val accuracy.
3. Export: every quantization of that run, its size, the val accuracy of Keras and .tflite,
   LiteRT latency at each thread count, and how often MediaPipe's ImageClassifier running
   the file gives the Keras model's top-1 on val.
Prints tables, writes JSON (default benchmarks/results/classify.json).
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

from common import interleaved_throughput, machine_facts  # noqa: E402
from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.benchmark import summarize, time_tflite  # noqa: E402
from visionsuite.core.evaluate import load_run_config  # noqa: E402
from visionsuite.core.export import QUANTIZATIONS, export_all  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.mediapipe_tasks import mediapipe_top1  # noqa: E402
from visionsuite.core.models import KerasPredictor, load_keras_model, resolve_model  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.core.train import train  # noqa: E402
from visionsuite.tasks.classify import TASK  # noqa: E402


def throughput(data_path: str, epochs: int, sets: tuple = ()) -> dict:
    """`visionsuite train` (augmentation, EMA, checkpoints, logs) against a minimal
    hand-written model.fit of the same model on the same decoded images, epochs interleaved."""
    config = load_config("classify", overrides={"data.path": data_path},
                         sets=[f"train.epochs={epochs}", "train.patience=0", *sets])
    keras.utils.set_random_seed(0)
    data = TASK.load_data(config)
    plain = TASK.build_model(config, data.labels)
    plain.compile(keras.optimizers.AdamW(), keras.losses.CategoricalCrossentropy(
        label_smoothing=0.1), metrics=["accuracy"])
    classes = len(data.labels)
    train_xy = (data.train.images.astype("float32"),
                keras.utils.to_categorical(data.train.targets, classes))
    val_xy = (data.val.images.astype("float32"),
              keras.utils.to_categorical(data.val.targets, classes))
    result = interleaved_throughput(config, plain, train_xy, val_xy, len(data.train), "images")
    return {**result, "backbone": config.model.backbone, "width": config.model.width,
            "image_size": config.data.image_size}


def full_training(data_path: str, output: str) -> tuple[Path, dict]:
    config = load_config("classify", overrides={"data.path": data_path})
    started = time.perf_counter()
    run = train(config, output=output)
    minutes = (time.perf_counter() - started) / 60
    metrics = json.loads((run / "metrics.json").read_text())
    state = json.loads((run / "state.json").read_text())
    return run, {"run": str(run), "wall_minutes": round(minutes, 2),
                 "epochs": state["epoch"] + 1, "best_epoch": state.get("best_epoch", 0) + 1,
                 "val_accuracy": metrics["accuracy"], "val_images": metrics["images"]}


def mediapipe_agreement(run: Path, tflite: Path) -> float:
    """How often MediaPipe's ImageClassifier, running `tflite`, gives the Keras model's top-1
    on the val images."""
    source = resolve_model(run)
    config = load_run_config(source)
    data = TASK.load_data(config, train=False, labels=source.labels)
    keras_top1 = KerasPredictor(load_keras_model(source.path)).predict(data.val.images).argmax(1)
    return float((mediapipe_top1(tflite, data.val.images, data.labels) == keras_top1).mean())


def export_table(run: Path, threads: list[int], runs: int) -> list[dict]:
    rows = []
    for report in export_all(run, list(QUANTIZATIONS)):  # into RUN/exported
        quantize = report["quantize"]
        row = {"quantize": quantize, "size_mb": round(report["size_bytes"] / 2**20, 3),
               "keras_acc": report["keras"]["accuracy"],
               "tflite_acc": report["tflite"]["accuracy"], "agreement": report["agreement"],
               "mediapipe_agreement": mediapipe_agreement(run, Path(report["file"]))}
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
    parser.add_argument("--throughput-epochs", type=int, default=12)
    parser.add_argument("--skip-throughput", action="store_true",
                        help="keep the throughput of the last results JSON")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=300, help="timed inferences per model")
    parser.add_argument("--workdir", default="runs/benchmark")
    parser.add_argument("--output", default="benchmarks/results/classify.json")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    earlier = json.loads(Path(args.output).read_text()) if Path(args.output).is_file() else {}
    results = {"data": args.data, "machine": machine_facts()}

    if args.skip_throughput and "throughput" in earlier:
        results["throughput"] = earlier["throughput"]
    else:
        results["throughput"] = throughput(args.data, args.throughput_epochs)
    shown = {k: v for k, v in results["throughput"].items() if not k.endswith("epoch_s")}
    print("\ntraining throughput (images/s)\n" + table([shown]), flush=True)

    if args.run:
        run = Path(args.run)
        metrics = json.loads((run / "metrics.json").read_text())
        results["training"] = {"run": str(run), "val_accuracy": metrics["accuracy"]}
        if earlier.get("training", {}).get("run") == str(run):
            results["training"] = earlier["training"]  # keep that run's measured wall time
    else:
        run, results["training"] = full_training(args.data, args.workdir)
    print("\ntraining with configs/classify.yaml\n" + table([results["training"]]), flush=True)

    results["export"] = export_table(run, threads, args.runs)
    print("\nexport (val accuracy, LiteRT latency at batch 1)\n" + table(results["export"]))
    write_json(args.output, results)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
