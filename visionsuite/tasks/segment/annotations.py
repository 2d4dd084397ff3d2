"""The pairs of datasets whose labels are annotation files or tables rather than mask
images: COCO, YOLO, Pascal VOC's lists, LabelMe, GeoJSON and Aperio outlines, CVAT, VIA and
Supervisely, run-length codes in a CSV, and the Cell Tracking Challenge's layout."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from visionsuite.core.coco import (category_names, coco_file_name, coco_image, coco_image_folder,
                                   load_coco)
from visionsuite.core.files import TRAIN_FOLDER_NAMES, VAL_FOLDER_NAMES, named_folder
from visionsuite.core.image_tables import image_lookup, image_table_files
from visionsuite.core.images import stored_geometry
from visionsuite.core.splits import EVERY_IMAGE, TEST_FOLDER_NAMES, held_out_names, no_test_split
from visionsuite.core.yolo import YOLO_TEST, yolo_label_path, yolo_splits, yolo_yaml
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.ctc import CtcSet
from visionsuite.tasks.segment.cvat import cvat_files, read_cvat
from visionsuite.tasks.segment.labelme import class_names as labelme_class_names
from visionsuite.tasks.segment.labelme import read_labelme
from visionsuite.tasks.segment.outlines import class_names as outline_class_names
from visionsuite.tasks.segment.outlines import read_outlines
from visionsuite.tasks.segment.pairs import Pair, PairIndex, fraction_split, labelled_splits
from visionsuite.tasks.segment.rle_tables import (RLE_ORDERS, holds_codes, read_rle_table,
                                                  rle_class_names)
from visionsuite.tasks.segment.shapes import ListedImage, class_values, names_in_order
from visionsuite.tasks.segment.supervisely import read_supervisely, supervisely_files
from visionsuite.tasks.segment.via import read_via, via_files
from visionsuite.tasks.segment.voc import OBJECTS, VocSet, listed_pairs


def ctc_index(root: Path, found: CtcSet, val_fraction: float, seed: int,
              held_out: str) -> PairIndex:
    """Pairs of a Cell Tracking Challenge set (ctc.py): frames with their segmentation,
    split by val_fraction (its test sets come without any); the masks number cells."""
    if held_out == "test":
        raise no_test_split(root, "a test/ folder of images and masks (the Cell Tracking "
                                  "Challenge's test sequences come without segmentations)")
    pairs = [Pair(image, mask) for image, mask in found.pairs]
    truth = ", ".join(f"{sequence}_{kind}/SEG/" for sequence, kind in found.truth.items())
    note = [f"Cell Tracking Challenge: {len(pairs)} frames segmented in {truth}"
            + (f"; {found.unlabelled} frames without a segmentation left out"
               if found.unlabelled else "")
            + (f"; {found.slice_masks} annotations of single slices (man_seg_T_Z.tif) left "
               "out" if found.slice_masks else "")
            + "; TRA/ markers not read"]
    if val_fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset
        return PairIndex(root, {"train": [], "val": pairs}, [], False, note,
                         numbered_masks=True)
    return PairIndex(root, fraction_split(root, pairs, val_fraction, seed), [], True, note,
                     numbered_masks=True)


def coco_index(root: Path, files: dict[str, Path | None], val_fraction: float,
               seed: int) -> PairIndex:
    """Pairs of a COCO segmentation dataset (train.json/val.json, or Roboflow's
    train/_annotations.coco.json and valid/...): each image with its annotations, classes
    the categories in id order after background. Without a val file, split by val_fraction."""
    names: dict[int, str] | None = None
    pairs: dict[str, list[Pair]] = {}
    for split, path in files.items():
        if path is None:
            continue
        spec = load_coco(path)
        found = category_names(spec, path)
        if names is not None and found != names:
            raise VisionsuiteError(f"{path}: its categories ({', '.join(found.values())}) "
                                   f"differ from the other split's ({', '.join(names.values())})")
        names = found
        values = {category: value for value, category in enumerate(names, start=1)}
        pairs[split] = _coco_pairs(root, path, spec, values)
    note = ["COCO: " + ", ".join(f"{split}: {files[split].relative_to(root)} "
                                 f"({len(found)} images)" for split, found in pairs.items())]
    first = next(path for path in files.values() if path is not None)
    splits, by_fraction = labelled_splits(root, pairs, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, ["background", *names.values()],
                     str(first.relative_to(root)))


def yolo_index(root: Path, val_fraction: float, seed: int, held_out: str,
               train: bool) -> PairIndex:
    """Pairs of a YOLO segmentation dataset (data.yaml; a label file of polygon rows, `class
    x1 y1 x2 y2 ...` normalised, beside each image as Ultralytics lays them out): classes
    the YAML's names after background. Without val images, split by val_fraction."""
    names, images = yolo_splits(root, held_out)
    if held_out == "test" and not images["val"]:
        raise no_test_split(root, YOLO_TEST)
    if (held_out == "test" or not train) and images["val"]:
        images["train"], val_fraction = [], EVERY_IMAGE  # the held-out images alone, all
    pairs = {split: [_yolo_pair(image) for image in found] for split, found in images.items()}
    if not pairs["train"] and not pairs["val"]:
        raise VisionsuiteError(f"{root}: its YAML names no images")
    note = ["YOLO: " + ", ".join(f"{split}: {len(found)} images"
                                 for split, found in pairs.items() if found)]
    splits, by_fraction = labelled_splits(root, pairs, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, ["background", *names],
                     yolo_yaml(root).name)


