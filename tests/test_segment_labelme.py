"""Segmentation sets annotated in LabelMe: a JSON file of shapes beside each image."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError

HEIGHT, WIDTH = 48, 64


def write_labelme(folder: Path, stem: str, shapes: list[dict], image_path: str | None = None,
                  seed: int = 0) -> Path:
    """An image (a bright disc, a bright box) and its LabelMe JSON in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    image = 60 + 120 * ((x - 20 - seed) ** 2 + (y - 24) ** 2 < 81) \
        + 80 * ((x > 40) & (x < 56) & (y > 8) & (y < 20))
    noise = np.random.default_rng(seed).normal(0, 8, image.shape)
    Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(folder / f"{stem}.jpg")
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "shapes": shapes, "imageData": None,
        "imagePath": f"{stem}.jpg" if image_path is None else image_path,
        "imageHeight": HEIGHT, "imageWidth": WIDTH}))
    return path


def shapes_of(seed: int = 0) -> list[dict]:
    return [{"label": "nucleus", "points": [[20 + seed, 24], [29 + seed, 24]],
             "shape_type": "circle"},
            {"label": "debris", "points": [[41, 9], [55, 19]], "shape_type": "rectangle"},
            {"label": "nucleus", "points": [[1, 1], [5, 5]], "shape_type": "line"},
            {"label": "_background_", "points": [[0, 0], [9, 0], [9, 9]]}]


