"""k-fold cross-validation in one command (`visionsuite cross-validate`): one run per fold of
data.folds (NAME_fold0, NAME_fold1, ...), each validating on its fold and training on the
others, then their metrics side by side with the mean and spread (core.compare), saved as
NAME_compare.json beside the runs. Run again with the same NAME, it keeps the folds already
finished, so a stopped cross-validation goes on where it stopped."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from visionsuite.config import Config, dotted_items, read_yaml
from visionsuite.errors import VisionsuiteError

# Keys that training resolves before it saves config.yaml ("balanced" class weights become
# numbers): a finished fold's saved value is not the one asked for, and need not be.
RESOLVED_KEYS = ("train.class_weights",)


def cross_validate(config: Config, folds: int, output: str | Path = "runs",
                   name: str | None = None) -> tuple[list[Path], dict]:
    """Train (or keep, where finished with the same config) each fold's run of `config` on its
    dataset split into `folds` folds; returns the runs and compare_runs' table of them."""
    from visionsuite.core.compare import compare_runs
    from visionsuite.core.files import write_json
    from visionsuite.core.train import train

    if folds < 2:
        raise VisionsuiteError(f"--folds {folds}: cross-validation needs 2 folds or more")
    base = Path(output) / config.task
    name = name or _free_name(base, folds)
    runs = []
    for fold in range(folds):
        fold_config = copy.deepcopy(config)
        fold_config.data.folds, fold_config.data.fold = folds, fold
        run = base / f"{name}_fold{fold}"
        if run.exists():
            _check_finished_alike(run, fold_config)
            print(f"fold {fold} of {folds}: {run} has finished; kept", file=sys.stderr)
        else:
            print(f"fold {fold} of {folds}: training {run}", file=sys.stderr)
            train(fold_config, output=output, name=run.name)
        runs.append(run)
    comparison = compare_runs(runs)
    write_json(base / f"{name}_compare.json", comparison)
    return runs, comparison


def _free_name(base: Path, folds: int) -> str:
    """cv, cv2, ...: the first whose fold runs are not there yet."""
    for index in range(1, 100000):
        name = "cv" if index == 1 else f"cv{index}"
        if not any((base / f"{name}_fold{fold}").exists() for fold in range(folds)):
            return name
    raise VisionsuiteError(f"{base}: too many cross-validations")


def _check_finished_alike(run: Path, config: Config) -> None:
    """A fold kept from before must have finished, trained as asked now."""
    if not (run / "metrics.json").is_file():
        raise VisionsuiteError(f"{run}: this fold's run has not finished; `visionsuite train "
                               f"{config.task} --resume {run}` it, then cross-validate again")
    saved = dict(dotted_items(read_yaml(run / "config.yaml"))) \
        if (run / "config.yaml").is_file() else {}
    asked = dict(dotted_items(config.to_dict()))
    changed = [key for key in asked if key not in RESOLVED_KEYS and saved.get(key) != asked[key]]
    if changed:
        raise VisionsuiteError(f"{run}: trained with {changed[0]}={saved.get(changed[0])}, not "
                               f"{asked[changed[0]]}; choose another --name for this recipe")
