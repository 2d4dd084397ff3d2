"""Why training is faster than Keras' defaults: train-step time of each task's shipped model
with Keras' batch norm or the fused one (`FusedBatchNormalization`), in float32 or bfloat16.

Random images and targets (step time does not depend on their values), the shipped config of
each task (its image size and batch size), a mean-squared loss on every output (the backward
pass is the same whatever the loss), median of timed steps after two warm-up steps. bfloat16 is
timed where the CPU computes it (AMX or AVX512-BF16: `bfloat16_units`); elsewhere it is
emulated and slow.

    python benchmarks/train_step.py [--tasks segment,classify,face,detect] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import keras  # noqa: E402

from common import keras_batch_norm_twin  # noqa: E402

from visionsuite.config import load_config  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.core.train import bfloat16_units, dtype_policy  # noqa: E402
from visionsuite.tasks import get_task  # noqa: E402

LABELS = {"classify": ["a", "b", "c"], "segment": ["background", "foreground"],
          "face": [f"s{i}" for i in range(30)], "detect": ["a", "b", "c"]}


def step_seconds(task_name: str, policy: str, batch_norm: str, steps: int) -> float:
    # A dataset named, so that the shipped config holds, not the embedded default's sizes.
    config = load_config(task_name, overrides={"data.path": "unused"})
    keras.utils.set_random_seed(0)
    with dtype_policy(policy):
        model = get_task(task_name).build_model(config, LABELS[task_name])
    if batch_norm == "keras":
        model = keras_batch_norm_twin(model)  # each layer keeps its dtype policy
    batch = config.train.batch_size
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, *model.input_shape[1:])).astype("float32")
    targets = [np.zeros((batch, *output.shape[1:]), "float32") for output in model.outputs]
    model.compile(keras.optimizers.AdamW(1e-3), ["mse"] * len(targets))
    for _ in range(2):
        model.train_on_batch(images, targets)
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(images, targets)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="segment,classify,face,detect")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--output", default="benchmarks/results/train_step.json")
    args = parser.parse_args()
    units = bfloat16_units()
    policies = ["float32"] + (["mixed_bfloat16"] if units else [])
    rows = []
    for task_name in args.tasks.split(","):
        row = {"task": task_name}
        for policy in policies:
            for batch_norm in ("keras", "fused"):
                seconds = step_seconds(task_name, policy, batch_norm, args.steps)
                row[f"{policy.removeprefix('mixed_')}_{batch_norm}_bn_s"] = round(seconds, 4)
                print(f"{task_name} {policy} {batch_norm} batch norm: {seconds:.3f} s/step",
                      file=sys.stderr, flush=True)
        row["speedup"] = round(row["float32_keras_bn_s"] / min(
            value for key, value in row.items() if key.endswith("_s")), 2)
        rows.append(row)
    print("\ntrain-step seconds (median)\n" + table(rows))
    write_json(args.output, {"cpus": os.cpu_count(), "bfloat16_units": units,
                             "rows": rows})
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
