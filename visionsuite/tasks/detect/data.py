"""Detection datasets in the three formats users bring, read into one form.

- YOLO: `data.yaml` (train/val image folders or lists, `names`), `labels/*.txt` beside
  `images/` with `class cx cy w h` normalised to the image (polygon rows are boxed).
- Pascal VOC: `images/` + `annotations/*.xml` with `train.txt`/`val.txt`, or the VOCdevkit
  layout (`JPEGImages/`, `Annotations/`, `ImageSets/Main/`). VOC corners are 1-based.
- COCO JSON: `train.json`/`val.json` (or Roboflow's `train/` and `valid/`
  `_annotations.coco.json`), `file_name` relative to the JSON's folder.

Every box becomes pixel corners (x1, y1, x2, y2) on the image as shown upright (EXIF
orientation applied, see upright_annotation), 0-based, x2/y2 exclusive. Files that cannot be
parsed are errors naming the file and line; single bad boxes (outside the image, zero area,
unknown class, duplicates) are counted and left out by `clean_boxes`. VOC's `difficult`
objects and COCO's crowd regions are kept apart (`split_ignored`): left out of training, and
regions the mAP ignores, as the VOC devkit and pycocotools score them. Paths that leave the
dataset folder are refused. Nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from visionsuite.core.coco import (COCO_TEST, category_names, coco_file_name, coco_files,
                                   coco_image, coco_image_folder, load_coco)
from visionsuite.core.files import wrapper_content
from visionsuite.core.splits import Fold, no_test_split
from visionsuite.core.yolo import YOLO_TEST, yolo_label_path, yolo_splits, yolo_yaml
from visionsuite.core.images import upright_size
from visionsuite.errors import VisionsuiteError

# Where each format keeps a test split (evaluate --split test).
TEST_SPLIT_FILES = {"yolo": YOLO_TEST, "coco": COCO_TEST,
                    "voc": "test.txt beside the annotations or in ImageSets/Main/"}
BOX_PROBLEMS = ("outside the image", "zero area", "unknown class", "duplicate",
                "clipped to the image")


@dataclass
class Annotation:
    """One image and its boxes. `normalized`: YOLO boxes as (cx, cy, w, h) fractions, turned
    into pixels once the image size is known."""

    image: Path
    boxes: np.ndarray  # (N, 4) float32
    classes: np.ndarray  # (N,) int64; may hold ids outside the labels until cleaned
    size: tuple[int, int] | None = None  # (width, height) when the annotation states it
    normalized: bool = False
    source: Path | None = None  # the annotation file, for messages
    ignore: np.ndarray | None = None  # (N,) bool: VOC difficult, COCO crowd; None = none


def split_ignored(annotation: Annotation) -> tuple[Annotation, Annotation]:
    """The annotation's objects, and its regions to ignore (VOC difficult, COCO crowd)."""
    flags = (np.zeros(len(annotation.boxes), bool) if annotation.ignore is None
             else annotation.ignore.astype(bool))

    def part(keep):
        return dataclasses.replace(annotation, boxes=annotation.boxes[keep],
                                   classes=annotation.classes[keep], ignore=None)
    return part(~flags), part(flags)


@dataclass
class DetectionIndex:
    format: str
    labels: list[str]
    train: list[Annotation]
    val: list[Annotation]
    missing: list[str] = field(default_factory=list)  # referenced images that do not exist
    split_by_fraction: bool = False  # val was drawn from train (no val split of its own)


def index_detection(root: str | Path, val_fraction: float = 0.2, seed: int = 0,
                    held_out: str = "val", train: bool = True) -> DetectionIndex:
    """The annotated images of a YOLO, COCO or Pascal VOC dataset, train and val (`held_out`
    "test": its test split in val's place). Without `train` (evaluate, data check --split
    test), a dataset's own held-out split is read alone: its train labels are neither parsed
    (COCO's instances_train2017.json is 450 MB) nor reported."""
    root = Path(root)
    if not root.is_dir():
        raise VisionsuiteError(f"{root}: dataset folder not found")
    found = _format_of(root)
    if found == "yolo":
        index = read_yolo(root, held_out, train)
    elif found == "coco":
        index = read_coco(root, held_out, train)
    elif found == "voc":
        index = read_voc(_voc_root(root), held_out, train)
    elif (inner := wrapper_content(root)) is not None:  # an archive's folder around the set
        return index_detection(inner, val_fraction, seed, held_out, train)
    else:
        raise VisionsuiteError(
            f"{root}: not a detection dataset: expected data.yaml (YOLO), COCO files "
            "(train.json/val.json, train/_annotations.coco.json, annotations/instances_*.json "
            "or result.json) or annotations/*.xml (Pascal VOC)")
    if held_out == "test" and not index.val:
        raise no_test_split(root, TEST_SPLIT_FILES[index.format])
    if not index.val and index.train:
        index.train, index.val = _split(index.train, val_fraction, seed)
        index.split_by_fraction = True
    if not index.train and not index.val:
        raise VisionsuiteError(f"{root}: no annotated images found ({index.format})")
    return index


