"""What the benchmarks share: epoch timers, and plain Keras epochs interleaved with ours."""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from visionsuite.core.train import rebuilt_with, train


class EpochTimer(keras.callbacks.Callback):
    """Wall and CPU time of each epoch, measured after every other callback of that epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)
        self.cpu_seconds.append(time.process_time() - self.cpu_started)


class InterleavedPlainEpoch(keras.callbacks.Callback):
    """After each visionsuite epoch, one epoch of the plain model.fit: the two alternate, so
    that the slow and fast spells of this shared machine fall on both alike."""

    def __init__(self, model, train, val, batch_size, timer):
        super().__init__()
        self.plain, self.train, self.val = model, train, val
        self.batch_size, self.timer = batch_size, timer

    def on_epoch_end(self, epoch, logs=None):
        self.plain.fit(*self.train, batch_size=self.batch_size, epochs=1, verbose=0,
                       validation_data=self.val, callbacks=[self.timer])


def rates(timer: EpochTimer, images_per_epoch: int) -> tuple[float, float]:
    """Images per wall second and per CPU second, from the median epoch after the first
    (which traces and compiles); medians are not dragged by the machine's slow spells."""
    return (images_per_epoch / float(np.median(timer.seconds[1:])),
            images_per_epoch / float(np.median(timer.cpu_seconds[1:])))


