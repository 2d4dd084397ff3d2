"""`visionsuite cross-validate`: one run per fold, their metrics side by side, and a stopped
cross-validation that goes on where it stopped."""

import json

import yaml

from conftest import TINY_SETS
from test_cli import assert_one_line_error, invoke


def _cross_validate(data, output, *extra):
    sets = [item for pair in zip(["--set"] * len(TINY_SETS), TINY_SETS) for item in pair]
    return invoke("cross-validate", "classify", "--data", data, "--epochs", 1, "--folds", 2,
                  "--output", output, *sets, *extra)


def test_each_fold_is_a_run_and_finished_folds_are_kept(tmp_path, shapes_dir):
    result = _cross_validate(shapes_dir / "train", tmp_path, "--json", tmp_path / "cv.json")
    assert result.exit_code == 0, result.output
    runs = [tmp_path / "classify" / f"cv_fold{k}" for k in (0, 1)]
    for fold, run in enumerate(runs):
        data = yaml.safe_load((run / "config.yaml").read_text())["data"]
        assert (data["folds"], data["fold"]) == (2, fold) and (run / "metrics.json").is_file()
    rows = [line.split() for line in result.stdout.splitlines()[-6:]]  # after training's
    assert [row[0] for row in rows[2:6]] == [str(runs[0]), str(runs[1]), "mean", "std"]
    assert rows[2][1:4] == ["fold", "0", "of"]
    table = json.loads((tmp_path / "cv.json").read_text())
    assert table == json.loads((tmp_path / "classify" / "cv_compare.json").read_text())
    assert len(table["runs"]) == 2 and table["folds_note"] is None

    (runs[1] / "metrics.json").rename(runs[1] / "metrics.moved")  # as if stopped in fold 1
    stopped = _cross_validate(shapes_dir / "train", tmp_path, "--name", "cv")
    assert_one_line_error(stopped, f"{runs[1]}: this fold's run has not finished", "--resume")
    (runs[1] / "metrics.moved").rename(runs[1] / "metrics.json")
    again = _cross_validate(shapes_dir / "train", tmp_path, "--name", "cv")
    assert again.exit_code == 0, again.output
    assert again.stderr.count("has finished; kept") == 2 and "Epoch" not in again.output
    other = _cross_validate(shapes_dir / "train", tmp_path, "--name", "cv", "--set",
                            "train.lr=0.5")
    assert_one_line_error(other, "trained with train.lr=0.01, not 0.5", "another --name")
    assert_one_line_error(_cross_validate(shapes_dir, tmp_path),  # train/ and val/
                          "has a val split of its own")
