"""Shared fixtures: tiny generated datasets, one tiny trained run, the real shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SIGN_DIGITS = SHARED_DATASETS / "classify" / "sign-digits"

# Every config used in tests starts from the shipped one and shrinks it with these sets.
TINY_SETS = ("model.backbone=resnet18", "model.width=0.125", "data.image_size=32",
             "train.batch_size=16", "train.tensorboard=false", "train.warmup_epochs=0",
             "train.ema=false", "train.lr=0.01")


def load_benchmark(name: str):
    """A script of benchmarks/ (not a package) as a module, for testing its functions."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the real datasets live in ../shared/datasets beside "
                    "the project (see its README)")
    return path


def make_shapes_folder(root: Path, per_class: int = 12, val_per_class: int = 4,
                       classes=("circle", "square", "triangle"), size: int = 32) -> Path:
    from visionsuite.datasets import draw_shape

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", val_per_class)):
        for shape in classes:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                draw_shape(shape, rng, size).save(folder / f"{shape}_{index}.png")
    return root


def resume_in_new_process(task: str, run: Path, epochs: int) -> str:
    """`visionsuite train TASK --resume RUN --epochs EPOCHS` in a new Python process, which has
    made none of the task's Keras classes (those of a test process are already registered),
    and checks that it trained to the end. Returns what it printed on stderr."""
    import json
    import subprocess
    import sys

    resumed = subprocess.run([sys.executable, "-m", "visionsuite", "train", task, "--resume",
                              str(run), "--epochs", str(epochs)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "state.json").read_text())["epoch"] == epochs - 1
    return resumed.stderr


def snapshot(root: Path) -> dict:
    """Path -> (size, mtime_ns, first bytes) of every file: proof that nothing was written."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()[:64])
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    return make_shapes_folder(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shapes_dir) -> Path:
    """One run of a tiny ResNet on tiny shapes, shared by the evaluate/export/classify tests."""
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    config = load_config("classify", overrides={"data.path": str(shapes_dir)},
                         sets=TINY_SETS + ("train.epochs=2",))
    return train(config, output=tmp_path_factory.mktemp("runs"), name="tiny")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """The embedded dataset is generated into a test-private cache, not the user's."""
    monkeypatch.setenv("VISIONSUITE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
