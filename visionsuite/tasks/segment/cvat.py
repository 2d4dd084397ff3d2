"""CVAT's own XML, "CVAT for images 1.1", as CVAT exports a task or a project (a ZIP of
`annotations.xml`, and with 'Save images' the images in `images/`, under their subset's folder
for a project):

    <annotations>
      <meta> ... <labels><label><name>cell</name> ... </labels> ... </meta>
      <image id="0" name="a.png" width="640" height="480" subset="Train">
        <polygon label="cell" points="x1,y1;x2,y2;..." z_order="0"/>
        <mask label="nucleus" rle="r1, r2, ..." left="l" top="t" width="w" height="h"/>
        <box label="..." xtl="" ytl="" xbr="" ybr="" rotation="0"/>
        <ellipse label="..." cx="" cy="" rx="" ry="" rotation="0"/>
        <polyline .../> <points .../> <skeleton ...> <tag .../>
      </image>

Polygons, masks, boxes and ellipses are filled as their label's class, as CVAT's own
"Segmentation mask" export fills them (turned by their rotation in degrees, masks as runs
within their box: shapes.BoxRuns), the higher z_order over the lower; polylines, points,
skeletons, cuboids and tags have no area and are left out and counted. The classes are
background, then the labels in the order the file's meta declares them.

"CVAT for video 1.1" (a video task: `<track>`s of shapes, one per frame they are on, with
`outside="1"` where the object has left) is read as its frames, `images/frame_000000.png`
... as CVAT saves them with 'Save images', each with the shapes its tracks draw on it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from xml.etree import ElementTree

from visionsuite.core.files import data_files, inside
from visionsuite.core.images import stored_geometry
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.shapes import BoxRuns, ListedImage, box_ring, ellipse_ring
from visionsuite.tasks.segment.shapes import listed_image_path

AREA_SHAPES = ("polygon", "mask", "box", "ellipse")
NO_AREA = ("polyline", "points", "skeleton", "cuboid", "tag")
IMAGE_FOLDERS = ("images", "")  # where an export with 'Save images' puts them
VIDEO_FRAME = re.compile(r"frame_(\d+)")  # a video's frames, as CVAT saves them


def cvat_files(root: Path) -> list[Path]:
    """The CVAT XML files below `root`, in path order."""
    return [path for path in data_files(root, "*.xml") if is_cvat_xml(path)]


def is_cvat_xml(path: Path) -> bool:
    """Whether an XML file is CVAT's, from its head: its root is <annotations> (Pascal VOC's
    <annotation>, Aperio's <Annotations> are not) and it has CVAT's <version> or <meta>."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return b"<annotations>" in head and (b"<version>" in head or b"<meta>" in head)


def read_cvat(path: Path, root: Path, lookup: dict[str, Path | None]
              ) -> tuple[list[ListedImage], list[str], int]:
    """A CVAT XML file's images with their shapes, the labels its meta declares in order, and
    the count of shapes without an area. `lookup`: image_lookup(root), to find images the
    file names elsewhere in the dataset."""
    inside(root, path.relative_to(root))  # a link out of the dataset
    try:
        annotations = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as err:
        raise VisionsuiteError(f"{path}: not a CVAT XML file ({err})") from None
    declared = [label.findtext("name", "").strip() for label in annotations.iter("label")
                if label.findtext("name") and label.find("parent") is None]
    if annotations.find("track") is not None:  # CVAT for video: tracks through its frames
        images, left_out = _video_frames(path, root, annotations)
        return images, declared, left_out
    images, left_out = [], 0
    for number, element in enumerate(annotations.iter("image")):
        try:
            name, size = element.attrib["name"], (int(element.attrib["width"]),
                                                  int(element.attrib["height"]))
        except (KeyError, ValueError):
            raise VisionsuiteError(f"{path}: image {element.get('id', number)} needs a name, "
                                   "a width and a height") from None
        subset = element.get("subset", "")
        folders = ((f"images/{subset}",) if subset else ()) + IMAGE_FOLDERS
        shapes = []
        for shape in element:
            if shape.tag in NO_AREA:
                left_out += 1
            elif shape.tag in AREA_SHAPES:
                shapes.append((shape.get("label", "").strip(), _area(path, name, shape, size),
                               _number(path, name, shape, "z_order", 0)))
        image = listed_image_path(path, name, root, lookup, folders)
        images.append(ListedImage(path, image, size, shapes, subset))
    if not images:
        raise VisionsuiteError(f"{path}: lists no images")
    return images, declared, left_out


