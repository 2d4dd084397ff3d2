"""`visionsuite compare`: runs side by side, their mean and standard deviation, and the folds
of a cross-validation checked for completeness."""

import json

import pytest
import yaml

from test_cli import assert_one_line_error, invoke


def _run(folder, task="classify", folds=0, fold=0, path="d", **metrics):
    """A finished run folder as training leaves it: config.yaml and metrics.json."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(
        {"task": task, "data": {"path": path, "folds": folds, "fold": fold, "split_seed": 0}}))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_runs_side_by_side_with_their_mean_and_standard_deviation(tmp_path):
    runs = [_run(tmp_path / f"fold{k}", folds=3, fold=k, accuracy=accuracy, macro_f1=0.5)
            for k, accuracy in enumerate((0.8, 0.9, 1.0))]
    result = invoke("compare", *runs, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["run", "val", "accuracy", "macro_f1"]
    assert lines[2].split()[1:] == ["fold", "0", "of", "3", "0.8000", "0.5000"]
    assert lines[5].split() == ["mean", "-", "0.9000", "0.5000"]
    assert lines[6].split() == ["std", "-", "0.1000", "0.0000"]  # sample standard deviation
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["mean"]["accuracy"] == pytest.approx(0.9) and saved["folds_note"] is None
    assert "warning" not in result.output


def test_missing_and_repeated_folds_are_named_and_runs_of_two_tasks_refused(tmp_path):
    first = _run(tmp_path / "a", folds=5, fold=1, accuracy=0.9)
    again = _run(tmp_path / "b", folds=5, fold=1, accuracy=0.8)
    result = invoke("compare", first, again)
    assert result.exit_code == 0, result.output
    assert "warning: fold 0, 2, 3, 4 missing; fold 1 repeated (of 5 folds)" in result.output
    other_split = _run(tmp_path / "c", folds=3, fold=0, accuracy=0.9)
    warned = invoke("compare", first, other_split).output
    assert "folds of different splits" in warned and "different images" not in warned
    plain = _run(tmp_path / "plain", accuracy=0.7)
    single = invoke("compare", plain)
    assert single.exit_code == 0 and "std" not in single.output  # one run: no spread
    face = _run(tmp_path / "face", task="face")
    assert_one_line_error(invoke("compare", plain, face),
                          "face: a face run; the runs before it are classify runs")
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.yaml").write_text("task: classify\n")
    assert_one_line_error(invoke("compare", tmp_path / "unfinished"),
                          "no metrics.json: the run has not finished")
    assert_one_line_error(invoke("compare", tmp_path / "nothing"),
                          "nothing: not a run folder (no config.yaml)")


def test_runs_validated_on_different_images_are_warned_of(tmp_path):
    seeds = [_run(tmp_path / f"seed{k}", accuracy=0.8) for k in range(2)]
    assert "warning" not in invoke("compare", *seeds).output  # one val split
    other = _run(tmp_path / "other", path="elsewhere", accuracy=0.9)
    fold = _run(tmp_path / "fold0", folds=5, fold=0, accuracy=0.9)
    for odd_one in (other, fold):
        result = invoke("compare", *seeds, odd_one)
        assert result.exit_code == 0, result.output
        assert "warning: the runs were validated on different images" in result.output
    moved = [_run(tmp_path / f"f{k}", folds=2, fold=k, path=f"p{k}", accuracy=0.9)
             for k in range(2)]
    assert "different images" in invoke("compare", *moved).output  # folds of two datasets
