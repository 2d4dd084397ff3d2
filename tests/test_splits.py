"""`evaluate --split test`: each task reads a dataset's test split, in each layout, in the val
split's place; a dataset without one is a one-line error; data check points at it."""

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import make_shapes_folder, snapshot
from test_cli import assert_one_line_error, invoke
from test_detect_data import coco_dataset, voc_dataset, yolo_dataset
from test_segment import make_coco_segment_folder, make_segment_folder, make_yolo_segment_folder
from visionsuite.core.splits import unread_test_split
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.classify import index_image_folders
from visionsuite.tasks.detect.data import index_detection
from visionsuite.tasks.face.data import index_identities
from visionsuite.tasks.segment.index import index_pairs


def _names(paths) -> set[str]:
    return {Path(path).name for path in paths}


def test_class_folders_read_test_not_val_and_name_a_missing_test_split(tmp_path):
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    assert unread_test_split(root) is None  # no test/: nothing to point at
    with pytest.raises(VisionsuiteError, match=r"d: no test split \(a test/ folder of class "
                                               r"folders\); `--split val` evaluates"):
        index_image_folders(root, held_out="test")
    make_shapes_folder(tmp_path / "t", per_class=0, val_per_class=3)
    (tmp_path / "t" / "val").rename(root / "Testing")  # Kaggle's name, in any case
    index = index_image_folders(root, held_out="test")
    assert index.classes == ["circle", "square", "triangle"]
    assert (len(index.splits["train"]), len(index.splits["val"])) == (0, 9)
    assert index.folders == {"val": "Testing"}
    assert len(index_image_folders(root).splits["val"]) == 3  # val/ stays the val split
    assert unread_test_split(root) == "Testing/"
    shutil.rmtree(root / "val")  # test/ is then the val split, which training reads
    assert len(index_image_folders(root).splits["val"]) == 9
    assert unread_test_split(root) is None


def test_face_identities_of_the_test_folder_are_held_out(tmp_path):
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=2,
                              classes=("ann", "bob", "cy"))
    with pytest.raises(VisionsuiteError, match="no test split .a test/ folder of identity"):
        index_identities(root, train=False, held_out="test")
    make_shapes_folder(tmp_path / "t", per_class=0, val_per_class=2, classes=("dan", "eve"))
    (tmp_path / "t" / "val").rename(root / "test")
    index = index_identities(root, train=False, held_out="test")
    assert index.names["val"] == ["dan", "eve"] and len(index.splits["val"]) == 4
    assert index_identities(root, train=False).names["val"] == ["ann", "bob", "cy"]


def test_detection_formats_read_their_test_split(tmp_path):
    voc = voc_dataset(tmp_path / "voc")
    with pytest.raises(VisionsuiteError, match="no test split .test.txt beside the annotations"):
        index_detection(voc, held_out="test")
    (voc / "test.txt").write_text("a\nb\n")
    assert [a.image.stem for a in index_detection(voc, held_out="test").val] == ["a", "b"]

    yolo = yolo_dataset(tmp_path / "yolo")
    with pytest.raises(VisionsuiteError, match="no test split .a 'test' entry in its YAML"):
        index_detection(yolo, held_out="test")
    shutil.copytree(yolo / "images" / "val", yolo / "images" / "test")
    shutil.copytree(yolo / "labels" / "val", yolo / "labels" / "test")
    (yolo / "data.yaml").write_text((yolo / "data.yaml").read_text() + "test: images/test\n")
    index = index_detection(yolo, held_out="test")
    assert [a.image.parent.name for a in index.val] == ["test"] and len(index.val[0].boxes) == 1
    assert unread_test_split(yolo) == "'test' in data.yaml"

    coco = coco_dataset(tmp_path / "coco")
    with pytest.raises(VisionsuiteError, match="no test split .test.json, or test/_annotations"):
        index_detection(coco, held_out="test")
    spec = json.loads((coco / "val.json").read_text())
    spec["images"][0]["id"] = 8
    spec["annotations"][0]["image_id"] = 8
    spec["annotations"][0]["category_id"] = 9
    (coco / "test.json").write_text(json.dumps(spec))
    assert index_detection(coco, held_out="test").val[0].classes.tolist() == [1]  # fish
    assert index_detection(coco).val[0].classes.tolist() == [0]  # val.json's bird
    assert unread_test_split(coco) == "test.json"


