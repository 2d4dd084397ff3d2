"""Shared fixtures: tiny generated datasets, one tiny trained run, the real shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pytest-xdist's workers share the cores: each TensorFlow sized its thread pools to the whole
# machine, and two workers on 2 cores ran the integration tests 17% slower (173 s against
# 143 s with one thread each). Set before TensorFlow loads; subprocesses of tests inherit it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _pool in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(_pool, str(max(1, (os.cpu_count() or 1) // _WORKERS)))
import visionsuite  # noqa: E402,F401  first: its TensorFlow settings hold in every test

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SIGN_DIGITS = SHARED_DATASETS / "classify" / "sign-digits"

# Every config used in tests starts from the shipped one and shrinks it with these sets.
TINY_SETS = ("model.backbone=resnet18", "model.width=0.125", "data.image_size=32",
             "train.batch_size=16", "train.tensorboard=false", "train.warmup_epochs=0",
             "train.ema=false", "train.lr=0.01")


def compile_quickly(model, loss, learning_rate: float = 1e-3) -> None:
    """`model` compiled with Adam as the project trains with (no weight decay, no average),
    its slots built now as core.train builds them. Keras' Adam computes the same update (to
    the rounding of TensorFlow's fused kernel), but TensorFlow traces its step several times
    slower (a tiny detector's test took 140 s with it, 53 s with the project's before the
    kernel, 16 s with it; core.train._ScalarsOncePerStep); and slots made inside the first
    step make TensorFlow trace it twice (a one-step fit of EfficientNet-B0: 23 s, 8 s
    built)."""
    from visionsuite.core.train import WarmingEMAAdamW

    model.compile(WarmingEMAAdamW(learning_rate, weight_decay=0.0), loss)
    model.optimizer.build(model.trainable_variables)


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


TWELVE_BIT = [2047.5, 4095.0]  # data.window of a 12-bit camera's images in 16 bits


def twelve_bit_copies(data: Path, root: Path) -> tuple[Path, Path]:
    """`data` copied twice under `root`, every PNG in grey: as a 12-bit camera stores it in
    16 bits (0..4095), and in 8 bits, the same pictures."""
    import shutil

    from PIL import Image

    twelve, eight = root / "twelve", root / "eight"
    for copy, deep in ((twelve, True), (eight, False)):
        shutil.copytree(data, copy)
        for path in copy.rglob("*.png"):
            grey = np.asarray(Image.open(path).convert("L"))
            Image.fromarray(np.round(grey * (4095 / 255)).astype(np.uint16) if deep
                            else grey).save(path)
    return twelve, eight


def check_read_from_bit_depth(task: str, twelve: Path, eight: Path, sets=()) -> None:
    """Of twelve_bit_copies: data check of the 12-bit copy says how a new run reads it, and a
    new run keeps TWELVE_BIT and reads its train split as that of the 8-bit copy."""
    from click.testing import CliRunner

    from visionsuite.cli import cli
    from visionsuite.config import load_config
    from visionsuite.tasks import get_task

    result = CliRunner().invoke(cli, ["data", "check", task, str(twelve)])
    assert result.exit_code == 0, result.output
    assert f"read as 12-bit, 0..4095 to 0..255 (data.window={TWELVE_BIT}) by a new run" \
        in result.output
    configs = [load_config(task, overrides={"data.path": str(copy)}, sets=list(sets))
               for copy in (twelve, eight)]
    splits = [get_task(task).load_data(config).train for config in configs]
    assert configs[0].data.window == TWELVE_BIT and configs[1].data.window is None
    assert np.abs(splits[0].images.astype(int) - splits[1].images).max() <= 1


def with_twelve_bit_window(run: Path, copy: Path) -> Path:
    """`run` copied to `copy` as if trained on 12-bit images: TWELVE_BIT in its
    inference.json."""
    import json
    import shutil

    shutil.copytree(run, copy)
    path = copy / "inference.json"
    settings = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**settings, "window": TWELVE_BIT}))
    return copy


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
