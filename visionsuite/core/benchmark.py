"""Inference latency of .tflite and Keras models at batch 1, per thread count.

TFLite models run in LiteRT with its default CPU delegate (XNNPACK). Keras models run in a
child process per thread count, because TensorFlow fixes its thread pools at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from visionsuite.errors import VisionsuiteError

WARMUP_RUNS = 10
# The int8 dot-product instructions XNNPACK's int8 kernels gain from, as Linux names them (x86's
# "flags", ARM's "Features"). Without them (x86 with AVX2 alone) its int8 convolutions ran no
# faster than its float32 ones (benchmarks/int8_speed.py).
INT8_DOT_PRODUCTS = {"amx_int8": "AMX", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
                     "asimddp": "ARM dot product"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The CPU's flags as Linux lists them in `cpuinfo`; empty where it cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return []
    return next((line.partition(":")[2].split() for line in text.splitlines()
                 if line.startswith(("flags", "Features"))), [])


def int8_dot_products(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str] | None:
    """INT8_DOT_PRODUCTS' names of those this CPU has; None where Linux does not say (macOS,
    Windows)."""
    flags = set(cpu_flags(cpuinfo))
    if not flags:
        return None
    return [name for flag, name in INT8_DOT_PRODUCTS.items() if flag in flags]


def benchmark_models(models: list[str], threads: list[int], runs: int) -> list[dict]:
    from visionsuite.core.models import resolve_model
    from visionsuite.core.progress import progress

    sources = [resolve_model(model) for model in models]
    rows = []
    for source in progress(sources, total=len(sources), desc="benchmark"):
        for count in threads:
            if source.kind == "tflite":
                timings = time_tflite(source.path, count, runs)
            else:
                timings = _time_keras_in_child(source.path, count, runs)
            rows.append({"model": str(source.path), "format": source.kind, "threads": count,
                         **summarize(timings), "size_mb": round(source.path.stat().st_size / 2**20, 3)})
    return rows


def summarize(milliseconds: np.ndarray) -> dict:
    return {"p50_ms": round(float(np.percentile(milliseconds, 50)), 3),
            "p90_ms": round(float(np.percentile(milliseconds, 90)), 3),
            "images_per_s": round(1000.0 / float(np.mean(milliseconds)), 1)}


def time_tflite(path: Path, threads: int, runs: int) -> np.ndarray:
    from visionsuite.core.models import TFLitePredictor

    predictor = TFLitePredictor(path, threads)
    interpreter, details = predictor.interpreter, predictor.input
    interpreter.set_tensor(details["index"], _random_input(details["shape"], details["dtype"]))
    for _ in range(WARMUP_RUNS):
        interpreter.invoke()
    timings = np.empty(runs)
    for index in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        timings[index] = (time.perf_counter() - started) * 1000.0
    return timings


def time_keras(path: Path, threads: int, runs: int) -> np.ndarray:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from visionsuite.core.models import load_keras_model

    model = load_keras_model(path)
    call = tf.function(lambda x: model(x, training=False), jit_compile=False)
    image = tf.constant(_random_input((1,) + tuple(model.input_shape[1:]), np.float32))
    for _ in range(WARMUP_RUNS):
        call(image).numpy()
    timings = np.empty(runs)
    for index in range(runs):
        started = time.perf_counter()
        call(image).numpy()
        timings[index] = (time.perf_counter() - started) * 1000.0
    return timings


def _time_keras_in_child(path: Path, threads: int, runs: int) -> np.ndarray:
    command = [sys.executable, "-m", "visionsuite.core.benchmark", str(path), str(threads),
               str(runs)]
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise VisionsuiteError(f"{path}: Keras benchmark failed ({last})")
    return np.array(json.loads(result.stdout.strip().splitlines()[-1]))


def _random_input(shape, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.uniform(0, 255, size=shape).astype(dtype)


if __name__ == "__main__":  # the child process of _time_keras_in_child
    model_path, thread_count, run_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(time_keras(Path(model_path), thread_count, run_count).tolist()))
