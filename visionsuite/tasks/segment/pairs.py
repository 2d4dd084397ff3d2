"""A dataset's image/mask pairs (Pair) and their index (PairIndex), and how pairs are split
into train and val by data.val_fraction: seeded, each folder's share, or whole case folders."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from visionsuite.core.medical import file_stem
from visionsuite.core.splits import Fold, held_out_cases
from visionsuite.errors import VisionsuiteError

# Side-by-side pairs in at least this many folders are split folder by folder: a folder is then
# one case (LGG's patients), whose slices must not be on both sides. In fewer folders (BUSI's
# benign/, malignant/, normal/), the split takes the same share of each folder.
CASE_FOLDERS = 10
# A slice named after its case (Synapse's case0005_slice012.npz, ACDC's
# patient001_frame01_slice_3.h5): a case's slices are kept on one side of a split, too.
SLICE_OF_CASE = re.compile(r"(?P<case>.+?)[_\-. ]*slices?[_\-. ]*\d+", re.IGNORECASE)


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
    # the case (patient) an array file names itself, as (array name, value): Figshare's
    # ('cjdata/PID', '100360'); a case's slices are kept on one side of a split
    case: tuple[str, str] | None = None


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
    warnings: list[str] = field(default_factory=list)  # for train and data check to print
    folds_by: str | None = None  # what dealt data.folds' folds where not the seed: the
    # set's fold folders, a split table's column


def pair_image_files(pairs: list[Pair]) -> list[Path]:
    """The image files of `pairs`, every channel's file of those stored a file per channel."""
    return [path for pair in pairs for path in (pair.image, *pair.channels)]


def fraction_split(root: Path, pairs: list[Pair], val_fraction: float,
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


def labelled_splits(root: Path, pairs: dict[str, list[Pair]], val_fraction: float,
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
    return fraction_split(root, every, val_fraction, seed), True


def pairs_by_folder(pairs: list[Pair]) -> dict[Path, list[Pair]]:
    """The pairs by the folder of their image."""
    by_folder: dict[Path, list[Pair]] = {}
    for pair in pairs:
        by_folder.setdefault(pair.image.parent, []).append(pair)
    return by_folder


def folders_are_cases(by_folder: dict[Path, list[Pair]]) -> bool:
    """Whether the folders of pairs are cases, each kept on one side of a split: CASE_FOLDERS
    or more of them, or several of one pair each (KiTS' case_00000/)."""
    return len(by_folder) >= CASE_FOLDERS or len(by_folder) > 1 \
        and all(len(found) == 1 for found in by_folder.values())


def named_cases(pairs: list[Pair]) -> tuple[dict[tuple, list[Pair]], str] | None:
    """The pairs by case where every pair's files say its case, and how they say it (for
    data check): array files that name their patient (Pair.case, by value), else images
    named as slices of a case (SLICE_OF_CASE, by folder and name). None where they do not,
    or all are one case."""
    if all(pair.case is not None for pair in pairs):
        cases: dict[tuple, list[Pair]] = {}
        for pair in pairs:
            cases.setdefault((pair.case[1],), []).append(pair)
        how = f"cases named in the files ({pairs[0].case[0]})"
    else:
        cases = {}
        for pair in pairs:
            named = SLICE_OF_CASE.fullmatch(file_stem(pair.image))
            if named is None:
                return None
            cases.setdefault((str(pair.image.parent), named["case"]), []).append(pair)
        how = f"slices named after their case ({pairs[0].image.name})"
    return (cases, how) if len(cases) > 1 else None


def split_cases(pairs: list[Pair]) -> tuple[dict, str] | None:
    """The cases that a split by fraction keeps whole, and how they were found (for data
    check): folders that are cases (folders_are_cases; how ""), else named_cases; None where
    the pairs are split one by one."""
    by_folder = pairs_by_folder(pairs)
    return (by_folder, "") if folders_are_cases(by_folder) else named_cases(pairs)


def _split_pairs(pairs: list[Pair], fraction: float, seed: int):
    """A seeded split of pairs into train and val. Pairs of one images/ folder: `fraction` of
    them. Side-by-side pairs in several folders: see CASE_FOLDERS; pairs whose files say their
    case: whole cases (split_cases). A Fold: every fold-th of the shuffled pairs (or
    cases), each folder's in turn, so each fold takes its share of each folder."""
    rng = random.Random(seed)
    by_folder = pairs_by_folder(pairs)
    cases_of = (split_cases(pairs) or (None, ""))[0]
    if cases_of is not None:
        val = [pair for case in held_out_cases(cases_of, fraction, seed)
               for pair in cases_of[case]]
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