def test_segment_folders_coco_and_yolo_read_their_test_split(tmp_path):
    root = make_segment_folder(tmp_path / "folders")
    with pytest.raises(VisionsuiteError, match="no test split .a test/ folder of images"):
        index_pairs(root, held_out="test")
    shutil.copytree(root / "val", root / "test")
    (root / "test" / "images" / "0.png").unlink()
    (root / "test" / "masks" / "0.png").unlink()
    index = index_pairs(root, held_out="test")
    assert [pair.image.parent.parent.name for pair in index.splits["val"]] == ["test"]
    assert index.splits["train"] == [] and unread_test_split(root) == "test/"

    coco = make_coco_segment_folder(tmp_path / "coco")  # Roboflow's train/ and valid/
    with pytest.raises(VisionsuiteError, match="no test split .test.json, or test/"):
        index_pairs(coco, held_out="test")
    shutil.copytree(coco / "valid", coco / "test")
    index = index_pairs(coco, held_out="test")
    assert [pair.image.parent.name for pair in index.splits["val"]] == ["test", "test"]
    assert index.class_names == ["background", "organ", "lesion"] and not index.splits["train"]
    assert unread_test_split(coco) == "test/_annotations.coco.json"

    yolo = make_yolo_segment_folder(tmp_path / "yolo")
    with pytest.raises(VisionsuiteError, match="no test split .a 'test' entry in its YAML"):
        index_pairs(yolo, held_out="test")
    shutil.copytree(yolo / "valid", yolo / "test")
    (yolo / "data.yaml").write_text((yolo / "data.yaml").read_text() + "test: ../test/images\n")
    index = index_pairs(yolo, held_out="test")
    assert [pair.image.parent.parent.name for pair in index.splits["val"]] == ["test", "test"]
    assert index.class_names == ["background", "organ", "lesion"] and not index.splits["train"]


def test_segment_sets_with_splits_inside_images_and_masks_read_their_test_folders(tmp_path):
    """mmsegmentation's layout: images/training/, images/validation/, annotations/... ."""
    root = make_segment_folder(tmp_path / "split", train=2, val=1)
    for kind in ("images", "masks"):
        for split, name in (("train", "training"), ("val", "validation")):
            (root / kind).mkdir(exist_ok=True)
            (root / split / kind).rename(root / kind / name)
        shutil.copytree(root / kind / "validation", root / kind / "test")
    shutil.rmtree(root / "train")
    shutil.rmtree(root / "val")
    assert len(index_pairs(root).splits["val"]) == 1
    index = index_pairs(root, held_out="test")
    assert [pair.image.parent.name for pair in index.splits["val"]] == ["test"]


def test_evaluate_scores_the_test_split_and_says_so(tiny_run, shapes_dir, tmp_path):
    data = tmp_path / "shapes"
    shutil.copytree(shapes_dir, data)
    assert_one_line_error(invoke("evaluate", tiny_run, "--data", data, "--split", "test"),
                          data, "no test split (a test/ folder of class folders)")
    shutil.copytree(data / "val", data / "test")
    for path in list((data / "test" / "circle").iterdir())[1:]:
        path.unlink()  # 1 circle, 4 squares, 4 triangles: not the val split's 12
    before = snapshot(data)
    report = tmp_path / "m.json"
    result = invoke("evaluate", tiny_run, "--data", data, "--split", "test", "--json", report)
    assert result.exit_code == 0, result.output
    assert "is not the dataset the model was trained on" not in result.output
    metrics = json.loads(report.read_text())
    assert metrics["split"] == "test" and metrics["images"] == 9
    assert re.search(r" keras +test ", result.output), result.output  # the split column
    assert snapshot(data) == before
    result = invoke("evaluate", tiny_run, "--data", data, "--json", report)
    assert json.loads(report.read_text())["split"] == "val"
    assert json.loads(report.read_text())["images"] == 12
    result = invoke("data", "check", "classify", data)
    assert result.exit_code == 0, result.output
    assert "test split: test/, not read by train or by this check; `visionsuite data check " \
        f"classify {data} --split test` checks it, `visionsuite evaluate RUN --split test` " \
        "scores it" in result.output
    result = invoke("evaluate", tiny_run, "--split", "train")
    assert result.exit_code == 2 and "'train' is not one of 'val', 'test'" in result.output
    from visionsuite.core.evaluate import evaluate

    with pytest.raises(VisionsuiteError, match="split 'train': expected one of val, test"):
        evaluate(tiny_run, split="train")  # the Python API checks it too


