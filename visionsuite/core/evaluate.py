"""Evaluate a run folder, a .keras or a .tflite file on a dataset, with the task's metrics."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from visionsuite.config import TASK_KEYS, Config, config_from_dict, load_config, read_yaml
from visionsuite.core.files import writable_file, writable_folder, write_json
from visionsuite.core.models import ModelSource, load_predictor, resolve_model
from visionsuite.core.splits import EVERY_IMAGE, HELD_OUT_SPLITS
from visionsuite.errors import VisionsuiteError


def load_run_config(source: ModelSource, data: str | None = None,
                    image_size: int | None = None, channels: int | None = None,
                    needs_data: bool = False, all_of_other_data: bool = False) -> Config:
    """The config a model was trained with (its run folder's config.yaml), or the task's
    defaults for a bare model file (its task: the one an exported file names, else classify);
    `data` replaces the dataset path. `needs_data`: a run's dataset that is gone is an error
    that says to pass --data. `all_of_other_data`: a `data` other than the one the run was
    trained on is all val where it has no val split (an evaluation set is not split)."""
    trained_on = None
    if source.run_dir is not None and (source.run_dir / "config.yaml").is_file():
        path = source.run_dir / "config.yaml"
        config = config_from_dict(read_yaml(path), str(path))
        trained_on = config.data.path
        if needs_data and not data and trained_on and not Path(trained_on).expanduser().exists():
            raise VisionsuiteError(f"{trained_on}: the run's dataset is not there any more; "
                                   "pass --data DIR")
    else:
        if not data:
            raise VisionsuiteError(f"{source.path}: not inside a run folder; pass --data PATH")
        # An exported file names its task; a bare .keras is taken for a classifier.
        from visionsuite.tasks import get_task

        task = source.settings.get("task", "classify")
        config = load_config(task, overrides={"data.path": data})
        get_task(task).settings_into_config(source.settings, config)
    if data:
        config.data.path = data
        if all_of_other_data and not _same_folder(data, trained_on):
            config.data.val_fraction = EVERY_IMAGE
    if image_size:
        config.data.image_size = int(image_size)
    if channels:
        config.data.channels = int(channels)
    return config


def _same_folder(path: str, other: str | None) -> bool:
    return bool(other) and Path(path).expanduser().resolve() == Path(other).expanduser().resolve()


def evaluate(run: str | Path, data: str | None = None, json_path: str | Path | None = None,
             threads: int | None = None, split: str = "val",
             plots: str | Path | None = None, tta: bool | None = None) -> dict:
    """The task's metrics of RUN on a dataset's `split` (HELD_OUT_SPLITS): its val split, or
    its test split, which training never saw (a dataset without one is an error). `plots`: a
    folder for the task's PNGs of that split, as training draws them for val (confusion
    matrix, PR curves or ROC; the worst predictions beside the truth), named `<split>_*.png`.
    `tta`: test-time augmentation on or off, where the task has it [as the run: data.tta]."""
    from visionsuite.tasks import get_task

    if split not in HELD_OUT_SPLITS:
        raise VisionsuiteError(f"split '{split}': expected one of {', '.join(HELD_OUT_SPLITS)}")
    if json_path:
        writable_file(json_path, "the metrics file", "--json")
    if plots:
        writable_folder(Path(plots), "the plots", "--plots")
    source = resolve_model(run)
    predictor = load_predictor(source, threads)
    config = load_run_config(source, data, predictor.image_size, predictor.channels,
                             needs_data=True, all_of_other_data=split == "val")
    if tta is not None:
        _set_tta(config, tta, run)
    task = get_task(config.task)
    if config.data.val_fraction == EVERY_IMAGE:
        print(f"data: {data} is not the dataset the model was trained on: its val split, or "
              "all of it where it has none, is evaluated", file=sys.stderr)
    dataset = task.load_data(config, train=False, labels=source.labels, held_out=split)
    started = time.perf_counter()
    outputs = task.predict(predictor, dataset.val, config)
    metrics = task.evaluate(outputs, dataset.val, dataset.labels, source.settings)
    result = {"model": str(source.path), "format": source.kind, "task": config.task,
              "data": dataset.source, "split": split,
              "seconds": round(time.perf_counter() - started, 3),
              "skipped_images": len(dataset.val.skipped), **metrics}
    if plots:
        result["plots"] = [str(path) for path in draw_plots(task, Path(plots), f"{split}_",
                                                            metrics, dataset, outputs)]
    if json_path:
        write_json(json_path, result)
    return result


def _set_tta(config: Config, tta: bool, run) -> None:
    readers = TASK_KEYS["data.tta"]
    if config.task not in readers:
        raise VisionsuiteError(f"--tta/--no-tta: for {' and '.join(readers)} models; {run} is "
                               f"a {config.task} model")
    config.data.tta = tta


def draw_plots(task, folder: Path, prefix: str, metrics: dict, dataset=None,
               outputs=None) -> list[Path]:
    """The task's plots of `metrics` in `folder` (made if need be), and, given the `dataset`
    its held-out split's `outputs` came from, its predictions beside the truth."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = dataset.labels if dataset is not None else []
    paths = task.plot(metrics, labels, folder, prefix)
    if dataset is not None:
        paths += task.plot_predictions(outputs, dataset.val, labels, folder, metrics, prefix)
    return paths
