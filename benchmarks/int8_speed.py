"""Is int8 faster than float32? Latency of every backbone family as .tflite, float32 vs int8.

Untrained weights (latency does not depend on their values), calibrated on random images,
batch 1, LiteRT with its default XNNPACK delegate. A second table times the layers these
networks are made of, each as a stack of 8, to show where int8 gains or loses on this CPU:
XNNPACK picks its int8 kernels by the CPU's vector instructions (the JSON names them), and on
x86 with AVX2 only its int8 convolutions reach about the multiply-adds per second of its
float32 ones. Prints the tables, writes JSON.

    python benchmarks/int8_speed.py [--size 96] [--threads 1] [--runs 200] [--only NAMES]
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

import keras  # noqa: E402
from common import machine_facts  # noqa: E402
from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.backbones import PReLU  # noqa: E402
from visionsuite.core.benchmark import summarize, time_tflite  # noqa: E402
from visionsuite.core.export import convert  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.tasks.classify import TASK  # noqa: E402

MODELS = [("lenet", 1.0), ("vgg11", 0.25), ("resnet18", 0.5), ("resnet50", 0.25),
          ("mobilenetv2", 1.0), ("mobilenetv2", 0.5), ("mobilenetv3_small", 1.0),
          ("mobilenetv3_large", 1.0), ("efficientnet_b0", 1.0), ("convnext_atto", 1.0)]

# The layers of the networks above at a mid-network size (side, channels): each stacked 8 deep,
# ReLU fused into the convolutions as the converter fuses it.
KERNEL_SIDE, KERNEL_CHANNELS, KERNEL_DEPTH = 28, 128, 8
KERNELS = {
    "conv 3x3": lambda x: keras.layers.Conv2D(x.shape[-1], 3, padding="same",
                                              activation="relu")(x),
    "conv 1x1": lambda x: keras.layers.Conv2D(x.shape[-1], 1, activation="relu")(x),
    "depthwise 3x3": lambda x: keras.layers.DepthwiseConv2D(3, padding="same",
                                                            activation="relu")(x),
    "prelu": lambda x: PReLU()(x),  # MobileFaceNet's, as max(x, a * x)
    "multiply": lambda x: keras.layers.Multiply()([x, x]),
    "add": lambda x: keras.layers.Add()([x, x]),
}


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
            row = {"backbone": name, "width": width,
                   "params_m": round(model.count_params() / 1e6, 2)}
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
    kernels = kernel_rows(args.threads, args.runs)
    print(f"\nlayers, each stacked {KERNEL_DEPTH} deep at {KERNEL_SIDE}x{KERNEL_SIDE}x"
          f"{KERNEL_CHANNELS}:")
    print(table(kernels))
    write_json(args.output, {"image_size": args.size, "threads": args.threads,
                             "machine": machine_facts(), "rows": rows, "layers": kernels})


def kernel_rows(threads: int, runs: int) -> list[dict]:
    """float32 and int8 latency of each layer of KERNELS, stacked KERNEL_DEPTH deep."""
    shape = (KERNEL_SIDE, KERNEL_SIDE, KERNEL_CHANNELS)
    calibration = np.random.default_rng(0).integers(0, 256, (16, *shape)).astype(np.uint8)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, layer in KERNELS.items():
            x = inputs = keras.Input(shape)
            for _ in range(KERNEL_DEPTH):
                x = layer(x)
            model = keras.Model(inputs, x)
            row = {"layer": name}
            for quantize in ("none", "int8"):
                path = Path(folder) / f"layer-{quantize}.tflite"
                path.write_bytes(convert(model, quantize, calibration))
                row[f"{quantize}_ms"] = summarize(time_tflite(path, threads, runs))["p50_ms"]
            row["int8_speedup"] = round(row["none_ms"] / row["int8_ms"], 2)
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
