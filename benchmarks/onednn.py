"""Why visionsuite turns TensorFlow's oneDNN on: train-step and predict time of each task's
shipped model with TF_ENABLE_ONEDNN_OPTS=0 and =1.

TensorFlow enables oneDNN by itself only on CPUs with AVX512-VNNI, AVX512-BF16 or AMX; on
others (AVX2 CPUs such as AMD's Zen 3) it convolves with Eigen's im2col and many small
matrix products. visionsuite sets TF_ENABLE_ONEDNN_OPTS=1 unless the user set it
(visionsuite/__init__.py). The variable is read when TensorFlow loads, so each setting runs
in its own process, the two alternating (--rounds), as this shared machine has slow and
fast spells. float32 (where bfloat16 is computed, auto would train in it instead:
benchmarks/train_step.py), the shipped config of each task, random images (time does not
depend on their values): the median of all rounds' timed steps (at least --steps, and 10 s,
a round), after two warm-up steps.

    python benchmarks/onednn.py [--tasks segment,classify,face,detect] [--steps 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = ("0", "1")
MIN_SECONDS = 10.0  # timed a round, at least: small models' steps are noisy


def measure(task_name: str, steps: int) -> dict:
    """Seconds of each timed train step and predict on one batch, in this process's
    setting."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from visionsuite.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import numpy as np

    from train_step import LABELS
    from visionsuite.config import load_config
    from visionsuite.tasks import get_task

    config = load_config(task_name, overrides={"data.path": "unused"})
    keras.utils.set_random_seed(0)
    model = get_task(task_name).build_model(config, LABELS[task_name])
    batch = config.train.batch_size
    images = np.random.default_rng(0).uniform(
        0, 255, (batch, *model.input_shape[1:])).astype("float32")
    targets = [np.zeros((batch, *output.shape[1:]), "float32") for output in model.outputs]
    model.compile(keras.optimizers.AdamW(1e-3), ["mse"] * len(targets))
    timed = {"train_step_s": lambda: model.train_on_batch(images, targets),
             "predict_s": lambda: model.predict_on_batch(images)}
    found = {}
    for name, run in timed.items():
        for _ in range(2):  # warm-up steps: tracing and first allocations
            run()
        seconds = []
        while len(seconds) < steps or sum(seconds) < MIN_SECONDS:
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
        found[name] = seconds
    return found


def in_process(task_name: str, setting: str, steps: int) -> dict:
    """measure() in a fresh Python with TF_ENABLE_ONEDNN_OPTS=`setting`."""
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}
    done = subprocess.run([sys.executable, __file__, "--worker", task_name, "--steps",
                           str(steps)], env=environment, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"{task_name} with oneDNN {setting} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_seconds(task_name: str, steps: int, rounds: int) -> tuple[dict, dict]:
    """Per setting of SETTINGS, the median seconds of the timed steps of `rounds` processes,
    run in turn with the other setting's."""
    pooled = {setting: {} for setting in SETTINGS}
    for _ in range(rounds):
        for setting in SETTINGS:
            for name, seconds in in_process(task_name, setting, steps).items():
                pooled[setting].setdefault(name, []).extend(seconds)
    return tuple({name: round(statistics.median(seconds), 4) for name, seconds in
                  pooled[setting].items()} for setting in SETTINGS)


def decisive_flags() -> list[str]:
    """The CPU flags that decide TensorFlow's own choice, and AVX2/AVX-512 for scale."""
    from visionsuite.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # core.train loads it: its start-up notices off the table
    from visionsuite.core.benchmark import cpu_flags

    flags = cpu_flags()
    return [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
            if flag in flags]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="segment,classify,face,detect")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/results/onednn.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.steps)))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from visionsuite.core.files import write_json
    from visionsuite.core.report import table

    rows = []
    for task_name in args.tasks.split(","):
        off, on = median_seconds(task_name, args.steps, args.rounds)
        rows.append({"task": task_name,
                     "train_step_off_s": off["train_step_s"],
                     "train_step_on_s": on["train_step_s"],
                     "train_speedup": round(off["train_step_s"] / on["train_step_s"], 2),
                     "predict_off_s": off["predict_s"], "predict_on_s": on["predict_s"],
                     "predict_speedup": round(off["predict_s"] / on["predict_s"], 2)})
        print(f"{task_name}: train step {off['train_step_s']:.3f} s with oneDNN off, "
              f"{on['train_step_s']:.3f} s on", file=sys.stderr, flush=True)
    flags = decisive_flags()
    print(f"\nseconds per batch (median), float32, CPU flags: {' '.join(flags) or 'none'}\n"
          + table(rows))
    write_json(args.output, {"cpus": os.cpu_count(), "cpu_flags": flags,
                             "rounds": args.rounds, "rows": rows})
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
