"""index_pairs: which layout or annotation format a segmentation dataset is in, and its pairs
by split, with the lines data check shows on how it was read; the class and channel names
the set gives (MSD's dataset.json, folders per class, CamVid's class_dict.csv, DICOM SEG)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from visionsuite.core.coco import COCO_TEST, coco_files
from visionsuite.core.files import (TRAIN_FOLDER_NAMES, held_out_only, named_folder, sub_folders,
                                    wrapper_content)
from visionsuite.core.images import folder_image_files
from visionsuite.core.medical import file_stem, label_names_of, series_folder
from visionsuite.core.splits import (EVERY_IMAGE, TEST_FOLDER_NAMES, Fold, held_out_names,
                                     no_test_split)
from visionsuite.core.yolo import yolo_yaml
from visionsuite.errors import VisionsuiteError, first_line
from visionsuite.tasks.segment.annotations import (coco_index, ctc_index, labelme_index,
                                                   listed_index, listing_files, outlines_index,
                                                   rle_index, voc_index, yolo_index)
from visionsuite.tasks.segment.array_lists import listed_array_index, split_lists
from visionsuite.tasks.segment.colours import colour_table
from visionsuite.tasks.segment.ctc import ctc_sequences, read_ctc
from visionsuite.tasks.segment.fold_folders import fold_folders, fold_index
from visionsuite.tasks.segment.folders import (IMAGE_FOLDER_NAMES, SIDE_MASK, case_volumes,
                                               holds_array_pairs, holds_images, image_parts,
                                               name_words, named_as_masks, pair_dirs,
                                               pair_folder, pair_folders)
from visionsuite.tasks.segment.labelme import labelme_files
from visionsuite.tasks.segment.outlines import outline_files
from visionsuite.tasks.segment.pairs import (Pair, PairIndex, fraction_split, labelled_splits,
                                             pairs_by_folder, split_cases)
from visionsuite.tasks.segment.split_tables import table_splits
from visionsuite.tasks.segment.voc import read_voc_set, voc_segmentation_folder

DATASET_JSON = "dataset.json"
# Pairs in one folder named with their split first: GlaS' train_1.bmp, testA_1.bmp, testB_1.bmp
SPLIT_IN_NAME = re.compile(r"(?P<split>train(?:ing)?|val(?:id(?:ation)?)?|test(?:ing)?)"
                           r"(?P<part>[A-Za-z]|\d+)?[_\-. ]", re.IGNORECASE)


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
    cases = split_cases(pairs) if index.split_by_fraction else None
    if cases is not None and cases[1]:  # folders as cases: _side_by_side_note says so
        index.folders.append(f"{cases[1]}: the val split takes whole cases "
                             f"({len(cases[0])} in all)")
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
    endings = case_volumes(pair.image.parent, [pair.image, *pair.channels]) if pair else None
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
    channels of an nnU-Net case, and a case's other folders (PH2's <case>_roi/)."""
    endings = {"files": Counter(), "folders": Counter()}
    for pair in pairs:
        for path in pair.left_out:
            stem = file_stem(path)
            base = max((file_stem(p) for p in (pair.image, pair.mask)
                        if stem.startswith(file_stem(p))), key=len, default="")
            endings["folders" if path.is_dir() else "files"][
                stem[len(base):] if base else
                f"*{stem[stem.rfind('_'):]}" if "_" in stem else path.name] += 1
    listed = [f"the {kind} ending " + ", ".join(f"{ending} ({count})"
                                                for ending, count in sorted(found.items()))
              for kind, found in endings.items() if found]
    return [f"left out, one image and one mask making a pair: {'; '.join(listed)}"] \
        if listed else []


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
        return coco_index(root, coco, val_fraction, seed)
    if yolo_yaml(root) is not None:  # Ultralytics' YOLO polygons
        return yolo_index(root, val_fraction, seed, held_out, train)
    voc = voc_segmentation_folder(root)  # Pascal VOC's lists, CVAT's Segmentation mask
    if voc is not None:
        return voc_index(root, read_voc_set(voc), val_fraction, seed, held_out, train)
    labelme = labelme_files(root)  # LabelMe's JSON beside the images
    if labelme and not _has_mask_images(root):
        return labelme_index(root, labelme, val_fraction, seed, held_out, train)
    outlines = outline_files(root)  # QuPath's GeoJSON, Aperio's XML of each image
    if len(outlines) == 1 and not _has_mask_images(root):
        (source, files), = outlines.items()
        return outlines_index(root, source, files, val_fraction, seed, held_out, train)
    # CVAT's XML, VIA's JSON: a file of many images' shapes; a Supervisely project's files
    # (its masks_machine/ beside them, where exported, are not taken over them)
    listed = listing_files(root)
    if listed is not None and (listed[0] == "Supervisely" or not _has_mask_images(root)):
        return listed_index(root, *listed, val_fraction, seed, held_out, train)
    sequences = ctc_sequences(root)  # the Cell Tracking Challenge's 01/ beside 01_GT/SEG/
    if sequences:
        return ctc_index(root, read_ctc(root, sequences), val_fraction, seed, held_out)
    # Kaggle's run-length codes in a CSV
    index = rle_index(root, val_fraction, seed, held_out, rle_order) \
        if any(root.glob("*.csv")) else None
    if index is not None:
        return index
    lists = split_lists(root, held_out)  # SSL4MIS' ACDC: train.list, val.list of arrays
    if lists is not None:
        return listed_array_index(root, lists, val_fraction, seed, held_out, train)
    folds = fold_folders(root)  # PanNuke's Fold 1/, Fold 2/, Fold 3/
    if folds is not None:
        return fold_index(root, folds, val_fraction, held_out, odd)
    inside_kinds = _splits_inside_kinds(root, held_out)
    if inside_kinds:
        splits = {name: pair_dirs(root, *folders, odd) for name, folders in inside_kinds.items()}
        return PairIndex(root, splits, odd, False, [
            f"{name}: " + ", ".join(f"{kind}: {path.relative_to(root)}/" for kind, path
                                    in zip(("images", "masks", "roi"), folders) if path)
            for name, folders in inside_kinds.items()])
    worded = _worded_splits(root, held_out)
    if worded is not None:
        return _worded_index(root, worded, val_fraction, seed, held_out, odd)
    train_dir = named_folder(root, TRAIN_FOLDER_NAMES) or root / "train"
    val_dir = named_folder(root, held_out_names(held_out))
    unlabelled, warnings = [], []
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
            warnings = [f"{val_dir}: images without any masks, not read; val is split from "
                        f"{train_dir.name}/"]
        val_dir = None
    if held_out == "test":
        named = _named_test_split(root, val_fraction, odd) \
            if val_dir is None and not train_dir.is_dir() else None
        if named is not None:  # GlaS' testA_1.bmp beside train_1.bmp
            return PairIndex(root, {"train": [], "val": named[0]["val"]}, odd, False, named[1])
        if val_dir is None:
            raise no_test_split(root, "a test/ folder of images and masks")
        return PairIndex(root, {"train": [], "val": pair_folder(root, val_dir, odd)}, odd,
                         False, _folders_read(root, {"test": val_dir}))
    if train_dir.is_dir() and val_dir is not None:
        splits = {"train": pair_folder(root, train_dir, odd),
                  "val": pair_folder(root, val_dir, odd)}
        return PairIndex(root, splits, odd, False,
                         _folders_read(root, {"train": train_dir, "val": val_dir})
                         + _side_by_side_note(splits["train"] + splits["val"], split=False))
    if val_fraction >= 1 and held_out_only(root):
        # EVERY_IMAGE (evaluation on another dataset) of a set that ships its test/ alone
        return PairIndex(root, {"train": [], "val": pair_folder(root, val_dir, odd)}, odd,
                         False, _folders_read(root, {"val": val_dir}))
    folder = train_dir if train_dir.is_dir() else root
    pairs = pair_folder(root, folder, odd)
    folders = _folders_read(root, {"train" if folder != root else "pairs": folder}) + unlabelled
    tabled = None if val_fraction >= 1 or folder != root else \
        table_splits(root, pairs, val_fraction, held_out)
    named = None if val_fraction >= 1 or folder != root or tabled else \
        _named_splits(pairs, held_out)
    if val_fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset
        index = PairIndex(root, {"train": [], "val": pairs}, odd, True,
                          folders + _side_by_side_note(pairs, split=False))
    elif tabled is not None:  # Lizard's info.csv: a fold of data.folds is one of its own
        index = PairIndex(root, tabled[0], odd, isinstance(val_fraction, Fold),
                          folders + tabled[1] + _side_by_side_note(pairs, split=False))
        index.folds_by = tabled[2]
    elif named is not None:  # GlaS' train_1.bmp beside testA_1.bmp
        index = PairIndex(root, named[0], odd, False,
                          folders + named[1] + _side_by_side_note(pairs, split=False))
    else:
        index = PairIndex(root, fraction_split(root, pairs, val_fraction, seed), odd, True,
                          folders + _side_by_side_note(pairs, split=True))
    index.warnings = warnings
    return index