def interleaved_throughput(config, plain, train_xy, val_xy, samples: int, unit: str,
                           textbook=None) -> dict:
    """Train `config` with `visionsuite train` and, after each of its epochs, one epoch of the
    compiled `plain` model on `train_xy` (`samples` items), and of `textbook` if given; the
    rates of each."""
    batch = config.train.batch_size
    # The plain epochs run inside ours: a time budget would count them and cut ours. A copy,
    # so that the caller's config (also used for its full training) keeps its budget.
    config = copy.deepcopy(config)
    config.train.max_minutes = None
    ours, theirs = EpochTimer(), EpochTimer()
    interleave = [InterleavedPlainEpoch(plain, train_xy, val_xy, batch, theirs)]
    textbook_timer = EpochTimer()
    if textbook is not None:
        interleave.append(InterleavedPlainEpoch(textbook, train_xy, val_xy, batch,
                                                textbook_timer))
    with tempfile.TemporaryDirectory() as folder:
        train(config, output=folder, name="throughput", callbacks=[ours, *interleave])
    ours_wall, ours_cpu = rates(ours, (samples // batch) * batch)  # ours drops the remainder
    plain_wall, plain_cpu = rates(theirs, samples)
    extra = {}
    if textbook is not None:
        textbook_wall = rates(textbook_timer, samples)[0]
        extra = {f"textbook_keras_{unit}_per_s": round(textbook_wall, 2),
                 "ratio_to_textbook": round(ours_wall / textbook_wall, 3),
                 "textbook_epoch_s": [round(x, 2) for x in textbook_timer.seconds]}
    return {**extra, "epochs": config.train.epochs,
            f"visionsuite_{unit}_per_s": round(ours_wall, 2),
            f"plain_keras_{unit}_per_s": round(plain_wall, 2),
            "ratio": round(ours_wall / plain_wall, 3),
            "ratio_per_cpu_second": round(ours_cpu / plain_cpu, 3),
            "visionsuite_epoch_s": [round(x, 2) for x in ours.seconds],
            "plain_epoch_s": [round(x, 2) for x in theirs.seconds],
            "batch_size": batch}


def keras_batch_norm_twin(model):
    """An uncompiled copy of `model` with Keras' own BatchNormalization wherever it has the
    project's FusedBatchNormalization: the model as a textbook Keras script would write it."""
    return rebuilt_with(model, "FusedBatchNormalization",
                        lambda node: {**node, "module": "keras.layers",
                                      "class_name": "BatchNormalization",
                                      "registered_name": None})


def training_or_finished_run(run_arg, earlier: dict, data: str, workdir: str, full_training,
                             summary) -> tuple:
    """(run folder, its training row): a fresh `full_training(data, workdir)`, or the finished
    run named by --run: the training time and epochs it recorded itself (`recorded_training`),
    with the row an earlier benchmark measured for that run where there is one, else its
    scores (`summary`)."""
    from pathlib import Path

    if not run_arg:
        return full_training(data, workdir)
    run = Path(run_arg)
    row = {"run": str(run), **recorded_training(run)}
    if earlier.get("training", {}).get("run") == str(run):
        return run, {**row, **earlier["training"]}
    return run, {**row, **summary(run)}


def recorded_training(run) -> dict:
    """A finished run's own record of its training (state.json): minutes from the start of
    `train` to its last epoch (the evaluation after it not included), epochs trained, and the
    epochs and time budget its config.yaml planned."""
    from visionsuite.config import read_yaml

    state_file, config_file = run / "state.json", run / "config.yaml"
    if not (state_file.is_file() and config_file.is_file()):
        return {}
    state = json.loads(state_file.read_text())
    recipe = read_yaml(config_file).get("train", {})
    row = {"epochs": state["epoch"] + 1, "planned_epochs": recipe.get("epochs"),
           "max_minutes": recipe.get("max_minutes")}
    if "train_seconds" in state:
        row["train_minutes"] = round(state["train_seconds"] / 60, 2)
    return row


def timed_training(task_name: str, data: str, workdir: str, summary,
                   unit: str = "images") -> tuple:
    """A full `visionsuite train TASK --data DATA` with the shipped config: (run folder, its
    row: wall time, training samples/s (`unit`: what the task trains on) and `summary(run)`)."""
    from pathlib import Path

    from visionsuite.config import load_config
    from visionsuite.tasks import get_task

    config = load_config(task_name, overrides={"data.path": data})
    started = time.perf_counter()
    run = Path(train(config, output=workdir))
    seconds = time.perf_counter() - started
    task = get_task(task_name)
    # The epochs trained: train.max_minutes may have cut them.
    epochs = json.loads((run / "state.json").read_text())["epoch"] + 1
    samples = task.train_samples(config, task.load_data(config)) * epochs
    return run, {"run": str(run), "wall_minutes": round(seconds / 60, 2),
                 "epochs": epochs, "planned_epochs": config.train.epochs,
                 "max_minutes": config.train.max_minutes, "image_size": config.data.image_size,
                 f"train_{unit}_per_s": round(samples / seconds, 2), **summary(run)}


def machine_facts() -> dict:
    """The CPU a benchmark ran on: its figures depend on it (bfloat16 training where the CPU
    has AMX or AVX512-BF16, int8 kernels by its int8 dot products), so the JSON says which
    it was."""
    from visionsuite.core.benchmark import cpu_flags, int8_dot_products

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            model = next((line.partition(":")[2].strip() for line in file
                          if line.startswith("model name")), model)
    except OSError:
        pass
    flags = set(cpu_flags())
    return {"cpus": os.cpu_count(), "cpu": model, "amx": "amx_tile" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "avx512_vnni": "avx512_vnni" in flags,
            "avx512f": "avx512f" in flags, "avx2": "avx2" in flags,
            "int8_dot_products": int8_dot_products()}


def train_small_unet(data, seed: int, epochs: int, output, name: str):
    """A small U-Net (64-px crops, 3 levels from 8 filters) trained on the segment set
    `data` with the shipped recipe otherwise: the run folder, its config, the seconds."""
    from visionsuite.config import load_config

    config = load_config("segment", overrides={"data.path": str(data)}, sets=[
        "data.image_size=64", f"train.epochs={epochs}", "model.levels=3", "model.filters=8",
        "train.tensorboard=false", "data.crops_per_image=4", f"train.seed={seed}"])
    started = time.perf_counter()
    run = train(config, output=output, name=name)
    return run, config, time.perf_counter() - started


def small_unet_arguments(doc: str) -> argparse.Namespace:
    """The command line of a benchmark that trains small U-Nets (train_small_unet): --seeds,
    --epochs, --json (its results' path)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()
