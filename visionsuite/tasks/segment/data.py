"""Segmentation data: image/mask pairs by file stem (with optional ROI masks), or as public
sets lay them out (Pascal VOC's lists, case folders, split folders named with their kind),
or images with their COCO, YOLO, LabelMe, GeoJSON, Aperio, CVAT, VIA or Supervisely shapes;
the mask values and their classes, decoding (DICOM/NIfTI slices included, DICOM SEG and
RTSTRUCT labels), `data check segment`, and the training crops' sampler that oversamples
labelled slices (labelled_crop_batches)."""

from __future__ import annotations

import random
import re
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.core.coco import (COCO_TEST, category_names, coco_file_name, coco_files,
                                   coco_image, coco_image_folder, load_coco)
from visionsuite.core.files import (TRAIN_FOLDER_NAMES, VAL_FOLDER_NAMES, held_out_only,
                                    holds_data, inside, named_folder, sub_folders,
                                    wrapper_content)
from visionsuite.core.images import (DEEP_INTEGER_MODES, INSTANCE_HINT, QUARTER_TURNS,
                                     UnreadableImage, bit_depth_window, deep_maximum,
                                     fit_within, fitted_size, folder_image_files,
                                     inspect_image, is_colour_mask, mask_values,
                                     other_files_note, read_image_slices, read_mask_slices,
                                     stored_geometry, tiff_channels, tiff_stack_depth,
                                     turn_upright, upright_size)
from visionsuite.core.image_tables import image_lookup, image_table_files
from visionsuite.core.medical import (dicom_label_slices, dicom_labels_kind, file_stem,
                                      is_medical_file, is_volume, label_names_of,
                                      label_slices_for, read_header, series_folder,
                                      voxel_spacing)
from visionsuite.core.splits import (EVERY_IMAGE, TEST_FOLDER_NAMES, Fold, held_out_names,
                                     no_test_split, test_set_note)
from visionsuite.core.yolo import YOLO_TEST, yolo_label_path, yolo_splits, yolo_yaml
from visionsuite.errors import VisionsuiteError, first_line
from visionsuite.tasks.base import DataReport, Split
from visionsuite.tasks.segment.colours import (colour_class_names, colour_classes, colour_name,
                                               colour_table, grey_colour, indexed_colours,
                                               parse_colours)
from visionsuite.tasks.segment.ctc import CtcSet, ctc_sequences, read_ctc
from visionsuite.tasks.segment.cvat import cvat_files, read_cvat
from visionsuite.tasks.segment.labelme import class_names as labelme_class_names
from visionsuite.tasks.segment.labelme import labelme_files, read_labelme
from visionsuite.tasks.segment.outlines import class_names as outline_class_names
from visionsuite.tasks.segment.outlines import outline_files, read_outlines
from visionsuite.tasks.segment.rle_tables import (RLE_ORDERS, RunLengths, decode_run_lengths,
                                                  holds_codes, read_rle_table, rle_class_names)
from visionsuite.tasks.segment.shapes import (ListedImage, PlacedMask, class_values,
                                              names_in_order)
from visionsuite.tasks.segment.supervisely import read_supervisely, supervisely_files
from visionsuite.tasks.segment.surface import measurable
from visionsuite.tasks.segment.via import read_via, via_files
from visionsuite.tasks.segment.voc import (OBJECTS, VocSet, listed_pairs, read_voc_set,
                                           voc_segmentation_folder)

IGNORE = 255  # target value of pixels left out of the loss and the metrics
# data.binary_masks=auto (numbers_objects): the masks looked at, and how many values running
# 1..N in a mask make it one that numbers objects
INSTANCE_SAMPLE, OBJECT_COUNT = 16, 8
GREY_LEVELS = 16  # grey masks of at most so many levels spread over 0..255 code classes
# Folder names, as our layout has them first, then as public datasets come: DRIVE
# (training/, test/ (core.files.named_folder); images/, 1st_manual/ labels, mask/ field of
# view) and HRF (images/, manual1/, mask/).
MASK_FOLDER_NAMES = ("masks", "labels", "1st_manual", "manual1", "groundtruth", "gt", "mask",
                     "labelstr")
# The Medical Segmentation Decathlon's and nnU-Net's imagesTr/ and labelsTr/ (imagesTs/, without
# labels, is not read), with the class names in dataset.json.
IMAGE_FOLDER_NAMES = ("images", "imagestr")
# Words that name a folder of masks, where the names above are not used: one folder not named
# with these words (Original/) beside folders named so (Ground Truth/) is images and masks.
IMAGE_FOLDER_WORDS = {"image", "images", "img", "imgs", "original", "input"}
MASK_FOLDER_WORDS = {"mask", "masks", "label", "labels", "gt", "groundtruth", "annotation",
                     "annotations", "segmentation", "segmentations", "manual", "ann", "annot"}
DATASET_JSON = "dataset.json"
# nnU-Net's image per channel: case_0000.nii.gz (, case_0001...) for labelsTr/case.nii.gz.
CHANNEL_FILE = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")
# A case folder's label volume beside a volume per channel (BraTS's <case>_seg.nii.gz)
CASE_LABEL_ENDINGS = ("seg", "label", "labels", "mask", "gt")
# A case folder's image and label volumes by name, as KiTS names them (imaging, segmentation),
# and label files numbered as their images, as LiTS names them (segmentation-0, volume-0).
CASE_IMAGE_NAMES = ("imaging", "image", "img", "volume", "ct", "mri", "scan", "data")
CASE_LABEL_NAMES = ("segmentation", "seg", "label", "labels", "mask", "gt")
NUMBERED_FILE = re.compile(r"(?P<word>[A-Za-z]+)[-_ ]?(?P<number>\d+)")
ROI_FOLDER_NAMES = ("roi", "fov", "mask")  # mask/ is the ROI where the labels are elsewhere
SHOWN_CLASSES = 20  # classes listed by data check
# Masks saved beside their images and named after them, in a folder without images/ and
# masks/: LGG MRI (kaggle_3m: one folder per patient of TCGA_..._1.tif and TCGA_..._1_mask.tif)
# and BUSI (benign (1).png with benign (1)_mask.png and, for a second lesion, _mask_1.png);
# Cellpose's 000_img.png with 000_masks.png (the images' own ending: _without_image_ending).
SIDE_MASK = re.compile(r"(?P<image>.+)_masks?(?:_\d+)?", re.IGNORECASE)
# Pairs in one folder named with their split first: GlaS' train_1.bmp, testA_1.bmp, testB_1.bmp
SPLIT_IN_NAME = re.compile(r"(?P<split>train(?:ing)?|val(?:id(?:ation)?)?|test(?:ing)?)"
                           r"(?P<part>[A-Za-z]|\d+)?[_\-. ]", re.IGNORECASE)
# Side-by-side pairs in at least this many folders are split folder by folder: a folder is then
# one case (LGG's patients), whose slices must not be on both sides. In fewer folders (BUSI's
# benign/, malignant/, normal/), the split takes the same share of each folder.
CASE_FOLDERS = 10


@dataclass
class Pair:
    image: Path
    mask: Path
    roi: Path | None = None
    more_masks: tuple[Path, ...] = ()  # merged into `mask` (BUSI's _mask_1: a second lesion)
    left_out: tuple[Path, ...] = ()  # other labels of the image (CHASE_DB1's 2nd observer's)
    # The image's further channels, a file each, after `image`, its first: nnU-Net's
    # case_0001.nii.gz, ... (multi-modal MRI: FLAIR, T1, T1gd, T2).
    channels: tuple[Path, ...] = ()
    # A masks folder of a folder per class (Montgomery's ManualMask/leftMask/, rightMask/):
    # (class name, the image's mask in that folder, None where it has none), in class order;
    # `mask` is the first file of them.
    class_masks: tuple[tuple[str, Path | None], ...] = ()
    # COCO (`mask` is its JSON file), YOLO (its label file) and run-length tables (the CSV):
    # the image's annotations as (class value, segmentation: COCO polygons or RLE, or
    # rle_tables.RunLengths), and the (width, height) the file gives the image; None for
    # YOLO's polygons, normalised to the image as it is shown, and for run-length codes
    shapes: tuple[tuple[int, object], ...] | None = None
    shapes_size: tuple[int, int] | None = None
    # each shape's z order, where the file gives one (CVAT's): higher drawn over lower
    shape_orders: tuple[float, ...] | None = None


@dataclass
class PairIndex:
    root: Path
    splits: dict[str, list[Pair]]
    odd_files: list[Path]
    split_by_fraction: bool
    folders: list[str] = field(default_factory=list)  # the folders read, where not ours
    class_names: list[str] | None = None  # the dataset's own (MSD's dataset.json), if any
    names_from: str = ""  # where class_names come from, for data check
    channel_names: list[str] | None = None  # of multi-channel images (dataset.json's), if any
    class_colours: list[str] | None = None  # of colour masks, where the set gives them (CVAT)
    numbered_masks: bool = False  # the layout's masks number objects (the CTC's): foreground


def index_pairs(root: str | Path, val_fraction: float = 0.2, seed: int = 0,
                held_out: str = "val", rle_order: str = "column",
                train: bool = True) -> PairIndex:
    """Pair `images/` and `masks/` (and `roi/`) by file stem in `root/train` and `root/val`,
    or in `root` itself split by a seeded `val_fraction`; `held_out` "test": `root/test` in
    val's place (COCO's test file, YOLO's test images). `rle_order`: how a CSV table's
    run-length codes number pixels (rle_tables.py). Without `train` (evaluate, export), a
    COCO or YOLO set's own held-out images are read alone, not its train labels. Unpaired
    files, duplicate stems and empty folders are one-line errors."""
    index = _index_pairs(Path(root), val_fraction, seed, held_out, rle_order, train)
    pairs = [pair for split in index.splits.values() for pair in split]
    index.folders += _merged_note(pairs) + _left_out_note(pairs) + _class_folders_note(pairs)
    folder_classes = _class_folder_names(index.root, pairs)
    described = _dataset_json(index.root)
    if index.class_names is None:  # COCO's categories name them already
        index.class_names = folder_classes or _dataset_class_names(described)
        index.names_from = "the masks' folders" if folder_classes else DATASET_JSON
    table = colour_table(index.root) if index.class_names is None else None
    if table is not None:  # CamVid's class_dict.csv
        index.class_names, index.class_colours, index.names_from = table
    named = label_names_of(pairs[0].mask) if index.class_names is None and pairs else None
    if named:  # a DICOM SEG's segments, an RTSTRUCT's structures, a .seg.nrrd's segments
        index.class_names, index.names_from = named
    index.channel_names = _dataset_channel_names(described) or _channel_endings(pairs)
    return index


def _dataset_json(root: Path) -> dict:
    """The dataset.json beside imagesTr/ (Medical Segmentation Decathlon, nnU-Net), else {}."""
    import json

    path = root / DATASET_JSON
    if not path.is_file() or named_folder(root, ("imagestr",)) is None:
        return {}
    try:
        described = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise VisionsuiteError(f"{path}: not readable as JSON ({first_line(err)})") from None
    return described if isinstance(described, dict) else {}


def _dataset_channel_names(described: dict) -> list[str] | None:
    """The image channels' names: the Decathlon's "modality": {"0": "FLAIR", "1": "T1w"},
    nnU-Net's "channel_names": {"0": "T2", "1": "ADC"}; None unless they name 0..C-1."""
    named = described.get("channel_names", described.get("modality"))
    if not isinstance(named, dict) or not all(str(key).isdigit() for key in named):
        return None
    by_index = {int(key): str(name) for key, name in named.items()}
    return [by_index[i] for i in range(len(by_index))] \
        if sorted(by_index) == list(range(len(by_index))) else None


def _channel_endings(pairs: list[Pair]) -> list[str] | None:
    """The channels' names of a folder per case (BraTS: flair, t1, t1ce, t2): the endings of
    the files after the case's name; None for other pairs."""
    pair = next((pair for pair in pairs if pair.channels), None)
    endings = _case_volumes(pair.image.parent, [pair.image, *pair.channels]) if pair else None
    return list(endings) if endings else None