def _video_frames(path: Path, root: Path, annotations) -> tuple[list[ListedImage], int]:
    """The frames of a CVAT for video export with the shapes its tracks draw on each: every
    frame image in images/ (frame_000000.png, ... as CVAT saves a video's frames), a track's
    shape on the frame it names unless it is `outside` the frame then."""
    folder = path.parent / "images"
    frames = {int(match[1]): inside(root, image.relative_to(root))  # no link out
              for image in sorted(folder.glob("*")) if image.is_file()
              and (match := VIDEO_FRAME.fullmatch(image.stem))} if folder.is_dir() else {}
    if not frames:
        raise VisionsuiteError(f"{path}: CVAT for video without its frames in {folder} "
                               "(export with 'Save images')")
    shapes: dict[int, list] = {number: [] for number in frames}
    sizes = {number: stored_geometry(image)[0] for number, image in frames.items()}
    left_out = 0
    for track in annotations.iter("track"):
        label = track.get("label", "").strip()
        for shape in track:
            frame = int(_number(path, f"track {track.get('id')}", shape, "frame"))
            if shape.get("outside", "0") == "1" or frame not in frames:
                continue
            name = frames[frame].name
            if shape.tag in NO_AREA:
                left_out += 1
            elif shape.tag in AREA_SHAPES:
                shapes[frame].append((label, _area(path, name, shape, sizes[frame]),
                                      _number(path, name, shape, "z_order", 0)))
    return [ListedImage(path, image, sizes[number], shapes[number])
            for number, image in sorted(frames.items())], left_out


def _area(path: Path, name: str, shape, size: tuple[int, int]):
    """A shape as a polygon or BoxRuns."""
    def number(key: str) -> float:
        return _number(path, name, shape, key)

    if shape.tag == "polygon":
        try:
            points = [[float(value) for value in point.split(",")]
                      for point in shape.get("points", "").split(";")]
            if any(len(point) != 2 for point in points):
                raise ValueError
            return [value for point in points for value in point]
        except ValueError:
            raise VisionsuiteError(f"{path}: a polygon of {name} has points that are not "
                                   "x,y;x,y;...") from None
    angle = math.radians(_number(path, name, shape, "rotation", 0))
    if shape.tag == "box":
        return box_ring(number("xtl"), number("ytl"), number("xbr"), number("ybr"), angle)
    if shape.tag == "ellipse":
        return ellipse_ring((number("cx"), number("cy")), (number("rx"), number("ry")), angle)
    try:
        runs = BoxRuns(int(number("left")), int(number("top")), int(number("width")),
                       int(number("height")),
                       tuple(int(value) for value in shape.get("rle", "").split(",")))
    except ValueError:
        raise VisionsuiteError(f"{path}: a mask of {name} has an rle that is not counts "
                               "separated by commas") from None
    if not runs.fits(*size):
        raise VisionsuiteError(f"{path}: a mask of {name}: its rle or its box "
                               f"({runs.width}x{runs.height} at {runs.left}, {runs.top}) does "
                               f"not fit the {size[0]}x{size[1]} image")
    return runs


def _number(path: Path, name: str, shape, key: str, default: float | None = None) -> float:
    value = shape.get(key)
    try:
        return float(value) if value is not None or default is None else default
    except (TypeError, ValueError):
        raise VisionsuiteError(f"{path}: a {shape.tag} of {name} has no number as its "
                               f"{key} ({value!r})") from None
