"""Annotations as GeoJSON, as QuPath exports them for digital pathology: one file per image,
named after it (`slide1.geojson`, or `slide1.tif.geojson`, for `slide1.tif`), beside it or
anywhere in the dataset; a FeatureCollection (or a list of features), each feature's geometry
a Polygon or MultiPolygon in the image's pixels, its class QuPath's
`properties.classification.name` (else `properties.name` or `label`).

A polygon's first ring is filled in as its class and its further rings (holes) are cut back
to background. Features without a class are `foreground`; points and lines have no area and
are left out and counted. The classes are background, then every class found, in name order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from visionsuite.core.files import holds_data, inside
from visionsuite.errors import VisionsuiteError

UNCLASSIFIED = "foreground"
AREA_TYPES = ("Polygon", "MultiPolygon")


@dataclass
class GeojsonImage:
    file: Path
    image: Path
    # (class name, or None for a hole, and the ring as a COCO polygon [x1, y1, x2, y2, ...])
    rings: list[tuple[str | None, list[float]]]
    left_out: int  # features without an area (points, lines)


def geojson_files(root: Path) -> list[Path]:
    """The .geojson files below `root`, in name order, hidden folders left out."""
    return sorted(path for path in root.rglob("*.geojson") if path.is_file()
                  and all(holds_data(part) for part in path.relative_to(root).parts))


def read_geojson(path: Path, root: Path, images: dict[str, Path | None]) -> GeojsonImage:
    """One GeoJSON file's image (found by its name in `images`, image_lookup's) and rings; a
    file of no features, or whose image is not found, is an error naming it."""
    inside(root, path.relative_to(root))  # a link out of the dataset
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
    return GeojsonImage(path, _image_of(path, images), rings, left_out)


def _class_of(properties: dict) -> str:
    classification = properties.get("classification")
    name = classification.get("name") if isinstance(classification, dict) else classification
    name = name or properties.get("name") or properties.get("label")
    return str(name) if name else UNCLASSIFIED


def _image_of(path: Path, images: dict[str, Path | None]) -> Path:
    """The image a GeoJSON file is named after: beside it, else anywhere in the dataset, by
    its name (`slide1.tif.geojson`) or stem (`slide1.geojson`)."""
    named = path.name[:-len(".geojson")]
    for candidate in [path.parent / named] + sorted(path.parent.glob(f"{named}.*")):
        if candidate.is_file() and candidate != path and candidate.name in images:
            return candidate
    found = images.get(named)
    if found is None:
        why = "is in two places" if named in images else "is not there"
        raise VisionsuiteError(f"{path}: its image {named} {why} (a GeoJSON file is named "
                               "after its image)")
    return found


def class_names(images: list[GeojsonImage]) -> list[str]:
    """background, then every class drawn, in name order."""
    return ["background", *sorted({label for image in images for label, _ in image.rings
                                   if label is not None})]
