"""The VGG Image Annotator's JSON (VIA 1 and 2, Oxford's browser annotator, as Mask R-CNN's
balloon example ships `train/via_region_data.json` beside its images): an entry per image,

    {"a.jpg12345": {"filename": "a.jpg", "size": 12345, "file_attributes": {},
                    "regions": [{"shape_attributes": {"name": "polygon",
                                                      "all_points_x": [...],
                                                      "all_points_y": [...]},
                                 "region_attributes": {"class": "cell"}}, ...]}}

or a saved project holding those entries in `_via_img_metadata` and its attributes'
options in `_via_attributes`. VIA 1 keeps the regions in a dict by number. VIA's CSV export
(`via_export_csv.csv`: a row per region, its shape's and attributes' JSON in two cells) reads
as those entries.

Polygons, rectangles (x, y, width, height), circles and ellipses (turned by theta radians)
are filled as their class; polylines and points have no area and are left out and counted.
The class is a region attribute's value: the attribute named class, label, name, type or
category, else the one most regions carry (a checkbox's one ticked option); regions without
it are `foreground`. The classes are background, then the project's options of that
attribute in order (where saved), then any other values in name order. Coordinates are in the
image's pixels as the browser shows it (EXIF orientation applied).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from visionsuite.core.files import data_files, inside
from visionsuite.core.images import stored_geometry, upright_size
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.shapes import ListedImage, box_ring, ellipse_ring
from visionsuite.tasks.segment.shapes import listed_image_path

UNCLASSIFIED = "foreground"
CLASS_ATTRIBUTES = ("class", "label", "name", "type", "category")  # taken first, in this order
NO_AREA = ("point", "polyline")
PROJECT = "_via_img_metadata"  # a saved VIA 2 project's entries
HEAD = 65536  # bytes read to tell a VIA file from other JSON
CSV_COLUMNS = ("filename", "file_size", "file_attributes", "region_count", "region_id",
               "region_shape_attributes", "region_attributes")  # VIA's CSV export, a region
#                                                                  a row, its cells JSON


def via_files(root: Path) -> list[Path]:
    """The VIA JSON files below `root`, in path order, else its CSV exports."""
    return [path for path in data_files(root, "*.json") if is_via_json(path)] \
        or [path for path in data_files(root, "*.csv") if is_via_csv(path)]


def is_via_csv(path: Path) -> bool:
    """Whether a CSV file is VIA's export, by its header (VIA 1's begins with #)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            header = file.readline()
    except OSError:
        return False
    return [cell.strip() for cell in header.lstrip("#").split(",")] == list(CSV_COLUMNS)


def is_via_json(path: Path) -> bool:
    """Whether a JSON file is VIA's, from its head: a project's metadata, or entries with a
    filename and regions (LabelMe's shapes, COCO's images are not)."""
    try:
        with path.open("rb") as file:
            head = file.read(HEAD)
    except OSError:
        return False
    return PROJECT.encode() in head or b'"regions"' in head and b'"filename"' in head


def read_via(path: Path, root: Path, lookup: dict[str, Path | None]
             ) -> tuple[list[ListedImage], list[str], str, int]:
    """A VIA file's images with their shapes, the class names its project declares in order,
    the region attribute the classes are read from ('' for none) and the count of regions
    without an area. `lookup`: image_lookup(root)."""
    inside(root, path.relative_to(root))  # a link out of the dataset
    try:
        document = _csv_entries(path) if path.suffix.lower() == ".csv" \
            else json.loads(path.read_text(encoding="utf-8"))
        entries = document.get(PROJECT, document)
        regions = {key: _regions(entry) for key, entry in entries.items()}
    except (OSError, ValueError, AttributeError, TypeError, KeyError) as err:
        raise VisionsuiteError(f"{path}: not a VIA {path.suffix[1:].upper()} file "
                               f"({type(err).__name__}: {err})") from None
    attribute = _class_attribute([region.get("region_attributes") for found in regions.values()
                                  for region in found])
    declared = list((((document.get("_via_attributes") or {}).get("region") or {})
                     .get(attribute) or {}).get("options") or {}) if attribute else []
    images, left_out = [], 0
    for key, entry in entries.items():
        name = str(entry.get("filename") or "")
        if not name:
            raise VisionsuiteError(f"{path}: entry {key} names no filename")
        image = listed_image_path(path, name, root, lookup)
        shapes = []
        for number, region in enumerate(regions[key]):
            drawn = region.get("shape_attributes") or {}
            kind = drawn.get("name")
            if kind in NO_AREA:
                left_out += 1
                continue
            label = _class_of(region.get("region_attributes"), attribute)
            shapes.append((label, _ring(path, name, number, kind, drawn), 0))
        stored, orientation = stored_geometry(image)
        images.append(ListedImage(path, image, upright_size(stored, orientation), shapes))
    if not images:
        raise VisionsuiteError(f"{path}: lists no images")
    return images, declared, attribute, left_out


