"""Detection datasets: the three formats, and every kind of bad input named in issue #4."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.detect.data import Annotation, clean_boxes, index_detection


def _image(path: Path, size=(80, 60)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path)


def _voc_xml(path: Path, filename: str, boxes, size=(80, 60), difficult=()):
    objects = "".join(
        f"<object><name>{name}</name><difficult>{int(number in difficult)}</difficult>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for number, (name, (x1, y1, x2, y2)) in enumerate(boxes))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{filename}</filename><size><width>{size[0]}"
                    f"</width><height>{size[1]}</height></size>{objects}</annotation>")


def voc_dataset(root: Path) -> Path:
    for stem, boxes in {"a": [("cat", (1, 1, 40, 30))], "b": [("dog", (11, 21, 30, 50))],
                        "c": []}.items():
        _image(root / "images" / f"{stem}.jpg")
        _voc_xml(root / "annotations" / f"{stem}.xml", f"{stem}.jpg", boxes)
    (root / "train.txt").write_text("a\nc\n")
    (root / "val.txt").write_text("b\n")
    return root


def yolo_dataset(root: Path, rows: str = "0 0.5 0.5 0.25 0.5\n") -> Path:
    for split in ("train", "val"):
        _image(root / "images" / split / "x.png")
        (root / "labels" / split).mkdir(parents=True)
        (root / "labels" / split / "x.txt").write_text(rows)
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [cat, dog]\n")
    return root


def coco_dataset(root: Path, file_name: str = "images/p.png") -> Path:
    _image(root / "images" / "p.png")
    spec = {"images": [{"id": 7, "file_name": file_name, "width": 80, "height": 60}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 30],
                             "iscrowd": 0}],
            "categories": [{"id": 3, "name": "bird"}, {"id": 9, "name": "fish"}]}
    for split in ("train", "val"):
        (root / f"{split}.json").write_text(json.dumps(spec))
    return root


def test_voc_boxes_are_zero_based_corners_and_splits_follow_the_lists(tmp_path):
    index = index_detection(voc_dataset(tmp_path))
    assert index.format == "voc" and index.labels == ["cat", "dog"]
    assert [a.image.stem for a in index.train] == ["a", "c"]
    assert [a.image.stem for a in index.val] == ["b"]
    boxes, classes, counts = clean_boxes(index.train[0], (80, 60), 2)
    np.testing.assert_allclose(boxes, [[0, 0, 40, 30]])  # VOC 1-based -> 0-based corners
    assert classes.tolist() == [0] and not counts
    assert len(index.train[1].boxes) == 0  # an image without objects is a negative


def test_vocdevkit_layout_is_found(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    _image(root / "JPEGImages" / "0001.jpg")
    _voc_xml(root / "Annotations" / "0001.xml", "0001.jpg", [("car", (5, 5, 20, 20))])
    _image(root / "JPEGImages" / "0002.jpg")
    _voc_xml(root / "Annotations" / "0002.xml", "0002.jpg", [("car", (5, 5, 20, 20))])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("0001\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("0002\n")
    index = index_detection(tmp_path)
    assert index.labels == ["car"] and len(index.train) == len(index.val) == 1


def test_malformed_xml_names_the_file(tmp_path):
    root = voc_dataset(tmp_path)
    (root / "annotations" / "b.xml").write_text("<annotation><object>")
    with pytest.raises(VisionsuiteError, match=r"b\.xml: malformed XML"):
        index_detection(root)


def test_yolo_rows_become_pixel_boxes(tmp_path):
    index = index_detection(yolo_dataset(tmp_path))
    assert index.format == "yolo" and index.labels == ["cat", "dog"]
    boxes, classes, _ = clean_boxes(index.train[0], (80, 60), 2)
    np.testing.assert_allclose(boxes, [[30, 15, 50, 45]])


def test_roboflow_yaml_reads_its_parent_paths_as_the_folders_beside_it(tmp_path):
    root = tmp_path / "set"
    for split in ("train", "valid"):  # Roboflow's YOLOv8 export
        _image(root / split / "images" / "x_jpg.rf.1.png")
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / "x_jpg.rf.1.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\n"
                                    "names: ['cat', 'dog']\n")
    index = index_detection(root)
    assert [a.image for a in index.val] == [root / "valid" / "images" / "x_jpg.rf.1.png"]
    assert index.train[0].classes.tolist() == [1]
    # A parent path that is not beside the YAML still may not leave the dataset.
    _image(tmp_path / "elsewhere" / "y.png")
    (root / "data.yaml").write_text("train: ../elsewhere\nval: ../valid/images\nnames: [a, b]\n")
    with pytest.raises(VisionsuiteError, match="leaves the dataset folder"):
        index_detection(root)


def test_a_yaml_path_outside_the_dataset_reads_the_folders_beside_it(tmp_path, capsys):
    root = yolo_dataset(tmp_path / "coco128")
    yaml = (root / "data.yaml").read_text()
    for stale in ("../datasets/coco128", "/content/datasets/coco128"):  # Ultralytics', Colab's
        (root / "data.yaml").write_text(f"path: {stale}\n" + yaml)
        index = index_detection(root)
        assert index.train[0].image == root.resolve() / "images" / "train" / "x.png"
        assert f"path '{stale}' is no folder inside the dataset" in capsys.readouterr().err


def test_a_dataset_without_val_is_all_val_at_fraction_one(tmp_path):
    root = voc_dataset(tmp_path)
    (root / "train.txt").unlink()
    (root / "val.txt").unlink()
    index = index_detection(root, val_fraction=1.0)
    assert not index.train and len(index.val) == 3


def test_yolo_label_file_with_four_columns_is_an_error_naming_file_and_line(tmp_path):
    root = yolo_dataset(tmp_path, "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.25\n")
    with pytest.raises(VisionsuiteError, match=r"x\.txt:2: 4 columns"):
        index_detection(root)


def test_yolo_class_id_out_of_range_is_counted_and_left_out(tmp_path):
    index = index_detection(yolo_dataset(tmp_path, "5 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n"))
    boxes, classes, counts = clean_boxes(index.train[0], (80, 60), 2)
    assert classes.tolist() == [1] and counts["unknown class"] == 1


def test_bad_boxes_are_counted(tmp_path):
    annotation = Annotation(tmp_path / "i.png", np.array([
        [10, 10, 5, 20],     # negative width
        [10, 10, 10, 20],    # zero area
        [100, 100, 120, 130],  # entirely outside an 80x60 image
        [-5, 10, 30, 70],    # partly outside: clipped and kept
        [1, 1, 9, 9], [1, 1, 9, 9],  # duplicate
    ], np.float32), np.zeros(6, np.int64))
    boxes, classes, counts = clean_boxes(annotation, (80, 60), 1)
    assert counts == {"zero area": 2, "outside the image": 1, "clipped to the image": 1,
                      "duplicate": 1}
    np.testing.assert_allclose(boxes, [[0, 10, 30, 60], [1, 1, 9, 9]])


def test_coco_categories_map_to_contiguous_classes(tmp_path):
    index = index_detection(coco_dataset(tmp_path))
    assert index.format == "coco" and index.labels == ["bird", "fish"]
    boxes, classes, _ = clean_boxes(index.train[0], (80, 60), 2)
    np.testing.assert_allclose(boxes, [[10, 5, 30, 35]])
    assert classes.tolist() == [0]


def test_roboflow_coco_export_is_read_without_its_project_category(tmp_path):
    for split in ("train", "valid", "test"):
        _image(tmp_path / split / "p_jpg.rf.1.png")
        spec = {"images": [{"id": 0, "file_name": "p_jpg.rf.1.png", "width": 80, "height": 60}],
                "annotations": [{"id": 0, "image_id": 0, "category_id": 2,
                                 "bbox": [10, 5, 20, 30], "iscrowd": 0}],
                "categories": [{"id": 0, "name": "pets", "supercategory": "none"},
                               {"id": 1, "name": "cat", "supercategory": "pets"},
                               {"id": 2, "name": "dog", "supercategory": "pets"}]}
        (tmp_path / split / "_annotations.coco.json").write_text(json.dumps(spec))
    index = index_detection(tmp_path)
    assert index.format == "coco" and index.labels == ["cat", "dog"]
    assert index.val[0].image == tmp_path / "valid" / "p_jpg.rf.1.png"
    assert index.train[0].classes.tolist() == [1]


def test_coco_image_that_does_not_exist_is_reported(tmp_path):
    index = index_detection(_coco_with_missing(tmp_path))
    assert any("gone.png does not exist" in m for m in index.missing)


def _coco_with_missing(root: Path) -> Path:
    coco_dataset(root)
    spec = json.loads((root / "train.json").read_text())
    spec["images"].append({"id": 8, "file_name": "images/gone.png", "width": 80, "height": 60})
    (root / "train.json").write_text(json.dumps(spec))
    return root


def test_coco_file_name_leaving_the_dataset_is_refused(tmp_path):
    outside = tmp_path / "secret.png"
    _image(outside)
    root = coco_dataset(tmp_path / "set", "../secret.png")
    with pytest.raises(VisionsuiteError, match="leaves the dataset folder"):
        index_detection(root)


def test_malformed_coco_json_names_the_file(tmp_path):
    root = coco_dataset(tmp_path)
    (root / "val.json").write_text("{not json")
    with pytest.raises(VisionsuiteError, match=r"val\.json: malformed JSON"):
        index_detection(root)


def test_a_folder_in_no_known_format_says_what_was_expected(tmp_path):
    with pytest.raises(VisionsuiteError, match="not a detection dataset"):
        index_detection(tmp_path)
    (tmp_path / "archive" / "notes").mkdir(parents=True)  # a wrapper of nothing
    with pytest.raises(VisionsuiteError, match="notes: not a detection dataset"):
        index_detection(tmp_path / "archive")


def test_a_set_inside_an_archives_wrapper_folder_is_found_in_it(tmp_path):
    """Kaggle's raccoon archive unpacks to archive/raccoon/...: --data may name archive/."""
    voc_dataset(tmp_path / "archive" / "raccoon")
    (tmp_path / "archive" / "README.md").write_text("Raccoons, in VOC")
    index = index_detection(tmp_path / "archive")
    assert index.format == "voc" and [a.image.stem for a in index.val] == ["b"]