def test_labelme_shapes_are_filled_as_their_labels_classes(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    for split, count in (("train", 3), ("val", 2)):
        for number in range(count):
            write_labelme(tmp_path / split, f"cell{number}", shapes_of(number), seed=number)
    index = index_pairs(tmp_path)
    assert index.class_names == ["background", "debris", "nucleus"]  # labels in name order
    assert [len(index.splits[s]) for s in ("train", "val")] == [3, 2]
    assert "5 shapes without an area (lines, points) left out" in index.folders[0]
    (mask,) = _read_masks(index.splits["val"][1], binary=False)
    assert mask.shape == (HEIGHT, WIDTH)
    assert mask[24, 21] == 2 and mask[14, 48] == 1 and mask[0, 0] == 0 and mask[3, 3] == 0
    assert abs(int((mask == 2).sum()) - np.pi * 81) < 20  # the circle of radius 9
    assert int((mask == 1).sum()) == 14 * 10  # the rectangle, corner to corner, as COCO fills


def test_a_rectangle_of_four_corners_is_filled_as_one_of_two():
    from visionsuite.tasks.segment.labelme import _polygon

    two = _polygon("rectangle", np.array([[41.0, 9], [55, 19]]), Path("a.json"), 0)
    four = _polygon("rectangle", np.array([[41.0, 9], [55, 9], [55, 19], [41, 19]]),
                    Path("a.json"), 0)
    assert two == four
    with pytest.raises(VisionsuiteError, match="a.json: shape 0, a rectangle, has 3 points"):
        _polygon("rectangle", np.array([[41.0, 9], [55, 9], [55, 19]]), Path("a.json"), 0)


def test_labelme_ai_masks_are_placed_at_their_box_and_background_shapes_cut_holes(tmp_path):
    import base64
    import io

    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    blob = np.zeros((6, 8), np.uint8)
    blob[1:5, 2:7] = 1  # 20 pixels, as LabelMe encodes a mask: a PNG of its box
    encoded = io.BytesIO()
    Image.fromarray(blob).save(encoded, format="PNG")
    shapes = [{"label": "debris", "points": [[30, 10], [37, 15]], "shape_type": "mask",
               "mask": base64.b64encode(encoded.getvalue()).decode()},
              {"label": "nucleus", "points": [[10, 14], [30, 34]], "shape_type": "rectangle"},
              {"label": "_background_", "points": [[15, 19], [25, 29]],
               "shape_type": "rectangle"}]
    for number in range(2):
        write_labelme(tmp_path / "set", f"cell{number}", shapes)
    for binary in (False, True):
        (mask,) = _read_masks(index_pairs(tmp_path / "set").splits["val"][0], binary=binary)
        debris, nucleus = (1, 2) if not binary else (255, 255)
        assert (mask[10:16, 30:38] == debris).sum() == 20 and mask[11, 32] == debris
        assert (mask == nucleus).sum() == (20 if binary else 0) + 20 * 20 - 10 * 10
        assert mask[24, 20] == 0 and mask[16, 12] == nucleus  # the hole, and around it
    shapes[0]["points"] = [[60, 10], [67, 15]]  # the box would leave the 64-px image
    write_labelme(tmp_path / "set", "cell0", shapes)
    with pytest.raises(VisionsuiteError, match="shape 0, a mask of 8x6 at \\(60, 10\\), leaves"):
        index_pairs(tmp_path / "set")


def test_a_flat_labelme_folder_is_split_by_fraction_and_bad_files_name_themselves(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    for number in range(5):
        write_labelme(tmp_path / "set", f"cell{number}", shapes_of(number), seed=number)
    index = index_pairs(tmp_path / "set")
    assert index.split_by_fraction and len(index.splits["val"]) == 1
    # imagePath naming no file: the image beside the JSON with its stem, as LabelMe finds it
    moved = write_labelme(tmp_path / "set", "cell5", shapes_of(), image_path="C:\\\\old\\x.jpg")
    assert {p.image.name for s in index_pairs(tmp_path / "set").splits.values() for p in s} \
        >= {"cell5.jpg"}
    # an absolute imagePath (the annotator's disk): its name beside the JSON
    write_labelme(tmp_path / "set", "cell6", shapes_of(), image_path="/home/me/renamed.jpg")
    (tmp_path / "set" / "cell6.jpg").rename(tmp_path / "set" / "renamed.jpg")
    assert {p.image.name for s in index_pairs(tmp_path / "set").splits.values() for p in s} \
        >= {"renamed.jpg"}
    (tmp_path / "set" / "cell6.json").unlink()
    moved.with_suffix(".jpg").unlink()
    with pytest.raises(VisionsuiteError, match="cell5.json: its image .* is not there"):
        index_pairs(tmp_path / "set")
    moved.unlink()
    write_labelme(tmp_path / "set", "cell5", shapes_of(), image_path="../../outside.jpg")
    with pytest.raises(VisionsuiteError, match="path leaves the dataset folder"):
        index_pairs(tmp_path / "set")
    write_labelme(tmp_path / "set", "cell5", [{"label": "nucleus", "points": [[1, 1], [2, 2]],
                                               "shape_type": "polygon"}])
    with pytest.raises(VisionsuiteError, match="cell5.json: shape 0, a polygon, has 2 points"):
        index_pairs(tmp_path / "set")


def test_a_labelme_set_trains_evaluates_and_segments_with_only_data(tmp_path):
    for split, count in (("train", 4), ("val", 2)):
        for number in range(count):
            write_labelme(tmp_path / "data" / split, f"cell{number}", shapes_of(number),
                          seed=number)
    result = invoke("data", "check", "segment", tmp_path / "data")
    assert "classes (named in the LabelMe files): 0 background" in result.output, result.output
    result = invoke("train", "segment", "--data", tmp_path / "data", "--output", tmp_path,
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "debris", "nucleus"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * HEIGHT * WIDTH
    result = invoke("segment", run, tmp_path / "data" / "val", "--output", tmp_path / "masks",
                    "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # the JSON files beside the images are no images
    assert [Path(row["image"]).name for row in rows] == ["cell0.jpg", "cell1.jpg"]


def test_masks_exported_from_labelme_files_are_taken_and_a_folder_of_them_is_no_masks(
        tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    for number in range(4):
        write_labelme(tmp_path / "voc" / "images", f"cell{number}", shapes_of(number))
        # LabelMe's files elsewhere, their images named relative to them
        path = write_labelme(tmp_path / "apart" / "images", f"cell{number}", shapes_of(number),
                             image_path=f"../images/cell{number}.jpg")
        (tmp_path / "apart" / "annotations").mkdir(exist_ok=True)
        path.rename(tmp_path / "apart" / "annotations" / path.name)
    # labelme2voc's export of the masks beside them: those are the masks
    (tmp_path / "voc" / "SegmentationClass").mkdir()
    for number in range(4):
        Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(
            tmp_path / "voc" / "SegmentationClass" / f"cell{number}.png")
    pairs = [p for s in index_pairs(tmp_path / "voc").splits.values() for p in s]
    assert len(pairs) == 4 and {p.mask.parent.name for p in pairs} == {"SegmentationClass"}
    pairs = [p for s in index_pairs(tmp_path / "apart").splits.values() for p in s]
    assert len(pairs) == 4 and {p.mask.suffix for p in pairs} == {".json"}
    assert {p.image.parent.name for p in pairs} == {"images"}


def test_a_labelme_file_is_told_by_its_ends_however_many_shapes_and_image_bytes_it_holds(
        tmp_path):
    import base64

    from visionsuite.tasks.segment.labelme import labelme_files

    many = [{"label": "nucleus", "points": [[k % 60, 1], [k % 60 + 2, 1], [k % 60 + 1, 3]]}
            for k in range(3000)]  # some 300 kB of shapes before imagePath
    path = write_labelme(tmp_path, "slide", many)
    document = json.loads(path.read_text())
    document["imageData"] = base64.b64encode(bytes(300_000)).decode()  # LabelMe's default
    path.write_text(json.dumps(document))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"0": "background"}}))
    assert labelme_files(tmp_path) == [path]


def test_a_labelme_file_linked_from_outside_the_dataset_is_refused(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    for number in range(3):
        write_labelme(tmp_path / "set", f"cell{number}", shapes_of(number))
    outside = write_labelme(tmp_path / "elsewhere", "secret", shapes_of())
    (tmp_path / "set" / "linked").symlink_to(outside.parent, target_is_directory=True)
    pairs = [p for s in index_pairs(tmp_path / "set").splits.values() for p in s]
    assert len(pairs) == 3  # a linked folder is not searched
    (tmp_path / "set" / "secret.json").symlink_to(outside)
    with pytest.raises(VisionsuiteError, match="secret.json: path leaves the dataset folder"):
        index_pairs(tmp_path / "set")
