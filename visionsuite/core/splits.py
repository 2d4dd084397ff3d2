"""A dataset's held-out splits: val, which training chooses its epoch and thresholds on, and
test, which training never sees (the final figures of a set that ships train, val and test,
as Roboflow's exports and Kaggle's sets do): `visionsuite evaluate RUN --split test`.

Each task's loader reads the test split in the val split's place; where a dataset has none,
that is an error (no_test_split), never a silent fall back to val.
"""

from __future__ import annotations

import random
from pathlib import Path

from visionsuite.core.files import VAL_FOLDER_NAMES, named_folder
from visionsuite.errors import VisionsuiteError

HELD_OUT_SPLITS = ("val", "test")
TEST_FOLDER_NAMES = ("test", "testing")
# data.val_fraction that puts every image of a dataset without a val split into val.
EVERY_IMAGE = 1.0
TEST_SET_NOTE = "no train/ folder: a test set, for `visionsuite evaluate RUN --data PATH`"
TEST_SPLIT_NOTE = "the test split alone, as `visionsuite evaluate RUN --split test` reads it"


class Fold(float):
    """data.fold of data.folds (k-fold cross-validation) where a val_fraction goes: a float,
    1 / folds, to every check of one; the task's split deals the images (or cases) of a set
    without a val split into `folds` seeded folds, and this one is val. Each fold of one seed
    is a different val split; together they hold each image once."""

    def __new__(cls, fold: int, folds: int):
        made = super().__new__(cls, 1 / folds)
        made.fold, made.folds = fold, folds
        return made

    def __str__(self) -> str:
        return f"{1 / self.folds:g} (fold {self.fold} of {self.folds})"


def held_out_cases(cases: list, fraction: float, seed: int) -> list:
    """The cases (patients, volumes) a split by `fraction` holds out whole: the sorted cases
    shuffled by the seed, the first `fraction` of them (at least one), or for a Fold every
    folds-th, so that the folds of one seed hold each case once."""
    order = sorted(cases)
    random.Random(seed).shuffle(order)
    return order[fraction.fold::fraction.folds] if isinstance(fraction, Fold) \
        else order[:max(1, round(len(order) * fraction))]


def held_out_share(config) -> float:
    """What a set without a val split holds out: data.fold of data.folds (a Fold), else
    data.val_fraction (EVERY_IMAGE too: another dataset, evaluated whole)."""
    folds, fold = config.data.folds, config.data.fold
    if not folds or config.data.val_fraction == EVERY_IMAGE:
        if fold and not folds:
            raise VisionsuiteError(f"data.fold={fold}: a fold of what? set data.folds too "
                                   "(e.g. 5)")
        return config.data.val_fraction
    if folds < 2 or fold >= folds:
        raise VisionsuiteError(f"data.folds={folds}, data.fold={fold}: cross-validation needs "
                               "2 folds or more, and a fold from 0 to folds - 1")
    return Fold(fold, folds)


def fold_of(share: float, held_out: str, split_by_fraction: bool, root: Path) -> Fold | None:
    """The Fold that chose a run's val split, or None where it is the dataset's own (or the
    test split); a Fold asked of a set with a val split of its own is an error."""
    fold = share if isinstance(share, Fold) and held_out == "val" else None
    if fold is not None and not split_by_fraction:
        raise VisionsuiteError(f"{root}: data.folds={fold.folds}: the dataset has a val split "
                               "of its own; folds split a set without one")
    return fold


def fold_source(root: Path, fold: Fold | None, seed: int, by: str | None = None) -> str:
    """How the data line names the dataset: with the fold that is its val split, and what
    dealt the folds (`by`: a table's column; else the seed)."""
    return f"{root}, val: fold {fold.fold} of {fold.folds} ({by or f'seed {seed}'})" \
        if fold is not None else str(root)


def held_out_names(split: str) -> tuple[str, ...]:
    """The folder names of a held-out split (HELD_OUT_SPLITS); val's include test/, which
    serves as val where there is no val/ (as Ultralytics takes it)."""
    return VAL_FOLDER_NAMES if split == "val" else TEST_FOLDER_NAMES


def test_set_note(held_out: str) -> str:
    """data check's line on a split checked alone: the test split (`--split test`), or the
    only one of a set that ships its test/ (or val/) folder alone."""
    return TEST_SPLIT_NOTE if held_out == "test" else TEST_SET_NOTE


def no_test_split(root: Path, expected: str) -> VisionsuiteError:
    """The error for `evaluate --split test` on a dataset without one."""
    return VisionsuiteError(f"{root}: no test split ({expected}); `--split val` evaluates "
                            "its val split")


def unread_test_split(root: str | Path) -> str | None:
    """Where a dataset keeps a test split that training does not read (a test/ folder beside
    a val/ one, a YAML's 'test' entry, a COCO test file), for data check to point at
    `evaluate --split test`; None where it has none. Tasks add their own layouts
    (Task.unread_test_split: classify's test.csv)."""
    from visionsuite.config import read_yaml
    from visionsuite.core.coco import coco_files
    from visionsuite.core.yolo import yolo_yaml

    root = Path(root)
    if not root.is_dir():
        return None
    yaml_path = yolo_yaml(root)
    if yaml_path is not None:
        spec = read_yaml(yaml_path)
        return f"'test' in {yaml_path.name}" if isinstance(spec, dict) and spec.get("test") \
            else None
    if any(coco_files(root).values()):
        test_file = coco_files(root, "test")["val"]
        return str(test_file.relative_to(root)) if test_file is not None else None
    test_dir = named_folder(root, TEST_FOLDER_NAMES)
    read_as_val = named_folder(root, VAL_FOLDER_NAMES)
    return f"{test_dir.name}/" if test_dir is not None and read_as_val != test_dir else None