def _turned_photo(path: Path, orientation: int, box=(10, 5, 30, 20), size=(80, 60)) -> None:
    """A stored w x h photo with a white box, whose EXIF says how to show it upright."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, exif=exif.tobytes())


def _white_box(image: np.ndarray):
    ys, xs = np.nonzero(image[..., 0] > 128)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_boxes_drawn_on_a_photos_stored_pixels_move_with_its_exif_turn(tmp_path, orientation):
    from visionsuite.core.images import inspect_image, read_image, stored_geometry
    from visionsuite.tasks.detect.data import Annotation, upright_annotation

    path = tmp_path / "photo.png"
    _turned_photo(path, orientation)
    stored, found = stored_geometry(path)
    assert stored == (80, 60) and found == orientation
    assert inspect_image(path)[0] == (60, 80)  # the size as read_image shows it
    drawn = Annotation(path, np.array([[10, 5, 30, 20]], np.float32), np.array([0]), (80, 60))
    moved, size = upright_annotation(drawn, stored, orientation)
    assert size == (60, 80)
    np.testing.assert_allclose(moved.boxes[0], _white_box(read_image(path)))


def test_a_sideways_photo_trains_with_its_boxes_on_what_is_shown(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.detect import TASK

    # LabelImg drew on the stored pixels and wrote their size: the box is moved upright.
    for stem in ("a", "b"):
        _turned_photo(tmp_path / "images" / f"{stem}.png", 6)
        _voc_xml(tmp_path / "annotations" / f"{stem}.xml", f"{stem}.png",
                 [("cat", (11, 6, 30, 20))])  # VOC corners are 1-based
    (tmp_path / "train.txt").write_text("a\n")
    (tmp_path / "val.txt").write_text("b\n")
    config = load_config("detect", overrides={"data.path": str(tmp_path)},
                         sets=["data.image_size=64"])
    data = TASK.load_data(config)
    assert data.val.sizes == [(60, 80)]
    np.testing.assert_allclose(data.val.targets[0][0, 1:], [40, 10, 55, 30])


def test_a_dataset_of_none_of_the_models_classes_is_a_clear_error(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.detect import TASK

    config = load_config("detect", overrides={"data.path": str(voc_dataset(tmp_path))},
                         sets=["data.image_size=64"])
    # Evaluation reads the val list alone (b.xml: a dog), not train's cat.
    with pytest.raises(VisionsuiteError, match=r"none of its classes \(dog\) is among the "
                                               r"model's 1 \(raccoon\)"):
        TASK.load_data(config, train=False, labels=["raccoon"])
    assert TASK.load_data(config, train=False, labels=["dog", "cat"]).labels == ["dog", "cat"]


def test_voc_difficult_objects_and_coco_crowds_are_regions_the_map_ignores(tmp_path):
    """Before, difficult objects counted as ordinary boxes to find and crowd regions were
    dropped, so detections of them were false positives."""
    from visionsuite.config import load_config
    from visionsuite.tasks.detect import TASK
    from visionsuite.tasks.detect.checks import check_detection_folder

    root = tmp_path / "voc"
    for stem in ("a", "b"):
        _image(root / "images" / f"{stem}.png")
        _voc_xml(root / "annotations" / f"{stem}.xml", f"{stem}.png",
                 [("cat", (1, 1, 40, 30)), ("cat", (41, 31, 70, 55))], difficult=(1,))
    (root / "train.txt").write_text("a\n")
    (root / "val.txt").write_text("b\n")
    assert index_detection(root).val[0].ignore.tolist() == [False, True]
    data = TASK.load_data(load_config("detect", overrides={"data.path": str(root)},
                                      sets=["data.image_size=64"]))
    for split in (data.train, data.val):  # not trained on, and apart for the mAP
        np.testing.assert_allclose(split.targets[0], [[0, 0, 0, 40, 30]])
        np.testing.assert_allclose(split.ignored[0], [[0, 40, 30, 70, 55]])
    assert "1 difficult or crowd (not trained on, ignored by mAP)" in \
        check_detection_folder(str(root)).text

    crowd = coco_dataset(tmp_path / "coco")
    spec = json.loads((crowd / "val.json").read_text())
    spec["annotations"].append({"id": 2, "image_id": 7, "category_id": 3,
                                "bbox": [40, 30, 30, 20], "iscrowd": 1})
    (crowd / "val.json").write_text(json.dumps(spec))
    annotation = index_detection(crowd).val[0]
    assert annotation.ignore.tolist() == [False, True] and len(annotation.boxes) == 2


def _coco_spec(names: list[str], category: int = 3) -> dict:
    return {"images": [{"id": number, "file_name": name, "width": 80, "height": 60}
                       for number, name in enumerate(names)],
            "annotations": [{"id": number, "image_id": number, "category_id": category,
                             "bbox": [10, 5, 20, 30], "iscrowd": 0}
                            for number in range(len(names))],
            "categories": [{"id": 3, "name": "bird"}, {"id": 9, "name": "fish"}]}


def test_cocos_own_layout_reads_instances_files_and_their_split_folders(tmp_path):
    """COCO 2017 as it unpacks: annotations/instances_{train,val}2017.json (captions and
    keypoints beside them), the images in train2017/ and val2017/ under bare file names."""
    from visionsuite.core.splits import unread_test_split

    annotations = tmp_path / "annotations"
    annotations.mkdir()
    for split, stems in (("train", ["a", "b"]), ("val", ["c"]), ("test", ["d"])):
        for stem in stems:
            _image(tmp_path / f"{split}2017" / f"{stem}.jpg")
        (annotations / f"instances_{split}2017.json").write_text(
            json.dumps(_coco_spec([f"{stem}.jpg" for stem in stems])))
    (annotations / "person_keypoints_val2017.json").write_text(json.dumps(_coco_spec([])))
    index = index_detection(tmp_path)
    assert index.format == "coco" and index.labels == ["bird", "fish"]
    assert [a.image.relative_to(tmp_path).as_posix() for a in index.train + index.val] == [
        "train2017/a.jpg", "train2017/b.jpg", "val2017/c.jpg"]
    assert [a.image.name for a in index_detection(tmp_path, held_out="test").val] == ["d.jpg"]
    assert unread_test_split(tmp_path) == "annotations/instances_test2017.json"


def test_one_coco_file_of_cvat_or_label_studio_is_train_split_by_fraction(tmp_path):
    """CVAT: annotations/instances_default.json, file names relative to images/. Label
    Studio: result.json beside images/, file names starting images/ (with backslashes, made
    on Windows)."""
    cvat, studio = tmp_path / "cvat", tmp_path / "studio"
    for root in (cvat, studio):
        for stem in "abcde":
            _image(root / "images" / "part" / f"{stem}.png")
    (cvat / "annotations").mkdir()
    (cvat / "annotations" / "instances_default.json").write_text(
        json.dumps(_coco_spec([f"part/{stem}.png" for stem in "abcde"])))
    (studio / "result.json").write_text(json.dumps(  # as Label Studio writes it on Windows
        _coco_spec([f"images\\part\\{stem}.png" for stem in "abcde"], category=9)))
    for root in (cvat, studio):
        index = index_detection(root, val_fraction=0.2)
        assert index.format == "coco" and (len(index.train), len(index.val)) == (4, 1)
        assert all(a.image.parent == root / "images" / "part" for a in index.train + index.val)
    with pytest.raises(VisionsuiteError, match="no test split"):
        index_detection(cvat, held_out="test")
    spec = _coco_spec(["part/a.png", "../../outside.png"])
    (cvat / "annotations" / "instances_default.json").write_text(json.dumps(spec))
    with pytest.raises(VisionsuiteError, match="leaves the dataset folder"):
        index_detection(cvat)


def test_a_json_beside_voc_annotations_is_not_taken_for_coco(tmp_path):
    root = voc_dataset(tmp_path)
    (root / "annotations" / "classes.json").write_text(json.dumps({"names": ["cat", "dog"]}))
    (root / "result.json").write_text(json.dumps({"run": 3}))
    assert index_detection(root).format == "voc"


def _broken_train_labels(root: Path, layout: str) -> Path:
    """A dataset of `layout` whose train labels cannot be read, and whose val labels can."""
    if layout == "coco":
        coco_dataset(root)
        (root / "train.json").write_text("{not json")
    elif layout == "voc":
        voc_dataset(root)
        (root / "annotations" / "a.xml").write_text("<annotation><object>")
    else:
        yolo_dataset(root)
        (root / "labels" / "train" / "x.txt").write_text("0 0.5\n")
    return root


@pytest.mark.parametrize("layout", ["coco", "voc", "yolo"])
def test_evaluation_reads_the_held_out_labels_alone(tmp_path, layout):
    # COCO's instances_train2017.json is 450 MB: evaluate and export never parse it.
    root = _broken_train_labels(tmp_path, layout)
    with pytest.raises(VisionsuiteError, match="train.json|a.xml|x.txt"):
        index_detection(root)
    index = index_detection(root, train=False)
    assert index.train == [] and len(index.val) == 1 and len(index.val[0].boxes) == 1


def test_evaluation_of_a_set_without_val_still_splits_its_train_labels(tmp_path):
    root = coco_dataset(tmp_path)
    (root / "val.json").unlink()
    assert len(index_detection(root, val_fraction=1.0, train=False).val) == 1


def test_coco_paths_of_the_exporting_machine_are_read_by_base_name_inside_the_dataset(tmp_path):
    """Label Studio 1.16's "COCO with images" names its server's upload folder beside the
    images/ of its export (HumanSignal/label-studio#7294); other tools write absolute paths.
    The file of that base name inside the dataset is read; nothing outside it."""
    root = tmp_path / "studio"
    for stem in "abcd":
        _image(root / "images" / f"{stem}.png")
    names = ["..\\..\\label-studio\\label-studio\\media\\upload\\4\\a.png",
             "/home/alice/exports/b.png", "C:\\Users\\alice\\c.png",
             "/data/local-files/?d=exports/d.png"]
    (root / "result.json").write_text(json.dumps(_coco_spec(names)))
    index = index_detection(root, val_fraction=0.25)
    assert sorted(a.image.name for a in index.train + index.val) == ["a.png", "b.png",
                                                                     "c.png", "d.png"]
    assert all(a.image.parent == (root / "images").resolve() for a in index.train + index.val)
    (tmp_path / "e.png").write_bytes((root / "images" / "a.png").read_bytes())
    (root / "result.json").write_text(json.dumps(_coco_spec(names + ["../../e.png"])))
    with pytest.raises(VisionsuiteError, match=r"\.\./e\.png: path leaves the dataset folder"):
        index_detection(root)  # e.png is beside the dataset, not in it


def test_k_folds_hold_each_image_out_once_and_a_val_split_of_its_own_refuses_them(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.core.splits import Fold
    from visionsuite.tasks import get_task

    root = voc_dataset(tmp_path / "voc")
    (root / "train.txt").unlink()
    (root / "val.txt").unlink()
    vals = [index_detection(root, Fold(k, 3), seed=1).val for k in range(3)]
    assert sorted(a.image.name for val in vals for a in val) == ["a.jpg", "b.jpg", "c.jpg"]
    with pytest.raises(VisionsuiteError, match="3 annotated images are too few"):
        index_detection(root, Fold(0, 4))
    config = load_config("detect", overrides={"data.path": str(root), "data.image_size": 32},
                         sets=("data.folds=3", "data.fold=1"))
    data = get_task("detect").load_data(config)
    assert (len(data.train), len(data.val)) == (2, 1)
    assert data.source.endswith("val: fold 1 of 3 (seed 0)")
    config.data.path = str(voc_dataset(tmp_path / "lists"))  # train.txt and val.txt
    with pytest.raises(VisionsuiteError, match="has a val split of its own"):
        get_task("detect").load_data(config)


def test_data_check_names_images_in_no_split(tmp_path):
    """A photo added to the folder but to neither list nor annotation file is never trained on:
    data check says so, and is silent where every image is listed, or a test split may hold
    the rest."""
    from visionsuite.tasks.detect import TASK
    from visionsuite.tasks.detect.checks import check_detection_folder

    root = voc_dataset(tmp_path / "voc")
    assert "in no split" not in check_detection_folder(str(root)).text
    _image(root / "images" / "new.jpg")
    (root / "images" / "notes.txt").write_text("not an image")
    text = check_detection_folder(str(root)).text
    assert f"1 image(s) beside the annotated ones are in no split (not in the annotations or " \
           f"lists; not trained on): {root / 'images' / 'new.jpg'}" in text
    (root / "test.txt").write_text("new\n")
    assert "in no split" not in check_detection_folder(str(root)).text
    assert TASK.unread_test_split(root) == "test.txt"  # data check points at --split test
    assert TASK.unread_test_split(tmp_path / "voc" / "images") is None