def _named_test_split(root: Path, share: float, odd: list[Path]
                      ) -> tuple[dict[str, list[Pair]], list[str]] | None:
    """The test split of the pairs in `root` by a split table (table_splits) or their names
    (_named_splits); None where they are none or split neither way (no_test_split then says
    what a test split would be)."""
    found: list[Path] = []  # files in no image format, for data check where it is so
    try:
        pairs = pair_folder(root, root, found)
    except VisionsuiteError:
        return None
    tabled = table_splits(root, pairs, share, "test")
    named = tabled[:2] if tabled else _named_splits(pairs, "test")
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
    if pair_folders(root, folder)[1] is not None:
        return False
    if any(path.is_dir() and named_as_masks(path.name)
           or path.is_file() and SIDE_MASK.fullmatch(file_stem(path))
           for path in folder.rglob("*")):
        return False
    return holds_images(root, folder)


def _worded_splits(root: Path, held_out: str) -> dict[str, tuple[Path, Path]] | None:
    """Each split's images and masks folders where they lie side by side at the top, named
    with the split's word and their kind's, as Kaggle lays sets out (train_images/ with
    train_masks/, val_images/ with val_masks/, a test_images/ of images alone) and TN3K
    (trainval-image/ with trainval-mask/); or a folder of files that each hold an image and
    its mask (Synapse's train_npz/ and test_vol_h5/), given as (folder, folder); None where
    the set is not so (a train/ folder of its own is a split folder)."""
    if named_folder(root, TRAIN_FOLDER_NAMES) is not None:
        return None
    folders = sub_folders(root)
    found = {}
    for split, names in (("train", TRAIN_FOLDER_NAMES + ("trainval",)),
                         ("val", held_out_names(held_out))):
        for word in names:
            named = [path for path in folders if word in name_words(path.name)]
            masks = [path for path in named if named_as_masks(path.name)]
            images = [path for path in named if path not in masks]
            if len(images) == 1 and len(masks) == 1:
                found[split] = (images[0], masks[0])
                break
            if len(images) == 1 and not masks and holds_array_pairs(root, images[0]):
                found[split] = (images[0], images[0])
                break
    return found if "train" in found or held_out == "test" and "val" in found else None


