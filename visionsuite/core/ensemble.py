"""Ensembles of trained runs (`visionsuite ensemble`): one Keras model that runs every member
on the same input and combines their outputs as the task says (Task.combine_outputs), saved
as a run folder, so that evaluate, export and prediction take it as any other run. Averaging
the models of a cross-validation's folds is how nnU-Net predicts; averaging seeds steadies a
recipe whose runs vary from seed to seed."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from visionsuite.config import Config, config_from_dict, save_config
from visionsuite.errors import VisionsuiteError

# data keys that only choose which images train and which validate: members may differ in
# them (the folds of a cross-validation, seeds of the split), and the ensemble validates on
# the images they choose where they agree. With TRAINING_KEYS (how training feeds its
# images), they are the keys that do not decide how an image is read: every other must agree.
SELECTION_KEYS = ("path", "folds", "fold", "val_fraction", "split_seed", "val_pairs",
                  "val_pairs_images")
TRAINING_KEYS = ("workers", "crops_per_image")
ENSEMBLE_FILE = "ensemble.json"


@dataclass
class Member:
    run: Path
    config: Config
    source: object  # core.models.ModelSource


def ensemble_runs(runs: list[str | Path], data: str | None = None, output: str | Path = "runs",
                  name: str | None = None) -> Path:
    """A run folder (OUTPUT/TASK/NAME) holding the ensemble of `runs`, evaluated on the val split
    of `data` (a dataset folder) or, without it, of the members' own val split, which they must
    then share. Its metrics.json holds each member's metrics on the same images."""
    from visionsuite.core.files import check_new_run, new_run_dir
    from visionsuite.tasks import get_task

    if len(runs) < 2:
        raise VisionsuiteError("name two run folders or more to ensemble")
    members = [_member(Path(run)) for run in runs]
    task = get_task(members[0].config.task)
    _check_alike(members, task)
    config = _ensemble_config(members, data)
    check_new_run(Path(output) / config.task, name)
    model = _combined_model(members, task)

    dataset = task.load_data(config, train=False, labels=_labels(members, task))
    rows = _member_rows(members, task, dataset, config)
    outputs, metrics = _evaluate(model, task, dataset, config)
    metrics["members"] = rows
    settings = _settings([member.source.settings for member in members], task, metrics,
                         dataset, config)

    run_dir = new_run_dir(Path(output) / config.task, name, stem="ensemble")
    try:
        _write_run(run_dir, model, config, dataset, members, metrics, settings)
        task.plot(metrics, dataset.labels, run_dir)
        task.plot_predictions(outputs, dataset.val, dataset.labels, run_dir, metrics)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def _member(run: Path) -> Member:
    from visionsuite.core.evaluate import load_run_config
    from visionsuite.core.models import resolve_model

    if not (run / "config.yaml").is_file() or not (run / "model.keras").is_file():
        raise VisionsuiteError(f"{run}: not a finished run folder (no config.yaml and "
                               "model.keras in it)")
    source = resolve_model(run)
    return Member(run, load_run_config(source), source)


def _labels(members: list[Member], task) -> list[str]:
    """The classes the members share, or (face) everyone any of them trained on."""
    if task.labels_name_outputs:
        return members[0].source.labels
    return sorted(set().union(*(member.source.labels or [] for member in members)))


def _check_alike(members: list[Member], task) -> None:
    """One-line errors for members that cannot be combined: another task, other classes, or
    images read another way."""
    first = members[0]
    reading = {key: value for key, value in vars(first.config.data).items()
               if key not in SELECTION_KEYS + TRAINING_KEYS}
    for member in members[1:]:
        if member.config.task != first.config.task:
            raise VisionsuiteError(f"{member.run}: a {member.config.task} run; {first.run} is a "
                                   f"{first.config.task} run")
        if task.labels_name_outputs and member.source.labels != first.source.labels:
            raise VisionsuiteError(f"{member.run}: its classes (labels.txt) differ from "
                                   f"{first.run}'s")
        for key, value in reading.items():
            if getattr(member.config.data, key) != value:
                raise VisionsuiteError(
                    f"{member.run}: data.{key}={getattr(member.config.data, key)}, where "
                    f"{first.run} has {value}: members must read images alike")
        carried = _carried(first.source.settings, task)
        if _carried(member.source.settings, task) != carried or \
                set(member.source.settings) != set(first.source.settings):
            raise VisionsuiteError(f"{member.run}: its inference settings (inference.json) "
                                   f"differ from {first.run}'s")


