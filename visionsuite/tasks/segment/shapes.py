"""What annotation tools that list many images (CVAT's XML, VIA's JSON, Supervisely's
projects) draw, in the forms the masks are filled from (decode._drawn_classes): polygons as
COCO's flat [x1, y1, x2, y2, ...] in the image's pixels, and masks of part of an image
(PlacedMask: CVAT's runs within their box, Supervisely's bitmaps). Ellipses, circles and
turned boxes become polygons here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.files import inside
from visionsuite.core.image_tables import find_image
from visionsuite.errors import VisionsuiteError

ELLIPSE_POINTS = 64  # corners of the polygon an ellipse or circle is drawn as
BACKGROUND_LABELS = ("background", "_background_")  # shapes that cut holes (class 0)


class PlacedMask:
    """A mask drawn over part of an image, decoded only when it is drawn."""

    def drawn(self, height: int, width: int) -> np.ndarray:
        """The (height, width) bool mask of the whole image."""
        raise NotImplementedError


@dataclass(frozen=True)
class BoxRuns(PlacedMask):
    """A mask as CVAT stores one: runs of 0 and 1 in turn, 0s first, row by row through its
    box of `width` x `height` pixels at (`left`, `top`) of the image."""

    left: int
    top: int
    width: int
    height: int
    counts: tuple[int, ...]

    def drawn(self, height: int, width: int) -> np.ndarray:
        """The mask over a whole image of `height` x `width` pixels."""
        values = np.arange(len(self.counts)) % 2
        box = np.repeat(values.astype(bool), self.counts).reshape(self.height, self.width)
        whole = np.zeros((height, width), bool)
        whole[self.top:self.top + self.height, self.left:self.left + self.width] = box
        return whole

    def fits(self, width: int, height: int) -> bool:
        """Whether its runs fill its box exactly and the box lies within the image."""
        return (sum(self.counts) == self.width * self.height and min(self.counts, default=0) >= 0
                and 0 <= self.left and 0 <= self.top and self.left + self.width <= width
                and self.top + self.height <= height)


@dataclass
class ListedImage:
    """An image with the shapes its annotation file (CVAT's, VIA's, Supervisely's) draws on
    it."""

    file: Path  # the annotation file
    image: Path
    size: tuple[int, int]  # (width, height) the shapes are drawn at
    # (label, a polygon [x1, y1, ...] or a PlacedMask, its z order: higher drawn over lower)
    shapes: list[tuple[str, object, float]]
    subset: str = ""  # its split, where the files give one (CVAT's Train, a Supervisely dataset)


def ellipse_ring(centre: tuple[float, float], radii: tuple[float, float],
                 angle: float = 0.0) -> list[float]:
    """An ellipse (a circle for equal radii) turned by `angle` radians, as a polygon."""
    turns = np.linspace(0, 2 * np.pi, ELLIPSE_POINTS, endpoint=False)
    x, y = radii[0] * np.cos(turns), radii[1] * np.sin(turns)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + x * cos - y * sin, centre[1] + x * sin + y * cos],
                    axis=-1).ravel().tolist()


def box_ring(left: float, top: float, right: float, bottom: float,
             angle: float = 0.0) -> list[float]:
    """A box turned by `angle` radians about its centre, as a polygon of its 4 corners."""
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    corners = np.array([(left, top), (right, top), (right, bottom), (left, bottom)]) - centre
    cos, sin = np.cos(angle), np.sin(angle)
    return (corners @ np.array([[cos, sin], [-sin, cos]]) + centre).ravel().tolist()


def listed_image_path(path: Path, name: str, root: Path, lookup: dict[str, Path | None],
                      folders: tuple[str, ...] = ("",)) -> Path:
    """The image a file of annotations names: `name` in each of `folders` beside the file,
    else by its path or file name anywhere in the dataset (`lookup`: image_lookup's). A name
    that leaves the dataset is refused; an absolute one (the annotator's disk, a URL) is
    looked for by its file name. A name not found, or in two places, is an error naming
    the file."""
    named = name.replace("\\", "/").strip()
    if named.startswith("/") or ":" in named.split("/", 1)[0]:
        named = named.rsplit("/", 1)[-1]
    for folder in folders:
        candidate = inside(root, path.parent.relative_to(root) / folder / named)
        if candidate.is_file():
            return candidate
    found = find_image(root, named, lookup)
    if found is not None:
        return found
    why = "is in two places" if any(key in lookup for key in (named, named.rsplit("/", 1)[-1])) \
        else "is not in the dataset"
    raise VisionsuiteError(f"{path}: its image {name} {why}")


def names_in_order(images: list[ListedImage], declared: list[str]) -> list[str]:
    """background, then the labels drawn: in the order the files declare them (`declared`),
    then any others in name order."""
    drawn = {label for image in images for label, _, _ in image.shapes} \
        - set(BACKGROUND_LABELS)
    ordered = [name for name in dict.fromkeys(declared) if name in drawn]
    return ["background", *ordered, *sorted(drawn - set(ordered))]


def class_values(names: list[str]) -> dict[str, int]:
    """The class index of each label: background's (0) for BACKGROUND_LABELS."""
    return {name: value for value, name in enumerate(names)} \
        | {label: 0 for label in BACKGROUND_LABELS}