def assert_the_test_split_scores_as_val_did(run: Path, data: Path, tmp_path: Path) -> dict:
    """Evaluates `run` on `data`'s val split, then on its test split (a copy of val, laid out
    as the format keeps a test split): the same metrics, each labelled with its split, and
    with --plots the plots training drew for val, named after the split."""
    from PIL import Image

    reports, plots = {}, tmp_path / "plots"
    trained = {path.name.removeprefix("val_") for path in Path(run).glob("*.png")} - {"curves.png"}
    for split in ("val", "test"):
        path = tmp_path / f"{split}.json"
        result = invoke("evaluate", run, "--data", data, "--split", split, "--json", path,
                        "--plots", plots)
        assert result.exit_code == 0, result.output
        reports[split] = json.loads(path.read_text())
        assert reports[split].pop("split") == split
        reports[split].pop("seconds")
        drawn = [Path(each) for each in reports[split].pop("plots")]
        assert {each.name for each in drawn} == {f"{split}_{name}" for name in trained}
        for each in drawn:
            with Image.open(each) as image:
                assert image.format == "PNG"
    assert reports["test"] == reports["val"]
    return reports["test"]


def _with_test_split(task: str, root: Path) -> Path:
    """A small dataset of `task` with its val split copied as its test split, laid out as the
    task's usual format keeps one."""
    if task == "classify":
        data = make_shapes_folder(root, per_class=2, val_per_class=2)
    elif task == "face":
        from visionsuite.datasets import cartoon_faces_dataset

        data = cartoon_faces_dataset(root)
    elif task == "segment":
        data = make_segment_folder(root)
    else:
        data = yolo_dataset(root)
        (data / "data.yaml").write_text((data / "data.yaml").read_text() + "test: images/test\n")
        for kind in ("images", "labels"):
            shutil.copytree(data / kind / "val", data / kind / "test")
        return data
    shutil.copytree(data / "val", data / "test")
    return data


@pytest.mark.parametrize("task", ["classify", "face", "segment", "detect"])
def test_data_check_checks_the_test_split_alone_with_split_test(task, tmp_path):
    data = _with_test_split(task, tmp_path / "data")
    before = snapshot(data)
    result = invoke("data", "check", task, data)
    assert result.exit_code == 0, result.output
    assert "not read by train or by this check" in result.output
    result = invoke("data", "check", task, data, "--split", "test")
    assert result.exit_code == 0, result.output
    assert "the test split alone, as `visionsuite evaluate RUN --split test` reads it" \
        in result.output
    assert re.search(r"^ *test\b", result.output, re.M), result.output  # counted as test
    assert not re.search(r"^ *(train|val)\b", result.output, re.M), result.output
    assert "not read by train" not in result.output
    assert snapshot(data) == before  # read-only
    empty = tmp_path / "none"
    shutil.copytree(data, empty)
    if task == "detect":
        (empty / "data.yaml").write_text((empty / "data.yaml").read_text().replace("test:", "#"))
    else:
        shutil.rmtree(empty / "test")
    assert_one_line_error(invoke("data", "check", task, empty, "--split", "test"),
                          "no test split")


def test_data_check_of_the_test_split_reports_no_train_problems(tmp_path):
    data = coco_dataset(tmp_path / "coco")
    spec = json.loads((data / "train.json").read_text())
    spec["images"].append({"id": 8, "file_name": "images/gone.png", "width": 80, "height": 60})
    (data / "train.json").write_text(json.dumps(spec))
    shutil.copy(data / "val.json", data / "test.json")
    assert "gone.png" in invoke("data", "check", "detect", data).output
    result = invoke("data", "check", "detect", data, "--split", "test")
    assert result.exit_code == 0 and "gone.png" not in result.output, result.output


def test_segment_evaluation_reads_the_held_out_labels_alone(tmp_path):
    coco = make_coco_segment_folder(tmp_path / "coco")  # Roboflow's train/ and valid/
    (coco / "train" / "_annotations.coco.json").write_text("{not json")
    with pytest.raises(VisionsuiteError, match="_annotations.coco.json: malformed JSON"):
        index_pairs(coco)
    yolo = make_yolo_segment_folder(tmp_path / "yolo")
    assert len(index_pairs(yolo).splits["train"]) == 4
    for root in (coco, yolo):
        index = index_pairs(root, train=False)
        assert index.splits["train"] == [] and len(index.splits["val"]) == 2
        assert index.class_names == ["background", "organ", "lesion"]
