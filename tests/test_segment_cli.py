"""The segment task through the command line: train, evaluate, segment, export, data check."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import snapshot
from test_cli import assert_one_line_error, invoke
from test_segment import make_segment_folder

TINY_SEGMENT = ("--image-size", 32, "--epochs", 2, "--set", "model.levels=2",
                "--set", "model.filters=4", "--set", "train.tensorboard=false",
                "--set", "data.crops_per_image=4")


@pytest.fixture(scope="module")
def segment_data(tmp_path_factory):
    return make_segment_folder(tmp_path_factory.mktemp("seg") / "data", size=(50, 37))


@pytest.fixture(scope="module")
def segment_run(segment_data, tmp_path_factory):
    before = snapshot(segment_data)
    output = tmp_path_factory.mktemp("runs")
    result = invoke("train", "segment", "--data", segment_data, "--output", output, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    assert snapshot(segment_data) == before  # nothing is written into the dataset
    return output / "segment" / "exp"


def test_train_writes_the_run_folder_contract(segment_run):
    for name in ("config.yaml", "model.keras", "labels.txt", "metrics.json", "history.csv",
                 "curves.png", "val_predictions.png"):
        assert (segment_run / name).is_file(), name
    metrics = json.loads((segment_run / "metrics.json").read_text())
    for key in ("dice", "iou", "pixel_accuracy", "sensitivity", "specificity", "roc_auc"):
        assert 0 <= metrics[key] <= 1, key
    assert set(metrics["per_class"]) == {"background", "foreground"}
    assert metrics["pixels"] == 2 * 50 * 37  # whole val images, not tiles


def test_segment_writes_masks_at_the_input_size(segment_run, segment_data, tmp_path):
    images = segment_data / "val" / "images"
    result = invoke("segment", segment_run, images, "--output", tmp_path / "out", "--overlay",
                    "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2
    mask = np.array(Image.open(rows[0]["mask"]))
    assert mask.shape == (37, 50) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(rows[0]["overlay"]).size == (50, 37)
    areas = rows[0]["areas"]
    assert areas["background"]["pixels"] + areas["foreground"]["pixels"] == 50 * 37


def test_evaluate_and_int8_export_report_the_same_metrics(segment_run, tmp_path):
    result = invoke("evaluate", segment_run, "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert "dice" in json.loads((tmp_path / "m.json").read_text())
    result = invoke("export", segment_run, "--quantize", "int8", "--output", tmp_path,
                    "--calibration", 8)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "exp-int8.json").read_text())
    assert set(report["keras"]) == set(report["tflite"]) >= {"dice", "pixel_accuracy"}
    assert 0 <= report["agreement"] <= 1


def test_data_check_reports_classes_and_refuses_unpaired(segment_data, tmp_path):
    result = invoke("data", "check", "segment", segment_data)
    assert result.exit_code == 0, result.output
    assert "0 background" in result.output and "1 foreground" in result.output
    broken = make_segment_folder(tmp_path / "broken")
    (broken / "train" / "masks" / "0.png").unlink()
    assert_one_line_error(invoke("data", "check", "segment", broken), "without a mask")
    assert_one_line_error(invoke("train", "segment", "--data", broken), "without a mask")


def test_bad_segment_inputs_are_one_line_errors(segment_run, segment_data, tmp_path):
    assert_one_line_error(invoke("train", "segment"), "no embedded dataset")
    assert_one_line_error(invoke("segment", segment_run, tmp_path / "none.png"), "no such file")
    assert_one_line_error(invoke("segment", segment_run, tmp_path), "no image files")
    image = segment_data / "val" / "images" / "0.png"
    assert_one_line_error(invoke("segment", segment_run, image, "--threshold", 2),
                          "--threshold 2.0: must be between 0 and 1")


def test_another_modality_trains_with_only_data_changed(tmp_path):
    """Retina-like: larger non-square TIFF images, GIF masks, region-of-interest masks."""
    root = tmp_path / "retina"
    make_segment_folder(root, train=3, val=1, size=(90, 61), roi=True)
    for path in list(root.rglob("images/*.png")):
        Image.open(path).convert("RGB").save(path.with_suffix(".tif"))
        path.unlink()
    for path in list(root.rglob("masks/*.png")):
        Image.open(path).save(path.with_suffix(".gif"))
        path.unlink()
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "segment" / "exp" / "metrics.json").read_text())
    assert metrics["pixels"] == 61 * 45  # only the left half, inside the region of interest