def _files_in(files: list[Path], folder: Path) -> list[Path]:
    return [path for path in files if folder in path.parents]


def labelme_index(root: Path, files: list[Path], val_fraction: float, seed: int,
                  held_out: str, train: bool) -> PairIndex:
    """Pairs of images annotated in LabelMe (labelme.py; `files`, the dataset's JSON files):
    those of train/ and val/ (or test/) where the dataset has such folders, else all of them
    split by val_fraction."""
    found, val_fraction = _split_files(root, files, held_out, train, val_fraction,
                                       "a test/ folder of images and LabelMe files")
    read = {split: [read_labelme(path, root) for path in files] for split, files in found.items()}
    names = labelme_class_names([image for images in read.values() for image in images])
    values = class_values(names)
    pairs = {split: [Pair(image.image, image.json, shapes=tuple(
        (values[label], drawn) for label, drawn in image.shapes), shapes_size=image.size)
        for image in images] for split, images in read.items()}
    left_out = sum(image.left_out for images in read.values() for image in images)
    return _annotated_index(root, pairs, names, "LabelMe", f"{left_out} shapes without an area "
                            "(lines, points)" if left_out else "", val_fraction, seed)


def _annotated_index(root: Path, pairs: dict[str, list[Pair]], names: list[str], source: str,
                     left_out: str, val_fraction: float, seed: int,
                     names_from: str = "") -> PairIndex:
    """The index of images with their annotation files (LabelMe's, GeoJSON): `pairs` by
    split (val alone for an evaluation), split by val_fraction where there is no val;
    data check's line counts them and the annotations `left_out` (described); the class
    names come from `names_from` (the files, by default)."""
    note = [f"{source}: " + ", ".join(f"{split}: {len(found)} images"
                                      for split, found in pairs.items() if found)
            + (f"; {left_out} left out" if left_out else "")]
    if "train" not in pairs:
        return PairIndex(root, {"train": [], "val": pairs["val"]}, [], False, note, names,
                         names_from or f"the {source} files")
    splits, by_fraction = labelled_splits(root, pairs, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, names,
                     names_from or f"the {source} files")


