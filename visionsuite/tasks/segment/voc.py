"""Pascal VOC's segmentation layout, and the annotation tools' exports built on it: CVAT's
"Segmentation mask 1.1" (Datumaro's VOC format), which CVAT users download for semantic
segmentation.

    VOC2012/                              the dataset root, or VOC20xx/, VOCdevkit/VOC20xx/ in it
      ImageSets/Segmentation/train.txt    each split's images, a name (without extension) a
                             val.txt      line; test.txt for `--split test`; a list of another
                             default.txt  name alone (CVAT's default.txt, trainval.txt) is split
                                          by data.val_fraction
      JPEGImages/2007_000032.jpg          the images; only those listed are read (VOC 2012
                                          holds 17125, 2913 of them segmented)
      SegmentationClass/2007_000032.png   class masks: palette PNGs of class indices (255, VOC's
                                          void border, is left out of the loss and the metrics),
                                          or CVAT's colour PNGs in labelmap.txt's colours
      SegmentationObject/                 instance masks: not read
      labelmap.txt                        CVAT's classes in order, `name:r,g,b:parts:actions`

The classes are labelmap.txt's; without one, in a folder named VOC20xx, VOC's 21 (background
and its 20 categories, as its palette indices number them); else found in the mask values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from visionsuite.core.files import inside, named_folder
from visionsuite.core.images import is_image_file
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.colours import named_colours

LISTS = ("ImageSets", "Segmentation")
IMAGES, MASKS, OBJECTS = "JPEGImages", "SegmentationClass", "SegmentationObject"
LABELMAP = "labelmap.txt"
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor")
VOC_FOLDER = re.compile(r"VOC\d{4}", re.IGNORECASE)  # the challenge's own: VOC2007, VOC2012


@dataclass
class VocSet:
    folder: Path  # holding ImageSets/, JPEGImages/ and SegmentationClass/
    lists: dict[str, Path]  # split name (train, val, test, all) -> its list file
    class_names: list[str] | None
    class_colours: list[str] | None  # '#rrggbb' of each class, labelmap.txt's
    names_from: str


def voc_segmentation_folder(root: Path) -> Path | None:
    """The folder of a VOC segmentation set: `root`, or VOC20xx/ or VOCdevkit/VOC20xx/ in it
    (as VOC's archives unpack), holding SegmentationClass/ and ImageSets/Segmentation/."""
    candidates = [root, *sorted(root.glob("VOC*")), *sorted(root.glob("VOCdevkit/VOC*"))]
    found = [folder for folder in candidates if folder.is_dir() and _list_folder(folder)
             and named_folder(folder, (MASKS.lower(),)) is not None]
    if len(found) > 1:
        named = ", ".join(str(folder.relative_to(root)) for folder in found)
        raise VisionsuiteError(f"{root}: several VOC sets ({named}); give --data one of them")
    return found[0] if found else None


def _list_folder(folder: Path) -> Path | None:
    sets = named_folder(folder, (LISTS[0].lower(),))
    found = named_folder(sets, (LISTS[1].lower(),)) if sets is not None else None
    return found if found is not None and any(found.glob("*.txt")) else None


def read_voc_set(folder: Path) -> VocSet:
    """A VOC folder's split lists and classes."""
    listed = {path.stem.lower(): path for path in sorted(_list_folder(folder).glob("*.txt"))}
    lists = {"test": listed["test"]} if "test" in listed else {}
    if "train" in listed and "val" in listed:
        lists |= {"train": listed["train"], "val": listed["val"]}
    else:  # one list of everything (CVAT's default.txt, trainval.txt), split by fraction
        named = [name for name in ("trainval", "default", "train", "val") if name in listed] \
            or [name for name in listed if name != "test"]
        lists |= {"all": listed[named[0]]} if named else {}
    labelmap = folder / LABELMAP
    if labelmap.is_file():
        names, colours = read_labelmap(labelmap)
        return VocSet(folder, lists, names, colours, LABELMAP)
    if VOC_FOLDER.fullmatch(folder.name):
        return VocSet(folder, lists, list(VOC_CLASSES), None,
                      "Pascal VOC's list, without a labelmap.txt")
    return VocSet(folder, lists, None, None, "")


def read_labelmap(path: Path) -> tuple[list[str], list[str]]:
    """CVAT's (Datumaro's) labelmap.txt: a line `name:r,g,b:parts:actions` per class, in class
    order; the names and '#rrggbb' colours."""
    rows = [(number, *(line.split(":") + [""])[:2])
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]
    names, colours = named_colours(path, [(number, name, rgb.split(",") if rgb else [])
                                          for number, name, rgb in rows],
                                   "`name:r,g,b:parts:actions`")
    if len(names) < 2:
        raise VisionsuiteError(f"{path}: {len(names)} class(es); a segmentation needs two, "
                               "background first")
    return names, colours


def listed_pairs(voc: VocSet, splits: tuple[str, ...]) -> dict[str, list[tuple[Path, Path]]]:
    """(image, mask) of each name in each split's list, in its order; a name without an image
    in JPEGImages/ or a mask in SegmentationClass/ is an error naming the list's line."""
    images = _files_by_name(voc.folder, IMAGES, " (CVAT: export with 'Save images')")
    masks = _files_by_name(voc.folder, MASKS, "")
    return {split: _pairs_of_list(voc.folder, voc.lists[split], images, masks)
            for split in splits}


def _pairs_of_list(folder: Path, path: Path, images: dict[str, Path],
                   masks: dict[str, Path]) -> list[tuple[Path, Path]]:
    pairs, seen = [], set()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        name = line.strip()
        if not name or name in seen:
            continue
        seen.add(name)
        for found, kind in ((images, IMAGES), (masks, MASKS)):
            if name not in found:
                raise VisionsuiteError(f"{path}:{number}: {name} has no file in {kind}/")
            inside(folder, found[name].relative_to(folder))  # a link out of the dataset
        pairs.append((images[name], masks[name]))
    if not pairs:
        raise VisionsuiteError(f"{path}: lists no images")
    return pairs


def _files_by_name(folder: Path, kind: str, hint: str) -> dict[str, Path]:
    """The image files of folder/kind (its name in any case; sub-folders too, as Datumaro's
    ids may name them) by their path inside it without the extension."""
    found = named_folder(folder, (kind.lower(),))
    if found is None:
        raise VisionsuiteError(f"{folder}: no {kind}/ folder{hint}")
    files = {}
    for path in sorted(found.rglob("*")):
        if path.is_file() and is_image_file(path):
            files.setdefault(path.relative_to(found).with_suffix("").as_posix(), path)
    return files
