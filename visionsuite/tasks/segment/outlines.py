"""Outlines drawn on slides in a file per image, named after it (`slide1.geojson`, or
`slide1.tif.geojson`, for `slide1.tif`), beside it or anywhere in the dataset, as pathology
tools export them:

- GeoJSON, as QuPath exports annotations: a FeatureCollection (or a list of features), each
  feature's geometry a Polygon or MultiPolygon in the image's pixels, its class QuPath's
  `properties.classification.name` (else `properties.name` or `label`). A polygon's first
  ring is its outline, its further rings holes.
- Aperio ImageScope XML, as MoNuSeg and other nuclei sets ship theirs (`<Annotations>`, each
  `<Annotation Name=...>` a layer of `<Region>`s of `<Vertex X= Y=>`): freehand regions and
  rectangles are outlines (ellipses: the ellipse in their two corners), regions marked
  NegativeROA="1" holes; the layer's Name is the class.

Outlines are filled in as their class and holes cut back to background. Outlines without a
class are `foreground`; points, lines and rulers have no area and are left out and counted.
The classes are background, then every class found, in name order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from visionsuite.core.files import data_files, inside
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.shapes import ellipse_ring

UNCLASSIFIED = "foreground"
AREA_TYPES = ("Polygon", "MultiPolygon")
# Aperio region types: 0 freehand, 1 rectangle, 2 ellipse (3 arrow, 4 ruler, 5 pin: no area)
APERIO_OUTLINES, APERIO_ELLIPSE = ("0", "1"), "2"


@dataclass
class OutlinedImage:
    file: Path
    image: Path
    # (class name, or None for a hole, and the ring as a COCO polygon [x1, y1, x2, y2, ...])
    rings: list[tuple[str | None, list[float]]]
    left_out: int  # drawings without an area (points, lines)


def outline_files(root: Path) -> dict[str, list[Path]]:
    """The GeoJSON and Aperio XML files below `root` by format, in name order, hidden folders
    left out; an XML file is Aperio's by its root element (VOC's XML are not)."""
    found = {"GeoJSON": data_files(root, "*.geojson"),
             "Aperio XML": [path for path in data_files(root, "*.xml") if _is_aperio(path)]}
    return {kind: paths for kind, paths in found.items() if paths}


def _is_aperio(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            head = file.read(512)
    except OSError:
        return False
    return b"<Annotations" in head


def read_outlines(path: Path, root: Path, images: dict[str, Path | None]) -> OutlinedImage:
    """One outline file's image and rings, by its format."""
    inside(root, path.relative_to(root))  # a link out of the dataset
    read = read_geojson if path.suffix.lower() == ".geojson" else read_aperio
    rings, left_out = read(path)
    return OutlinedImage(path, _image_of(path, images), rings, left_out)


def read_aperio(path: Path) -> tuple[list[tuple[str | None, list[float]]], int]:
    """An Aperio ImageScope XML file's rings and its regions without an area."""
    try:
        annotations = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as err:
        raise VisionsuiteError(f"{path}: not an Aperio XML file ({err})") from None
    rings, left_out = [], 0
    for layer in annotations.iter("Annotation"):
        label = layer.get("Name", "").strip() or UNCLASSIFIED
        for number, region in enumerate(layer.iter("Region")):
            try:
                points = np.array([(float(vertex.get("X")), float(vertex.get("Y")))
                                   for vertex in region.iter("Vertex")])
            except (TypeError, ValueError):
                raise VisionsuiteError(f"{path}: region {region.get('Id', number)} has a "
                                       "vertex without X and Y") from None
            kind = region.get("Type", "0")
            if kind == APERIO_ELLIPSE and len(points) == 2:
                ring = ellipse_ring(tuple(points.mean(axis=0)),
                                    tuple(np.abs(points[1] - points[0]) / 2))
            elif kind not in APERIO_OUTLINES or len(points) < 3:
                left_out += 1
                continue
            else:
                ring = points.ravel().tolist()
            hole = region.get("NegativeROA", "0") == "1"
            rings.append((None if hole else label, ring))
    return rings, left_out


def read_geojson(path: Path) -> tuple[list[tuple[str | None, list[float]]], int]:
    """A GeoJSON file's rings and its features without an area; a file of no features is an
    error naming it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise VisionsuiteError(f"{path}: not a GeoJSON file ({err})") from None
    features = document.get("features") if isinstance(document, dict) else document
    if not isinstance(features, list):
        raise VisionsuiteError(f"{path}: expected a FeatureCollection or a list of features")
    rings, left_out = [], 0
    for number, feature in enumerate(features):
        geometry = (feature or {}).get("geometry") or {} if isinstance(feature, dict) else {}
        if geometry.get("type") not in AREA_TYPES:
            left_out += 1
            continue
        label = _class_of(feature.get("properties") or {})
        polygons = geometry.get("coordinates") or []
        for polygon in polygons if geometry["type"] == "MultiPolygon" else [polygons]:
            for index, ring in enumerate(polygon):
                try:
                    flat = [float(value) for point in ring for value in point[:2]]
                except (TypeError, ValueError):
                    raise VisionsuiteError(f"{path}: feature {number} has a ring that is no "
                                           "list of [x, y] points") from None
                rings.append((label if index == 0 else None, flat))
    return rings, left_out


def _class_of(properties: dict) -> str:
    classification = properties.get("classification")
    name = classification.get("name") if isinstance(classification, dict) else classification
    name = name or properties.get("name") or properties.get("label")
    return str(name) if name else UNCLASSIFIED


def _image_of(path: Path, images: dict[str, Path | None]) -> Path:
    """The image an outline file is named after: beside it, else anywhere in the dataset, by
    its name (`slide1.tif.geojson`) or stem (`slide1.geojson`)."""
    named = path.name[:-len(path.suffix)]
    for candidate in [path.parent / named] + sorted(path.parent.glob(f"{named}.*")):
        if candidate.is_file() and candidate != path and candidate.name in images:
            return candidate
    found = images.get(named)
    if found is None:
        why = "is in two places" if named in images else "is not there"
        raise VisionsuiteError(f"{path}: its image {named} {why} (an outline file is named "
                               "after its image)")
    return found


def class_names(images: list[OutlinedImage]) -> list[str]:
    """background, then every class drawn, in name order."""
    return ["background", *sorted({label for image in images for label, _ in image.rings
                                   if label is not None})]