def _worded_index(root: Path, worded: dict[str, tuple[Path, Path]], val_fraction: float,
                  seed: int, held_out: str, odd: list[Path]) -> PairIndex:
    """The pairs of _worded_splits' folders: as listed, the train ones split by val_fraction
    where there is no held-out pair of folders."""
    pairs = {split: pair_folder(root, images, odd) if images == masks
             else pair_dirs(root, images, masks, None, odd)
             for split, (images, masks) in worded.items()}
    folders = [f"{held_out if split == 'val' else split}: " + (
        f"{images.name}/ (each file holds an image and its mask)" if images == masks
        else f"images: {images.name}/, masks: {masks.name}/")
        for split, (images, masks) in worded.items()]
    if held_out == "test":
        return PairIndex(root, {"train": [], "val": pairs["val"]}, odd, False, folders[-1:])
    splits, by_fraction = labelled_splits(root, {"train": [], **pairs}, val_fraction, seed)
    return PairIndex(root, splits, odd, by_fraction, folders)


def _wrapper_content(root: Path) -> Path | None:
    """core.files.wrapper_content's folder around the set (BTCV's RawData/), unless it is a
    part of a set of pairs: the images, the masks, a DICOM series, the arrays that lists
    beside it name (SSL4MIS' BraTS 2019: data/ beside train.txt, val.txt, test.txt)."""
    inner = wrapper_content(root)
    if inner is None or inner.name.lower() in IMAGE_FOLDER_NAMES \
            or named_as_masks(inner.name) or series_folder(inner) is not None \
            or split_lists(root, "val") is not None:
        return None
    return inner


