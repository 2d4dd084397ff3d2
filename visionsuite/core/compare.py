"""Runs side by side (`visionsuite compare`): each run's headline val metrics from its
metrics.json, and their mean and standard deviation over the runs: the folds of a
cross-validation (the figure such papers report), the seeds of one recipe, or recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from visionsuite.config import read_yaml
from visionsuite.errors import VisionsuiteError


def compare_runs(runs: list[str | Path]) -> dict:
    """{"task", "runs": [{"run", "val", <headline metrics>}], "mean", "std", "folds_note",
    "val_note"}: `std` is the sample standard deviation, over two runs or more; `folds_note`
    says which folds of a cross-validation are missing or repeated, where the runs are folds;
    `val_note` says where runs that are not one cross-validation's folds were validated on
    different images (another dataset or split), whose metrics are not like for like."""
    from visionsuite.tasks import get_task

    if not runs:
        raise VisionsuiteError("name the run folders to compare")
    rows, task, folds, vals = [], None, [], []
    for run in runs:
        config, metrics = _finished_run(Path(run))
        if task is not None and config["task"] != task:
            raise VisionsuiteError(f"{run}: a {config['task']} run; the runs before it are "
                                   f"{task} runs")
        task = config["task"]
        data = config.get("data") or {}
        fold = (data.get("fold", 0), data["folds"], data.get("split_seed", 0)) \
            if data.get("folds") else None
        folds.append(fold)
        vals.append(_val_split(data))
        rows.append({"run": str(run), "val": f"fold {fold[0]} of {fold[1]}" if fold else "val",
                     **get_task(task).headline(metrics)})
    # the metrics every run has a number for (a run's HD95 can be None: a class it missed)
    shared = [key for key in rows[0]
              if all(isinstance(row.get(key), (int, float)) for row in rows)]
    values = {key: np.array([row[key] for row in rows], float) for key in shared}
    return {"task": task, "runs": rows,
            "mean": {key: float(column.mean()) for key, column in values.items()},
            "std": {key: float(column.std(ddof=1)) for key, column in values.items()}
            if len(rows) >= 2 else {},
            "folds_note": _folds_note(folds),
            "val_note": _val_note(vals, folds)}


def _finished_run(folder: Path) -> tuple[dict, dict]:
    """A run folder's config.yaml and metrics.json (written when training ends)."""
    if not (folder / "config.yaml").is_file():
        raise VisionsuiteError(f"{folder}: not a run folder (no config.yaml)")
    if not (folder / "metrics.json").is_file():
        raise VisionsuiteError(f"{folder}: no metrics.json: the run has not finished (`train "
                               "--resume` it)")
    config = read_yaml(folder / "config.yaml")
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise VisionsuiteError(f"{folder / 'metrics.json'}: not readable as JSON "
                               f"({err})") from None
    if not isinstance(config.get("task"), str):
        raise VisionsuiteError(f"{folder / 'config.yaml'}: names no task")
    if not isinstance(metrics, dict):
        raise VisionsuiteError(f"{folder / 'metrics.json'}: not a run's metrics")
    return config, metrics


def _folds_note(folds: list[tuple | None]) -> str | None:
    """Where every run is a fold of one cross-validation (same folds and seed): the folds
    missing or repeated, so that a mean over four of five folds is not taken for all five;
    None where they are complete, or the runs are not folds."""
    if not folds or None in folds:
        return None
    if len({(count, seed) for _, count, seed in folds}) > 1:
        return "the runs are folds of different splits (data.folds or split_seed differ)"
    count = folds[0][1]
    taken = [fold for fold, _, _ in folds]
    missing = [fold for fold in range(count) if fold not in taken]
    repeated = sorted({fold for fold in taken if taken.count(fold) > 1})
    problems = ([f"fold {', '.join(map(str, missing))} missing"] if missing else []) + \
        ([f"fold {', '.join(map(str, repeated))} repeated"] if repeated else [])
    return f"{'; '.join(problems)} (of {count} folds)" if problems else None


def _val_split(data: dict) -> tuple:
    """What chose a run's val images, but the fold: its dataset, its val fraction and seed,
    its number of folds, its pairs file."""
    path = data.get("path")
    return (str(Path(path).expanduser().resolve()) if path else None, data.get("val_fraction"),
            data.get("split_seed"), data.get("folds") or 0, data.get("val_pairs"))


def _val_note(vals: list[tuple], folds: list[tuple | None]) -> str | None:
    """Where the runs were validated on different images: runs of other datasets or splits,
    or a run beside the folds of a cross-validation (whose folds differ by design)."""
    if len(set(vals)) == 1:
        return None
    if None not in folds and len({fold[1:] for fold in folds}) > 1:
        return None  # _folds_note says they are folds of different splits
    return "the runs were validated on different images (another dataset, val split or fold " \
           "set): their metrics are not measured on the same images"