def _dataset_class_names(described: dict) -> list[str] | None:
    """The class names of a dataset.json (the Medical Segmentation Decathlon's
    {"0": "background", "1": "liver"}, nnU-Net's {"background": 0, "liver": 1}), where they
    name the values 0..K-1; else None (nnU-Net's regions, lists of values, are not classes
    here)."""
    labels = described.get("labels")
    if not isinstance(labels, dict):
        return None
    pairs = [(key, name) for key, name in labels.items()]
    if all(isinstance(value, int) and not isinstance(value, bool) for _, value in pairs):
        pairs = [(str(value), name) for name, value in pairs]  # nnU-Net v2: name -> value
    if not all(str(key).isdigit() and isinstance(name, str) for key, name in pairs):
        return None
    by_value = {int(key): name for key, name in pairs}
    if sorted(by_value) != list(range(len(by_value))) or len(by_value) < 2:
        return None
    return [by_value[value] for value in range(len(by_value))]


def _class_folder_names(root: Path, pairs: list[Pair]) -> list[str] | None:
    """background, then the class folders' names, of masks in a folder per class; None where
    the masks are not so. Every split must have the same class folders."""
    layouts = {tuple(name for name, _ in pair.class_masks) for pair in pairs}
    if layouts <= {()}:
        return None
    if len(layouts) > 1:
        listed = "; ".join(", ".join(names) or "(none)" for names in sorted(layouts))
        raise VisionsuiteError(f"{root}: the splits' masks are in different class folders "
                               f"({listed}); each split needs the same")
    return ["background", *layouts.pop()]


def _class_folders_note(pairs: list[Pair]) -> list[str]:
    """data check's line on masks in a folder per class."""
    with_classes = [pair for pair in pairs if pair.class_masks]
    if not with_classes:
        return []
    names = [name for name, _ in with_classes[0].class_masks]
    missing = Counter(name for pair in with_classes for name, path in pair.class_masks
                      if path is None)
    line = (f"classes from the masks' folders: {', '.join(names)} (0 background; where two "
            "mark a pixel, the smaller mask's class)")
    if missing:
        line += "; images without a file of a class have none of it: " + ", ".join(
            f"{name} ({count})" for name, count in missing.items())
    return [line]


def _merged_note(pairs: list[Pair]) -> list[str]:
    """data check's line on images of several mask files (one per object or lesion)."""
    merged = [pair for pair in pairs if pair.more_masks]
    if not merged:
        return []
    files = sum(len(pair.more_masks) + 1 for pair in merged)
    return [f"masks merged: {len(merged)} image(s) have several mask files ({files} in all, "
            "one per object or lesion), read as their union"]


def _left_out_note(pairs: list[Pair]) -> list[str]:
    """data check's line on the files a pair leaves out: a second observer's labels, the other
    channels of an nnU-Net case."""
    endings = Counter()
    for pair in pairs:
        for path in pair.left_out:
            stem = file_stem(path)
            base = max((file_stem(p) for p in (pair.image, pair.mask)
                        if stem.startswith(file_stem(p))), key=len, default="")
            endings[stem[len(base):] if base else
                    f"*{stem[stem.rfind('_'):]}" if "_" in stem else path.name] += 1
    if not endings:
        return []
    listed = ", ".join(f"{ending} ({count})" for ending, count in sorted(endings.items()))
    return [f"left out, one image and one mask making a pair: the files ending {listed}"]


def _index_pairs(root: Path, val_fraction: float, seed: int, held_out: str,
                 rle_order: str, train: bool) -> PairIndex:
    if not root.exists():
        raise VisionsuiteError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise VisionsuiteError(f"{root}: expected a dataset folder, got a file")
    inner = _wrapper_content(root)
    if inner is not None:  # an archive's folder around the set (BTCV's RawData/)
        return _index_pairs(inner, val_fraction, seed, held_out, rle_order, train)
    odd: list[Path] = []
    if any(coco_files(root).values()):  # COCO polygons: Roboflow's, CVAT's ... (core/coco.py)
        coco = coco_files(root, held_out)
        if held_out == "test" and coco["val"] is None:
            raise no_test_split(root, COCO_TEST)
        if (held_out == "test" or not train) and coco["val"] is not None:
            coco, val_fraction = {"val": coco["val"]}, EVERY_IMAGE  # that file alone, all of it
        return _coco_index(root, coco, val_fraction, seed)
    if yolo_yaml(root) is not None:  # Ultralytics' YOLO polygons
        return _yolo_index(root, val_fraction, seed, held_out, train)
    voc = voc_segmentation_folder(root)  # Pascal VOC's lists, CVAT's Segmentation mask
    if voc is not None:
        return _voc_index(root, read_voc_set(voc), val_fraction, seed, held_out, train)
    labelme = labelme_files(root)  # LabelMe's JSON beside the images
    if labelme and not _has_mask_images(root):
        return _labelme_index(root, labelme, val_fraction, seed, held_out, train)
    outlines = outline_files(root)  # QuPath's GeoJSON, Aperio's XML of each image
    if len(outlines) == 1 and not _has_mask_images(root):
        (source, files), = outlines.items()
        return _outlines_index(root, source, files, val_fraction, seed, held_out, train)
    # CVAT's XML, VIA's JSON: a file of many images' shapes; a Supervisely project's files
    # (its masks_machine/ beside them, where exported, are not taken over them)
    listed = _listing_files(root)
    if listed is not None and (listed[0] == "Supervisely" or not _has_mask_images(root)):
        return _listed_index(root, *listed, val_fraction, seed, held_out, train)
    sequences = ctc_sequences(root)  # the Cell Tracking Challenge's 01/ beside 01_GT/SEG/
    if sequences:
        return _ctc_index(root, read_ctc(root, sequences), val_fraction, seed, held_out)
    # Kaggle's run-length codes in a CSV
    index = _rle_index(root, val_fraction, seed, held_out, rle_order) \
        if any(root.glob("*.csv")) else None
    if index is not None:
        return index
    inside_kinds = _splits_inside_kinds(root, held_out)
    if inside_kinds:
        splits = {name: _pair_dirs(root, *folders, odd) for name, folders in inside_kinds.items()}
        return PairIndex(root, splits, odd, False, [
            f"{name}: " + ", ".join(f"{kind}: {path.relative_to(root)}/" for kind, path
                                    in zip(("images", "masks", "roi"), folders) if path)
            for name, folders in inside_kinds.items()])
    worded = _worded_splits(root, held_out)
    if worded is not None:
        return _worded_index(root, worded, val_fraction, seed, held_out, odd)
    train_dir = named_folder(root, TRAIN_FOLDER_NAMES) or root / "train"
    val_dir = named_folder(root, held_out_names(held_out))
    unlabelled = []
    # a competition's test/ of images alone, or its valid/ (DeepGlobe's); not a val/images/
    # without val/masks/, our own layout with its masks missing (an error, below)
    if val_dir is not None and unlabelled_folder(root, val_dir) and (
            val_dir.name.lower() in TEST_FOLDER_NAMES
            or named_folder(val_dir, IMAGE_FOLDER_NAMES) is None):
        if held_out == "test" or not train_dir.is_dir():
            raise VisionsuiteError(f"{val_dir}: images without masks, nothing to score; "
                                   f"`visionsuite segment RUN {val_dir}` predicts them")
        unlabelled = [f"{val_dir.name}/: images without masks, not read (`visionsuite segment "
                      f"RUN {val_dir.name}/` predicts them)"]
        if val_dir.name.lower() not in TEST_FOLDER_NAMES:  # where a user's masks are missing
            print(f"warning: {val_dir}: images without any masks, not read; val is split "
                  f"from {train_dir.name}/", file=sys.stderr)
        val_dir = None
    if held_out == "test":
        named = _named_test_split(root, odd) \
            if val_dir is None and not train_dir.is_dir() else None
        if named is not None:  # GlaS' testA_1.bmp beside train_1.bmp
            return PairIndex(root, {"train": [], "val": named[0]["val"]}, odd, False, named[1])
        if val_dir is None:
            raise no_test_split(root, "a test/ folder of images and masks")
        return PairIndex(root, {"train": [], "val": _pair_folder(root, val_dir, odd)}, odd,
                         False, _folders_read(root, {"test": val_dir}))
    if train_dir.is_dir() and val_dir is not None:
        splits = {"train": _pair_folder(root, train_dir, odd),
                  "val": _pair_folder(root, val_dir, odd)}
        return PairIndex(root, splits, odd, False,
                         _folders_read(root, {"train": train_dir, "val": val_dir})
                         + _side_by_side_note(splits["train"] + splits["val"], split=False))
    if val_fraction >= 1 and held_out_only(root):
        # EVERY_IMAGE (evaluation on another dataset) of a set that ships its test/ alone
        return PairIndex(root, {"train": [], "val": _pair_folder(root, val_dir, odd)}, odd,
                         False, _folders_read(root, {"val": val_dir}))
    folder = train_dir if train_dir.is_dir() else root
    pairs = _pair_folder(root, folder, odd)
    folders = _folders_read(root, {"train" if folder != root else "pairs": folder}) + unlabelled
    if val_fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset
        return PairIndex(root, {"train": [], "val": pairs}, odd, True,
                         folders + _side_by_side_note(pairs, split=False))
    named = _named_splits(pairs, held_out) if folder == root else None
    if named is not None:  # GlaS' train_1.bmp beside testA_1.bmp
        return PairIndex(root, named[0], odd, False,
                         folders + named[1] + _side_by_side_note(pairs, split=False))
    return PairIndex(root, _fraction_split(root, pairs, val_fraction, seed), odd, True,
                     folders + _side_by_side_note(pairs, split=True))


def _named_test_split(root: Path, odd: list[Path]
                      ) -> tuple[dict[str, list[Pair]], list[str]] | None:
    """_named_splits' test split of the pairs in `root`; None where they are none or not so
    named (no_test_split then says what a test split would be)."""
    found: list[Path] = []  # files in no image format, for data check where it is so
    try:
        pairs = _pair_folder(root, root, found)
    except VisionsuiteError:
        return None
    named = _named_splits(pairs, "test")
    if named is not None:
        odd += found
    return named


def _named_splits(pairs: list[Pair], held_out: str
                  ) -> tuple[dict[str, list[Pair]], list[str]] | None:
    """The splits of pairs in one folder whose image names each begin with their split's word
    (SPLIT_IN_NAME), as GlaS names its train_1.bmp, testA_1.bmp and testB_1.bmp: train, and
    val the val images, else the test ones (`held_out` "test": the test ones); with data
    check's line. None where a name begins with none, or the held-out split is empty."""
    words = [SPLIT_IN_NAME.match(pair.image.name) for pair in pairs]
    if not pairs or not all(words):
        return None
    kinds = ["train" if word["split"].lower().startswith("train") else
             "val" if word["split"].lower().startswith("val") else "test" for word in words]
    held = ("test",) if held_out == "test" else ("val",) if "val" in kinds else ("test",)
    splits = {"train": [pair for pair, kind in zip(pairs, kinds) if kind == "train"],
              "val": [pair for pair, kind in zip(pairs, kinds) if kind in held]}
    if not splits["val"] or (held_out != "test" and not splits["train"]):
        return None
    counts = Counter(word["split"].lower() + (word["part"] or "") for word in words)
    return splits, ["split by the word their names begin with: " + ", ".join(
        f"{word}_ ({count})" for word, count in sorted(counts.items()))
        + f"; val: {held[0]}"]


def unlabelled_folder(root: Path, folder: Path) -> bool:
    """Whether a folder holds images and no masks at all, as a competition ships its test/
    (and DeepGlobe its valid/): no masks folder in or beside it, no file named as a mask."""
    if _pair_folders(root, folder)[1] is not None:
        return False
    if any(path.is_dir() and _named_as_masks(path.name)
           or path.is_file() and SIDE_MASK.fullmatch(file_stem(path))
           for path in folder.rglob("*")):
        return False
    return _holds_images(root, folder)


def _worded_splits(root: Path, held_out: str) -> dict[str, tuple[Path, Path]] | None:
    """Each split's images and masks folders where they lie side by side at the top, named
    with the split's word and their kind's, as Kaggle lays sets out (train_images/ with
    train_masks/, val_images/ with val_masks/, a test_images/ of images alone) and TN3K
    (trainval-image/ with trainval-mask/); None where the set is not so (a train/ folder of
    its own is a split folder)."""
    if named_folder(root, TRAIN_FOLDER_NAMES) is not None:
        return None
    folders = sub_folders(root)
    found = {}
    for split, names in (("train", TRAIN_FOLDER_NAMES + ("trainval",)),
                         ("val", held_out_names(held_out))):
        for word in names:
            named = [path for path in folders if word in _words(path.name)]
            masks = [path for path in named if _named_as_masks(path.name)]
            images = [path for path in named if path not in masks]
            if len(images) == 1 and len(masks) == 1:
                found[split] = (images[0], masks[0])
                break
    return found if "train" in found or held_out == "test" and "val" in found else None