def _split(items: list[Annotation], fraction: float, seed: int):
    """(train, val) of a set without a val split: a seeded `fraction` of the images, or a
    Fold's share of them (every folds-th of the seeded order)."""
    if fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset
        return [], list(items)
    order = np.random.default_rng(seed).permutation(len(items))
    if isinstance(fraction, Fold):
        if len(items) < fraction.folds:
            raise VisionsuiteError(f"data.folds={fraction.folds}: {len(items)} annotated images "
                                   "are too few for so many folds")
        val = set(order[fraction.fold::fraction.folds].tolist())
    else:
        count = max(1, int(round(len(items) * fraction))) if len(items) > 1 else 0
        val = set(order[:count].tolist())
    return ([a for i, a in enumerate(items) if i not in val],
            [a for i, a in enumerate(items) if i in val])


# --------------------------------------------------------------------------- Pascal VOC


def _voc_root(root: Path) -> Path | None:
    """The folder holding the annotations: root itself, or VOCdevkit/VOC20xx below it."""
    candidates = [root] + sorted(root.glob("VOC*")) + sorted(root.glob("VOCdevkit/VOC*"))
    for folder in candidates:
        if _first_dir(folder, ("annotations", "Annotations")):
            return folder
    return None


def _first_dir(root: Path, names) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _voc_list(root: Path, split: str) -> Path | None:
    """A VOC set's list of a split's images: SPLIT.txt beside the annotations or in
    ImageSets/Main/."""
    return next((folder / f"{split}.txt" for folder in (root, root / "ImageSets" / "Main")
                 if (folder / f"{split}.txt").is_file()), None)


def _format_of(root: Path) -> str | None:
    """Which of the formats the dataset folder `root` is in, tried in this order."""
    if yolo_yaml(root) is not None:
        return "yolo"
    if any(coco_files(root).values()):
        return "coco"
    return "voc" if _voc_root(root) is not None else None


def voc_test_list(root: Path) -> Path | None:
    """The test list of the VOC set in `root` (its VOCdevkit), if it is one and has one."""
    if not root.is_dir() or _format_of(root) != "voc":
        return None
    return _voc_list(_voc_root(root), "test")


def read_voc(root: Path, held_out: str = "val", train: bool = True) -> DetectionIndex:
    """A Pascal VOC set: its train and `held_out` lists (train.txt, val.txt or test.txt,
    beside the annotations or in ImageSets/Main/), else every annotation as train; without
    `train`, the held-out list alone where there is one."""
    annotations = _first_dir(root, ("annotations", "Annotations"))
    images = _first_dir(root, ("images", "JPEGImages")) or root
    splits = {}
    for split, listed in (("train", "train"), ("val", held_out)):
        found = _voc_list(root, listed)
        if found is not None:
            splits[split] = _read_list(found)
    if not train and "val" in splits:
        splits.pop("train", None)
    xml_files = sorted(annotations.glob("*.xml"))
    if not xml_files:
        raise VisionsuiteError(f"{annotations}: no .xml annotation files")
    by_stem = {path.stem: path for path in xml_files}
    parsed, names, missing = {}, [], []
    wanted = (splits.get("train", []) + splits.get("val", [])) if splits else list(by_stem)
    for stem in dict.fromkeys(wanted):
        if stem not in by_stem:
            raise VisionsuiteError(f"{annotations}: no annotation {stem}.xml for the image "
                                   "listed in the split file")
        annotation, objects = _parse_voc(by_stem[stem], images)
        if annotation is None:
            missing.append(f"{by_stem[stem]}: its image was not found in {images}")
            continue
        names += objects
        parsed[stem] = annotation
    labels = sorted(set(names))
    for annotation in parsed.values():
        annotation.classes = np.array([labels.index(n) for n in annotation.classes], np.int64)
    if splits:
        train = [parsed[s] for s in splits.get("train", []) if s in parsed]
        val = [parsed[s] for s in splits.get("val", []) if s in parsed]
    else:
        train, val = list(parsed.values()), []
    return DetectionIndex("voc", labels, train, val, missing)


