"""Segmentation on real electron microscopy (membrane): a short training, real metrics, and
the int8 file in LiteRT and in MediaPipe's ImageSegmenter."""

import json

import pytest

from conftest import SHARED_DATASETS, require, snapshot
from visionsuite.core.mediapipe_tasks import mediapipe_category_mask

pytestmark = [pytest.mark.slow, pytest.mark.data]

MEMBRANE = SHARED_DATASETS / "segment" / "membrane"
# Short: a small U-Net on 128-px crops, 8 epochs in about 1.5 minutes on a 2-core Zen 3
# (membrane Dice 0.79, pixel accuracy 0.917 there; 12 epochs gave 0.79 and 0.918). Mask value 0
# is membrane.
QUICK_SETS = ("data.classes=[membrane, cell]", "data.image_size=128", "model.filters=8",
              "train.epochs=8", "train.tensorboard=false", "train.warmup_epochs=1")


@pytest.fixture(scope="module")
def membrane_run(tmp_path_factory):
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    root = require(MEMBRANE)
    before = snapshot(root)
    config = load_config("segment", overrides={"data.path": str(root)}, sets=QUICK_SETS)
    run = train(config, output=tmp_path_factory.mktemp("runs"), name="membrane")
    assert snapshot(root) == before  # training never writes into the dataset
    return run


def test_membrane_learns_from_scratch(membrane_run):
    metrics = json.loads((membrane_run / "metrics.json").read_text())
    assert metrics["images"] == 5 and metrics["pixels"] == 5 * 512 * 512  # whole val images
    assert metrics["per_class"]["membrane"]["dice"] >= 0.70
    assert metrics["pixel_accuracy"] >= 0.85
    assert metrics["roc_auc"] >= 0.85
    assert (membrane_run / "val_predictions.png").is_file()


def test_membrane_int8_matches_keras_in_litert_and_mediapipe(membrane_run, tmp_path):
    from visionsuite.config import config_from_dict, read_yaml
    from visionsuite.core.export import export
    from visionsuite.core.metadata import read_metadata
    from visionsuite.core.models import KerasPredictor, load_keras_model
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.metrics import predict_classes

    float_report = export(membrane_run, "none", tmp_path)
    report = export(membrane_run, "int8", tmp_path, calibration=32)
    assert report["size_bytes"] <= 0.30 * float_report["size_bytes"]
    assert abs(report["tflite"]["dice"] - report["keras"]["dice"]) <= 0.02
    assert report["agreement"] >= 0.97
    metadata = read_metadata(open(report["file"], "rb").read())
    assert metadata["outputs"][0]["files"] == ["labels.txt"]

    config = config_from_dict(read_yaml(membrane_run / "config.yaml"), "config")
    data = TASK.load_data(config, train=False)
    tile = data.val.images[0][:128, :128]
    keras_classes = predict_classes(
        KerasPredictor(load_keras_model(membrane_run / "model.keras")).predict(tile[None])[0])
    mediapipe = mediapipe_category_mask(report["file"], tile)
    assert mediapipe.shape == keras_classes.shape
    assert (mediapipe == keras_classes).mean() >= 0.98