def _ensemble_config(members: list[Member], data: str | None) -> Config:
    """The first member's config, validated on `data` where given. Without it, the members must
    share their val split: the folds of a cross-validation each validate on images the other
    folds trained on."""
    config = config_from_dict(members[0].config.to_dict(), str(members[0].run / "config.yaml"))
    chosen = [{key: getattr(m.config.data, key) for key in SELECTION_KEYS} for m in members]
    if data is None:
        if any(choice != chosen[0] for choice in chosen[1:]):
            raise VisionsuiteError(
                "the members were validated on different images (another data.fold, "
                "val_fraction, split_seed or dataset), each trained on by another member; pass "
                "--data of a dataset none of them trained on (or its folder with a val split)")
        return config
    trained_on = {str(Path(c["path"]).expanduser().resolve()) for c in chosen if c["path"]}
    if str(Path(data).expanduser().resolve()) in trained_on and \
            any(choice != chosen[0] for choice in chosen[1:]):
        raise VisionsuiteError(f"{data}: the members trained on it, each validating on other "
                               "images; pass a dataset none of them trained on")
    config.data.path = data
    config.data.folds = config.data.fold = 0  # --data's own val split: its people, not pairs
    config.data.val_pairs = config.data.val_pairs_images = None
    return config


def _combined_model(members: list[Member], task):
    """One Keras model: each member (renamed member_0, member_1, ...) on the same input, their
    outputs combined by the task."""
    import keras

    from visionsuite.core.models import load_keras_model

    models = [load_keras_model(member.source.path) for member in members]
    shape = models[0].input_shape
    for member, model in zip(members, models):
        if model.input_shape != shape:
            raise VisionsuiteError(f"{member.run}: its model takes {model.input_shape[1:]} "
                                   f"inputs, {members[0].run}'s {shape[1:]}")
    inputs = keras.Input(shape[1:], name="image")
    outputs = []
    for index, model in enumerate(models):
        model.name = f"member_{index}"  # unique names inside the saved model
        outputs.append(model(inputs))
    return keras.Model(inputs, task.combine_outputs(outputs), name="ensemble")


def _member_rows(members: list[Member], task, dataset, config: Config) -> list[dict]:
    """Each member's headline metrics on the ensemble's val images, with its own settings."""
    from visionsuite.core.models import load_predictor

    rows = []
    for member in members:
        outputs = task.predict(load_predictor(member.source), dataset.val, config)
        metrics = task.evaluate(outputs, dataset.val, dataset.labels, member.source.settings)
        rows.append({"run": str(member.run), **task.headline(metrics)})
    return rows


def _evaluate(model, task, dataset, config: Config):
    from visionsuite.core.models import KerasPredictor

    outputs = task.predict(KerasPredictor(model), dataset.val, config)
    metrics = task.evaluate(outputs, dataset.val, dataset.labels)
    metrics["skipped_images"] = len(dataset.val.skipped)
    return outputs, metrics


def _carried(settings: dict, task) -> dict:
    """The inference settings every member must share: not those learned on val, nor those
    measured on each member's training data."""
    return {k: v for k, v in settings.items()
            if k not in task.learned_settings + task.averaged_settings}


def _settings(members: list[dict], task, metrics: dict, dataset, config: Config) -> dict:
    """The members' shared inference settings, the mean of those measured on each member's
    training data (face's crop framing), and those learned on val (face's threshold) learned
    again on the ensemble's."""
    averaged = {key: _mean([settings[key] for settings in members])
                for key in task.averaged_settings if key in members[0]}
    return _carried(members[0], task) | averaged | \
        task.inference_settings(metrics, dataset, config)


def _mean(values: list):
    """The mean of numbers, or of lists or dicts of numbers alike, rounded as saved."""
    if isinstance(values[0], dict):
        return {key: _mean([value[key] for value in values]) for key in values[0]}
    if isinstance(values[0], list):
        return [_mean(list(items)) for items in zip(*values)]
    return round(sum(values) / len(values), 4)


def _write_run(run_dir: Path, model, config: Config, dataset, members: list[Member],
               metrics: dict, settings: dict) -> None:
    from visionsuite.core.files import atomic_path, atomic_write_text, write_json
    from visionsuite.core.models import INFERENCE_SETTINGS

    with atomic_path(run_dir / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    save_config(config, run_dir / "config.yaml")
    atomic_write_text(run_dir / "labels.txt", "\n".join(dataset.labels) + "\n")
    write_json(run_dir / ENSEMBLE_FILE, {"members": [str(m.run.resolve()) for m in members],
                                        "validated_on": dataset.source})
    if settings:
        write_json(run_dir / INFERENCE_SETTINGS, settings)
    write_json(run_dir / "metrics.json", metrics)
    print(f"run folder: {run_dir}", file=sys.stderr)
