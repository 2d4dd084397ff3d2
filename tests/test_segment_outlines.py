"""Segmentation sets annotated in GeoJSON, as QuPath exports them for pathology slides."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError

HEIGHT, WIDTH = 40, 56


def square(left: float, top: float, side: float) -> list[list[float]]:
    return [[left, top], [left + side, top], [left + side, top + side], [left, top + side],
            [left, top]]


def write_slide(folder: Path, stem: str, features: list[dict], geojson_name: str | None = None,
                seed: int = 0) -> Path:
    """A TIFF 'slide' (bright squares on pink) and its QuPath GeoJSON in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = np.full((HEIGHT, WIDTH, 3), (230, 190, 210), np.uint8)
    image[6:26, 6:26] = (120, 60, 150)
    image[30:38, 40:48] = (90, 40, 120)
    noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(folder / f"{stem}.tif")
    path = folder / (geojson_name or f"{stem}.geojson")
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def qupath_features() -> list[dict]:
    """A tumour region with a hole, a nucleus as a MultiPolygon, an unclassified region and a
    point annotation (no area)."""
    return [
        {"type": "Feature", "properties": {"objectType": "annotation",
                                           "classification": {"name": "Tumor"}},
         "geometry": {"type": "Polygon", "coordinates": [square(6, 6, 20), square(12, 12, 6)]}},
        {"type": "Feature", "properties": {"objectType": "detection",
                                           "classification": {"name": "Nucleus"}},
         "geometry": {"type": "MultiPolygon", "coordinates": [[square(40, 30, 8)]]}},
        {"type": "Feature", "properties": {"objectType": "annotation"},
         "geometry": {"type": "Polygon", "coordinates": [square(44, 2, 6)]}},
        {"type": "Feature", "properties": {"objectType": "annotation"},
         "geometry": {"type": "Point", "coordinates": [3, 3]}}]


def test_geojson_polygons_are_filled_as_their_classes_with_holes_cut(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    for split, count in (("train", 3), ("val", 2)):
        for number in range(count):
            write_slide(tmp_path / split, f"slide{number}", qupath_features(), seed=number)
    index = index_pairs(tmp_path)
    assert index.class_names == ["background", "Nucleus", "Tumor", "foreground"]
    assert [len(index.splits[s]) for s in ("train", "val")] == [3, 2]
    assert "5 drawings without an area (points, lines) left out" in index.folders[0]
    (mask,) = _read_masks(index.splits["val"][0], binary=False)
    assert mask.shape == (HEIGHT, WIDTH)
    assert mask[8, 8] == 2 and mask[15, 15] == 0 and mask[34, 44] == 1 and mask[4, 46] == 3
    tumour = int((mask == 2).sum())
    assert abs(tumour - (20 * 20 - 6 * 6)) < 2 * 20 + 2 * 6 + 4  # edges, as COCO fills them


def test_a_qupath_export_folder_beside_the_slides_trains_with_only_data(tmp_path):
    """QuPath's export script writes slide1.tif.geojson into an export/ folder of its own."""
    for number in range(5):
        write_slide(tmp_path / "project" / "slides", f"slide{number}", qupath_features(),
                    seed=number)
        moved = tmp_path / "project" / "slides" / f"slide{number}.geojson"
        (tmp_path / "project" / "export").mkdir(exist_ok=True)
        moved.rename(tmp_path / "project" / "export" / f"slide{number}.tif.geojson")
    result = invoke("data", "check", "segment", tmp_path / "project")
    assert result.exit_code == 0, result.output
    assert "classes (named in the GeoJSON files): 0 background" in result.output
    result = invoke("train", "segment", "--data", tmp_path / "project", "--output", tmp_path,
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "Nucleus", "Tumor",
                                                         "foreground"]


def test_bad_geojson_files_are_one_line_errors_naming_them(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    for number in range(3):
        write_slide(tmp_path / "set", f"slide{number}", qupath_features(), seed=number)
    (tmp_path / "set" / "orphan.geojson").write_text(json.dumps({"features": []}))
    with pytest.raises(VisionsuiteError, match="orphan.geojson: its image orphan is not there"):
        index_pairs(tmp_path / "set")
    (tmp_path / "set" / "orphan.geojson").unlink()
    broken = tmp_path / "set" / "slide1.geojson"
    broken.write_text(json.dumps({"type": "Feature"}))
    with pytest.raises(VisionsuiteError, match="slide1.geojson: expected a FeatureCollection"):
        index_pairs(tmp_path / "set")
    broken.write_text(json.dumps([{"geometry": {"type": "Polygon", "coordinates": [[1, 2]]}}]))
    with pytest.raises(VisionsuiteError, match="slide1.geojson: feature 0 has a ring that is "
                                               "no list of"):
        index_pairs(tmp_path / "set")


def write_aperio(path: Path, layers: dict[str, list[tuple[str, list, bool]]]) -> None:
    """An Aperio ImageScope XML file: a layer (Annotation) per class name ("" for none), each
    of regions (type, vertices, hole?)."""
    parts = ['<?xml version="1.0"?>\n<Annotations MicronsPerPixel="0.252100">']
    for number, (name, regions) in enumerate(layers.items(), 1):
        parts.append(f'<Annotation Id="{number}" Name="{name}" Type="4"><Attributes>'
                     '<Attribute Name="Description" Id="0" Value=""/></Attributes><Regions>')
        for index, (kind, vertices, hole) in enumerate(regions, 1):
            parts.append(f'<Region Id="{index}" Type="{kind}" NegativeROA="{int(hole)}">'
                         '<Attributes/><Vertices>' + "".join(
                             f'<Vertex X="{x}" Y="{y}" Z="0"/>' for x, y in vertices)
                         + '</Vertices></Region>')
        parts.append("</Regions></Annotation>")
    path.write_text("".join(parts) + "</Annotations>")


def test_aperio_xml_regions_are_filled_as_their_layers_class_as_monuseg_ships_them(tmp_path):
    """MoNuSeg: Tissue Images/TCGA-*.tif beside Annotations/TCGA-*.xml; a layer of nuclei
    (freehand regions, a hole marked NegativeROA, an ellipse), a ruler left out."""
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "MoNuSeg"
    for number in range(4):
        write_slide(root / "Tissue Images", f"TCGA-{number}", [], seed=number)
        (root / "Tissue Images" / f"TCGA-{number}.geojson").unlink()
        (root / "Annotations").mkdir(exist_ok=True)
        write_aperio(root / "Annotations" / f"TCGA-{number}.xml", {
            "": [("0", square(6, 6, 20)[:-1], False), ("0", square(12, 12, 6)[:-1], True),
                 ("2", [[40, 30], [48, 38]], False), ("4", [[1, 1], [5, 5]], False)]})
    index = index_pairs(root)
    assert index.class_names == ["background", "foreground"]
    assert "Aperio XML: train: 4 images; 4 drawings without an area" in index.folders[0]
    pairs = index.splits["train"] + index.splits["val"]
    (mask,) = _read_masks(next(p for p in pairs if p.image.stem == "TCGA-0"), binary=False)
    assert mask[8, 8] == 1 and mask[15, 15] == 0 and mask[34, 44] == 1 and mask[30, 40] == 0
    ellipse = int((mask[28:40, 38:50] == 1).sum())
    assert abs(ellipse - np.pi * 16) < 12  # the ellipse in its corners, radius 4
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0 and "classes (named in the Aperio XML files)" in result.output