def _read_list(path: Path) -> list[str]:
    # VOC's per-class lists carry a second column (1/-1); the image stem is the first.
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _parse_voc(path: Path, images: Path):
    try:
        tree = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as err:
        raise VisionsuiteError(f"{path}: malformed XML ({err})") from None
    filename = (tree.findtext("filename") or "").strip()
    image = _voc_image(images, filename, path.stem)
    if image is None:
        return None, []
    size = None
    width, height = tree.findtext("size/width"), tree.findtext("size/height")
    try:
        if width and height and int(float(width)) > 0 and int(float(height)) > 0:
            size = (int(float(width)), int(float(height)))
    except ValueError:
        raise VisionsuiteError(f"{path}: <size> is not a number") from None
    boxes, names, difficult = [], [], []
    for number, obj in enumerate(tree.findall("object"), 1):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise VisionsuiteError(f"{path}: object {number} has no <name> or <bndbox>")
        try:
            x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise VisionsuiteError(f"{path}: object {number}: <bndbox> needs numeric xmin, "
                                   "ymin, xmax, ymax") from None
        boxes.append((x1 - 1.0, y1 - 1.0, x2, y2))  # 1-based inclusive -> 0-based corners
        names.append(name)
        difficult.append((obj.findtext("difficult") or "0").strip() == "1")
    return Annotation(image, np.array(boxes, np.float32).reshape(-1, 4),
                      np.array(names, object), size, source=path,
                      ignore=np.array(difficult, bool)), names


def _voc_image(images: Path, filename: str, stem: str) -> Path | None:
    if filename:  # its base name only: <filename> cannot lead out of the images folder
        candidate = images / Path(filename).name
        if candidate.is_file():
            return candidate
    for extension in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".tif"):
        if (images / f"{stem}{extension}").is_file():
            return images / f"{stem}{extension}"
    return None


# --------------------------------------------------------------------------- YOLO


def read_yolo(root: Path, held_out: str = "val", train: bool = True) -> DetectionIndex:
    labels, images = yolo_splits(root, held_out)
    if not train and images["val"]:
        images["train"] = []
    return DetectionIndex("yolo", labels, [_read_yolo_labels(image) for image in images["train"]],
                          [_read_yolo_labels(image) for image in images["val"]])


def _read_yolo_labels(image: Path) -> Annotation:
    label_path = yolo_label_path(image)
    boxes, classes = [], []
    if label_path.is_file():  # no label file: a negative image
        for number, line in enumerate(label_path.read_text().splitlines(), 1):
            values = line.split()
            if not values:
                continue
            if len(values) < 5 or (len(values) > 5 and len(values) % 2 == 0):
                raise VisionsuiteError(
                    f"{label_path}:{number}: {len(values)} columns; expected 5 (class cx cy w h) "
                    "or a polygon (class x1 y1 x2 y2 ...)")
            try:
                numbers = [float(v) for v in values]
            except ValueError:
                raise VisionsuiteError(f"{label_path}:{number}: not a number in "
                                       f"'{line.strip()}'") from None
            if numbers[0] != int(numbers[0]):
                raise VisionsuiteError(f"{label_path}:{number}: class id {values[0]} is not a "
                                       "whole number")
            if len(numbers) > 5:  # polygon: its bounding box
                xs, ys = numbers[1::2], numbers[2::2]
                cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
                numbers = [numbers[0], cx, cy, max(xs) - min(xs), max(ys) - min(ys)]
            classes.append(int(numbers[0]))
            boxes.append(numbers[1:5])
    return Annotation(image, np.array(boxes, np.float32).reshape(-1, 4),
                      np.array(classes, np.int64), None, normalized=True, source=label_path)


# --------------------------------------------------------------------------- COCO


def read_coco(root: Path, held_out: str = "val", train: bool = True) -> DetectionIndex:
    labels: list[str] | None = None
    category_ids: list[int] | None = None
    splits, missing = {}, []
    files = coco_files(root, held_out)
    if not train and files["val"] is not None:
        files["train"] = None
    for split, path in files.items():
        if path is None:
            splits[split] = []
            continue
        spec = load_coco(path)
        names = category_names(spec, path)
        ids = list(names)
        if category_ids is None:
            category_ids, labels = ids, list(names.values())
        elif ids != category_ids:
            raise VisionsuiteError(f"{path}: its categories differ from the train split's")
        splits[split] = _coco_annotations(path, root, spec, category_ids, missing)
    return DetectionIndex("coco", labels or [], splits["train"], splits["val"], missing)