def voc_index(root: Path, voc: VocSet, val_fraction: float, seed: int, held_out: str,
              train: bool) -> PairIndex:
    """Pairs of a Pascal VOC segmentation set (voc.py): its train and val (or test) lists, or
    its one list split by val_fraction."""
    if held_out == "test" and "test" not in voc.lists:
        raise no_test_split(root, "ImageSets/Segmentation/test.txt")
    held = "test" if held_out == "test" else "val"
    if not {"train", "all"} & set(voc.lists):  # VOC's test archive: its test.txt alone
        if (train and held_out != "test") or "test" not in voc.lists:
            raise VisionsuiteError(f"{root}: no list of training images in "
                                   "ImageSets/Segmentation/ (train.txt and val.txt, or one list "
                                   "such as CVAT's default.txt); `--split test` reads test.txt")
        held = "test"
    if held in voc.lists and (held_out == "test" or not train):
        wanted, val_fraction = {"val": held}, EVERY_IMAGE  # the held-out list alone, all of it
    elif "all" in voc.lists:
        wanted = {"train": "all"}
    else:
        wanted = {"train": "train", "val": "val"}
    read = listed_pairs(voc, tuple(wanted.values()))
    pairs = {split: [Pair(image, mask) for image, mask in read[listed]]
             for split, listed in wanted.items()}
    folder = voc.folder.relative_to(root).as_posix() + "/" if voc.folder != root else ""
    note = ["Pascal VOC: " + ", ".join(
        f"{split}: {voc.lists[listed].relative_to(root)} ({len(pairs[split])} images)"
        for split, listed in wanted.items())
        + f"; images: {folder}JPEGImages/, masks: {folder}SegmentationClass/"
        + (" (instance masks in SegmentationObject/ not read)"
           if named_folder(voc.folder, (OBJECTS.lower(),)) else "")]
    splits, by_fraction = labelled_splits(root, {"train": [], **pairs}, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, voc.class_names, voc.names_from,
                     class_colours=voc.class_colours)


def outlines_index(root: Path, source: str, files: list[Path], val_fraction: float,
                   seed: int, held_out: str, train: bool) -> PairIndex:
    """Pairs of images outlined in a file each (outlines.py: GeoJSON, Aperio XML; `files`,
    the dataset's): those of train/ and val/ (or test/) where the dataset has such folders,
    else all of them split by val_fraction; each image with its outlines, holes cut as
    background (class 0)."""
    found, val_fraction = _split_files(root, files, held_out, train, val_fraction,
                                       f"a test/ folder of images and {source} files")
    images = image_lookup(root)
    read = {split: [read_outlines(path, root, images) for path in paths]
            for split, paths in found.items()}
    names = outline_class_names([image for listed in read.values() for image in listed])
    values = {name: value for value, name in enumerate(names)}
    pairs = {split: [Pair(image.image, image.file, shapes=tuple(
        (0 if label is None else values[label], [ring]) for label, ring in image.rings),
        shapes_size=stored_geometry(image.image)[0]) for image in listed]
        for split, listed in read.items()}
    left_out = sum(image.left_out for listed in read.values() for image in listed)
    return _annotated_index(root, pairs, names, source, f"{left_out} drawings without an "
                            "area (points, lines)" if left_out else "", val_fraction, seed)


def listing_files(root: Path) -> tuple[str, list[Path]] | None:
    """The files that list the images' shapes, of the first format found (cvat.py, via.py,
    supervisely.py), with the format's name; None where there are none."""
    for source, find in (("CVAT", cvat_files), ("VIA", via_files),
                         ("Supervisely", supervisely_files)):
        found = find(root)
        if found:
            return source, found
    return None


def _read_listings(root: Path, source: str, files: list[Path]
                   ) -> tuple[list[ListedImage], list[str], int, str]:
    """The images of `files` of a format (listing_files) with their shapes, the class names
    the files declare in order, the count of shapes without an area, and the region
    attribute that VIA's classes are read from ('' for none or several)."""
    if source == "Supervisely":  # a file per image, the classes in the project's meta.json
        return (*read_supervisely(root, files), "")
    lookup = image_lookup(root)
    images, declared, left_out, attributes = [], [], 0, set()
    for path in files:
        if source == "CVAT":
            found, named, drawn_without_area = read_cvat(path, root, lookup)
        else:
            found, named, attribute, drawn_without_area = read_via(path, root, lookup)
            attributes.add(attribute)
        images += found
        declared += named
        left_out += drawn_without_area
    return images, declared, left_out, next(iter(attributes)) if len(attributes) == 1 else ""


