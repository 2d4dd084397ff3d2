"""Segmentation sets as annotation tools export them: CVAT's XML ("CVAT for images 1.1") and
the VGG Image Annotator's JSON (one file listing many images' shapes), and Supervisely's
projects (a file per image, the classes in meta.json)."""

import base64
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError

HEIGHT, WIDTH = 40, 56


def write_image(path: Path, seed: int = 0) -> None:
    """A grey image with a dark box where the tests draw their cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
    image[5:20, 5:25] = 60
    image[28:36, 30:40] = 120
    noise = np.random.default_rng(seed).normal(0, 6, image.shape)
    Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(path)


CVAT_SHAPES = (
    '<polygon label="cell" source="manual" occluded="0" '
    'points="5.00,5.00;25.00,5.00;25.00,20.00;5.00,20.00" z_order="0"/>'
    # runs of 0, 1, 0, 1, 0 (1, 2, 2, 2, 2 long) row by row through its 3x3 box at (30, 30):
    # 0 1 1 / 0 0 1 / 1 0 0
    '<mask label="nucleus" source="manual" occluded="0" rle="1, 2, 2, 2, 2" left="30" '
    'top="30" width="3" height="3" z_order="0"/>'
    '<polyline label="cell" source="manual" occluded="0" points="1.00,1.00;3.00,3.00" '
    'z_order="0"/>')


def write_cvat(folder: Path, images: list[tuple[str, str, str]], labels=("cell", "nucleus"),
               name: str = "annotations.xml") -> Path:
    """A CVAT for images 1.1 export: annotations.xml, and the images (name, subset, shapes)
    in images/ (under their subset's folder where they have one)."""
    entries = []
    for number, (image, subset, shapes) in enumerate(images):
        write_image(folder / "images" / subset / image, seed=number)
        subset_attribute = f' subset="{subset}"' if subset else ""
        entries.append(f'<image id="{number}" name="{image}" width="{WIDTH}" height="{HEIGHT}"'
                       f'{subset_attribute}>{shapes}</image>')
    declared = "".join(f"<label><name>{label}</name><color>#ff0000</color><type>any</type>"
                       "<attributes/></label>" for label in labels)
    path = folder / name
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1'
                    f'</version><meta><task><labels>{declared}</labels></task></meta>'
                    + "".join(entries) + "</annotations>")
    return path