def _coco_annotations(path: Path, root: Path, spec: dict, category_ids: list[int],
                      missing: list[str]) -> list[Annotation]:
    folder = coco_image_folder(root, path, spec)
    by_image: dict[int, list] = {}
    for number, item in enumerate(spec["annotations"]):
        try:
            image_id, bbox = int(item["image_id"]), [float(v) for v in item["bbox"]]
            category = int(item["category_id"])
        except (KeyError, TypeError, ValueError):
            raise VisionsuiteError(f"{path}: annotation {number} needs image_id, category_id "
                                   "and bbox [x, y, w, h]") from None
        if len(bbox) != 4:
            raise VisionsuiteError(f"{path}: annotation {number}: bbox has {len(bbox)} values, "
                                   "expected [x, y, w, h]")
        x, y, w, h = bbox
        # Unknown categories keep an id past the labels, for clean_boxes to count.
        index = category_ids.index(category) if category in category_ids else len(category_ids)
        # Crowd regions are not objects to detect one by one: ignored, as pycocotools does.
        by_image.setdefault(image_id, []).append(((x, y, x + w, y + h), index,
                                                  bool(item.get("iscrowd"))))
    annotations = []
    for number, item in enumerate(spec["images"]):
        try:
            image_id, name = int(item["id"]), coco_file_name(item)
        except (KeyError, TypeError, ValueError):
            raise VisionsuiteError(f"{path}: image {number} needs id and file_name") from None
        image = coco_image(root, folder, name)
        if not image.is_file():
            missing.append(f"{path}: image {name} does not exist")
            continue
        entries = by_image.get(image_id, [])
        size = (int(item["width"]), int(item["height"])) if item.get("width") else None
        annotations.append(Annotation(
            image, np.array([e[0] for e in entries], np.float32).reshape(-1, 4),
            np.array([e[1] for e in entries], np.int64), size, source=path,
            ignore=np.array([e[2] for e in entries], bool)))
    return annotations


# --------------------------------------------------------------------------- boxes

# EXIF orientations that turn the image a quarter -> where a point (x, y) of the stored w x h
# image is shown upright (the transposes of Pillow's exif_transpose, and so of read_image).
_UPRIGHT_POINT = {
    5: lambda x, y, w, h: (y, x),
    6: lambda x, y, w, h: (h - y, x),
    7: lambda x, y, w, h: (h - y, w - x),
    8: lambda x, y, w, h: (y, w - x),
}


def upright_annotation(annotation: Annotation, stored: tuple[int, int],
                       orientation: int) -> tuple[Annotation, tuple[int, int]]:
    """The annotation on its image as read_image shows it (EXIF orientation applied), and that
    image's (width, height). Normalised (YOLO) boxes count as drawn upright, as Ultralytics and
    OpenCV take them. Pixel boxes whose file states the stored size, where upright it differs
    (LabelImg on a phone photo taken sideways), were drawn on the stored pixels: they are moved."""
    upright = upright_size(stored, orientation)
    if annotation.normalized or annotation.size != stored or upright == stored:
        return annotation, upright
    width, height = stored
    x1, y1, x2, y2 = annotation.boxes.astype(np.float64).T
    xa, ya = _UPRIGHT_POINT[orientation](x1, y1, width, height)
    xb, yb = _UPRIGHT_POINT[orientation](x2, y2, width, height)
    boxes = np.stack([np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb),
                      np.maximum(ya, yb)], 1).astype(np.float32)
    return dataclasses.replace(annotation, boxes=boxes, size=upright), upright


def clean_boxes(annotation: Annotation, size: tuple[int, int], classes: int):
    """Pixel boxes (N, 4) and classes (N,) of `annotation` on an image of `size` (w, h), with
    bad boxes left out, and a Counter of what was left out (BOX_PROBLEMS). Boxes reaching
    past the border are clipped to it (annotation tools often overshoot by a pixel)."""
    width, height = size
    boxes = annotation.boxes.astype(np.float64).copy()
    if annotation.normalized:
        cx, cy, w, h = boxes.T
        boxes = np.stack([(cx - w / 2) * width, (cy - h / 2) * height,
                          (cx + w / 2) * width, (cy + h / 2) * height], 1)
    counts: Counter = Counter()
    keep, seen = [], set()
    for index, (box, label) in enumerate(zip(boxes, annotation.classes)):
        x1, y1, x2, y2 = box
        if not 0 <= label < classes:
            counts["unknown class"] += 1
            continue
        if x2 <= x1 or y2 <= y1:
            counts["zero area"] += 1
            continue
        clipped = np.clip(box, 0, [width, height, width, height])
        if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            counts["outside the image"] += 1
            continue
        if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
            counts["clipped to the image"] += 1  # reported; the part inside is kept
        key = (int(label), *np.round(clipped, 1))
        if key in seen:
            counts["duplicate"] += 1
            continue
        seen.add(key)
        boxes[index] = clipped
        keep.append(index)
    return (boxes[keep].astype(np.float32).reshape(-1, 4),
            annotation.classes[keep].astype(np.int64), counts)


def describe_counts(counts: Counter) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in BOX_PROBLEMS if counts.get(k))
