"""Detection benchmark: the shipped recipe trained from scratch, and every TFLite variant.

    python benchmarks/detect.py --data ../shared/datasets/detect/raccoon [--run RUN]

1. Training: a full `visionsuite train detect` with the shipped configs/detect.yaml (skipped
   when --run names a finished run): wall time, training images/s, val mAP@0.5 and
   mAP@0.5:0.95 (pycocotools).
2. Export: none, float16, dynamic and int8, each with NMS in the graph: size, mAP of Keras and
   of the .tflite on val, latency per image at 1 thread (LiteRT, median of 100 runs), and for
   int8 the median IoU between the Keras model's best box and MediaPipe ObjectDetector's.
Prints tables, writes JSON (default benchmarks/results/detect.json).
For comparison (issue #4, measured by the CEO on this machine): Ultralytics YOLOv8n from
scratch at 320 px, 70 epochs, 33 min on one core: mAP@0.5 0.77, mAP@0.5:0.95 0.33; its int8
file through LiteRT: 10 ms, mAP@0.5 0.76.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import numpy as np  # noqa: E402

from common import machine_facts, timed_training, training_or_finished_run  # noqa: E402
from visionsuite.core.benchmark import time_tflite  # noqa: E402
from visionsuite.core.evaluate import load_run_config  # noqa: E402
from visionsuite.core.export import QUANTIZATIONS, export_all  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.models import KerasPredictor, load_keras_model, resolve_model  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.tasks.detect import TASK  # noqa: E402


def summary(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {key: metrics[key] for key in ("map50", "map50_95", "precision", "recall")}


def mediapipe_top_iou(tflite: Path, run: Path, data, config) -> float:
    """Median IoU between the Keras model's best box and MediaPipe's best box per val image."""
    from visionsuite.core.mediapipe_tasks import mediapipe_detections
    from visionsuite.tasks.detect.metrics import box_iou
    from visionsuite.tasks.detect.predict import images_to_detections

    found = images_to_detections(KerasPredictor(load_keras_model(run / "model.keras")),
                                 data.val.images, config)
    overlaps = []
    for image, keras_result in zip(data.val.images, found):
        phone = mediapipe_detections(tflite, image, max_results=1)
        if len(keras_result["boxes"]) and phone:
            overlaps.append(box_iou(keras_result["boxes"][:1],
                                    np.array([phone[0]["box"]], np.float32))[0, 0])
    return round(float(np.median(overlaps)), 4) if overlaps else 0.0


def export_table(run: Path, runs: int) -> list[dict]:
    source = resolve_model(run)
    config = load_run_config(source)
    data = TASK.load_data(config, train=False, labels=source.labels)
    rows = []
    for report in export_all(run, list(QUANTIZATIONS)):  # into RUN/exported
        quantize = report["quantize"]
        path = Path(report["file"])
        row = {"model": f"tflite {quantize}", "size_mb": round(report["size_bytes"] / 2**20, 2),
               "keras_map50": report["keras"]["map50"], "tflite_map50": report["tflite"]["map50"],
               "keras_map50_95": report["keras"]["map50_95"],
               "tflite_map50_95": report["tflite"]["map50_95"],
               "ms_1t": round(float(np.median(time_tflite(path, 1, runs))), 2)}
        if quantize == "int8":
            row["mediapipe_top_box_iou"] = mediapipe_top_iou(path, run, data, config)
        rows.append(row)
    for row in rows:
        row["size_vs_float32"] = round(row["size_mb"] / rows[0]["size_mb"], 3)
        row["speedup_1t"] = round(rows[0]["ms_1t"] / row["ms_1t"], 2)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/detect/raccoon")
    parser.add_argument("--run", help="a finished run to export instead of training one")
    parser.add_argument("--runs", type=int, default=100, help="timed invocations per file")
    parser.add_argument("--workdir", default="runs/benchmark")
    parser.add_argument("--output", default="benchmarks/results/detect.json")
    args = parser.parse_args()
    earlier = json.loads(Path(args.output).read_text()) if Path(args.output).is_file() else {}
    results = {"data": args.data, "machine": machine_facts()}
    run, results["training"] = training_or_finished_run(
        args.run, earlier, args.data, args.workdir,
        lambda data, workdir: timed_training("detect", data, workdir, summary), summary)
    print("\ntraining with configs/detect.yaml\n" + table([results["training"]]), flush=True)
    results["export"] = export_table(run, args.runs)
    print("\nexport (NMS in the graph; mAP on val; latency at 1 thread)\n"
          + table(results["export"]))
    write_json(args.output, results)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
