"""`visionsuite ensemble`: runs combined into one model saved as a run folder, evaluated beside
its members on the same images, and the members it refuses to combine."""

import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import TINY_SETS
from test_cli import assert_one_line_error, invoke


def _train(data, output, name, *sets, epochs=1):
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    config = load_config("classify", overrides={"data.path": str(data)},
                         sets=TINY_SETS + (f"train.epochs={epochs}",) + sets)
    return train(config, output=output, name=name)


@pytest.fixture(scope="module")
def second_run(tmp_path_factory, shapes_dir):
    return _train(shapes_dir, tmp_path_factory.mktemp("runs"), "seed1", "train.seed=1")


@pytest.fixture(scope="module")
def fold_runs(tmp_path_factory, shapes_dir):
    """Two folds of a 2-fold cross-validation of the shapes' train folder."""
    output = tmp_path_factory.mktemp("folds")
    return [_train(shapes_dir / "train", output, f"fold{k}", "data.folds=2", f"data.fold={k}")
            for k in (0, 1)]


def test_an_ensemble_is_a_run_of_the_mean_probabilities_beside_its_members(
        tmp_path, tiny_run, second_run, shapes_dir):
    from visionsuite.core.evaluate import evaluate
    from visionsuite.core.export import export
    from visionsuite.core.models import KerasPredictor, load_keras_model

    result = invoke("ensemble", tiny_run, second_run, "--output", tmp_path, "--name", "both")
    assert result.exit_code == 0, result.output
    run = tmp_path / "classify" / "both"
    assert result.stdout.splitlines()[-1] == str(run)
    rows = [line.split() for line in result.stdout.splitlines()[2:5]]
    assert [row[0] for row in rows] == [str(tiny_run), str(second_run), "ensemble"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert [m["run"] for m in metrics["members"]] == [str(tiny_run), str(second_run)]
    assert f"{metrics['accuracy']:.4f}" == rows[2][3]  # "ensemble of 2 <accuracy> ..."

    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
    members = [KerasPredictor(load_keras_model(r / "model.keras")).predict(images)
               for r in (tiny_run, second_run)]
    combined = KerasPredictor(load_keras_model(run / "model.keras")).predict(images)
    np.testing.assert_allclose(combined, np.mean(members, axis=0), atol=1e-6)
    assert (run / "labels.txt").read_text() == (tiny_run / "labels.txt").read_text()
    assert json.loads((run / "ensemble.json").read_text())["members"] == \
        [str(tiny_run.resolve()), str(second_run.resolve())]
    assert evaluate(run)["accuracy"] == pytest.approx(metrics["accuracy"])
    report = export(run, "int8")  # one .tflite holding both members
    assert report["agreement"] >= 0.75, report  # same class as Keras on most val images
    assert evaluate(report["file"])["accuracy"] == report["tflite"]["accuracy"]
    assert (run / "confusion_matrix.png").is_file()
    assert_one_line_error(invoke("ensemble", tiny_run, second_run, "--output", tmp_path,
                                 "--name", "both"), "run folder already exists")


def test_the_folds_of_a_cross_validation_are_validated_on_a_dataset_none_trained_on(
        tmp_path, fold_runs, shapes_dir):
    from visionsuite.core.ensemble import ensemble_runs

    assert_one_line_error(invoke("ensemble", *fold_runs, "--output", tmp_path),
                          "validated on different images", "pass --data")
    assert_one_line_error(invoke("ensemble", *fold_runs, "--output", tmp_path, "--data",
                                 shapes_dir / "train"), "the members trained on it")
    run = ensemble_runs(fold_runs, str(shapes_dir), tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["path"] == str(shapes_dir)
    assert (config["data"]["folds"], config["data"]["fold"]) == (0, 0)
    assert json.loads((run / "metrics.json").read_text())["images"] == 12  # shapes' val/
    assert run.name == "ensemble" and not list((tmp_path / "classify").glob("ensemble?*"))


def test_members_that_cannot_be_combined_are_refused_in_one_line(tmp_path, tiny_run,
                                                                  second_run):
    assert_one_line_error(invoke("ensemble", tiny_run, "--output", tmp_path),
                          "two run folders or more")
    assert_one_line_error(invoke("ensemble", tiny_run, tmp_path, "--output", tmp_path),
                          f"{tmp_path}: not a finished run folder")

    def altered(name, change):
        copy = tmp_path / name
        shutil.copytree(second_run, copy)
        config = yaml.safe_load((copy / "config.yaml").read_text())
        change(config)
        (copy / "config.yaml").write_text(yaml.safe_dump(config))
        return copy

    bigger = altered("bigger", lambda c: c["data"].update(image_size=64))
    assert_one_line_error(invoke("ensemble", tiny_run, bigger, "--output", tmp_path),
                          f"{bigger}: data.image_size=64", "must read images alike")
    detector = altered("detector", lambda c: c.update(task="detect"))
    assert_one_line_error(invoke("ensemble", tiny_run, detector, "--output", tmp_path),
                          f"{detector}: a detect run")
    other_classes = altered("classes", lambda c: None)
    (other_classes / "labels.txt").write_text("a\nb\nc\n")
    assert_one_line_error(invoke("ensemble", tiny_run, other_classes, "--output", tmp_path),
                          "its classes (labels.txt) differ")
    assert not (tmp_path / "classify").exists()  # no run folder left behind
    fewer_threads = altered("threads", lambda c: c["data"].update(workers=1))
    assert invoke("ensemble", tiny_run, fewer_threads, "--output", tmp_path).exit_code == 0


def test_detectors_are_refused_before_any_data_is_read(tmp_path, tiny_run):
    copies = []
    for name in ("a", "b"):
        copy = tmp_path / name
        shutil.copytree(tiny_run, copy)
        config = yaml.safe_load((copy / "config.yaml").read_text())
        (copy / "config.yaml").write_text(yaml.safe_dump({**config, "task": "detect",
                                                          "data": {"path": "/nowhere"}}))
        copies.append(copy)
    assert_one_line_error(invoke("ensemble", *copies, "--output", tmp_path),
                          "detect runs cannot be ensembled")


def test_face_members_join_into_a_unit_embedding_of_their_mean_cosine():
    import keras

    from visionsuite.tasks import get_task

    rng = np.random.default_rng(0)
    inputs = keras.Input((4,))
    outputs = [keras.layers.UnitNormalization()(keras.layers.Dense(3)(inputs)) for _ in "ab"]
    joined = keras.Model(inputs, get_task("face").combine_outputs(outputs))
    members = keras.Model(inputs, outputs)
    x = rng.normal(size=(6, 4)).astype("float32")
    vectors, (a, b) = joined.predict(x, verbose=0), members.predict(x, verbose=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(vectors @ vectors.T, (a @ a.T + b @ b.T) / 2, atol=1e-6)


def test_face_ensembles_choose_their_own_threshold_and_keep_the_members_crop_settings():
    """The thresholds (balanced, and at each FAR) are chosen again; the crop size is shared;
    the framing of the members' training faces (each fold's people) is averaged."""
    from types import SimpleNamespace

    from visionsuite.config import load_config
    from visionsuite.core.ensemble import _settings
    from visionsuite.tasks import get_task

    members = [{"threshold": threshold, "threshold_rule": "r", "chosen_on": "x",
                "thresholds_at_far": {"0.01": threshold + 0.1, "0.001": threshold + 0.2},
                "crop_shape": [92, 112], "window": [2047.5, 4095.0],
                "crop_framing": {"centre": [0.49, centre], "width": 0.83, "aspect": 1.2}}
               for threshold, centre in ((0.7, 0.54), (0.6, 0.56))]
    data = SimpleNamespace(source="orl", train=None)
    metrics = {"best_threshold": 0.55, "identities": 10, "images": 100, "tar_at_far_0.01": 0.9,
               "thresholds_at_far": {"0.01": 0.61234567, "0.001": 0.7}}
    config = load_config("face", sets=["data.window=[2047.5, 4095.0]"])  # the members' own
    settings = _settings(members, get_task("face"), metrics, data, config)
    assert settings["threshold"] == 0.55 and settings["crop_shape"] == [92, 112]
    assert settings["window"] == [2047.5, 4095.0]  # 16-bit faces read as the members read them
    assert settings["thresholds_at_far"] == {"0.01": 0.612346, "0.001": 0.7}
    assert settings["chosen_on"] == "orl: 10 held-out identities, 100 images"
    # measured on each member's training faces: their mean
    assert settings["crop_framing"] == {"centre": [0.49, 0.55], "width": 0.83, "aspect": 1.2}


def test_face_members_may_have_trained_on_different_people():
    """The folds of a face cross-validation each train on other people: their labels.txt (the
    people trained on) differ, and the ensemble's names them all."""
    from types import SimpleNamespace

    from visionsuite.core.ensemble import _labels
    from visionsuite.tasks import get_task

    members = [SimpleNamespace(source=SimpleNamespace(labels=people)) for people in
               (["ann", "bob"], ["bob", "cy"])]
    assert _labels(members, get_task("face")) == ["ann", "bob", "cy"]
    assert _labels(members, get_task("classify")) == ["ann", "bob"]
