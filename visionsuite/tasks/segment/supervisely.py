"""Supervisely's project format, as Supervisely exports projects and Dataset Ninja ships its
sets (many of them medical and microscopy):

    project/meta.json                 the classes: [{"title": "cell", "shape": "bitmap",
                                      "color": "#FF0000"}, ...]
    project/<dataset>/img/a.png       a folder per dataset (train, val, test, ds0, ...)
    project/<dataset>/ann/a.png.json  {"size": {"height": H, "width": W}, "objects": [...]}

An object's `classTitle` is its class; its `geometryType`: `polygon` (`points.exterior`, its
`points.interior` rings holes), `rectangle` (two corners) and `bitmap` (a base64, zlib
compressed PNG placed at its `origin`; `alpha_mask` alike) are filled; points, lines,
polylines, graphs (keypoints) and cuboids have no area and are left out and counted. The
classes are background, then those drawn in meta.json's order. A dataset folder is the
images' subset: named as a split (train, val, test), it is that split.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.files import inside, sub_folders
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.shapes import ListedImage, PlacedMask, box_ring

META = "meta.json"
AREA_TYPES = ("polygon", "rectangle", "bitmap", "alpha_mask")


@dataclass(frozen=True)
class SuperviselyBitmap(PlacedMask):
    """A bitmap object: Supervisely's base64 of a zlib-compressed PNG, drawn at (`left`,
    `top`); decoded only when its mask is drawn. The PNG's opaque (or non-zero) pixels are
    the object; what falls outside the image is cut off."""

    data: str
    left: int
    top: int

    def drawn(self, height: int, width: int) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(zlib.decompress(base64.b64decode(self.data)))) as png:
            alpha = "A" in png.getbands() or "transparency" in png.info
            bitmap = np.asarray(png.convert("RGBA"))[..., 3] > 0 if alpha \
                else np.asarray(png.convert("L")) > 0
        whole = np.zeros((height, width), bool)
        top, left = max(self.top, 0), max(self.left, 0)
        bottom = min(self.top + bitmap.shape[0], height)
        right = min(self.left + bitmap.shape[1], width)
        if bottom > top and right > left:
            whole[top:bottom, left:right] = bitmap[top - self.top:bottom - self.top,
                                                   left - self.left:right - self.left]
        return whole


def supervisely_files(root: Path) -> list[Path]:
    """The annotation files of a Supervisely project at `root` (its meta.json, and dataset
    folders of img/ and ann/), in path order; [] where `root` is no such project."""
    if not (root / META).is_file():
        return []
    datasets = [folder for folder in sub_folders(root)
                if (folder / "ann").is_dir() and (folder / "img").is_dir()]
    return sorted(path for folder in datasets for path in (folder / "ann").glob("*.json")
                  if path.is_file())


def read_supervisely(root: Path, files: list[Path]
                     ) -> tuple[list[ListedImage], list[str], int]:
    """The project's images with their shapes, its classes in meta.json's order, and the
    count of objects without an area."""
    meta = _json(root / META)
    classes = meta.get("classes") if isinstance(meta, dict) else None
    if not isinstance(classes, list):
        raise VisionsuiteError(f"{root / META}: no list of classes")
    declared = [str(item.get("title")) for item in classes
                if isinstance(item, dict) and item.get("title")]
    images, left_out = [], 0
    for path in files:
        image, without_area = _read_annotation(root, path)
        images.append(image)
        left_out += without_area
    return images, declared, left_out


def _read_annotation(root: Path, path: Path) -> tuple[ListedImage, int]:
    """One image's annotation file: the image (img/ beside ann/, named as the file less
    .json) and its objects."""
    inside(root, path.relative_to(root))  # a link out of the dataset
    document = _json(path)
    try:
        size = (int(document["size"]["width"]), int(document["size"]["height"]))
        objects = document["objects"]
        if not isinstance(objects, list):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise VisionsuiteError(f"{path}: not a Supervisely annotation (expected its size "
                               "and its objects)") from None
    image = inside(root, path.parent.parent.relative_to(root) / "img" / path.stem)
    if not image.is_file():
        raise VisionsuiteError(f"{path}: its image {path.stem} is not in {image.parent}")
    shapes, left_out = [], 0
    for number, item in enumerate(objects):
        kind = item.get("geometryType") if isinstance(item, dict) else None
        if kind not in AREA_TYPES:
            left_out += 1
            continue
        label = str(item.get("classTitle") or "foreground")
        for drawn, hole in _areas(path, number, kind, item):
            shapes.append(("background" if hole else label, drawn, 0))
    return ListedImage(path, image, size, shapes, path.parent.parent.name), left_out


def _areas(path: Path, number: int, kind: str, item: dict):
    """An object's areas as (polygon or SuperviselyBitmap, whether it is a hole)."""
    try:
        if kind in ("bitmap", "alpha_mask"):
            left, top = (int(value) for value in item[kind]["origin"])
            return [(SuperviselyBitmap(str(item[kind]["data"]), left, top), False)]
        exterior = np.asarray(item["points"]["exterior"], np.float64).reshape(-1, 2)
        if kind == "rectangle":
            (left, top), (right, bottom) = exterior[:2]
            return [(box_ring(left, top, right, bottom), False)]
        holes = [np.asarray(ring, np.float64).reshape(-1, 2)
                 for ring in item["points"].get("interior") or []]
        return [(exterior.ravel().tolist(), False)] + [(ring.ravel().tolist(), True)
                                                        for ring in holes]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise VisionsuiteError(f"{path}: object {number}, a {kind}, lacks its points or "
                               "bitmap") from None


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise VisionsuiteError(f"{path}: not a JSON file ({err})") from None