def _csv_entries(path: Path) -> dict:
    """VIA's CSV export as the entries of its JSON: a row per region (region_count 0: an
    image without any), by image."""
    import csv

    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(line for line in file if not line.startswith("#")))
    entries: dict[str, dict] = {}
    for cells in rows[1:] if rows and rows[0][:1] == ["filename"] else rows:  # VIA 2's header
        row = dict(zip(CSV_COLUMNS, cells))
        entry = entries.setdefault(row["filename"], {"filename": row["filename"],
                                                     "regions": []})
        if row["region_shape_attributes"].strip() not in ("", "{}"):
            entry["regions"].append({
                "shape_attributes": json.loads(row["region_shape_attributes"]),
                "region_attributes": json.loads(row["region_attributes"] or "{}")})
    return entries


def _regions(entry: dict) -> list[dict]:
    """An entry's regions: VIA 2's list, or VIA 1's dict by number."""
    found = entry.get("regions") or []
    found = list(found.values()) if isinstance(found, dict) else found
    if not all(isinstance(region, dict) for region in found):
        raise TypeError("a region is not an object")
    return found


def _class_attribute(attributes: list) -> str:
    """The region attribute that names the classes: CLASS_ATTRIBUTES first, else the one most
    regions carry; '' where regions carry none."""
    counts = Counter(key for found in attributes if isinstance(found, dict) for key in found)
    by_lower = {key.lower(): key for key, _ in counts.most_common()[::-1]}
    preferred = [by_lower[name] for name in CLASS_ATTRIBUTES if name in by_lower]
    return preferred[0] if preferred else (counts.most_common(1)[0][0] if counts else "")


def _class_of(attributes, attribute: str) -> str:
    """A region's class: its value of `attribute`; a checkbox's ticked option."""
    value = attributes.get(attribute) if isinstance(attributes, dict) and attribute else None
    if isinstance(value, dict):
        value = next((option for option, ticked in value.items() if ticked), None)
    value = str(value).strip() if value is not None else ""
    return value or UNCLASSIFIED


def _ring(path: Path, name: str, number: int, kind, drawn: dict) -> list[float]:
    """A region's shape as a polygon."""
    try:
        if kind == "polygon":
            xs, ys = drawn["all_points_x"], drawn["all_points_y"]
            if len(xs) != len(ys) or len(xs) < 3:
                raise ValueError
            return [float(value) for point in zip(xs, ys) for value in point]
        if kind == "rect":
            left, top = float(drawn["x"]), float(drawn["y"])
            return box_ring(left, top, left + float(drawn["width"]),
                            top + float(drawn["height"]))
        if kind == "circle":
            radius = float(drawn["r"])
            return ellipse_ring((float(drawn["cx"]), float(drawn["cy"])), (radius, radius))
        if kind == "ellipse":
            return ellipse_ring((float(drawn["cx"]), float(drawn["cy"])),
                                (float(drawn["rx"]), float(drawn["ry"])),
                                float(drawn.get("theta", 0)))
    except (KeyError, TypeError, ValueError):
        raise VisionsuiteError(f"{path}: region {number} of {name}, a {kind}, lacks its "
                               "coordinates") from None
    raise VisionsuiteError(f"{path}: region {number} of {name} is a {kind!r}, none of VIA's "
                           "shapes (polygon, rect, circle, ellipse, polyline, point)")
