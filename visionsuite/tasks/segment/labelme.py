"""Masks drawn in LabelMe (the common desktop annotation tool): a JSON file beside each image,
its `shapes` the drawn regions, each with a `label`, a `shape_type` and its `points` in the
image's pixels as LabelMe showed it (EXIF orientation applied), `imagePath` the image relative
to the JSON, `imageWidth` and `imageHeight` its size.

Polygons, rectangles (two corners, or all four), circles (the centre and a point on the
circle) and masks (LabelMe's AI masks: a base64 PNG of the box between its two points) are
filled in as their label's class; lines, line strips and points have no area and are left
out and counted. The classes are background, then every label found, in name order. Shapes
labelled `background` or `_background_` (labelme2voc's name of class 0) draw background, as
LabelMe's examples take them: a hole cut out of what they lie on. An image named by
`imagePath` must lie inside the dataset (a path that leaves it is refused); where it is not
there, the image beside the JSON with its stem is taken, as LabelMe finds it (an absolute
path, the annotator's disk, is looked for by its name beside the JSON).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.files import inside
from visionsuite.core.images import IMAGE_EXTENSIONS
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.shapes import BACKGROUND_LABELS, ellipse_ring

AREA_SHAPES = ("polygon", "rectangle", "circle")
CHECKED_FILES = 20  # JSON files read to tell a LabelMe set from other JSON (dataset.json)


@dataclass
class LabelmeImage:
    json: Path
    image: Path
    size: tuple[int, int]  # (width, height) the JSON gives
    # (label, COCO segmentation: [polygon x1, y1, x2, y2, ...], or RLE of a mask)
    shapes: list[tuple[str, object]]
    left_out: int  # shapes without an area (lines, points)


def labelme_files(folder: Path) -> list[Path]:
    """The LabelMe JSON files under `folder`, in name order; [] where the first JSON files
    found are none (a dataset.json, COCO's files)."""
    found = sorted(path for path in folder.rglob("*.json")
                   if not any(part.startswith(".") for part in path.relative_to(folder).parts))
    if not any(_is_labelme(path) for path in found[:CHECKED_FILES]):
        return []
    return [path for path in found if _is_labelme(path)]


def _is_labelme(path: Path, span: int = 65536) -> bool:
    """Whether a JSON file is LabelMe's, from its ends alone: it begins with its shapes and
    ends with the image's size, however many shapes and embedded image bytes (imageData) lie
    between."""
    try:
        with path.open("rb") as file:
            head = file.read(span)
            file.seek(max(file.seek(0, 2) - span, 0))
            tail = file.read(span)
    except OSError:
        return False
    return b'"shapes"' in head and (b'"imageHeight"' in tail or b'"imagePath"' in head)


def read_labelme(path: Path, root: Path) -> LabelmeImage:
    """One LabelMe file's image and shapes; a file that is no LabelMe JSON, or whose image
    is not found, is an error naming it, as is one that a link takes out of the dataset."""
    inside(root, path.relative_to(root))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        shapes, width, height = (document["shapes"], int(document["imageWidth"]),
                                 int(document["imageHeight"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VisionsuiteError(f"{path}: not a LabelMe file ({type(err).__name__}: {err})"
                               ) from None
    image = _image_of(path, document.get("imagePath"), root)
    drawn, left_out = [], 0
    for number, shape in enumerate(shapes):
        try:
            kind = shape.get("shape_type") or "polygon"
            label = str(shape["label"])
            points = np.asarray(shape["points"], np.float64).reshape(-1, 2)
        except (AttributeError, KeyError, TypeError, ValueError):
            raise VisionsuiteError(f"{path}: shape {number} has no label and points "
                                   "[[x, y], ...]") from None
        if kind == "mask":
            drawn.append((label, _mask(shape.get("mask"), points, (width, height), path,
                                       number)))
        elif kind in AREA_SHAPES:
            drawn.append((label, [_polygon(kind, points, path, number)]))
        else:
            left_out += 1
    return LabelmeImage(path, image, (width, height), drawn, left_out)


def _image_of(path: Path, named, root: Path) -> Path:
    """The image `named` (imagePath) relative to the JSON, refused where it climbs out of the
    dataset; an absolute one (the annotator's disk, C:\\...) by its name beside the JSON;
    else the image beside the JSON with its stem."""
    named = named.replace("\\", "/") if isinstance(named, str) else ""
    if re.match(r"/|[A-Za-z]:/", named):
        named = named.rsplit("/", 1)[-1]
    if named:
        candidate = inside(root, path.parent.relative_to(root) / named)
        if candidate.is_file():
            return candidate
    beside = [path.with_suffix(ending) for ending in IMAGE_EXTENSIONS
              + tuple(ending.upper() for ending in IMAGE_EXTENSIONS)]
    found = next((candidate for candidate in beside if candidate.is_file()), None)
    if found is None:
        raise VisionsuiteError(f"{path}: its image {named or path.stem} is not there (LabelMe "
                               "keeps the image beside its JSON)")
    return found


def _mask(encoded, points: np.ndarray, size: tuple[int, int], path: Path, number: int) -> dict:
    """A mask shape as COCO's RLE of the whole image: its PNG (LabelMe's img_arr_to_b64)
    placed at the box's first corner."""
    import base64
    import io

    from PIL import Image, UnidentifiedImageError
    from pycocotools import mask as coco_mask

    try:
        with Image.open(io.BytesIO(base64.b64decode(encoded, validate=True))) as png:
            drawn = np.asarray(png.convert("L")) > 0
        left, top = (int(round(value)) for value in points[0])
    except (TypeError, ValueError, IndexError, OSError, UnidentifiedImageError):
        raise VisionsuiteError(f"{path}: shape {number}, a mask, holds no PNG mask at its "
                               "first point") from None
    width, height = size
    whole = np.zeros((height, width), np.uint8, order="F")
    if not (0 <= left and 0 <= top and left + drawn.shape[1] <= width
            and top + drawn.shape[0] <= height):
        raise VisionsuiteError(f"{path}: shape {number}, a mask of {drawn.shape[1]}x"
                               f"{drawn.shape[0]} at ({left}, {top}), leaves the "
                               f"{width}x{height} image")
    whole[top:top + drawn.shape[0], left:left + drawn.shape[1]] = drawn
    return coco_mask.encode(whole)


def _polygon(kind: str, points: np.ndarray, path: Path, number: int) -> list[float]:
    """A shape as the corners of a polygon, flat: x1, y1, x2, y2, ..."""
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        points = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    elif kind == "circle" and len(points) == 2:
        centre, edge = points
        radius = float(np.hypot(*(edge - centre)))
        return ellipse_ring(tuple(centre), (radius, radius))
    elif kind == "rectangle" and len(points) == 4:  # its corners, as some converters write it
        pass
    elif kind != "polygon" or len(points) < 3:
        raise VisionsuiteError(f"{path}: shape {number}, a {kind}, has {len(points)} points")
    return points.ravel().tolist()


def class_names(images: list[LabelmeImage]) -> list[str]:
    """background, then every other label drawn, in name order."""
    labels = {label for image in images for label, _ in image.shapes}
    return ["background", *sorted(labels - set(BACKGROUND_LABELS))]
