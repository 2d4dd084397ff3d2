"""Is int8 faster than float32? Latency of every backbone family as .tflite, float32 vs int8.

Untrained weights (latency does not depend on their values), calibrated on random images,
batch 1, LiteRT with its default XNNPACK delegate. Prints a table, writes JSON.

    python benchmarks/int8_speed.py [--size 96] [--threads 1] [--runs 200] [--profile NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.benchmark import summarize, time_tflite  # noqa: E402
from visionsuite.core.export import convert  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.tasks.classify import TASK  # noqa: E402

MODELS = [("lenet", 1.0), ("vgg11", 0.25), ("resnet18", 0.5), ("resnet50", 0.25),
          ("mobilenetv2", 1.0), ("mobilenetv2", 0.5), ("mobilenetv3_small", 1.0),
          ("mobilenetv3_large", 1.0), ("efficientnet_b0", 1.0), ("convnext_atto", 1.0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--only", help="comma-separated backbone names")
    parser.add_argument("--output", default="benchmarks/results/int8_speed.json")
    args = parser.parse_args()
    models = [m for m in MODELS if not args.only or m[0] in args.only.split(",")]
    rng = np.random.default_rng(0)
    calibration = rng.integers(0, 256, (32, args.size, args.size, 3)).astype(np.uint8)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, width in models:
            config = load_config("classify", sets=[f"model.backbone={name}",
                                                   f"model.width={width}",
                                                   f"data.image_size={args.size}"])
            model = TASK.build_model(config, [str(i) for i in range(10)])
            row = {"backbone": name, "width": width, "params_m": round(model.count_params() / 1e6, 2)}
            for quantize in ("none", "int8"):
                path = Path(folder) / f"{name}-{width}-{quantize}.tflite"
                path.write_bytes(convert(model, quantize, calibration))
                timing = summarize(time_tflite(path, args.threads, args.runs))
                row[f"{quantize}_ms"] = timing["p50_ms"]
            row["int8_speedup"] = round(row["none_ms"] / row["int8_ms"], 2)
            rows.append(row)
            print(table([row]), flush=True)
    print()
    print(table(rows))
    write_json(args.output, {"image_size": args.size, "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