def _has_mask_images(root: Path, folder: Path | None = None, depth: int = 3) -> bool:
    """Whether a folder named as masks (masks/, SegmentationClass/, ...) holds images, down to
    `depth` levels below `folder` (the dataset `root`): such masks, as labelme2voc exports
    them, are taken over the LabelMe files they were drawn from."""
    return any(named_as_masks(sub.name) and holds_images(root, sub)
               or depth > 1 and _has_mask_images(root, sub, depth - 1)
               for sub in sub_folders(folder or root))


def _side_by_side_note(pairs: list[Pair], split: bool) -> list[str]:
    """data check's line on masks found beside their images, and on how they were split."""
    if not pairs or pairs[0].image.parent != pairs[0].mask.parent:
        return []
    by_folder = pairs_by_folder(pairs)
    folders, how, cases = len(by_folder), "", split_cases(pairs) if split else None
    if cases is not None and not cases[1]:
        how = "; the val split takes whole folders (each one case, kept on one side)"
    elif split and folders > 1 and cases is None:  # named cases: index_pairs' note
        how = "; the val split takes its share of each folder"
    if pairs[0].image == pairs[0].mask:  # array files (core/arrays.py)
        return [f"each file holds an image and its mask: {len(pairs)} files in {folders} "
                f"folder(s){how}"]
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
    images, masks, roi = pair_folders(root, root)
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
        worded = [path for path in sub_folders(parent) if name_words(path.name) & set(names)]
        found = worded[0] if len(worded) == 1 else None
    return found


def _folders_read(root: Path, splits: dict[str, Path]) -> list[str]:
    """How data check names the folders it read, where they are not train/, val/, masks/ and
    roi/: 'val: test/ (masks: 1st_manual/, roi: mask/)'."""
    described = []
    for name, folder in splits.items():
        found = pair_folders(root, folder)
        parts = [f"{kind}: " + " + ".join(f"{_below(folder, part)}/" for part in (
                     image_parts(path) if kind == "images" else [path]))
                 for kind, path in zip(("images", "masks", "roi"), found)
                 if path and path.name != kind and path != folder]
        parts += [f"left out: {path.name}/" for path in sub_folders(folder)
                  if named_as_masks(path.name) and not any(
                      path == read or path in read.parents for read in found[1:] if read)]
        if (folder.name != name and folder != root) or parts:
            inner = f" ({', '.join(parts)})" if parts else ""
            where = "./" if folder == root else f"{folder.relative_to(root)}/"
            described.append(f"{name}: {where}{inner}")
    return described


def _below(folder: Path, path: Path) -> str:
    """A folder read, as data check names it: below `folder` where it is inside (Lizard's
    Lizard_Labels/Labels), else by its name (CamVid's train_labels beside train/)."""
    return path.relative_to(folder).as_posix() if folder in path.parents else path.name