def listed_index(root: Path, source: str, files: list[Path], val_fraction: float, seed: int,
                 held_out: str, train: bool) -> PairIndex:
    """Pairs of images whose shapes CVAT's XML, VIA's JSON or Supervisely's `files` list:
    split by the subsets the files give (CVAT's Train and Validation, Supervisely's dataset
    folders), else by the train/ and val/ (or test/) folders they lie in, else split by
    val_fraction. Images with nothing drawn are all background."""
    images, declared, left_out, attribute = _read_listings(root, source, files)
    listed = _subset_splits(images, held_out, train)
    if listed is None:
        by_file, val_fraction = _split_files(root, files, held_out, train, val_fraction,
                                             f"a test/ folder of images and {source} files")
        in_split = {split: set(paths) for split, paths in by_file.items()}
        listed = {split: [image for image in images if image.file in in_split[split]]
                  for split in by_file}
    names = names_in_order(images, declared)
    values = class_values(names)
    pairs = {split: [Pair(image.image, image.file, shapes=tuple(
        (values[label], [drawn] if isinstance(drawn, list) else drawn)  # COCO's polygons
        for label, drawn, _ in image.shapes), shapes_size=image.size,
        shape_orders=tuple(order for _, _, order in image.shapes)) for image in found]
        for split, found in listed.items()}
    kept = {id(image): image for found in listed.values() for image in found}
    others = Counter(image.subset for image in images if image.subset and id(image) not in kept)
    blank = sum(not image.shapes for image in kept.values())
    notes = [f"{left_out} shapes without an area (polylines, points)" if left_out else "",
             *(f"{count} images of subset {subset}" for subset, count in sorted(others.items())),
             f"nothing drawn on {blank} images: all background" if blank else ""]
    return _annotated_index(root, pairs, names, source, "; ".join(filter(None, notes)),
                            val_fraction, seed, f"the VIA files' region attribute "
                            f"'{attribute}'" if attribute else "")


def _subset_splits(images: list[ListedImage], held_out: str, train: bool
                   ) -> dict[str, list[ListedImage]] | None:
    """Images by split where the files put them in subsets named as splits (CVAT's Train,
    Validation, Test): val is the Validation subset, else Test; for an evaluation, or
    `held_out` "test", the held-out subset alone, all of it. Other held-out subsets are not
    trained on. None where no image is in a held-out subset (or the test one, for "test")."""
    held_names = [TEST_FOLDER_NAMES] if held_out == "test" else \
        [tuple(name for name in VAL_FOLDER_NAMES if name not in TEST_FOLDER_NAMES),
         TEST_FOLDER_NAMES]
    for names in held_names:
        held = [image for image in images if image.subset.lower() in names]
        if held:
            break
    else:
        return None
    if held_out == "test" or not train:
        return {"val": held}
    return {"train": [image for image in images if image.subset.lower() not in
                      names + TEST_FOLDER_NAMES], "val": held}


def _split_files(root: Path, files: list[Path], held_out: str, train: bool,
                 val_fraction: float, expected: str) -> tuple[dict[str, list[Path]], float]:
    """Annotation files by split: those in train/ and val/ (or test/) where the dataset has
    such folders (the held-out ones alone, all of them, for an evaluation), else all as train
    to be split by val_fraction; and the val_fraction to split by."""
    train_dir, held_dir = named_folder(root, TRAIN_FOLDER_NAMES), \
        named_folder(root, held_out_names(held_out))
    if held_out == "test" and held_dir is None:
        raise no_test_split(root, expected)
    if held_dir is not None and (held_out == "test" or not train):
        return {"val": _files_in(files, held_dir)}, EVERY_IMAGE
    if train_dir is not None and held_dir is not None:
        return {"train": _files_in(files, train_dir), "val": _files_in(files, held_dir)}, \
            val_fraction
    return {"train": files, "val": []}, val_fraction


