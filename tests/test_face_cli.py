"""The face task through the command line, on the generated cartoon faces: train, embed,
verify, enroll, identify, evaluate, export (int8 in MediaPipe's ImageEmbedder), bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import (check_read_from_bit_depth, snapshot, twelve_bit_copies,
                      with_twelve_bit_window)
from test_cli import assert_one_line_error, invoke
from visionsuite.datasets import cartoon_faces_dataset

# The embedded default's recipe (config.EMBEDDED_SETTINGS): about 1.5 minutes here.
TINY_FACE = ("--image-size", 64, "--epochs", 30, "--batch-size", 16,
             "--set", "model.width=0.5", "--set", "data.face_detect=false", "--set", "train.ema_momentum=0.95",
             "--set", "train.warmup_epochs=1", "--set", "train.tensorboard=false")


@pytest.fixture(scope="module")
def faces_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    data = cartoon_faces_dataset(root)
    # A person with a single photo: usable (a class), warned about (no same-person pair).
    loner = data / "train" / "loner"
    loner.mkdir(exist_ok=True)
    shutil.copy(data / "train" / "person_train_00" / "0.png", loner / "0.png")
    return data


@pytest.fixture(scope="module")
def face_run(faces_data, tmp_path_factory):
    before = snapshot(faces_data)
    output = tmp_path_factory.mktemp("runs")
    result = invoke("train", "face", "--data", faces_data, "--output", output, *TINY_FACE)
    assert result.exit_code == 0, result.output
    assert "identity 'loner' has a single image" in result.output
    assert "missed at FAR 1e-2 (worst first):" in result.output  # training prints it too
    assert snapshot(faces_data) == before  # nothing is written into the dataset
    return output / "face" / "exp"


def person(data, split, index):
    return data / split / f"person_{split}_{index:02d}"


def test_training_writes_the_embedder_the_threshold_and_the_metrics(face_run):
    import keras

    for name in ("config.yaml", "model.keras", "inference.json", "metrics.json", "roc.png",
                 "history.csv", "curves.png"):
        assert (face_run / name).is_file(), name
    model = keras.saving.load_model(face_run / "model.keras", compile=False, safe_mode=True)
    assert model.output_shape == (None, 128)  # the embedder, not the training logits
    metrics = json.loads((face_run / "metrics.json").read_text())
    assert metrics["identities"] == 8 and metrics["images"] == 64
    # Raw pixels give about 0.6 here; the 30 epochs reach about 0.94.
    assert metrics["roc_auc"] > 0.85, metrics
    settings = json.loads((face_run / "inference.json").read_text())
    assert settings["threshold"] == pytest.approx(metrics["best_threshold"], abs=1e-6)
    assert "val_roc_auc" in (face_run / "history.csv").read_text()


def test_embed_gives_unit_vectors(face_run, faces_data):
    images = sorted(person(faces_data, "val", 0).glob("*.png"))[:3]
    result = invoke("embed", face_run, *images, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["image"] for r in rows] == [str(p) for p in images]
    vectors = np.array([r["embedding"] for r in rows])
    assert vectors.shape == (3, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)


def test_verify_says_same_or_not_with_the_similarity_and_exit_code_0(face_run, faces_data):
    a, b = sorted(person(faces_data, "val", 1).glob("*.png"))[:2]
    other = sorted(person(faces_data, "val", 2).glob("*.png"))[0]
    same = invoke("verify", face_run, a, b, "--json")
    different = invoke("verify", face_run, a, other, "--json")
    assert same.exit_code == 0 and different.exit_code == 0, same.output + different.output
    same, different = json.loads(same.stdout), json.loads(different.stdout)
    threshold = json.loads((face_run / "inference.json").read_text())["threshold"]
    assert same["threshold"] == pytest.approx(threshold, abs=1e-6)
    for result in (same, different):
        assert result["same_person"] == (result["similarity"] >= result["threshold"])
    assert same["similarity"] > different["similarity"]
    text = invoke("verify", face_run, a, b)
    assert text.exit_code == 0 and "similarity" in text.output and "threshold" in text.output


def test_verify_and_identify_judge_at_a_false_accept_rate_measured_in_training(face_run,
                                                                               faces_data,
                                                                               tmp_path):
    """--far: the threshold at which training's held-out people accepted that share of their
    different-person pairs, saved in the run (and in exported files); a rate not measured,
    or --far beside --threshold, is a one-line error."""
    metrics = json.loads((face_run / "metrics.json").read_text())
    measured = json.loads((face_run / "inference.json").read_text())["thresholds_at_far"]
    assert list(measured) == ["0.01", "0.001"]
    for far, cut in measured.items():
        assert cut == round(metrics["thresholds_at_far"][far], 6)
    assert measured["0.001"] >= measured["0.01"]
    a, b = sorted(person(faces_data, "val", 1).glob("*.png"))[:2]
    for far, written in (("0.01", "0.01"), ("0.001", "1e-3")):
        verdict = invoke("verify", face_run, a, b, "--far", written, "--json")
        assert verdict.exit_code == 0, verdict.output
        result = json.loads(verdict.stdout)
        assert result["threshold"] == pytest.approx(measured[far], abs=1e-6)
        assert result["same_person"] == (result["similarity"] >= measured[far])
    gallery = tmp_path / "gallery.json"
    assert invoke("enroll", face_run, person(faces_data, "val", 1), "--gallery",
                  gallery).exit_code == 0
    found = invoke("identify", face_run, a, "--gallery", gallery, "--far", "0.001", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["threshold"] == pytest.approx(measured["0.001"], abs=1e-6)
    assert_one_line_error(invoke("verify", face_run, a, b, "--far", "0.05"),
                          "no threshold measured at FAR 0.05 (measured at: 0.01, 0.001)")
    assert_one_line_error(invoke("identify", face_run, a, "--gallery", gallery, "--far",
                                 "0.01", "--threshold", "0.5"), "give one")


def test_verify_refuses_a_folder_and_a_threshold_no_similarity_reaches(face_run, faces_data):
    a = sorted(person(faces_data, "val", 1).glob("*.png"))[0]
    assert_one_line_error(invoke("verify", face_run, a, a.parent),
                          f"{a.parent}: a folder; this takes one image file")
    assert_one_line_error(invoke("verify", face_run, a, a, "--threshold", "1.5"),
                          "--threshold 1.5: a cosine similarity, between -1 and 1")


def test_enroll_then_identify_and_enroll_again_updates(face_run, faces_data, tmp_path):
    gallery = tmp_path / "gallery.json"
    people = [person(faces_data, "val", i) for i in range(4)]
    enrol = tmp_path / "enrol"
    for folder in people:  # enrol 6 photos of each, keep the others as probes
        shutil.copytree(folder, enrol / folder.name,
                        ignore=lambda _, names: sorted(names)[6:])
    result = invoke("enroll", face_run, *sorted(enrol.iterdir()), "--gallery", gallery)
    assert result.exit_code == 0, result.output
    data = json.loads(gallery.read_text())
    assert data["format"] == "visionsuite-face-gallery" and len(data["people"]) == 4
    assert all(len(p["embeddings"]) == 6 for p in data["people"].values())
    hits = 0
    for folder in people:
        probe = sorted(folder.glob("*.png"))[7]
        result = invoke("identify", face_run, probe, "--gallery", gallery, "--json")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        best = answer["candidates"][0]
        assert answer["identity"] == (best["person"] if best["similarity"] >= answer["threshold"]
                                      else "unknown")
        hits += best["person"] == folder.name
    assert hits >= 3
    again = invoke("enroll", face_run, enrol / people[0].name, "--gallery", gallery)
    assert again.exit_code == 0 and "updated" in again.output
    assert len(json.loads(gallery.read_text())["people"]) == 4


def test_a_folder_of_people_is_not_enrolled_as_one_person(face_run, faces_data, tmp_path):
    gallery = tmp_path / "gallery.json"
    assert_one_line_error(invoke("enroll", face_run, faces_data / "val", "--gallery", gallery),
                          f"{faces_data / 'val'}: its images are in 8 subfolders",
                          "person_val_00/", f"(e.g. {faces_data / 'val'}/*)")
    assert not gallery.exists()


def test_identify_of_many_images_answers_for_each_as_identify_of_one(face_run, faces_data,
                                                                      tmp_path):
    gallery = tmp_path / "gallery.json"
    people = [person(faces_data, "val", i) for i in range(3)]
    assert invoke("enroll", face_run, *people, "--gallery", gallery).exit_code == 0
    probes = [sorted(folder.glob("*.png"))[7] for folder in people]
    many = invoke("identify", face_run, *probes, "--gallery", gallery, "--json")
    assert many.exit_code == 0, many.output
    for probe, answer in zip(probes, json.loads(many.stdout), strict=True):
        alone = json.loads(invoke("identify", face_run, probe, "--gallery", gallery,
                                  "--json").stdout)
        assert answer["image"] == str(probe) and answer["identity"] == alone["identity"]
        for mine, its in zip(answer["candidates"], alone["candidates"], strict=True):
            assert mine["person"] == its["person"]
            assert mine["similarity"] == pytest.approx(its["similarity"], abs=1e-5)
    folder = invoke("identify", face_run, people[0], "--gallery", gallery)
    assert folder.exit_code == 0, folder.output
    rows = [line.split() for line in folder.stdout.splitlines()[2:]]
    assert len(rows) == len(list(people[0].glob("*.png")))
    assert all(row[1] == people[0].name for row in rows)  # its own enrolled photos
    walls = []
    for index in range(2):
        walls.append(tmp_path / f"wall{index}.jpg")
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (240, 320, 3),
                                                              np.uint8)).save(walls[-1])
    assert_one_line_error(invoke("identify", face_run, *walls, "--gallery", gallery,
                                 "--detect"), "wall0.jpg: no face found", "wall1.jpg")


def test_an_enrollment_keeps_people_enrolled_meanwhile_by_another(face_run, faces_data, tmp_path,
                                                                 monkeypatch):
    from visionsuite.tasks.face import commands

    gallery = tmp_path / "gallery.json"
    commands.enroll(face_run, gallery, [person(faces_data, "val", 0)])
    embed_files = commands.Embedder.embed_files

    def embed_while_another_enrolls(self, paths, desc="embedding"):
        # Another process finishes its enrollment while this one embeds its faces.
        monkeypatch.setattr(commands.Embedder, "embed_files", embed_files)
        commands.enroll(face_run, gallery, [person(faces_data, "val", 1)])
        return embed_files(self, paths, desc)

    monkeypatch.setattr(commands.Embedder, "embed_files", embed_while_another_enrolls)
    changes = commands.enroll(face_run, gallery, [person(faces_data, "val", 2)])
    assert [c["action"] for c in changes] == ["added"]
    assert sorted(json.loads(gallery.read_text())["people"]) == [
        person(faces_data, "val", i).name for i in range(3)]


def test_bad_galleries_are_one_line_errors_and_left_unchanged(face_run, faces_data, tmp_path):
    probe = sorted(person(faces_data, "val", 0).glob("*.png"))[0]
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "visionsuite-face-gallery", "version": 1, "people": {')
    assert_one_line_error(invoke("identify", face_run, probe, "--gallery", corrupt),
                          str(corrupt), "not a readable gallery")
    assert_one_line_error(invoke("enroll", face_run, person(faces_data, "val", 0),
                                 "--gallery", corrupt), "not a readable gallery")
    assert corrupt.read_text().endswith('"people": {')
    assert_one_line_error(invoke("identify", face_run, probe, "--gallery",
                                 tmp_path / "none.json"), "no such gallery")
    assert_one_line_error(invoke("identify", face_run, probe, "--gallery", tmp_path),
                          "a folder; expected a gallery file")
    assert_one_line_error(invoke("enroll", face_run, person(faces_data, "val", 0),
                                 "--gallery", tmp_path),
                          "--gallery takes the name of a gallery file")
    assert_one_line_error(invoke("enroll", face_run, person(faces_data, "val", 0), "--gallery",
                                 corrupt / "g.json"),
                          f"cannot write a gallery file there ({corrupt} is not a folder)")


def test_a_gallery_made_by_another_model_is_refused(face_run, faces_data, tmp_path):
    from visionsuite.config import config_from_dict, read_yaml
    from visionsuite.tasks.face.model import build_embedder

    gallery = tmp_path / "gallery.json"
    assert invoke("enroll", face_run, person(faces_data, "val", 0), "--gallery",
                  gallery).exit_code == 0
    config = config_from_dict(read_yaml(face_run / "config.yaml"), "config.yaml")
    other = tmp_path / "other.keras"
    build_embedder(config).save(other)  # same shape, other weights
    probe = sorted(person(faces_data, "val", 1).glob("*.png"))[0]
    assert_one_line_error(invoke("identify", other, probe, "--gallery", gallery,
                                 "--no-detect"), "made by another model")


def test_a_photo_without_a_face_is_reported_not_guessed(face_run, tmp_path):
    blank = tmp_path / "wall.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)).save(
        blank)
    assert_one_line_error(invoke("verify", face_run, blank, blank, "--detect"),
                          "wall.jpg: no face found", "--no-detect")


def test_evaluate_uses_the_saved_threshold(face_run):
    result = invoke("evaluate", face_run)
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.output and "tar_at_far_0.01" in result.output
    # Then the held-out people verification fails most, by their folder names.
    people = result.output.split("missed at FAR 1e-2 (worst first):")[1]
    assert "missed_pairs" in people and "person_" in people


def test_evaluate_scores_a_test_folder_of_people_with_split_test(face_run, faces_data, tmp_path):
    from test_splits import assert_the_test_split_scores_as_val_did

    data = tmp_path / "faces"
    shutil.copytree(faces_data, data)
    shutil.copytree(data / "val", data / "test")
    assert "roc_auc" in assert_the_test_split_scores_as_val_did(face_run, data, tmp_path)


def test_evaluate_pairs_of_every_val_pair_scores_as_evaluate_does(face_run, faces_data,
                                                                  tmp_path):
    """A pairs file listing every pair of the val people gives the AUC of `evaluate`, which
    scores every pair itself: the two paths embed and score alike."""
    from itertools import combinations

    val = faces_data / "val"
    images = sorted(val.glob("*/*.png"))
    lines = [f"{a.relative_to(val)} {b.relative_to(val)} {int(a.parent == b.parent)}"
             for a, b in combinations(images, 2)]
    (tmp_path / "every.txt").write_text("\n".join(lines) + "\n")
    result = invoke("evaluate", face_run, "--pairs", tmp_path / "every.txt", "--data", val,
                    "--json", tmp_path / "pairs.json", "--no-detect")  # as the run trained
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "pairs.json").read_text())
    assert invoke("evaluate", face_run, "--json", tmp_path / "all.json").exit_code == 0
    whole = json.loads((tmp_path / "all.json").read_text())
    assert (scored["same_pairs"], scored["different_pairs"]) == (whole["same_pairs"],
                                                                 whole["different_pairs"])
    assert scored["roc_auc"] == pytest.approx(whole["roc_auc"], abs=1e-4)
    assert scored["accuracy"] == pytest.approx(whole["accuracy"], abs=1e-3)
    assert "cv_accuracy" not in scored  # one set of pairs: no folds


def _lfw_layout_pairs(people_folder: Path) -> list[str]:
    """LFW's pairs.txt layout over the people of `people_folder` (numbered files,
    `<person>/<n>.png`, 8 each): 4 folds, each of 8 same- and 8 different-person pairs."""
    rng = np.random.default_rng(0)
    people = sorted(path.name for path in people_folder.iterdir())
    lines = ["4\t8"]
    for _ in range(4):
        for _ in range(8):
            person, (a, b) = people[rng.integers(len(people))], rng.choice(8, 2, replace=False)
            lines.append(f"{person}\t{a}\t{b}")
        for _ in range(8):
            one, other = rng.choice(len(people), 2, replace=False)
            lines.append(f"{people[one]}\t{rng.integers(8)}\t{people[other]}\t"
                         f"{rng.integers(8)}")
    return lines


def test_evaluate_pairs_in_lfw_folds_gives_lfw_accuracy(face_run, faces_data, tmp_path):
    """LFW's pairs.txt layout over the val people: LFW's accuracy, fold by fold."""
    lines = _lfw_layout_pairs(faces_data / "val")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    result = invoke("evaluate", face_run, "--pairs", tmp_path / "pairs.txt", "--data",
                    faces_data / "val", "--json", tmp_path / "lfw.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "lfw.json").read_text())
    assert [fold["pairs"] for fold in metrics["folds"]] == [16] * 4
    accuracies = [fold["accuracy"] for fold in metrics["folds"]]
    assert metrics["cv_accuracy"] == pytest.approx(np.mean(accuracies))
    assert metrics["cv_accuracy_se"] == pytest.approx(np.std(accuracies, ddof=1) / 2)
    assert metrics["cv_accuracy"] > 0.75, metrics  # the 30 epochs' AUC is about 0.94
    assert "folds (LFW's protocol): accuracy" in result.output
    wrong = metrics["false_rejects"] + metrics["false_accepts"]
    assert wrong == round((1 - metrics["accuracy"]) * 64)
    assert len(metrics["wrong_pairs"]) == min(metrics["false_rejects"], 10) + \
        min(metrics["false_accepts"], 10)
    if wrong:  # the table names each pair's line in pairs.txt
        assert "pairs judged wrong at the model's threshold" in result.output
        first = metrics["wrong_pairs"][0]
        assert lines[first["line"] - 1].split("\t")[0] == first["image_a"].split("/")[0]


def test_an_insightface_bin_of_the_same_pairs_scores_as_its_pairs_file(face_run, faces_data,
                                                                       tmp_path):
    """The pairs of the LFW layout packed as InsightFace packs lfw.bin (the images' bytes,
    then a flag per pair) give the same verification figures; its folds are InsightFace's 10
    of consecutive pairs, and its wrong pairs are named by pair number and image."""
    import pickle

    from visionsuite.tasks.face.pairs import read_pairs

    lines = _lfw_layout_pairs(faces_data / "val")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    listed = read_pairs(tmp_path / "pairs.txt", faces_data / "val")
    images = [path.read_bytes() for a, b in zip(listed.first, listed.second)
              for path in (listed.paths[a], listed.paths[b])]
    (tmp_path / "pairs.bin").write_bytes(pickle.dumps((images, listed.same.tolist())))
    scores = {}
    for name, extra in (("pairs.txt", ("--data", faces_data / "val")), ("pairs.bin", ())):
        result = invoke("evaluate", face_run, "--pairs", tmp_path / name, *extra,
                        "--json", tmp_path / f"{name}.json")
        assert result.exit_code == 0, result.output
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())
    packed = scores["pairs.bin"]
    for key in ("roc_auc", "eer", "accuracy", "tar_at_far_0.01", "false_rejects",
                "false_accepts", "pairs", "same_pairs"):
        assert packed[key] == pytest.approx(scores["pairs.txt"][key], abs=1e-6), key
    assert [fold["pairs"] for fold in packed["folds"]] == [7] * 4 + [6] * 6  # KFold's
    assert packed["data"] == str(tmp_path / "pairs.bin")
    for row in packed["wrong_pairs"]:
        assert row["image_a"] == f"pairs.bin[{2 * row['pair_number'] - 2}]"


def test_training_picks_its_epoch_and_threshold_on_a_pairs_file(faces_data, tmp_path):
    """data.val_pairs: LFW's layout over the val people, in a folder of their own beside the
    file (lfw_home/pairs.txt, lfw_home/people/). The pairs pick the epoch and the threshold in
    place of held-out people; evaluate and export score the pairs again, and another dataset
    is scored on its people."""
    home = tmp_path / "lfw_home"
    shutil.copytree(faces_data / "val", home / "people")
    (home / "pairs.txt").write_text("\n".join(_lfw_layout_pairs(home / "people")) + "\n")
    missing = invoke("train", "face", "--data", faces_data, "--set",
                     f"data.val_pairs={tmp_path / 'none.txt'}")
    assert_one_line_error(missing, "none.txt: no such pairs file")
    result = invoke("train", "face", "--data", faces_data, "--output", tmp_path / "runs",
                    "--name", "paired", *TINY_FACE, "--epochs", 3,
                    "--set", f"data.val_pairs={home / 'pairs.txt'}")
    assert result.exit_code == 0, result.output
    assert f"val: the pairs of {home / 'pairs.txt'}" in result.output
    run = tmp_path / "runs" / "face" / "paired"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pairs"] == 64 and len(metrics["folds"]) == 4 and "rank1" not in metrics
    settings = json.loads((run / "inference.json").read_text())
    assert settings["threshold"] == round(metrics["best_threshold"], 6)
    assert settings["chosen_on"].startswith(f"{home / 'pairs.txt'}: 64 pairs of")
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_cv_accuracy" in history and "val_rank1" not in history
    assert (run / "roc.png").is_file()
    again = invoke("evaluate", run, "--json", tmp_path / "again.json")
    assert again.exit_code == 0, again.output
    scored = json.loads((tmp_path / "again.json").read_text())
    assert scored["cv_accuracy"] == pytest.approx(metrics["cv_accuracy"])
    assert scored["roc_auc"] == pytest.approx(metrics["roc_auc"])
    exported = invoke("export", run, "--quantize", "dynamic", "--output", tmp_path)
    assert exported.exit_code == 0, exported.output
    report = json.loads((tmp_path / "paired-dynamic.json").read_text())
    assert report["keras"]["cv_accuracy"] == pytest.approx(metrics["cv_accuracy"])
    assert "cv_accuracy" in report["tflite"] and "rank1" not in report["tflite"]
    shutil.copytree(faces_data, tmp_path / "other")
    other = invoke("evaluate", run, "--data", tmp_path / "other", "--json", tmp_path / "o.json")
    assert other.exit_code == 0, other.output
    assert "rank1" in json.loads((tmp_path / "o.json").read_text())  # its people


def test_evaluate_pairs_draws_the_roc_curve_in_the_plots_folder(face_run, faces_data, tmp_path):
    val = faces_data / "val"
    people = sorted(path.name for path in val.iterdir())
    lines = [f"{people[0]}/0.png {people[0]}/1.png 1", f"{people[0]}/0.png {people[1]}/0.png 0"]
    (tmp_path / "mine.txt").write_text("\n".join(lines) + "\n")
    plots = tmp_path / "plots"
    result = invoke("evaluate", face_run, "--pairs", tmp_path / "mine.txt", "--data", val,
                    "--plots", plots, "--json", tmp_path / "mine.json")
    assert result.exit_code == 0, result.output
    with Image.open(plots / "mine_roc.png") as roc:
        assert roc.format == "PNG" and roc.width > 200
    assert f"plots: {plots / 'mine_roc.png'}" in result.output
    assert json.loads((tmp_path / "mine.json").read_text())["plots"] == \
        [str(plots / "mine_roc.png")]
    (tmp_path / "file").write_text("")
    assert_one_line_error(invoke("evaluate", face_run, "--pairs", tmp_path / "mine.txt",
                                 "--data", val, "--plots", tmp_path / "file" / "plots"),
                          "cannot write the plots there")


def test_evaluate_pairs_refuses_a_split_beside_it_and_pairs_of_missing_images(face_run,
                                                                              tmp_path):
    (tmp_path / "pairs.txt").write_text("a 1 2\n")
    assert_one_line_error(invoke("evaluate", face_run, "--pairs", tmp_path / "pairs.txt",
                                 "--split", "test"), "give it or --split, not both")
    assert_one_line_error(invoke("evaluate", face_run, "--pairs", tmp_path / "none.txt"),
                          "none.txt: no such pairs file")
    assert_one_line_error(invoke("evaluate", face_run, "--no-detect"),
                          "--detect/--no-detect: for --pairs")
    assert_one_line_error(invoke("evaluate", face_run, "--pairs", tmp_path / "pairs.txt"),
                          "images it names are not under",
                          "2 missing: line 1: a/a_0001.*; line 1: a/a_0002.*")


def test_int8_export_runs_in_mediapipe_image_embedder(face_run, faces_data, tmp_path):
    import keras

    from visionsuite.core.mediapipe_tasks import mediapipe_embeddings
    from visionsuite.core.metadata import read_metadata
    from visionsuite.core.models import tflite_settings

    result = invoke("export", face_run, "--quantize", "int8", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    path = tmp_path / "exp-int8.tflite"
    report = json.loads(path.with_suffix(".json").read_text())
    # Mean cosine, Keras against int8: 0.97-0.99 for this tiny 30-epoch model over runs;
    # the ORL model's (test_integration_face.py): 0.99.
    assert report["agreement"] > 0.95, report
    assert abs(report["tflite"]["roc_auc"] - report["keras"]["roc_auc"]) < 0.03, report
    settings = json.loads((face_run / "inference.json").read_text())
    assert tflite_settings(path)["threshold"] == settings["threshold"]
    assert tflite_settings(path)["thresholds_at_far"] == settings["thresholds_at_far"]
    metadata = read_metadata(path.read_bytes())
    assert metadata["outputs"][0]["name"] == "embedding"

    images = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64),
                                                                     Image.BILINEAR))
                       for p in sorted(person(faces_data, "val", 3).glob("*.png"))])
    model = keras.saving.load_model(face_run / "model.keras", compile=False, safe_mode=True)
    reference = model.predict(images.astype(np.float32), verbose=0)
    phone = mediapipe_embeddings(path, images)
    phone /= np.linalg.norm(phone, axis=1, keepdims=True)
    # MediaPipe runs the file as LiteRT does: as close to Keras as the export report says.
    assert (phone * reference).sum(1).mean() >= min(0.98, report["agreement"] - 0.01)

    # The exported file alone verifies with the threshold it carries, and reads the gallery
    # its Keras model made.
    a, b = sorted(person(faces_data, "val", 3).glob("*.png"))[:2]
    verdict = invoke("verify", path, a, b, "--no-detect", "--json")
    assert verdict.exit_code == 0, verdict.output
    assert json.loads(verdict.stdout)["threshold"] == pytest.approx(settings["threshold"])
    gallery = tmp_path / "gallery.json"
    assert invoke("enroll", face_run, person(faces_data, "val", 3), "--gallery",
                  gallery).exit_code == 0
    found = invoke("identify", path, a, "--gallery", gallery, "--no-detect", "--json")
    assert found.exit_code == 0, found.output
    # The file names its task, so that it evaluates alone on a dataset.
    alone = invoke("evaluate", path, "--data", faces_data)
    assert alone.exit_code == 0 and "roc_auc" in alone.output, alone.output


def test_data_check_reports_identities_and_single_image_people(faces_data):
    result = invoke("data", "check", "face", faces_data)
    assert result.exit_code == 0, result.output
    assert "loner" in result.output and "identities" in result.output


def test_data_check_takes_a_set_of_test_people_alone_as_a_test_set(faces_data, tmp_path):
    held_out = next(name for name in ("val", "test") if (faces_data / name).is_dir())
    shutil.copytree(faces_data / held_out, tmp_path / "people" / "test")
    result = invoke("data", "check", "face", tmp_path / "people")
    assert result.exit_code == 0, result.output  # was: one class folder, 'test'
    assert "a test set, for `visionsuite evaluate RUN --data PATH`" in result.output
    assert "train" not in result.output.replace("no train/", "")


def _gallery_of(path, people: dict) -> None:
    """A gallery file of `people` (name: number of images) with 3-d embeddings."""
    path.write_text(json.dumps({
        "format": "visionsuite-face-gallery", "version": 1,
        "model": {"embedding_size": 3, "image_size": 32, "channels": 3, "probe": [1, 0, 0]},
        "people": {name: {"embeddings": [[0, 1, 0]] * count, "images": ["x.png"] * count,
                          "enrolled": "2026-12-01T10:00:00Z"}
                   for name, count in people.items()}}))


def test_gallery_lists_its_people_and_removes_them_without_the_model(tmp_path):
    gallery = tmp_path / "gallery.json"
    _gallery_of(gallery, {"carol": 1, "alice": 2, "bob": 3})
    result = invoke("gallery", gallery)
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[2:5]] == [
        "alice", "bob", "carol"], result.output
    assert f"{gallery}: 3 people, 6 images" in result.output
    result = invoke("gallery", gallery, "--remove", "bob", "--remove", "alice")
    assert result.exit_code == 0, result.output
    assert "removed bob (3 images)" in result.output and "1 people, 1 images" in result.output
    assert list(json.loads(gallery.read_text())["people"]) == ["carol"]
    listed = json.loads(invoke("gallery", gallery, "--json").stdout)
    assert listed == [{"person": "carol", "images": 1, "enrolled": "2026-12-01T10:00:00Z"}]


def test_removing_someone_not_enrolled_removes_nobody(tmp_path):
    gallery = tmp_path / "gallery.json"
    _gallery_of(gallery, {"alice": 1, "bob": 1})
    before = gallery.read_text()
    assert_one_line_error(invoke("gallery", gallery, "--remove", "alice", "--remove", "eve"),
                          str(gallery), "nobody named 'eve' is enrolled (it holds alice, bob); "
                          "nobody was removed")
    assert gallery.read_text() == before
    assert_one_line_error(invoke("gallery", tmp_path / "none.json"), "no such gallery file")
    assert_one_line_error(invoke("gallery", tmp_path), "a folder; expected a gallery file")
    gallery.write_text('{"format": "visionsuite-face-gallery", "version": 1, "people": {')
    assert_one_line_error(invoke("gallery", gallery, "--remove", "alice"),
                          "not a readable gallery file")
    assert gallery.read_text().endswith('"people": {')


def test_a_removed_person_is_no_longer_identified(face_run, faces_data, tmp_path):
    gallery = tmp_path / "gallery.json"
    people = [person(faces_data, "val", i) for i in range(2)]
    assert invoke("enroll", face_run, *people, "--gallery", gallery).exit_code == 0
    probe = sorted(people[0].glob("*.png"))[0]
    ranked = json.loads(invoke("identify", face_run, probe, "--gallery", gallery,
                               "--json").stdout)["candidates"]
    assert {c["person"] for c in ranked} == {p.name for p in people}
    assert invoke("gallery", gallery, "--remove", people[0].name).exit_code == 0
    ranked = json.loads(invoke("identify", face_run, probe, "--gallery", gallery,
                               "--json").stdout)["candidates"]
    assert [c["person"] for c in ranked] == [people[1].name]


def test_every_face_of_a_group_photo_is_identified_and_drawn(face_run, faces_data, tmp_path):
    from test_face import group_photo

    gallery = tmp_path / "gallery.json"
    assert invoke("enroll", face_run, person(faces_data, "val", 0), "--gallery",
                  gallery).exit_code == 0
    grace = tmp_path / "people" / "grace"
    grace.mkdir(parents=True)
    group_photo(grace / "portrait.png", scales=(1.0,))
    result = invoke("enroll", face_run, grace, "--gallery", gallery, "--detect")
    assert result.exit_code == 0, result.output
    photos = tmp_path / "photos"
    photos.mkdir()
    group_photo(photos / "group.png")  # three copies of her portrait, 1.0, 0.75, 0.55
    cartoon = sorted(person(faces_data, "val", 1).glob("*.png"))[0]
    shutil.copy(cartoon, photos / "cartoon.png")  # the cascade finds no drawn face
    drawn = tmp_path / "drawn"
    result = invoke("identify", face_run, photos, "--gallery", gallery, "--every-face",
                    "--output", drawn, "--json")
    assert result.exit_code == 0, result.output
    missed, group = json.loads(result.stdout)
    assert missed["image"].endswith("cartoon.png") and "no face found" in missed["error"]
    widths = [face["box"][2] - face["box"][0] for face in group["faces"]]
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)
    for face in group["faces"]:  # each copy of her face is her, far above the cartoon
        best, other = face["candidates"]
        assert best["person"] == "grace" and best["similarity"] > 0.9, face
        assert face["identity"] == "grace" and other["similarity"] < best["similarity"]
    with Image.open(group["drawn"]) as image, Image.open(photos / "group.png") as photo:
        assert image.size == photo.size and Path(group["drawn"]).parent == drawn
    result = invoke("identify", face_run, photos / "group.png", "--gallery", gallery,
                    "--every-face", "--output", drawn)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert sum(row[-3:-1] == ["grace", "grace"] for row in rows) == 3, result.stdout
    assert result.stdout.strip().endswith(str(drawn))  # where the drawn photos are
    assert_one_line_error(invoke("identify", face_run, cartoon, "--gallery", gallery,
                                 "--every-face", "--output", drawn), "no face found")
    assert_one_line_error(invoke("identify", face_run, cartoon, "--gallery", gallery,
                                 "--output", drawn), "add --every-face")
    assert_one_line_error(invoke("identify", face_run, cartoon, "--gallery", gallery,
                                 "--every-face", "--no-detect"), "cannot take --no-detect")
    crowd = tmp_path / "people" / "crowd"  # a group photo enrolled as one person's
    crowd.mkdir()
    group_photo(crowd / "group.png")
    result = invoke("enroll", face_run, crowd, "--gallery", gallery, "--detect")
    assert result.exit_code == 0, result.output
    assert "group.png: 3 faces found; the largest is used (identify --every-face takes " \
        "each)" in result.stderr


def test_embed_every_face_gives_each_face_its_box_and_embedding(face_run, faces_data, tmp_path):
    from test_face import group_photo

    group_photo(tmp_path / "portrait.png", scales=(1.0,))
    group_photo(tmp_path / "group.png")  # three copies of her portrait, 1.0, 0.75, 0.55
    cartoon = sorted(person(faces_data, "val", 1).glob("*.png"))[0]
    result = invoke("embed", face_run, tmp_path / "portrait.png", tmp_path / "group.png",
                    cartoon, "--every-face", "--json")
    assert result.exit_code == 0, result.output
    portrait, group, missed = json.loads(result.stdout)
    assert len(portrait["faces"]) == 1 and "no face found" in missed["error"]
    her = np.array(portrait["faces"][0]["embedding"])
    widths = [face["box"][2] - face["box"][0] for face in group["faces"]]
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)
    for face in group["faces"]:  # each copy of her face embeds as her portrait does
        assert float(np.dot(face["embedding"], her)) > 0.9
    table = invoke("embed", face_run, tmp_path / "group.png", cartoon, "--every-face")
    rows = [line.split() for line in table.stdout.splitlines()[2:]]
    assert [row[1:5] for row in rows[:3]] == [list(map(str, f["box"])) for f in group["faces"]]
    assert rows[3][1] == "-" and "no face found" in table.stdout
    assert_one_line_error(invoke("embed", face_run, cartoon, "--every-face", "--no-detect"),
                          "cannot take --no-detect")


def test_verify_every_face_finds_her_in_a_group_photo_and_says_which_face(face_run, faces_data,
                                                                          tmp_path):
    """verify --every-face: every face of one photo against every face of the other; the
    most similar two decide, and the answer names their boxes."""
    from test_face import group_photo

    group_photo(tmp_path / "portrait.png", scales=(1.0,))
    group_photo(tmp_path / "group.png")  # three copies of her portrait, 1.0, 0.75, 0.55
    result = invoke("verify", face_run, tmp_path / "portrait.png", tmp_path / "group.png",
                    "--every-face", "--json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["same_person"] and verdict["similarity"] > 0.9, verdict
    assert len(verdict["faces_a"]) == 1 and len(verdict["faces_b"]) == 3
    similarities = np.array(verdict["similarities"])
    assert similarities.shape == (1, 3) and (similarities > 0.9).all()
    assert verdict["face_a"] == verdict["faces_a"][0]
    assert verdict["faces_b"][int(similarities[0].argmax())] == verdict["face_b"]
    assert verdict["similarity"] == similarities.max()  # rounded alike, to the digit
    text = invoke("verify", face_run, tmp_path / "group.png", tmp_path / "portrait.png",
                  "--every-face")
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("same person: similarity ")
    assert f"{' '.join(map(str, verdict['face_b']))} of 3 and " in text.stdout
    cartoon = sorted(person(faces_data, "val", 1).glob("*.png"))[0]
    assert_one_line_error(invoke("verify", face_run, tmp_path / "group.png", cartoon,
                                 "--every-face"), cartoon.name,
                          "no face found")
    assert_one_line_error(invoke("verify", face_run, tmp_path / "group.png", cartoon,
                                 "--every-face", "--no-detect"), "cannot take --no-detect")


def test_data_check_names_twenty_unreadable_images_and_counts_the_rest(faces_data, tmp_path):
    data = tmp_path / "faces"
    shutil.copytree(faces_data, data)
    for index in range(23):
        (data / "train" / "loner" / f"broken{index:02d}.png").write_bytes(b"not an image")
    result = invoke("data", "check", "face", data)
    assert result.output.count("broken") == 20, result.output
    assert "... and 3 more images left out" in result.output


def test_16_bit_faces_train_and_embed_through_their_sets_bit_depth(face_run, faces_data,
                                                                   tmp_path):
    """A 12-bit camera's 16-bit PNGs (0..4095): a new run reads them from 0..4095, as the
    same faces in 8 bits, and `embed` through the run's window (kept in inference.json)
    gives the 8-bit faces' embeddings; data check says how a new run reads them."""
    twelve, eight = twelve_bit_copies(faces_data, tmp_path)
    check_read_from_bit_depth("face", twelve, eight,
                              ["data.face_detect=false", "data.image_size=64"])
    run = with_twelve_bit_window(face_run, tmp_path / "run")
    names = [path.relative_to(faces_data)
             for path in sorted(person(faces_data, "val", 0).glob("*.png"))[:3]]
    vectors = [np.array([row["embedding"] for row in json.loads(invoke(
        "embed", run, *(copy / name for name in names), "--json").stdout)])
        for copy in (twelve, eight)]
    assert vectors[0].shape == (3, 128) and np.allclose(vectors[0], vectors[1], atol=1e-5)