def test_cvat_polygons_masks_boxes_and_ellipses_are_filled_as_their_labels(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    turned = ('<box label="cell" xtl="40" ytl="4" xbr="52" ybr="8" rotation="90" z_order="0"/>'
              '<ellipse label="nucleus" cx="12" cy="30" rx="4" ry="2" rotation="0" '
              'z_order="0"/>')
    write_cvat(tmp_path, [(f"f{n}.png", "", CVAT_SHAPES + turned) for n in range(5)],
               labels=("nucleus", "cell", "vessel"))
    index = index_pairs(tmp_path)
    # the meta's order, labels drawn nowhere left out
    assert index.class_names == ["background", "nucleus", "cell"]
    assert "5 shapes without an area (polylines, points) left out" in index.folders[0]
    (mask,) = _read_masks(index.splits["train"][0], binary=False)
    assert mask.shape == (HEIGHT, WIDTH)
    assert mask[10, 10] == 2 and mask[3, 3] == 0
    box = mask[30:33, 30:33]
    assert box.tolist() == [[0, 1, 1], [0, 0, 1], [1, 0, 0]]
    # the box turned a quarter about its centre (46, 6): 4 wide, 12 high
    assert mask[1, 46] == 2 and mask[11, 46] == 2 and mask[6, 41] == 0
    assert mask[30, 12] == 1 and mask[30, 15] == 1 and mask[33, 12] == 0


def test_cvat_z_order_puts_the_higher_shape_on_top_and_background_cuts_holes(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    shapes = ('<polygon label="nucleus" points="8,8;12,8;12,12;8,12" z_order="0"/>'
              '<polygon label="cell" points="5,5;25,5;25,20;5,20" z_order="1"/>'
              '<polygon label="background" points="20,15;24,15;24,19;20,19" z_order="2"/>')
    write_cvat(tmp_path, [(f"f{n}.png", "", shapes) for n in range(3)])
    index = index_pairs(tmp_path)
    (mask,) = _read_masks(index.splits["train"][0], binary=False)
    # the larger cell drawn over the nucleus, as its z order says
    assert mask[10, 10] == 1 and mask[17, 22] == 0 and mask[6, 6] == 1
    assert index.class_names == ["background", "cell", "nucleus"]


def test_a_cvat_project_export_is_split_by_its_subsets(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    write_cvat(tmp_path, [(f"t{n}.png", "Train", CVAT_SHAPES if n else "") for n in range(4)]
               + [("v0.png", "Validation", CVAT_SHAPES), ("s0.png", "Test", CVAT_SHAPES),
                  ("s1.png", "Test", "")])
    index = index_pairs(tmp_path)
    assert [p.image.name for p in index.splits["val"]] == ["v0.png"]
    assert sorted(p.image.name for p in index.splits["train"]) == [f"t{n}.png" for n in range(4)]
    assert "2 images of subset Test" in index.folders[0]
    assert "nothing drawn on 1 images: all background" in index.folders[0]
    held = index_pairs(tmp_path, held_out="test")
    assert sorted(p.image.name for p in held.splits["val"]) == ["s0.png", "s1.png"]
    assert held.splits["train"] == []
    evaluated = index_pairs(tmp_path, train=False)
    assert [p.image.name for p in evaluated.splits["val"]] == ["v0.png"]


def test_bad_cvat_files_are_one_line_errors_naming_them(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    def check(shapes: str, message: str, name: str = "f0.png") -> None:
        folder = tmp_path / f"set{len(list(tmp_path.iterdir()))}"
        path = write_cvat(folder, [(name, "", shapes), ("f1.png", "", CVAT_SHAPES)])
        with pytest.raises(VisionsuiteError, match=message) as error:
            index_pairs(folder)
        assert str(path) in str(error.value) and "\n" not in str(error.value)

    check('<mask label="cell" rle="1, 2, 2" left="30" top="30" width="3" height="3"/>',
          r"a mask of f0.png: its rle or its box \(3x3 at 30, 30\) does not fit")
    check('<mask label="cell" rle="9" left="55" top="30" width="3" height="3"/>',
          "does not fit the 56x40 image")
    check('<polygon label="cell" points="1,1;2;3,3"/>', "a polygon of f0.png has points")
    check('<box label="cell" xtl="1" ytl="1" xbr="5"/>', "a box of f0.png has no number as "
          "its ybr")
    folder = tmp_path / "missing"
    path = write_cvat(folder, [("f0.png", "", CVAT_SHAPES)])
    (folder / "images" / "f0.png").unlink()
    with pytest.raises(VisionsuiteError, match="annotations.xml: its image f0.png is not in"):
        index_pairs(folder)
    path.write_text(path.read_text().replace('name="f0.png"', 'name="../../x.png"'))
    with pytest.raises(VisionsuiteError, match="path leaves the dataset folder"):
        index_pairs(folder)
    path.write_text("<annotations><version>1.1</version><meta/><track id='0' label='cell'>"
                    "<box frame='0' xtl='1' ytl='1' xbr='5' ybr='5'/></track></annotations>")
    with pytest.raises(VisionsuiteError, match="CVAT for video without its frames in .*"
                       r"images \(export with 'Save images'\)"):
        index_pairs(folder)


def test_a_cvat_video_export_is_read_as_its_frames_with_what_its_tracks_draw(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    for number in range(5):
        write_image(tmp_path / "images" / f"frame_{number:06d}.PNG", seed=number)
    # a polyp tracked through frames 0-3 (gone from frame 3 on), a tool on frame 4 alone
    track = "".join(f'<polygon frame="{frame}" outside="{int(frame == 3)}" occluded="0" '
                    f'keyframe="1" points="{5 + frame},5;{25 + frame},5;{25 + frame},20;'
                    f'{5 + frame},20" z_order="0"/>' for frame in range(4))
    (tmp_path / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta>'
        "<task><mode>interpolation</mode><labels><label><name>polyp</name></label><label>"
        "<name>tool</name></label></labels></task></meta>"
        f'<track id="0" label="polyp" source="manual">{track}</track>'
        '<track id="1" label="tool" source="manual"><box frame="4" outside="0" occluded="0" '
        'keyframe="1" xtl="30" ytl="28" xbr="40" ybr="36" z_order="0"/>'
        '<points frame="4" outside="0" occluded="0" keyframe="1" points="1,1"/></track>'
        "</annotations>")
    index = index_pairs(tmp_path, val_fraction=0.4)
    assert index.class_names == ["background", "polyp", "tool"]
    pairs = sorted(index.splits["train"] + index.splits["val"], key=lambda p: p.image.name)
    assert [p.image.name for p in pairs] == [f"frame_{n:06d}.PNG" for n in range(5)]
    masks = [_read_masks(pair, binary=False)[0] for pair in pairs]
    assert [int((mask == 1).sum() > 0) for mask in masks] == [1, 1, 1, 0, 0]
    assert masks[0][10, 6] == 1 and masks[2][10, 6] == 0  # the polygon moved with the frames
    assert masks[4][32, 35] == 2 and "nothing drawn on 1 images" in index.folders[0]
    assert "1 shapes without an area" in index.folders[0]


def via_region(shape: dict, **attributes) -> dict:
    return {"shape_attributes": shape, "region_attributes": attributes}


def write_via(folder: Path, stems: list[str], regions: list[dict], project: dict | None = None,
              as_dict: bool = False, name: str = "via_region_data.json") -> Path:
    """Images in `folder` and the VIA JSON of their regions (VIA 1's dict of regions by
    number, `as_dict`); inside a saved project's _via_img_metadata where `project` is given."""
    entries = {}
    for number, stem in enumerate(stems):
        write_image(folder / f"{stem}.jpg", seed=number)
        size = (folder / f"{stem}.jpg").stat().st_size
        entries[f"{stem}.jpg{size}"] = {
            "filename": f"{stem}.jpg", "size": size, "file_attributes": {},
            "regions": {str(k): r for k, r in enumerate(regions)} if as_dict else regions}
    path = folder / name
    path.write_text(json.dumps(entries if project is None
                               else {**project, "_via_img_metadata": entries}))
    return path


BALLOON = {"name": "polygon", "all_points_x": [5, 25, 25, 5], "all_points_y": [5, 5, 20, 20]}


def test_a_via_set_as_the_balloon_example_ships_it_trains_evaluates_and_segments(tmp_path):
    for split, count in (("train", 4), ("val", 2)):
        write_via(tmp_path / "balloon" / split, [f"b{n}" for n in range(count)],
                  [via_region(BALLOON), via_region({"name": "point", "cx": 3, "cy": 3})],
                  as_dict=True)
    result = invoke("data", "check", "segment", tmp_path / "balloon")
    assert result.exit_code == 0, result.output
    assert "VIA: train: 4 images, val: 2 images; 6 shapes without an area" in result.output
    assert "classes (named in the VIA files): 0 background" in result.output
    result = invoke("train", "segment", "--data", tmp_path / "balloon", "--output", tmp_path,
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "foreground"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * HEIGHT * WIDTH
    result = invoke("evaluate", run)
    assert result.exit_code == 0, result.output
    result = invoke("segment", run, tmp_path / "balloon" / "val", "--output",
                    tmp_path / "masks", "--json")
    assert result.exit_code == 0, result.output
    assert [Path(row["image"]).name for row in json.loads(result.stdout)] == ["b0.jpg", "b1.jpg"]


def test_via_classes_come_from_a_region_attribute_in_the_projects_order(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    regions = [via_region(BALLOON, type="cell", note="x"),
               via_region({"name": "rect", "x": 30, "y": 28, "width": 10, "height": 8},
                          type={"debris": True, "cell": False}),
               via_region({"name": "circle", "cx": 45, "cy": 10, "r": 4}, type="nucleus"),
               via_region({"name": "ellipse", "cx": 12, "cy": 32, "rx": 5, "ry": 2,
                           "theta": np.pi / 2}, note="no type")]
    project = {"_via_settings": {"core": {"default_filepath": "C:\\Users\\me\\cells\\"}},
               "_via_attributes": {"region": {"type": {"type": "dropdown", "options": {
                   "nucleus": "", "cell": "", "debris": "", "vessel": ""}}}}}
    write_via(tmp_path, [f"c{n}" for n in range(5)], regions, project,
              name="via_project_1Dec2026_10h0m.json")
    index = index_pairs(tmp_path)
    assert index.class_names == ["background", "nucleus", "cell", "debris", "foreground"]
    assert index.names_from == "the VIA files' region attribute 'type'"
    (mask,) = _read_masks(index.splits["train"][0], binary=False)
    assert mask[10, 10] == 2 and mask[32, 35] == 3 and mask[10, 45] == 1
    # the ellipse turned a quarter: 4 high at its centre's column, 2 wide
    assert mask[36, 12] == 4 and mask[32, 16] == 0


def test_a_via_csv_export_reads_as_its_json(tmp_path):
    """VIA's 'Export annotations (as csv)': a row per region, its shape and attributes JSON
    in their cells; an image without regions a row of its own."""
    import csv

    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    rows = [["filename", "file_size", "file_attributes", "region_count", "region_id",
             "region_shape_attributes", "region_attributes"]]
    for number in range(4):
        write_image(tmp_path / f"c{number}.jpg", seed=number)
        rows.append([f"c{number}.jpg", "1000", "{}", "2", "0", json.dumps(BALLOON),
                     json.dumps({"type": "cell"})])
        rows.append([f"c{number}.jpg", "1000", "{}", "2", "1", json.dumps(
            {"name": "rect", "x": 30, "y": 28, "width": 10, "height": 8}),
            json.dumps({"type": "debris"})])
    write_image(tmp_path / "empty.jpg")
    rows.append(["empty.jpg", "1000", "{}", "0", "0", "{}", "{}"])
    with (tmp_path / "via_export_csv.csv").open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    index = index_pairs(tmp_path, val_fraction=0.4)
    assert index.class_names == ["background", "cell", "debris"]
    assert index.names_from == "the VIA files' region attribute 'type'"
    pairs = {p.image.name: p for p in index.splits["train"] + index.splits["val"]}
    assert len(pairs) == 5 and "nothing drawn on 1 images" in index.folders[0]
    (mask,) = _read_masks(pairs["c0.jpg"], binary=False)
    assert mask[10, 10] == 1 and mask[32, 35] == 2


def test_bad_via_files_are_one_line_errors_naming_them(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    def check(regions: list[dict], message: str) -> None:
        folder = tmp_path / f"set{len(list(tmp_path.iterdir()))}"
        path = write_via(folder, ["a", "b", "c"], regions)
        with pytest.raises(VisionsuiteError, match=message) as error:
            index_pairs(folder)
        assert str(path) in str(error.value) and "\n" not in str(error.value)

    check([via_region({"name": "polygon", "all_points_x": [1, 2], "all_points_y": [1, 2]})],
          "region 0 of a.jpg, a polygon, lacks its coordinates")
    check([via_region({"name": "rect", "x": 1})], "region 0 of a.jpg, a rect, lacks")
    check([via_region({"name": "blob"})], "region 0 of a.jpg is a 'blob', none of VIA's shapes")
    folder = tmp_path / "missing"
    write_via(folder, ["a", "b"], [via_region(BALLOON)])
    (folder / "a.jpg").unlink()
    with pytest.raises(VisionsuiteError, match="via_region_data.json: its image a.jpg is not "
                       "in the dataset"):
        index_pairs(folder)


def supervisely_bitmap(mask: np.ndarray) -> str:
    """A mask as Supervisely stores a bitmap: a base64 of a zlib-compressed palette PNG whose
    index 0 is transparent."""
    png = Image.fromarray(mask.astype(np.uint8))
    png.putpalette([0, 0, 0, 255, 255, 255])
    buffer = io.BytesIO()
    png.save(buffer, format="PNG", transparency=0)
    return base64.b64encode(zlib.compress(buffer.getvalue())).decode()


def write_supervisely(root: Path, datasets: dict[str, int], objects: list[dict]) -> Path:
    """A Supervisely project: meta.json, and each dataset's img/ and ann/ of `count` images
    with the same `objects`."""
    root.mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"classes": [
        {"title": "nucleus", "shape": "bitmap", "color": "#FF0000"},
        {"title": "cell", "shape": "polygon", "color": "#00FF00"},
        {"title": "vessel", "shape": "polygon", "color": "#0000FF"}], "tags": []}))
    for dataset, count in datasets.items():
        (root / dataset / "ann").mkdir(parents=True)
        for number in range(count):
            write_image(root / dataset / "img" / f"s{number}.png", seed=number)
            (root / dataset / "ann" / f"s{number}.png.json").write_text(json.dumps({
                "description": "", "tags": [], "size": {"height": HEIGHT, "width": WIDTH},
                "objects": objects}))
    return root


def supervisely_objects() -> list[dict]:
    """A cell with a hole, a nucleus as a bitmap partly out of the image, a point."""
    nucleus = np.zeros((6, 8), bool)
    nucleus[1:5, 2:7] = True
    return [{"classTitle": "cell", "geometryType": "polygon", "points": {
                "exterior": [[5, 5], [25, 5], [25, 20], [5, 20]],
                "interior": [[[10, 10], [14, 10], [14, 14], [10, 14]]]}},
            {"classTitle": "nucleus", "geometryType": "bitmap",
             "bitmap": {"data": supervisely_bitmap(nucleus), "origin": [50, 30]}},
            {"classTitle": "cell", "geometryType": "point",
             "points": {"exterior": [[1, 1]], "interior": []}}]


def test_a_supervisely_project_trains_with_only_data_its_datasets_its_splits(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    root = write_supervisely(tmp_path / "project", {"train": 4, "test": 2},
                             supervisely_objects())
    (root / "train" / "masks_machine").mkdir()  # exported masks beside: the JSON is read
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(
        root / "train" / "masks_machine" / "s0.png")
    index = index_pairs(root)
    assert index.class_names == ["background", "nucleus", "cell"]
    assert [len(index.splits[s]) for s in ("train", "val")] == [4, 2]
    assert {p.image.parent.parent.name for p in index.splits["val"]} == {"test"}
    (mask,) = _read_masks(index.splits["train"][0], binary=False)
    assert mask[7, 7] == 2 and mask[12, 12] == 0 and mask[3, 3] == 0  # the hole cut
    # the bitmap's 4x5 object at (52, 31), cut at the image's right edge (56)
    assert (mask == 1).sum() == 4 * 4 and mask[31:35, 52:56].min() == 1
    result = invoke("train", "segment", "--data", root, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "nucleus", "cell"]


def test_bad_supervisely_files_are_one_line_errors_naming_them(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    root = write_supervisely(tmp_path / "broken", {"ds0": 3}, [
        {"classTitle": "cell", "geometryType": "bitmap",
         "bitmap": {"data": base64.b64encode(b"not zlib").decode(), "origin": [1, 1]}}])
    index = index_pairs(root)
    with pytest.raises(VisionsuiteError, match=r"s\d.png.json: a mask of s\d.png cannot be "
                                               "decoded"):
        _read_masks(index.splits["train"][0], binary=False)
    path = root / "ds0" / "ann" / "s1.png.json"
    path.write_text(json.dumps({"objects": []}))
    with pytest.raises(VisionsuiteError, match="s1.png.json: not a Supervisely annotation"):
        index_pairs(root)
    path.write_text(json.dumps({"size": {"height": 4, "width": 4}, "objects": [
        {"classTitle": "cell", "geometryType": "polygon", "points": {}}]}))
    with pytest.raises(VisionsuiteError, match="s1.png.json: object 0, a polygon, lacks its "
                                               "points"):
        index_pairs(root)
    (root / "ds0" / "img" / "s1.png").unlink()
    path.write_text(json.dumps({"size": {"height": 4, "width": 4}, "objects": []}))
    with pytest.raises(VisionsuiteError, match="s1.png.json: its image s1.png is not in"):
        index_pairs(root)