def rle_index(root: Path, val_fraction: float, seed: int, held_out: str,
              order: str) -> PairIndex | None:
    """Pairs of a dataset whose CSV tables hold its masks as run-length codes (rle_tables.py):
    train.csv and val.csv as listed, one table split by val_fraction, test.csv for `held_out`
    "test"; None where no table holds codes for its images."""
    images = image_lookup(root)
    tables = image_table_files(root, images, holds_codes)
    wanted = ("test",) if held_out == "test" else ("train", "val", "all")
    read = {}
    for split in wanted:
        table = read_rle_table(root, tables[split], images, order) if split in tables else None
        if table is not None:
            read[split] = table
    if held_out == "test" and not read:
        others = [tables[split] for split in ("train", "val", "all") if split in tables]
        if others and read_rle_table(root, others[0], images, order) is not None:
            raise no_test_split(root, "test.csv with run-length codes")
        return None
    if not read:
        return None
    names = rle_class_names(list(read.values()))
    values = {name: value for value, name in enumerate(names)}
    pairs = {split: [Pair(image, table.path, shapes=tuple((values[name], runs)
                                                          for name, runs in objects))
                     for image, objects in table.images.items()]
             for split, table in read.items()}
    first = next(iter(read.values()))
    classes = f"classes: column {first.class_column}" if first.class_column \
        else "one foreground class"
    note = [f"masks: {table.path.name} (images: column {table.image_column}; run-length codes: "
            f"column {table.rle_column}, pixels numbered {RLE_ORDERS[order]}, data.rle_order="
            f"{order}; {classes})" for table in read.values()]
    if "test" in pairs:
        return PairIndex(root, {"train": [], "val": pairs["test"]}, [], False, note, names,
                         first.path.name)
    splits, by_fraction = labelled_splits(
        root, {"train": pairs.get("train", []) + pairs.get("all", []),
               "val": pairs.get("val", [])}, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, names, first.path.name)


def _yolo_pair(image: Path) -> Pair:
    """An image and the polygons of its YOLO label file (none where it has no file: an image
    without objects); a box row, or a polygon of fewer than 3 points, is an error naming the
    file and line."""
    path = yolo_label_path(image)
    shapes = []
    for number, line in enumerate(path.read_text().splitlines() if path.is_file() else [], 1):
        values = line.split()
        if not values:
            continue
        if len(values) < 7 or len(values) % 2 == 0:
            raise VisionsuiteError(f"{path}:{number}: {len(values)} columns; a segmentation "
                                   "label is a polygon, class x1 y1 x2 y2 x3 y3 ... (5 columns, "
                                   "a box, train `visionsuite train detect`)")
        try:
            numbers = [float(value) for value in values]
        except ValueError:
            raise VisionsuiteError(f"{path}:{number}: not a number in '{line.strip()}'") from None
        if numbers[0] != int(numbers[0]) or numbers[0] < 0:
            raise VisionsuiteError(f"{path}:{number}: class id {values[0]} is not a class "
                                   "number (0, 1, ...)")
        shapes.append((int(numbers[0]) + 1, [numbers[1:]]))  # after background
    return Pair(image, path, shapes=tuple(shapes))


def _coco_pairs(root: Path, path: Path, spec: dict, values: dict[int, int]) -> list[Pair]:
    """Each image of a COCO file with its annotations' segmentations and class values
    (`values`: category id to class). An annotation without a segmentation (a box alone)
    and an image that is not there are errors naming the file."""
    shapes: dict = {}
    for number, item in enumerate(spec["annotations"]):
        if not isinstance(item, dict) or "image_id" not in item or "category_id" not in item:
            raise VisionsuiteError(f"{path}: annotation {number} needs an image_id and a "
                                   "category_id")
        if not item.get("segmentation"):
            raise VisionsuiteError(f"{path}: annotation {number} has no segmentation "
                                   "(polygons or RLE); boxes alone train `visionsuite train "
                                   "detect`")
        if item["category_id"] not in values:
            raise VisionsuiteError(f"{path}: annotation {number}: category "
                                   f"{item['category_id']} is none of the file's categories")
        # A crowd annotation is filled as its class, not left out as COCO's detection
        # metrics leave it: datumaro's COCO exporter (CVAT exports through it) writes every
        # annotation it saves as RLE, painted masks by default, with iscrowd 1.
        shapes.setdefault(item["image_id"], []).append((values[item["category_id"]],
                                                        item["segmentation"]))
    folder = coco_image_folder(root, path, spec)
    pairs = []
    for number, item in enumerate(spec["images"]):
        try:
            name, size = coco_file_name(item), (int(item["width"]), int(item["height"]))
            found = tuple(shapes.get(item["id"], ()))
        except (KeyError, TypeError, ValueError):
            raise VisionsuiteError(f"{path}: image {number} needs an id, a file_name, a width "
                                   "and a height") from None
        image = coco_image(root, folder, name)
        if not image.is_file():
            raise VisionsuiteError(f"{path}: its image {name} is not in {image.parent}")
        pairs.append(Pair(image, path, shapes=found, shapes_size=size))
    if not pairs:
        raise VisionsuiteError(f"{path}: lists no images")
    return pairs