def _worded_index(root: Path, worded: dict[str, tuple[Path, Path]], val_fraction: float,
                  seed: int, held_out: str, odd: list[Path]) -> PairIndex:
    """The pairs of _worded_splits' folders: as listed, the train ones split by val_fraction
    where there is no held-out pair of folders."""
    pairs = {split: _pair_dirs(root, images, masks, None, odd)
             for split, (images, masks) in worded.items()}
    folders = [f"{held_out if split == 'val' else split}: images: {images.name}/, masks: "
               f"{masks.name}/" for split, (images, masks) in worded.items()]
    if held_out == "test":
        return PairIndex(root, {"train": [], "val": pairs["val"]}, odd, False, folders[-1:])
    splits, by_fraction = _labelled_splits(root, {"train": [], **pairs}, val_fraction, seed)
    return PairIndex(root, splits, odd, by_fraction, folders)


def _ctc_index(root: Path, found: CtcSet, val_fraction: float, seed: int,
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
    return PairIndex(root, _fraction_split(root, pairs, val_fraction, seed), [], True, note,
                     numbered_masks=True)


def _wrapper_content(root: Path) -> Path | None:
    """core.files.wrapper_content's folder around the set (BTCV's RawData/), unless it is a
    part of a set of pairs: the images, the masks, a DICOM series."""
    inner = wrapper_content(root)
    if inner is None or inner.name.lower() in IMAGE_FOLDER_NAMES \
            or _named_as_masks(inner.name) or series_folder(inner) is not None:
        return None
    return inner


def _fraction_split(root: Path, pairs: list[Pair], val_fraction: float,
                    seed: int) -> dict[str, list[Pair]]:
    """The train and val splits of a dataset without a val split, by data.val_fraction."""
    if not 0 < val_fraction < 1:
        raise VisionsuiteError(f"{root}: no val/ folder, and data.val_fraction={val_fraction} "
                               "cannot split it (use a value between 0 and 1)")
    if len(pairs) < 2:
        raise VisionsuiteError(f"{root}: one image cannot be split into train and val")
    train, val = _split_pairs(pairs, val_fraction, seed)
    if not train:
        raise VisionsuiteError(f"{root}: data.val_fraction={val_fraction} leaves no pairs to "
                               "train on")
    if not val:  # a Fold past the cases there are
        raise VisionsuiteError(f"{root}: data.val_fraction={val_fraction} holds no pairs: "
                               f"{len(pairs)} pairs are too few for so many folds")
    return {"train": train, "val": val}


def _coco_index(root: Path, files: dict[str, Path | None], val_fraction: float,
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
    splits, by_fraction = _labelled_splits(root, pairs, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, ["background", *names.values()],
                     str(first.relative_to(root)))


def _labelled_splits(root: Path, pairs: dict[str, list[Pair]], val_fraction: float,
                     seed: int) -> tuple[dict[str, list[Pair]], bool]:
    """The splits of a dataset whose label files list its train and val images (COCO,
    YOLO): as listed; all val for an evaluation on another dataset (val_fraction 1); split
    by val_fraction where one of them is missing or empty; and whether that split was by
    fraction."""
    every = [pair for found in pairs.values() for pair in found]
    if val_fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset
        return {"train": [], "val": every}, False
    if pairs.get("train") and pairs.get("val"):
        return pairs, False
    return _fraction_split(root, every, val_fraction, seed), True


def _yolo_index(root: Path, val_fraction: float, seed: int, held_out: str,
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
    splits, by_fraction = _labelled_splits(root, pairs, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, ["background", *names],
                     yolo_yaml(root).name)


def _files_in(files: list[Path], folder: Path) -> list[Path]:
    return [path for path in files if folder in path.parents]


def _has_mask_images(root: Path, folder: Path | None = None, depth: int = 3) -> bool:
    """Whether a folder named as masks (masks/, SegmentationClass/, ...) holds images, down to
    `depth` levels below `folder` (the dataset `root`): such masks, as labelme2voc exports
    them, are taken over the LabelMe files they were drawn from."""
    return any(_named_as_masks(sub.name) and _holds_images(root, sub)
               or depth > 1 and _has_mask_images(root, sub, depth - 1)
               for sub in sub_folders(folder or root))


def _labelme_index(root: Path, files: list[Path], val_fraction: float, seed: int,
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
    splits, by_fraction = _labelled_splits(root, pairs, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, names,
                     names_from or f"the {source} files")


def _voc_index(root: Path, voc: VocSet, val_fraction: float, seed: int, held_out: str,
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
    splits, by_fraction = _labelled_splits(root, {"train": [], **pairs}, val_fraction, seed)
    return PairIndex(root, splits, [], by_fraction, note, voc.class_names, voc.names_from,
                     class_colours=voc.class_colours)


def _outlines_index(root: Path, source: str, files: list[Path], val_fraction: float,
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


def _listing_files(root: Path) -> tuple[str, list[Path]] | None:
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
    """The images of `files` of a format (_listing_files) with their shapes, the class names
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


def _listed_index(root: Path, source: str, files: list[Path], val_fraction: float, seed: int,
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


def _rle_index(root: Path, val_fraction: float, seed: int, held_out: str,
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
    splits, by_fraction = _labelled_splits(
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


def _pairs_by_folder(pairs: list[Pair]) -> dict[Path, list[Pair]]:
    """The pairs by the folder of their image."""
    by_folder: dict[Path, list[Pair]] = {}
    for pair in pairs:
        by_folder.setdefault(pair.image.parent, []).append(pair)
    return by_folder


def _case_folders(by_folder: dict[Path, list[Pair]]) -> bool:
    """Whether the folders of pairs are cases, each kept on one side of a split: CASE_FOLDERS
    or more of them, or several of one pair each (KiTS' case_00000/)."""
    return len(by_folder) >= CASE_FOLDERS or len(by_folder) > 1 \
        and all(len(found) == 1 for found in by_folder.values())


def _side_by_side_note(pairs: list[Pair], split: bool) -> list[str]:
    """data check's line on masks found beside their images, and on how they were split."""
    if not pairs or pairs[0].image.parent != pairs[0].mask.parent:
        return []
    by_folder = _pairs_by_folder(pairs)
    folders, how = len(by_folder), ""
    if split and _case_folders(by_folder):
        how = "; the val split takes whole folders (each one case, kept on one side)"
    elif split and folders > 1:
        how = "; the val split takes its share of each folder"
    first = pairs[0]
    image, mask = file_stem(first.image), file_stem(first.mask)
    named = "<name>_mask" if SIDE_MASK.fullmatch(mask) else f"<name>{mask[len(image):]}" \
        if mask.startswith(image) else f"as {first.image.name} and {first.mask.name}"
    return [f"masks beside their images ({named}): {len(pairs)} pairs in {folders} "
            f"folder(s){how}"]


def _splits_inside_kinds(root: Path,
                         held_out: str) -> dict[str, tuple[Path, Path, Path | None]] | None:
    """The split folders inside the images and masks folders, as mmsegmentation lays a set
    out (img_dir/train/, ann_dir/train/, img_dir/val/, ...) and ADE20K and mmsegmentation's
    DRIVE, CHASE_DB1, HRF and STARE come (images/training/, annotations/validation/): each
    split's (images, masks, roi) folders; None where the set is not so."""
    images, masks, roi = _pair_folders(root, root)
    if images is None or masks is None or any(folder_image_files(root, images, [])):
        return None
    splits = {}
    for name, names in (("train", TRAIN_FOLDER_NAMES), ("val", held_out_names(held_out))):
        folders = [_split_folder(kind, names) if kind else None for kind in (images, masks, roi)]
        if folders[0] is None or folders[1] is None:
            return None
        splits[name] = tuple(folders)
    return splits


def _split_folder(parent: Path, names: tuple[str, ...]) -> Path | None:
    """The sub-folder of `parent` named as a split (named_folder), else the one whose name has
    such a word (IDRiD's a. Training Set/ and b. Testing Set/)."""
    found = named_folder(parent, names)
    if found is None:
        worded = [path for path in sub_folders(parent) if _words(path.name) & set(names)]
        found = worded[0] if len(worded) == 1 else None
    return found


def _split_pairs(pairs: list[Pair], fraction: float, seed: int):
    """A seeded split of pairs into train and val. Pairs of one images/ folder: `fraction` of
    them. Side-by-side pairs in several folders: see CASE_FOLDERS. A Fold: every fold-th of
    the shuffled pairs (or cases), each folder's in turn, so each fold takes its share of
    each folder."""
    rng = random.Random(seed)
    by_folder = _pairs_by_folder(pairs)
    if _case_folders(by_folder):
        cases = sorted(by_folder)
        rng.shuffle(cases)
        held_out = set(cases[fraction.fold::fraction.folds] if isinstance(fraction, Fold)
                       else cases[:max(1, round(len(cases) * fraction))])
        val = [pair for pair in pairs if pair.image.parent in held_out]
    elif isinstance(fraction, Fold):
        dealt = []
        for group in by_folder.values():
            shuffled = group[:]
            rng.shuffle(shuffled)
            dealt += shuffled
        val = dealt[fraction.fold::fraction.folds]
    else:
        val = []
        for group in by_folder.values():
            shuffled = group[:]
            rng.shuffle(shuffled)
            val += shuffled[:max(1, round(len(group) * fraction)) if len(group) > 1 else 0]
        val = val or [pairs[0]]
    taken = {id(pair) for pair in val}
    by_name = lambda pair: (str(pair.image.parent), pair.image.name)  # noqa: E731
    return (sorted((pair for pair in pairs if id(pair) not in taken), key=by_name),
            sorted(val, key=by_name))


def _folders_read(root: Path, splits: dict[str, Path]) -> list[str]:
    """How data check names the folders it read, where they are not train/, val/, masks/ and
    roi/: 'val: test/ (masks: 1st_manual/, roi: mask/)'."""
    described = []
    for name, folder in splits.items():
        found = _pair_folders(root, folder)
        parts = [f"{kind}: {path.name}/" for kind, path in zip(("images", "masks", "roi"), found)
                 if path and path.name != kind and path != folder]
        parts += [f"left out: {path.name}/" for path in sub_folders(folder)
                  if _named_as_masks(path.name) and path not in found[1:]]
        if (folder.name != name and folder != root) or parts:
            inner = f" ({', '.join(parts)})" if parts else ""
            where = "./" if folder == root else f"{folder.relative_to(root)}/"
            described.append(f"{name}: {where}{inner}")
    return described


def _pair_folders(root: Path, folder: Path) -> tuple[Path | None, Path | None, Path | None]:
    """The images, labels and ROI folders of a split, by name in any case (Images/ too)."""
    masks = named_folder(folder, MASK_FOLDER_NAMES)
    taken = masks.name.lower() if masks else None
    roi = named_folder(folder, tuple(n for n in ROI_FOLDER_NAMES if n != taken))
    images = named_folder(folder, IMAGE_FOLDER_NAMES)
    if images is None or masks is None:
        images, masks = _two_folders(root, folder, images, masks, roi)
    if images is None and masks is None and roi is None:
        sibling = _sibling_masks(root, folder)
        if sibling is not None:  # the split folder is the images
            return folder, sibling, None
    return images, masks, roi


def _sibling_masks(root: Path, folder: Path) -> Path | None:
    """The masks of a split folder of images in a folder beside it named after it, as CamVid
    (train/ and train_labels/; SegNet's trainannot/) and the Massachusetts roads come; None
    where there is none, or `folder` is the dataset root."""
    if folder == root:
        return None
    for path in sub_folders(folder.parent):
        rest = path.name[len(folder.name):].strip(" _-.")
        if path.name.lower().startswith(folder.name.lower()) and rest \
                and _named_as_masks(rest):
            return path
    return None


def _two_folders(root: Path, folder: Path, images: Path | None, masks: Path | None,
                 roi: Path | None) -> tuple[Path | None, Path | None]:
    """Image and mask folders of other names, where `folder` holds one folder not named as
    masks, the images (CVC-ClinicDB's Original/, CXR_png/, STARE's stare-images/), beside
    folders named as masks (Ground Truth/, ISIC's ISIC2018_Task1_Training_GroundTruth/): the
    masks are the first of those (STARE's first observer's labels-ah/, not labels-vk/). Of
    several folders not named as masks, the one named as images (NuInsSeg's tissue images/
    beside its distance maps/) is the images."""
    others = [path for path in sub_folders(folder) if path != roi]
    named = sorted((path for path in others if _named_as_masks(path.name)),
                   key=lambda path: _natural(path.name))
    if masks is None and not named:
        return images, masks
    rest = [path for path in others if path not in named and _holds_images(root, path)]
    worded = [path for path in rest if _words(path.name) & IMAGE_FOLDER_WORDS]
    if len(rest) > 1 and len(worded) == 1:  # NuInsSeg's tissue images/ beside distance maps/
        rest = worded
    if masks is None and named and len(rest) == 1:
        masks = named[0]
    if images is None and masks is not None and len(rest) == 1:
        images = rest[0]
    return images, masks


def _holds_images(root: Path, folder: Path) -> bool:
    """Whether `folder` holds an image file, in it or below (Montgomery's ClinicalReadings/
    holds text)."""
    return any(folder_image_files(root, folder, [], recursive=True))


def _named_as_masks(name: str) -> bool:
    words = _words(name)
    return bool(words & MASK_FOLDER_WORDS) or {"ground", "truth"} <= words


def sided_class_names(names: list[str]) -> list[str]:
    """The class names that name a side, where both sides have one (leftMask, rightMask;
    left lung, right lung); else []."""
    sides = {name: _words(name) & {"left", "right"} for name in names}
    sided = [name for name, side in sides.items() if side]
    found = set().union(*sides.values())
    return sided if found == {"left", "right"} else []


def _words(name: str) -> set[str]:
    """The lower-case words of a folder or class name: 'ManualMask' and 'Manual_mask' as
    manual, mask."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return set(re.split(r"[^a-z0-9]+", spaced.lower()))


def _pair_folder(root: Path, folder: Path, odd: list[Path]) -> list[Pair]:
    images_dir, masks_dir, roi_dir = _pair_folders(root, folder)
    if images_dir is None and masks_dir is None:
        pairs = _side_by_side_pairs(root, folder, odd) or _case_folder_pairs(root, folder, odd) \
            or _channel_case_pairs(root, folder, odd) or _named_case_pairs(root, folder, odd) \
            or _numbered_pairs(root, folder, odd)
        if pairs:
            return pairs
        raise VisionsuiteError(f"{folder}: expected images/ and masks/ folders, or masks beside "
                               "their images named after them (21.png and 21_mask.png)")
    for needed, name in ((images_dir, "images"), (masks_dir, "masks")):
        if needed is None:
            raise VisionsuiteError(f"{folder}: expected images/ and masks/ folders ({name}/ "
                                   "is missing)")
    return _pair_dirs(root, images_dir, masks_dir, roi_dir, odd)


def _pair_dirs(root: Path, images_dir: Path, masks_dir: Path, roi_dir: Path | None,
               odd: list[Path]) -> list[Pair]:
    """The pairs of an images folder and its masks (and ROI) folder, by stem."""
    # errors name the folder of both, else the images' (mmsegmentation's img_dir/train/)
    folder = images_dir.parent if images_dir.parent == masks_dir.parent else images_dir
    images = _by_stem(root, images_dir, odd, series=True)
    below = not images and any(sub_folders(images_dir))
    if below:  # images in sub-folders (REFUGE's Training400/Glaucoma/), masks likewise
        images = _by_stem(root, images_dir, odd, recursive=True)
    if not images:
        others = [path for path in odd if path.parent == images_dir]
        raise VisionsuiteError(f"{images_dir}: no images in the folder{other_files_note(others)}")
    found = _by_stem(root, masks_dir, odd, recursive=below)
    classes = {} if found else _class_folder_masks(root, masks_dir, set(images), odd)
    if not found and not classes:
        others = [path for path in odd if path.parent == masks_dir]
        raise VisionsuiteError(f"{masks_dir}: no masks in the folder{other_files_note(others)}")
    images, channels = _first_channels(images, set(found))
    masks = _by_image_stem(found, set(images)) if found else _first_of_classes(classes)
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} image(s) without a mask ({_some(lonely_images)})")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} mask(s) without an image ({_some(lonely_masks)})")
        raise VisionsuiteError(f"{folder}: unpaired files: {'; '.join(parts)} (a mask pairs "
                               "with the image of its name, e.g. 21.tif and 21.gif, of its name "
                               "less an ending all masks share, e.g. 21_mask.gif, or of the "
                               "number in its name when each number names one image and mask)")
    rois = _by_image_stem(_by_stem(root, roi_dir, odd), set(images)) if roi_dir else None
    if rois is not None:
        missing = sorted(set(images) - set(rois))
        if missing:
            raise VisionsuiteError(f"{roi_dir}: no region-of-interest mask for "
                                   f"{len(missing)} image(s) ({_some(missing)})")
    return [Pair(images[stem], masks[stem], rois[stem] if rois else None,
                 channels=channels.get(stem, ()),
                 class_masks=tuple((name, of_class.get(stem))
                                   for name, of_class in classes.items()))
            for stem in sorted(images, key=_natural)]


def _class_folder_masks(root: Path, masks_dir: Path, image_stems: set[str], odd: list[Path]
                        ) -> dict[str, dict[str, Path]]:
    """Masks in a folder per class, where `masks_dir` holds folders of masks rather than
    masks (Montgomery's ManualMask/leftMask/ and rightMask/, the SCR's masks/heart/, ...): the
    image stem -> mask of each class folder, in natural order of their names; {} where none."""
    classes = {}
    for folder in sorted(sub_folders(masks_dir), key=lambda path: _natural(path.name)):
        scratch: list[Path] = []
        found = _by_stem(root, folder, scratch)
        if found:
            odd += scratch
            classes[folder.name] = _by_image_stem(found, image_stems)
    return classes


def _first_of_classes(classes: dict[str, dict[str, Path]]) -> dict[str, Path]:
    """Each image's first mask among the class folders' (pairing needs one per image)."""
    first: dict[str, Path] = {}
    for of_class in classes.values():
        for stem, path in of_class.items():
            first.setdefault(stem, path)
    return first


def _case_folder_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """A folder per image, each with images/ and masks/, as the 2018 Data Science Bowl's
    nuclei come (stage1_train/<id>/images/<id>.png, masks/ of one file per nucleus): a case
    of one image pairs it with all its masks, merged; other cases pair as a split folder
    does. None where no sub-folder holds images/ and masks/."""
    cases = {path: _pair_folders(root, path) for path in sub_folders(folder)}
    cases = {case: found for case, found in cases.items() if all(found[:2])}
    if not cases:
        return None
    pairs = []
    for case, (images_dir, masks_dir, _) in cases.items():
        scratch: list[Path] = []  # the files of no image format, counted once
        images = _by_stem(root, images_dir, scratch)
        masks = [path for _, path in sorted(_by_stem(root, masks_dir, scratch).items(),
                                            key=lambda item: _natural(item[0]))]
        if len(images) == 1 and masks:
            odd += scratch
            pairs.append(Pair(next(iter(images.values())), masks[0], more_masks=tuple(masks[1:])))
        else:
            pairs += _pair_folder(root, case, odd)
    return pairs


def _named_case_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """A folder per case holding a volume named as an image and one named as its labels, as
    KiTS comes (case_00000/imaging.nii.gz and segmentation.nii.gz); its other volumes (KiTS21's
    aggregated_MAJ_seg.nii.gz, ...) are left out. None unless the first case folder is such;
    after it, a case without the two is an error naming it."""
    pairs: list[Pair] = []
    for case in sub_folders(folder):
        scratch: list[Path] = []
        volumes = {file_stem(path).lower(): path
                   for path in folder_image_files(root, case, scratch) if is_volume(path)}
        image = next((volumes[name] for name in CASE_IMAGE_NAMES if name in volumes), None)
        labels = next((volumes[name] for name in CASE_LABEL_NAMES if name in volumes), None)
        if image is None or labels is None:
            if not pairs:
                return None
            raise VisionsuiteError(f"{case}: expected an image volume and its labels, as "
                                   f"{pairs[0].image.parent.name} has ({pairs[0].image.name}, "
                                   f"{pairs[0].mask.name})")
        odd += scratch
        pairs.append(Pair(image, labels, left_out=tuple(
            path for path in volumes.values() if path not in (image, labels))))
    return pairs or None


def _numbered_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """Image and label files side by side that share a number, the labels named so, as LiTS
    comes (volume-0.nii with segmentation-0.nii, in Training Batch 1/ and 2/); None where the
    files do not all pair so."""
    odd_here: list[Path] = []
    images: dict[tuple[Path, str], Path] = {}
    labels: dict[tuple[Path, str], Path] = {}
    for path in folder_image_files(root, folder, odd_here, recursive=True):
        match = NUMBERED_FILE.fullmatch(file_stem(path))
        if match is None:
            return None
        found = labels if match["word"].lower() in CASE_LABEL_NAMES else images
        if (path.parent, match["number"]) in found:
            return None
        found[path.parent, match["number"]] = path
    if not labels or set(images) != set(labels):
        return None
    odd += odd_here
    return [Pair(images[key], labels[key])
            for key in sorted(images, key=lambda key: (str(key[0]), int(key[1])))]


def _channel_case_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """A folder per case of NIfTI volumes named after it, one per MRI channel and one of
    labels, as BraTS comes (BraTS2021_00000/BraTS2021_00000_flair.nii.gz, _t1, _t1ce, _t2 and
    _seg; BraTS 2023's -t2f, -t1n, -t1c, -t2w and -seg): a pair per case, its channels in the
    name order of their endings. None unless the first case folder is such; after it, a case
    of other endings is an error naming it."""
    pairs: list[Pair] = []
    first: tuple[Path, list[str]] | None = None
    for case in sub_folders(folder):
        scratch: list[Path] = []
        files = _case_volumes(case, folder_image_files(root, case, scratch))
        labels = [ending for ending in files or {} if ending in CASE_LABEL_ENDINGS]
        channels = sorted(set(files or {}) - set(labels))
        if first is None and (len(labels) != 1 or not channels):
            return None
        first = first or (case, channels)
        if len(labels) != 1 or channels != first[1]:
            raise VisionsuiteError(
                f"{case}: expected the files {case.name}_<channel>.nii.gz of "
                f"{', '.join(first[1])} and one {case.name}_seg.nii.gz of labels, as "
                f"{first[0].name} has; found {', '.join(sorted(files or {})) or 'none'}")
        odd += scratch
        pairs.append(Pair(files[channels[0]], files[labels[0]],
                          channels=tuple(files[ending] for ending in channels[1:])))
    return pairs or None


def _case_volumes(case: Path, paths: list[Path]) -> dict[str, Path] | None:
    """The NIfTI files of a case folder by the ending after its name ('flair' of
    BraTS2021_00000_flair.nii.gz); None where a file is not so named."""
    found = {}
    for path in paths:
        stem = file_stem(path)
        ending = stem[len(case.name) + 1:]
        if not is_volume(path) or not ending or _case_before(stem, ending) != case.name:
            return None
        found[ending.lower()] = path
    return found


def _first_channels(images: dict[str, Path], mask_stems: set[str]
                    ) -> tuple[dict[str, Path], dict[str, tuple[Path, ...]]]:
    """nnU-Net's images, one file per channel (case_0000.nii.gz, case_0001.nii.gz for
    labelsTr/case.nii.gz): each case's first channel as its image, keyed by the case, and
    its further channels in order. Other images as they are. Every case must have the same
    channels, numbered from 0000 on."""
    matches = {stem: CHANNEL_FILE.fullmatch(stem) for stem in images}
    cases = {m["case"] for m in matches.values() if m}
    if set(images) & mask_stems or not all(matches.values()) or not cases <= mask_stems \
            or any(f"{case}_0000" not in images for case in cases):
        return images, {}
    numbers: dict[str, list[str]] = {}
    for stem in sorted(images):
        numbers.setdefault(matches[stem]["case"], []).append(matches[stem]["channel"])
    expected = max(numbers.values(), key=len)
    for case in sorted(numbers, key=_natural):
        if numbers[case] != [f"{i:04d}" for i in range(len(expected))]:
            raise VisionsuiteError(
                f"{images[f'{case}_0000'].parent}: case {case} has the channel files "
                f"_{', _'.join(numbers[case])}, where every case needs "
                f"_0000 to _{len(expected) - 1:04d} (one file per channel)")
    others = {case: tuple(images[f"{case}_{number}"] for number in numbers[case][1:])
              for case in cases}
    return {case: images[f"{case}_0000"] for case in cases}, others


def _side_by_side_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """Pairs of masks saved beside their images (SIDE_MASK) anywhere below `folder`, or None
    where no file is named as such a mask."""
    images: dict[tuple[Path, str], Path] = {}
    masks: dict[tuple[Path, str], list[Path]] = {}
    odd_here: list[Path] = []
    for path in folder_image_files(root, folder, odd_here, recursive=True):
        stem = file_stem(path)
        match = SIDE_MASK.fullmatch(stem)
        if match:
            masks.setdefault((path.parent, match["image"]), []).append(path)
        elif (path.parent, stem) in images:
            raise VisionsuiteError(f"{path.parent}: two images with the stem '{stem}' "
                                   f"({images[path.parent, stem].name}, {path.name})")
        else:
            images[path.parent, stem] = path
    if not masks:
        return _pairs_by_ending(images, odd, odd_here)
    odd += odd_here
    if images and set(images) != set(masks):
        images = _without_image_ending(images, set(masks)) or images
    lonely_images = sorted(str(images[key].relative_to(folder)) for key in images
                           if key not in masks)
    lonely_masks = sorted(str(found[0].relative_to(folder)) for key, found in masks.items()
                          if key not in images)
    if lonely_images or lonely_masks:
        parts = [f"{len(found)} {what} ({_some(found)})"
                 for found, what in ((lonely_images, "image(s) without a <name>_mask beside "
                                      "them"), (lonely_masks, "mask(s) without their image"))
                 if found]
        raise VisionsuiteError(f"{folder}: unpaired files: {'; '.join(parts)}")
    return [Pair(images[key], found[0], more_masks=tuple(found[1:]))
            for key, found in sorted(masks.items(),
                                     key=lambda item: (str(item[0][0]), _natural(item[0][1])))]


def _without_image_ending(images: dict[tuple[Path, str], Path],
                          masks: set[tuple[Path, str]]) -> dict[tuple[Path, str], Path] | None:
    """The images by their stems less an ending that they all have, where that pairs every
    mask with an image: DeepGlobe's 100694_sat.jpg with 100694_mask.png; None where no such
    ending does."""
    _, stem = next(iter(images))
    for cut in (i for i, char in enumerate(stem) if char == "_" and i > 0):
        ending = stem[cut:]
        if all(name.endswith(ending) and len(name) > len(ending) for _, name in images):
            cut_off = {(parent, name[:-len(ending)]): path
                       for (parent, name), path in images.items()}
            if masks <= set(cut_off):
                return cut_off
    return None


def _pairs_by_ending(images: dict[tuple[Path, str], Path], odd: list[Path],
                     odd_here: list[Path]) -> list[Pair] | None:
    """Masks beside their images named after them with an ending other than _mask, as
    CHASE_DB1 comes (Image_01L.jpg, Image_01L_1stHO.png, Image_01L_2ndHO.png): files named
    after another with an ending are labels, and an ending that every image has a file of
    names its masks; of several (two observers'), the first, as DRIVE, STARE and CHASE_DB1
    results are scored on the first observer's. The other labels are left out. Images of an
    ending of their own that no image with labels has are left out too, as ACDC keeps each
    patient's unlabelled cine (patient001_4d.nii.gz) beside the frames labelled
    (patient001_frame01.nii.gz, patient001_frame01_gt.nii.gz). None where no ending pairs
    every other image."""
    endings: dict[str, set] = {}
    for parent, stem in images:
        for cut in (i for i, char in enumerate(stem) if char == "_" and i > 0):
            if (parent, stem[:cut]) in images:
                endings.setdefault(stem[cut:], set()).add((parent, stem[:cut]))
    labels = {(parent, stem) for parent, stem in images
              if any(stem.endswith(end) and (parent, stem[:-len(end)]) in images
                     for end in endings)}
    bases = set(images) - labels
    full = sorted((end for end, found in endings.items() if found == bases), key=_natural)
    unlabelled: set = set()
    if bases and not full:  # ACDC's cines
        full = sorted((end for end, found in endings.items()
                       if _one_kind_apart(bases - found, found)), key=_natural)
        unlabelled = bases - endings[full[0]] if full else set()
    if not bases or not full:
        return None
    odd += odd_here
    others = sorted(set(endings) - {full[0]}, key=_natural)
    apart = {parent: [images[key] for key in sorted(unlabelled) if key[0] == parent]
             for parent, _ in unlabelled}
    pairs = [Pair(images[key], images[key[0], key[1] + full[0]],
                  left_out=tuple(images[key[0], key[1] + end] for end in others
                                 if (key[0], key[1] + end) in images)
                  + tuple(apart.pop(key[0], [])))
             for key in sorted(bases - unlabelled,
                               key=lambda key: (str(key[0]), _natural(key[1])))]
    return pairs


def _one_kind_apart(unlabelled: set, labelled: set) -> bool:
    """Whether images without labels are of a kind of their own: two or more, their names
    all ending as no labelled image's does (ACDC's _4d), not a mask or two gone missing."""
    endings = {stem[stem.rfind("_"):] if "_" in stem else None for _, stem in unlabelled}
    if len(unlabelled) < 2 or len(endings) != 1 or None in endings:
        return False
    ending = next(iter(endings))
    return not any(stem.endswith(ending) for _, stem in labelled)


def _by_stem(root: Path, folder: Path, odd: list[Path], series: bool = False,
             recursive: bool = False) -> dict[str, Path]:
    """The image files of `folder` (`recursive`: and of its sub-folders) by stem; with
    `series`, also its sub-folders that hold a DICOM series each, by the sub-folder's name
    (`images/case1/` for `masks/case1.nii.gz`)."""
    found: dict[str, Path] = {}
    folders = [path for path in sorted(folder.iterdir())
               if series and path.is_dir() and holds_data(path.name)]
    for sub in folders:
        inside(root, sub.relative_to(root))  # a link out of the dataset is refused
    for path in [*folder_image_files(root, folder, odd, recursive=recursive),
                 *(sub for sub in folders if series_folder(sub) is not None)]:
        stem = file_stem(path)
        if stem in found:
            raise VisionsuiteError(f"{folder}: two files with the stem '{stem}' "
                                   f"({found[stem].name}, {path.name}); pairing is by stem")
        found[stem] = path
    return found


def _by_image_stem(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path]:
    """Masks keyed by the stem of the image each belongs to, by the first rule that pairs them
    all: their own stem; their stem less one ending they all share (ISIC's `_segmentation`,
    Carvana's and DRIVE's field-of-view `_mask`); the first number in their names, where each
    number is one image's and one mask's (DRIVE's `21_training.tif`, `21_manual1.gif`)."""
    if not found or set(found) & image_stems:
        return found
    return _by_shared_ending(found, image_stems) or _by_number(found, image_stems) or found


def _by_shared_ending(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path] | None:
    shared: set[str] | None = None
    for stem in found:
        endings = {stem[cut:] for cut in range(1, len(stem)) if stem[:cut] in image_stems}
        shared = endings if shared is None else shared & endings
        if not shared:
            return None
    if len(shared) != 1:
        return None
    ending = shared.pop()
    return {stem[:-len(ending)]: path for stem, path in found.items()}


def _by_number(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path] | None:
    images = _unique_numbers(image_stems)
    masks = _unique_numbers(found)
    if images is None or masks is None or not set(masks) <= set(images):
        return None
    return {images[number]: found[stem] for number, stem in masks.items()}


def _unique_numbers(stems) -> dict[int, str] | None:
    """{first number in the name: stem}, or None when a name has none or two share one."""
    numbered: dict[int, str] = {}
    for stem in stems:
        match = re.search(r"\d+", stem)
        if match is None or int(match.group()) in numbered:
            return None
        numbered[int(match.group())] = stem
    return numbered


def _natural(stem: str):
    """Sort key: '2' before '10'."""
    return [int(part) if part.isdigit() else part
            for part in re.split(r"(\d+)", stem)]


def _some(stems: list[str], count: int = 3) -> str:
    return ", ".join(stems[:count]) + (", ..." if len(stems) > count else "")


@dataclass
class ClassMap:
    names: list[str]
    lookup: np.ndarray  # 256 entries: raw mask value -> class index, IGNORE, or -1 (invalid)
    binary_255: bool  # masks are 0/255
    levels: list[int] | None = None  # grey masks coding classes: each class's value


def read_as_objects(index: PairIndex, pairs: list[Pair]) -> bool:
    """Whether data.binary_masks=auto reads the masks of `pairs` as foreground: the layout's
    masks number objects (the CTC's), or they are seen to (numbers_objects)."""
    return index.numbered_masks or numbers_objects(pairs)


def numbers_objects(pairs: list[Pair]) -> bool:
    """Whether the masks number objects rather than classes (instance masks, as Cellpose's
    and StarDist's label images come): of up to INSTANCE_SAMPLE mask files spread over
    `pairs`, one holds values above 255 (no class index here), or most number OBJECT_COUNT
    or more objects 1..N without a gap, each one region (_numbered_objects), N not the same
    in all. Class-index masks hold a few values, or the same classes, or classes spread over
    several regions (cars, poles), or with gaps, image after image. Drawn, per-class and
    medical masks are class masks."""
    files = [pair.mask for pair in pairs if pair.shapes is None and not pair.class_masks
             and pair.mask.is_file() and not is_medical_file(pair.mask)]
    counts = []
    for path in files[::max(1, len(files) // INSTANCE_SAMPLE)][:INSTANCE_SAMPLE]:
        try:
            values = mask_values(path)
        except (UnreadableImage, OSError, ValueError):
            continue  # decoding reports it
        if is_colour_mask(values) or values.ndim != 2:
            return False
        if values.max(initial=0) > 255:
            return True
        counts.append(_numbered_objects(values))
    numbered = [count for count in counts if count]
    return 2 * len(numbered) > len(counts) and len(set(numbered)) > 1


def _numbered_objects(mask: np.ndarray) -> int:
    """N where the mask's values other than 0 run 1..N without a gap, N >= OBJECT_COUNT,
    and each of nine in ten is one connected region; else 0."""
    import cv2

    if mask.min(initial=0) < 0:
        return 0
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=1))  # no sort: most masks
    count = len(present) - (present[0] == 0)                         # stop here
    if count < OBJECT_COUNT or present[-1] != count:
        return 0
    order = np.argsort(mask, axis=None, kind="stable")
    values, starts = np.unique(mask.ravel()[order], return_index=True)
    rows, columns = np.unravel_index(order, mask.shape)
    whole = 0
    for value, start, end in zip(values, starts, [*starts[1:], order.size]):
        if value == 0:
            continue
        ys, xs = rows[start:end], columns[start:end]
        crop = np.zeros((ys.max() - ys.min() + 1, xs.max() - xs.min() + 1), np.uint8)
        crop[ys - ys.min(), xs - xs.min()] = 1
        whole += cv2.connectedComponents(crop, connectivity=8)[0] == 2  # background + one
    return count if 10 * whole >= 9 * count else 0


def class_map(values: set[int], names: list[str] | None,
              levels: list[int] | None = None) -> ClassMap:
    """How raw mask values become class indices. Grey `levels` (data.mask_values), or
    values that are grey levels (grey_levels), are the classes in that order (in value
    order), named by `names` or by their values. With `names` (K classes): values 0..K-1,
    and 255 as the foreground of a 2-class 0/255 mask. Without: 0/255 and 0/1 masks are
    binary (background, foreground); otherwise values 0..max are classes and 255 is
    'ignore'."""
    lookup = np.full(256, -1, np.int16)
    binary_255 = values <= {0, 255} and 255 in values
    if levels or grey_levels(values, names):
        levels = list(levels or sorted(values))
        if names and len(names) != len(levels):
            raise VisionsuiteError(f"data.classes names {len(names)} classes, but the masks "
                                   f"code {len(levels)} as grey levels ({levels})")
        lookup[levels] = np.arange(len(levels))
        named = names or (["background", "foreground"] if len(levels) == 2
                          else [f"value_{level}" for level in levels])
        return ClassMap(list(named), lookup, False, levels)
    if names:
        count = len(names)
        if count < 2:
            raise VisionsuiteError("data.classes needs at least 2 names (background first)")
        lookup[:min(count, 256)] = np.arange(min(count, 256))
        if count == 2 and values <= {0, 255}:
            lookup[255] = 1
        elif count < 255:
            lookup[255] = IGNORE
        return ClassMap(list(names), lookup, count == 2 and binary_255)
    if values <= {0, 1} or binary_255:
        lookup[0], lookup[1 if not binary_255 else 255] = 0, 1
        return ClassMap(["background", "foreground"], lookup, binary_255)
    classes = sorted(values - {IGNORE})
    top = max(classes, default=0)
    count = max(top + 1, 2)
    lookup[:count] = np.arange(count)
    lookup[IGNORE] = IGNORE
    return ClassMap([f"class_{i}" for i in range(count)], lookup, False)


def grey_levels(values: set[int], names: list[str] | None = None) -> bool:
    """Whether grey mask values are a few levels spread over 0..255 that code classes
    (REFUGE's 0, 128 and 255; 0, 85, 170, 255), rather than class indices 0..K-1 (255 their
    void) or a 0/255 or 0/1 mask: at most GREY_LEVELS values, one other than 255 at least
    64, not 0..K-1; as many as `names` where they are given."""
    indices = sorted(values - {IGNORE})
    return (2 <= len(values) <= GREY_LEVELS and not values <= {0, 255}
            and max(indices, default=0) >= 64 and indices != list(range(len(indices)))
            and (not names or len(names) == len(values)))


def apply_class_map(mask: np.ndarray, mapping: ClassMap, path: Path) -> np.ndarray:
    mapped = mapping.lookup[mask]
    if (mapped < 0).any():
        bad = sorted(int(v) for v in np.unique(mask[mapped < 0]))
        raise VisionsuiteError(
            f"{path}: mask values {bad[:8]} are outside the {len(mapping.names)} classes "
            f"({', '.join(mapping.names)}); set data.classes to name every class")
    return mapped.astype(np.uint8)


@dataclass
class SegmentSplit(Split):
    """images and targets: lists of (H, W, C) uint8 images and (H, W) class-index masks
    (IGNORE outside a region of interest), of their own sizes; spacing: each image's voxel
    size in mm (between slices, rows, columns) where its file says (DICOM, NIfTI), else
    None: surface distances are measured in it. regions, surface_tolerance and
    choose_largest_component: how the val split's metrics score it, from the config
    (Task.evaluate sees the split, not the config)."""

    spacing: list[tuple[float, float, float] | None] = field(default_factory=list)
    # data.regions as class indices: classes scored together as well (BraTS' whole tumour)
    regions: dict[str, list[int]] = field(default_factory=dict)
    # data.surface_tolerance: NSD's, or each named structure's
    surface_tolerance: float | dict[str, float] | None = None
    # model.keep_largest_component: training's evaluation chooses that post-processing
    choose_largest_component: bool = False


@dataclass
class DecodedPair:
    image: np.ndarray
    mask: np.ndarray  # raw values; of a colour mask, indices into `colours`
    roi: np.ndarray | None
    slice: int | None = None  # the slice of a volume (DICOM frames, NIfTI), None for 2-D files
    colours: np.ndarray | None = None  # a colour mask's own colours, until classes_from_colours
    spacing: tuple[float, float, float] | None = None  # as decoded (SegmentSplit.spacing)


def _slice_name(path: Path, index: int | None) -> Path:
    """How messages and plots name slice `index` of `path`: 'ct.nii.gz[12]' (volume_of's
    inverse)."""
    return path if index is None else path.with_name(f"{path.name}[{index}]")


_SLICE_NAME = re.compile(r"^(.*)\[(\d+)\]$")  # as _slice_name writes them


def volume_of(name: str) -> str:
    """The volume (or stack, or DICOM series) that a slice's name (_slice_name) belongs to;
    a 2-D image's name is its own."""
    found = _SLICE_NAME.match(name)
    return found.group(1) if found else name


def case_members(paths: list[str]) -> list[list[int]]:
    """The indices of each case's images, in order: a volume's slices (volume_of), which
    come together and in order, are one case; a 2-D image is its own."""
    cases: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        cases.setdefault(volume_of(path), []).append(index)
    return list(cases.values())


def image_channels(pairs: list[Pair]) -> int | None:
    """The channels of images that carry their own (a file per channel as nnU-Net stores
    them, the volumes of 4-D NIfTI files, the channels of multi-channel TIFFs), else None:
    data.channels decides (grey or RGB). Images of different channel counts are an error
    naming two of them."""
    first: dict[int, Path] = {}
    for pair in pairs:
        if pair.channels:
            count = 1 + len(pair.channels)
        elif is_volume(pair.image):
            count = _header_channels(pair.image)
            if count is None:
                continue  # decoding reports it
        else:
            count = _tiff_channels_or_none(pair.image)  # a multi-channel TIFF's, else 1
            if count is None:
                continue  # decoding reports it
        first.setdefault(count, pair.image)
        if len(first) > 1:
            (one, a), (other, b) = sorted(first.items())[:2]
            raise VisionsuiteError(f"{b}: {other} channels, but {a} has {one}; every image of "
                                   "a dataset needs as many")
    count = next(iter(first), 1)
    return count if count > 1 else None


def channel_names(index: PairIndex, count: int) -> list[str]:
    """The names of `count` image channels: dataset.json's, else 'channel 0', ..."""
    names = index.channel_names
    return names if names and len(names) == count else [f"channel {i}" for i in range(count)]


def read_channel_files(image: Path, others: tuple[Path, ...], channels: int,
                       window: list[float] | None) -> list[np.ndarray]:
    """The slices of `image`; of an image stored a channel per file (`image` its first,
    `others` the rest, nnU-Net's case_0000, case_0001, ...), each file's slices side by
    side, each file windowed on its own (MRI modalities share no intensity scale)."""
    if not others:
        return read_image_slices(image, channels, window)
    files = (image,) + tuple(others)
    if len(files) != channels:
        raise VisionsuiteError(f"{image}: {len(files)} channel files, but the model takes "
                               f"{channels} channels")
    parts = [read_image_slices(path, 1, window) for path in files]
    for path, part in zip(files[1:], parts[1:]):
        if [p.shape for p in part] != [p.shape for p in parts[0]]:
            raise VisionsuiteError(f"{path}: its size or slices differ from {image.name}, the "
                                   "same image's first channel")
    return [np.concatenate(slices, axis=-1) for slices in zip(*parts)]


@dataclass(frozen=True)
class ChannelFiles:
    """One image stored a channel per file (multi-modal MRI), in channel order."""
    case: str  # masks are named after it
    paths: tuple[Path, ...]


def channel_groups(inputs: list, names: list[str]) -> tuple[list, list[Path]]:
    """The inputs of a model of multi-channel images (`names`, one a channel) and the label
    files left out: the channel files of one case in one folder (nnU-Net's case_0000.nii.gz,
    case_0001.nii.gz; BraTS's <case>_flair.nii.gz, <case>_t1.nii.gz, ...) as ChannelFiles;
    a 4-D NIfTI of as many volumes as it is. A case's label file (<case>_seg.nii.gz) is left
    out. Anything else would show the model one channel for all: a one-line error naming
    the file."""
    count, cases, found, labels = len(names), {}, [], []
    wanted = f"{count} channels ({', '.join(names)})"
    for item in inputs:
        case = _channel_of(item, names) if isinstance(item, Path) else None
        if case:
            cases.setdefault((item.parent, case[0]), {})[case[1]] = item
        elif isinstance(item, Path) and _label_of(item):
            labels.append(item)
        elif isinstance(item, Path) and is_volume(item) \
                and _header_channels(item) in (count, None):
            found.append(item)
        elif isinstance(item, Path) and _tiff_channels_or_none(item) in (count, None):
            found.append(item)  # a multi-channel TIFF of the model's channels
        else:
            shown = item.paths[0].parent if hasattr(item, "paths") else item
            raise VisionsuiteError(f"{shown}: one channel, but the model takes {wanted}: give "
                                   "each case's files of every channel, 4-D NIfTI volumes "
                                   f"or multi-channel TIFFs of {count}")
    for (folder, case), files in sorted(cases.items()):
        if sorted(files) != list(range(count)):
            raise VisionsuiteError(f"{folder}: case {case} has the channel files of "
                                   f"{', '.join(names[i] for i in sorted(files))}; the model "
                                   f"takes {wanted}")
        found.append(ChannelFiles(case, tuple(files[index] for index in range(count))))
    left_out = [path for path in labels if (path.parent, _label_of(path)) in cases]
    if len(left_out) < len(labels):
        raise VisionsuiteError(f"{sorted(set(labels) - set(left_out))[0]}: labels without the "
                               "channel files of their case")
    return found, left_out


def _tiff_channels_or_none(path: Path) -> int | None:
    """tiff_channels, None for a file that cannot be read (reading it reports it)."""
    try:
        return tiff_channels(path)
    except UnreadableImage:
        return None


def _channel_of(path: Path, names: list[str]) -> tuple[str, int] | None:
    """(case, channel index) of a file of one channel: nnU-Net's case_0001 (1), or
    <case>_<name> or <case>-<name> for the channel `names` (BraTS's _flair, -t1c)."""
    stem = file_stem(path)
    match = CHANNEL_FILE.fullmatch(stem)
    if match:
        return (match["case"], int(match["channel"])) if int(match["channel"]) < len(names) \
            else None
    return next(((case, index) for index, name in enumerate(names)
                 if (case := _case_before(stem, name))), None)


def _label_of(path: Path) -> str | None:
    """The case of a case folder's label file (<case>_seg.nii.gz), else None."""
    stem = file_stem(path)
    return next((case for ending in CASE_LABEL_ENDINGS if (case := _case_before(stem, ending))),
                None)


def _case_before(stem: str, ending: str) -> str | None:
    """<case> of a stem <case>_<ending> or <case>-<ending> (the ending in any case)."""
    if len(stem) > len(ending) + 1 and stem.lower().endswith(ending.lower()) \
            and stem[-len(ending) - 1] in "_-":
        return stem[:-len(ending) - 1]
    return None


def _header_channels(path: Path) -> int | None:
    try:
        return read_header(path).channels
    except UnreadableImage:
        return None  # reading it reports it


def _decode_pair(pair: Pair, channels: int, window: list[float] | None,
                 binary: bool, max_size: int | None = None) -> list[DecodedPair]:
    images = read_channel_files(pair.image, pair.channels, channels, window)
    masks = _upright_masks(pair.image, _read_masks(pair, binary))
    # A region of interest is wherever its mask is not 0, whatever it stores there.
    rois = _upright_masks(pair.image, _mask_slices(pair, pair.roi, True)) \
        if pair.roi is not None else [None] * len(images)
    for path, found in ((pair.mask, masks), (pair.roi, rois)):
        if len(found) != len(images):
            raise VisionsuiteError(f"{path}: {len(found)} slice(s) but its image "
                                   f"{pair.image.name} has {len(images)}")
    decoded, spacing = [], voxel_spacing(pair.image)
    for index, (image, mask, roi) in enumerate(zip(images, masks, rois)):
        number = index if len(images) > 1 else None
        for path, other, what in ((pair.mask, mask, "mask"),
                                  (pair.roi, roi, "region-of-interest mask")):
            if other is not None and other.shape != image.shape[:2]:
                raise VisionsuiteError(
                    f"{_slice_name(path, number)}: {what} is {other.shape[1]}x{other.shape[0]} "
                    f"but its image {pair.image.name} is {image.shape[1]}x{image.shape[0]}")
        if roi is not None:
            roi = fit_within(roi, max_size, nearest=True) > 0
        mask, colours = indexed_colours(mask, _slice_name(pair.mask, number))
        fitted = fit_within(image, max_size)
        decoded.append(DecodedPair(fitted, fit_within(mask, max_size, nearest=True), roi,
                                   number, colours, _scaled(spacing, image, fitted)))
    return decoded


def _scaled(spacing: tuple[float, float, float] | None, image: np.ndarray,
            fitted: np.ndarray) -> tuple[float, float, float] | None:
    """The in-plane spacing of a slice that data.max_size scaled down grows by the scale
    (one factor for both sides, as fitted_size keeps the shape; rounding aside)."""
    if spacing is None:
        return None
    scale = max(image.shape[:2]) / max(fitted.shape[:2])
    return spacing[0], spacing[1] * scale, spacing[2] * scale


def _read_masks(pair: Pair, binary: bool) -> list[np.ndarray]:
    """The slices of the pair's mask, with its more_masks merged in: where several mark a
    pixel, the highest value is kept (for 0/255 lesion masks, their union). Masks of a folder
    per class make class indices (1 for the first folder's, ...; 255 for all, `binary`), as
    do a COCO, YOLO or run-length image's annotations (_drawn_classes)."""
    if pair.class_masks:
        return _class_indices(pair, binary)
    if pair.shapes is not None:
        return [_drawn_classes(pair, binary)]
    masks = _mask_slices(pair, pair.mask, binary)
    for other in pair.more_masks:
        more = _mask_slices(pair, other, binary)
        if [m.shape for m in more] != [m.shape for m in masks]:
            raise VisionsuiteError(f"{other}: its size or slices differ from {pair.mask.name}, "
                                   "the mask it adds to")
        masks = [np.maximum(mask, extra) for mask, extra in zip(masks, more)]
    return masks


def _class_indices(pair: Pair, binary: bool) -> list[np.ndarray]:
    """A pair's masks of a folder per class as one mask of class indices: each file's pixels
    not 0 get its class. Where two overlap, the smaller mask's class is kept: what lies inside
    or over another structure (a tumour in its organ, the SCR's clavicles over the lungs) is
    the smaller one, and would otherwise vanish under it."""
    layers = [(value, path, [m > 0 for m in _mask_slices(pair, path, binary=True)])
              for value, (_, path) in enumerate(pair.class_masks, start=1) if path is not None]
    shapes = [m.shape for m in layers[0][2]]
    for _, path, found in layers[1:]:
        if [m.shape for m in found] != shapes:
            raise VisionsuiteError(f"{path}: its size or slices differ from {pair.mask.name}, "
                                   "the same image's mask of another class")
    return _smaller_on_top([(value, found) for value, _, found in layers], shapes, binary)


def _smaller_on_top(layers: list[tuple[int, list[np.ndarray]]], shapes: list[tuple],
                    binary: bool, orders: tuple[float, ...] | None = None) -> list[np.ndarray]:
    """Class indices (255 for every class, `binary`) of each slice from (class value, its
    slices' bool masks) layers, the smaller layers painted last: where two overlap, what lies
    inside or over the other (a tumour in its organ) keeps its class. Where the layers have
    z `orders` (CVAT's), the higher are painted over the lower, and the smaller over the
    larger among equals."""
    masks = [np.zeros(shape, np.uint8) for shape in shapes]
    orders = orders or (0,) * len(layers)
    for _, (value, found) in sorted(zip(orders, layers), key=lambda layer: (
            layer[0], -sum(m.sum() for m in layer[1][1]))):
        for mask, of_class in zip(masks, found):
            mask[of_class] = 255 if binary and value else value  # 0: a hole (LabelMe's)
    return masks


def _drawn_classes(pair: Pair, binary: bool) -> np.ndarray:
    """A COCO image's annotations (polygons, RLE or uncompressed RLE) filled in as class
    indices at the size its file gives, a YOLO image's polygons at its own size, or a CSV's
    run-length codes at its stored size (smaller annotations on top: _smaller_on_top)."""
    from pycocotools import mask as coco_mask

    runs = any(isinstance(segmentation, RunLengths) for _, segmentation in pair.shapes)
    if pair.shapes_size is None:  # YOLO: normalised to the image as shown (EXIF applied)
        stored, orientation = stored_geometry(pair.image)
        # run-length codes number the stored pixels (_upright_masks turns them after)
        width, height = stored if runs else upright_size(stored, orientation)
    else:
        width, height = pair.shapes_size
    layers = []
    for value, segmentation in pair.shapes:
        if isinstance(segmentation, RunLengths):
            layers.append((value, [decode_run_lengths(segmentation, height, width)]))
            continue
        if isinstance(segmentation, PlacedMask):  # CVAT's runs, Supervisely's bitmaps
            try:
                layers.append((value, [segmentation.drawn(height, width)]))
            except (ValueError, OSError, zlib.error):
                raise VisionsuiteError(f"{pair.mask}: a mask of {pair.image.name} cannot be "
                                       "decoded (a bitmap that is no base64 of a zlib "
                                       "compressed PNG)") from None
            continue
        if pair.shapes_size is None:
            segmentation = [(np.reshape(polygon, (-1, 2)) * (width, height)).ravel().tolist()
                            for polygon in segmentation]
        try:
            if isinstance(segmentation, list):  # polygons [x1, y1, x2, y2, ...], 3+ points
                polygons = [polygon for polygon in segmentation if len(polygon) >= 6]
                drawn = coco_mask.decode(coco_mask.merge(
                    coco_mask.frPyObjects(polygons, height, width))) if polygons \
                    else np.zeros((height, width), np.uint8)
            elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
                drawn = coco_mask.decode(coco_mask.frPyObjects(segmentation, height, width))
            else:
                drawn = coco_mask.decode(segmentation)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            raise VisionsuiteError(f"{pair.mask}: an annotation of {pair.image.name} is neither "
                                   "polygons nor RLE") from None
        if drawn.shape != (height, width):
            raise VisionsuiteError(f"{pair.mask}: an annotation of {pair.image.name} is "
                                   f"{drawn.shape[1]}x{drawn.shape[0]}, its image "
                                   f"{width}x{height}")
        layers.append((value, [drawn.astype(bool)]))
    return _smaller_on_top(layers, [(height, width)], binary, pair.shape_orders)[0]


def _mask_slices(pair: Pair, path: Path, binary: bool) -> list[np.ndarray]:
    """A mask file's slices; the label volume of a DICOM series folder, or of a NIfTI volume
    of another size, is resampled onto the image's slices through the two affines."""
    kind = dicom_labels_kind(path)
    if kind:  # a DICOM SEG or RTSTRUCT of a series or one DICOM image
        return dicom_label_slices(path, pair.image, kind, binary)
    if pair.image.is_dir() or (is_volume(pair.image) and is_volume(path)):
        return label_slices_for(path, pair.image, binary)
    return read_mask_slices(path, binary)


def _upright_masks(image: Path, masks: list[np.ndarray]) -> list[np.ndarray]:
    """Masks drawn on the stored pixels of a photo that EXIF turns a quarter (they have its
    stored size, not its upright one), turned as read_image turns the photo."""
    if is_medical_file(image) or len(masks) != 1:
        return masks
    stored, orientation = stored_geometry(image)
    if orientation not in QUARTER_TURNS or masks[0].shape != (stored[1], stored[0]) \
            or stored[0] == stored[1]:
        return masks
    return [turn_upright(masks[0], orientation)]


def measured_window(pairs: list[Pair], workers: int = 0) -> tuple[list[float], str] | None:
    """data.window for a new run on 16-bit images: the bit_depth_window of the largest value
    in the image files of `pairs` (every channel file), and a line saying how they are read;
    None where they hold no 16-bit image or any is DICOM or NIfTI (whose files carry windows
    of their own). Files that cannot be read are left to decoding to report."""
    from visionsuite.core.data import load_in_parallel

    files = [path for pair in pairs for path in (pair.image,) + tuple(pair.channels)]
    if any(path.is_dir() or is_medical_file(path) for path in files):
        return None
    found, _ = load_in_parallel(deep_maximum, files, workers, "measuring bit depth")
    found = [value for value in found if value is not None]
    if not found:
        return None
    window = bit_depth_window(max(found))
    top = int(window[1])
    return window, (f"16-bit images with values up to {max(found)}: read as "
                    f"{top.bit_length()}-bit, 0..{top} to 0..255 (data.window={window})")


def _bit_depth_line(index: PairIndex, modes: Counter) -> list[str]:
    if not any(mode in DEEP_INTEGER_MODES for mode in modes):
        return []
    measured = measured_window([pair for pairs in index.splits.values() for pair in pairs])
    return [measured[1] + " by a new run; set data.window to read another range"] \
        if measured else []


def decode_pairs(pairs: list[Pair], channels: int, workers: int = 0, desc: str = "decoding",
                 window: list[float] | None = None, binary: bool = False,
                 max_size: int | None = None):
    """Decode image/mask pairs in parallel, volumes into one pair per slice; a pair whose image
    or mask cannot be decoded is warned about, skipped and counted; a size mismatch stops
    everything (the data is wrong). `binary`: masks are 0 (background) or not (foreground).
    `max_size`: slices whose longer side is larger are scaled down to it, masks nearest.
    Returns the decoded slices, the Pair of each, the skips."""
    from visionsuite.core.data import load_in_parallel

    results, skipped = load_in_parallel(
        lambda pair: _decode_pair(pair, channels, window, binary, max_size), pairs, workers,
        desc, warn="pair skipped")
    decoded, kept = [], []
    for slices, pair in zip(results, pairs):
        for item in slices or []:
            decoded.append(item)
            kept.append(pair)
    return decoded, kept, skipped


def slice_sizes(pairs: list[Pair], max_size: int | None = None,
                workers: int = 0) -> list[tuple[int, int]]:
    """(height, width) of every image slice of `pairs` as decoding will give it (upright,
    scaled down to max_size), from the files' headers; unreadable headers are left to
    decoding to report."""
    from visionsuite.core.data import load_in_parallel

    def layout(path: Path) -> tuple[int, tuple[int, int]]:
        if is_medical_file(path):
            header = read_header(path)
            return header.count, header.size or (0, 0)
        return tiff_stack_depth(path), inspect_image(path, decode=False)[0]

    found, _ = load_in_parallel(layout, [pair.image for pair in pairs], workers, "sizing")
    return [fitted_size(height, width, max_size) for count, (width, height) in filter(None, found)
            for _ in range(count)]


MAX_SIZE_ADVICE = "set data.max_size (the longer side in pixels, e.g. 1024) or train on a subset"


def check_pairs_fit(root: Path, splits: dict[str, list[Pair]], channels: int,
                    max_size: int | None, workers: int = 0) -> None:
    """A one-line error, before decoding, when the slices of `splits` would not fit in RAM
    while training."""
    from visionsuite.core.data import check_fits_in_memory

    needed, sizes = memory_to_train(splits, channels, max_size, workers)
    if sizes:
        height, width = max(sizes, key=lambda size: size[0] * size[1])
        check_fits_in_memory(root, needed, f"{len(sizes)} image slices (the largest "
                             f"{width}x{height})", MAX_SIZE_ADVICE)


def memory_to_train(splits: dict[str, list[Pair]], channels: int, max_size: int | None,
                    workers: int = 0) -> tuple[int, list[tuple[int, int]]]:
    """About how many bytes training on `splits` holds, from the headers, and the slice sizes:
    each slice is kept decoded with its masks; the train slices are stacked again, padded to
    the largest, and tf.data copies that stack; the val slices are tiled, and their predicted
    probabilities (float32, 2 classes or more) are kept for the metrics."""
    needed, sizes = 0, []
    for name, pairs in splits.items():
        found = slice_sizes(pairs, max_size, workers)
        if not found:
            continue
        pixels = sum(height * width for height, width in found)
        needed += pixels * (channels + 3)  # image, mask, region of interest, class-index mask
        if name == "train":
            padded = max(h for h, _ in found) * max(w for _, w in found)
            needed += 2 * len(found) * padded * (channels + 1)
        else:
            needed += pixels * (channels + 1 + 8)
        sizes += found
    return needed, sizes


def classes_from_colours(decoded: dict[str, list[DecodedPair]], kept: dict[str, list[Pair]],
                         colours: list[str] | None) -> list[int] | None:
    """Where the decoded masks of any split are colour masks, all of them turned into class
    values in place (see colours.colour_classes); the colour of each class, else None."""
    items = [(item, pair) for name in decoded for item, pair in zip(decoded[name], kept[name])]
    found = colour_classes([(item.mask, item.colours, _slice_name(pair.mask, item.slice))
                            for item, pair in items], colours)
    if found is None:
        return None
    for (item, _), mask in zip(items, found[0]):
        item.mask, item.colours = mask, None
    return found[1]


def to_split(decoded: list[DecodedPair], pairs: list[Pair], skipped: list[str],
              mapping: ClassMap) -> SegmentSplit:
    masks = []
    for item, pair in zip(decoded, pairs):
        mask = apply_class_map(item.mask, mapping, _slice_name(pair.mask, item.slice))
        if item.roi is not None:
            mask = np.where(item.roi, mask, IGNORE).astype(np.uint8)
        masks.append(mask)
    names = [_slice_name(_shown_image(pair), item.slice) for item, pair in zip(decoded, pairs)]
    return SegmentSplit([item.image for item in decoded], masks, names, skipped,
                        spacing=[item.spacing for item in decoded])


def _shown_image(pair: Pair) -> Path:
    """How metrics and plots name a pair's image: an image of a file per channel by its case
    (case_008 for case_008_0000.nii.gz, ...; BraTS2021_00001 for its folder's files)."""
    if not pair.channels:
        return pair.image
    numbered = CHANNEL_FILE.fullmatch(file_stem(pair.image))
    return pair.image.parent / (numbered["case"] if numbered else pair.image.parent.name)


def pad_stack(arrays: list[np.ndarray], fill: int | None) -> np.ndarray:
    """Stack arrays of different heights and widths, padded at the bottom and right to the
    largest: images by reflection (fill None), masks with `fill` (IGNORE)."""
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    out = []
    for array in arrays:
        pad = [(0, height - array.shape[0]), (0, width - array.shape[1])]
        pad += [(0, 0)] * (array.ndim - 2)
        if fill is None:
            out.append(np.pad(array, pad, mode="symmetric"))
        else:
            out.append(np.pad(array, pad, constant_values=fill))
    return np.stack(out)


# --------------------------------------------------------------------------- data check


def _memory_line(index: PairIndex, channels: int) -> str:
    from visionsuite.core.data import available_memory

    needed = memory_to_train(index.splits, channels, None)[0]
    available = available_memory()
    line = f"RAM to train at the images' own size: about {needed / 2**30:.1f} GiB"
    if available is None:
        return line
    line += f" ({available / 2**30:.1f} GiB available)"
    return line + (f"; {MAX_SIZE_ADVICE}" if needed > available else "")


def _summarise_pair(pair: Pair, channels: int, binary: bool
                    ) -> list[tuple[str, Counter, Counter, bool]]:
    """For data check, each slice of a pair as its size ("WxH") and the pixel counts of each
    raw mask value (of a colour mask: each colour code; `binary`: 0 or 255), everywhere and
    inside its region of interest, whether it is a colour mask, and its voxel size."""
    summaries = []
    for item in _decode_pair(pair, channels, None, binary):
        inside = item.mask if item.roi is None else item.mask[item.roi]
        keys = item.colours if item.colours is not None else np.arange(256)
        summaries.append((f"{item.image.shape[1]}x{item.image.shape[0]}",
                          _pixel_counts(item.mask, keys), _pixel_counts(inside, keys),
                          item.colours is not None, item.spacing))
    return summaries


def _voxels_line(voxels: Counter) -> list[str]:
    """data check's line on the files' voxel sizes (a count per size, None for a file that
    gives none), which decide whether surface distances are in mm; none for photos."""
    known = {spacing: count for spacing, count in voxels.items() if spacing is not None}
    if not known:
        return []
    shown = []
    for (across, row, column), count in Counter(known).most_common(5):
        apart = f", slices {across:.3g} mm apart" if across else ""
        shown.append(f"{row:.3g} x {column:.3g} mm{apart} ({count})")
    line = "voxel sizes: " + ", ".join(shown)
    if voxels.get(None):
        line += f"; {voxels[None]} file(s) give none: HD95 and ASSD in pixels"
    elif not all(measurable(spacing) for spacing in known):
        line += "; pixels not square: HD95 and ASSD in pixels"
    return [line]


def _pixel_counts(values: np.ndarray, keys: np.ndarray) -> Counter:
    counts = np.bincount(values.ravel(), minlength=len(keys))
    return Counter({int(keys[i]): int(counts[i]) for i in np.flatnonzero(counts)})


def _mask_classes(every: Counter, inside: Counter, colour: bool, names: list[str] | None,
                  colours: list[str] | None = None):
    """data check's reading of the pixels of each (mask value or colour code, colour?) found:
    the line that lists the values (or colours), the class map, the pixels of each class
    inside the regions of interest and "", or the line, None, None and the error where the
    values make no classes. `names`: the dataset's own class names (dataset.json), for masks
    of class values, and `colours` their colours (CVAT's labelmap.txt), for colour masks."""
    if colour:  # a grey mask among colour ones: value v is the colour (v, v, v)
        every, inside = ({(k if c else grey_colour(k)): n for (k, c), n in counts.items()}
                         for counts in (every, inside))
        line = "mask colours: " + ", ".join(colour_name(c) for c in sorted(every)[:20])
        codes = parse_colours(colours) if colours else sorted(every)
        unknown = sorted(set(every) - set(codes))
        if unknown:
            return line, None, None, (f"mask colours {', '.join(map(colour_name, unknown[:4]))}"
                                      f" are none of the classes' ({', '.join(colours)})")
        values, names = set(range(len(codes))), names if colours else colour_class_names(codes)
        inside = Counter({codes.index(k): n for k, n in inside.items()})
    else:
        every, inside = ({k: n for (k, _), n in counts.items()} for counts in (every, inside))
        values = set(every)
        line = "mask values: " + ", ".join(str(v) for v in sorted(values)[:20])
    try:
        mapping = class_map(values, names)
    except VisionsuiteError as err:
        return line, None, None, str(err)
    if not colour and IGNORE in values and mapping.lookup[IGNORE] == IGNORE:
        line += f" ({IGNORE}: void, left out of the loss and the metrics)"
    if mapping.levels:
        line += (f" (grey levels coding {len(mapping.levels)} classes, in value order: "
                 "data.mask_values)")
    outside = sorted(value for value in values if mapping.lookup[value] < 0)
    if outside:
        return line, None, None, (f"mask values {outside[:8]} are outside the "
                                  f"{len(mapping.names)} classes ({', '.join(mapping.names)})")
    counts = np.zeros(len(mapping.names), np.int64)
    for value, pixels in inside.items():
        if mapping.lookup[value] != IGNORE:
            counts[mapping.lookup[value]] += pixels
    return line, mapping, counts, ""


def check_segmentation_folders(path: str, held_out: str = "val") -> DataReport:
    from visionsuite.core.report import table

    test_set = held_out == "test" or held_out_only(path)
    try:
        index = index_pairs(path, EVERY_IMAGE if test_set else 0.2, held_out=held_out)
        own_channels = image_channels([p for pairs in index.splits.values() for p in pairs])
    except VisionsuiteError as err:
        return DataReport(f"segment dataset {path}", False, str(err))
    from visionsuite.core.data import load_in_parallel

    channels = own_channels or 3
    # as training reads them with data.binary_masks=auto
    binary = not index.class_names and read_as_objects(
        index, [pair for name, pairs in index.splits.items() if name != "train" or not test_set
                for pair in pairs])

    rows, sizes, modes, voxels, unreadable = [], Counter(), Counter(), Counter(), []
    # pixels of each (raw mask value or colour code, colour mask?), everywhere and inside the
    # regions of interest
    every_value, inside, colour = Counter(), Counter(), False
    problem, checked_slices = "", 0
    for name, pairs in index.splits.items():
        if test_set and name == "train":
            continue
        split = held_out if name == "val" else name
        try:  # each pair is summarised where it is decoded: a large set never sits in RAM
            summaries, skipped = load_in_parallel(
                lambda pair: _summarise_pair(pair, channels, binary), pairs,
                desc=f"checking {split}")
        except VisionsuiteError as err:
            return DataReport(f"segment dataset {index.root}", False, str(err))
        unreadable += skipped
        slices = 0
        for pair, found in zip(pairs, summaries):
            if found is None:
                continue
            voxels.update([found[0][4]] if found else [])  # a file's slices share one size
            for size, values, values_inside, is_colour, _ in found:
                sizes[size] += 1
                every_value.update({(k, is_colour): n for k, n in values.items()})
                inside.update({(k, is_colour): n for k, n in values_inside.items()})
                colour |= is_colour
            slices += len(found)
            modes[inspect_image(pair.image, decode=False)[1]] += 1  # decoded: header enough
        checked_slices += slices if split == "train" or test_set else 0
        rows.append({"split": split, "files": len(pairs) - len(skipped), "pairs": slices,
                     "skipped": len(skipped),
                     "roi": "yes" if any(p.roi for p in pairs) else "no"})
    values_line, mapping, counts, error = _mask_classes(every_value, inside, colour,
                                                        index.class_names, index.class_colours)
    if error:
        problem = f"{path}: {error}"
    split_note = " (val split by val_fraction 0.2, seed 0)" if index.split_by_fraction else ""
    lines = [f"segment dataset {index.root}{split_note}"]
    lines += [f"  {folder}" for folder in index.folders]
    lines += [f"  {test_set_note(held_out)}"] if test_set else []
    if own_channels:  # DICOM and NIfTI channels are windowed each on its own (MRI)
        medical = any(is_medical_file(p.image) for pairs in index.splits.values() for p in pairs)
        lines.append(f"  images of {own_channels} channels"
                     f"{', each windowed on its own' if medical else ''}: "
                     + ", ".join(channel_names(index, own_channels)))
    lines += [table(rows), "",
             "sizes: " + ", ".join(f"{s} ({n})" for s, n in sizes.most_common(5)),
             "modes: " + ", ".join(f"{m} ({n})" for m, n in modes.most_common()),
             *_bit_depth_line(index, modes),
             *_voxels_line(voxels), values_line]
    if mapping is not None:
        total = max(int(counts.sum()), 1)
        shown = [f"{i} {name} ({100 * counts[i] / total:.1f}% of pixels)"
                 for i, name in enumerate(mapping.names[:SHOWN_CLASSES])]
        more = len(mapping.names) - SHOWN_CLASSES
        named = f" (named in {index.names_from})" if index.class_names \
            and (index.class_colours or not colour) else ""
        lines.append(f"classes{named}: " + ", ".join(shown)
                     + (f", ... ({more} more)" if more > 0 else ""))
        if more > 0 and not index.class_names:
            lines.append(f"  {len(mapping.names)} classes: {INSTANCE_HINT}")
    if binary:
        lines.append("  the masks number objects 1..N (instance masks): read as foreground, as "
                     "training reads them (data.binary_masks=auto)")
    if not test_set:
        lines.append(_memory_line(index, channels))
    lines.append(f"unreadable pairs: {len(unreadable)}")
    lines += [f"  {message}" for message in unreadable]
    lines.append(f"files that are not images (ignored): {len(index.odd_files)}")
    lines += [f"  {p}" for p in index.odd_files[:20]]
    if not problem and not checked_slices:
        problem = f"{path}: no readable image/mask pairs in {held_out if test_set else 'train'}"
    return DataReport("\n".join(lines), not problem, problem)


def labelled_crop_batches(labelled: np.ndarray, repeat: int, share: float, batch_size: int,
                          seed: int = 0):
    """A generator function of epochs of index batches for segmentation crops, as nnU-Net
    oversamples small lesions: of each image's `repeat` crops an epoch, each is, with
    probability `share`, replaced by a crop of a random image that holds labels
    (`labelled`, one bool per image), marked to be centred on them: its index is given as
    -(index + 1) (make_dataset's `labelled_flags`). Shuffled; the last, partial batch is
    dropped (unless it is the only one). One seeded generator serves all epochs."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(labelled)
    count = len(labelled) * repeat

    def epoch():
        indices = rng.permutation(count) % len(labelled)
        forced = (rng.random(count) < share) & (len(pool) > 0)
        if len(pool):
            indices[forced] = -rng.choice(pool, int(forced.sum())) - 1
        for start in range(0, max(count - batch_size + 1, 1), batch_size):
            yield indices[start:start + batch_size]

    return epoch
