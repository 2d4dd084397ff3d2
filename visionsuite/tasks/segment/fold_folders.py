"""Sets shipped in folds of their own, a folder each, as PanNuke's nuclei come:

    PanNuke/
      Fold 1/images/fold1/images.npy     (2656, 256, 256, 3): the fold's images, a stack
             images/fold1/types.npy      each image's tissue (not read)
             masks/fold1/masks.npy       (2656, 256, 256, 6): a layer per nucleus class
      Fold 2/...  Fold 3/...

The folds are the splits: the last one is test, the one before it val, the others train
(PanNuke's authors train on fold 1, validate on fold 2 and test on fold 3); a set of two
folds trains on the first and validates on the second. data.folds set to the number of the
set's folds rotates them instead (`visionsuite cross-validate --folds 3`): val is fold
data.fold (counted from 0), train the others, and there is no test split.
"""

from __future__ import annotations

import re
from pathlib import Path

from visionsuite.core.files import sub_folders
from visionsuite.core.splits import EVERY_IMAGE, Fold, no_test_split
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.folders import pair_folder
from visionsuite.tasks.segment.pairs import PairIndex

FOLD_FOLDER = re.compile(r"fold[\s_-]*(?P<number>\d+)", re.IGNORECASE)


def fold_folders(root: Path) -> list[Path] | None:
    """The folders at the top of `root` named as folds (Fold 1, fold_2, fold3), in their
    numbers' order, where there are two or more; None otherwise."""
    folds = [path for path in sub_folders(root) if FOLD_FOLDER.fullmatch(path.name)]
    if len(folds) < 2:
        return None
    return sorted(folds, key=lambda path: int(FOLD_FOLDER.fullmatch(path.name)["number"]))


def fold_index(root: Path, folds: list[Path], share: float, held_out: str,
               odd: list[Path]) -> PairIndex:
    """The pairs of each fold folder, by split (see the module); `share` a Fold: rotated;
    EVERY_IMAGE (another dataset, evaluated whole): every fold in val, or the test fold for
    the test split."""
    roles = fold_roles(root, folds, [path.name for path in folds], share, held_out)
    splits = {"train": roles.get("train", []), "val": roles[held_out]}
    splits = {split: [pair for path in paths for pair in pair_folder(root, path, odd)]
              for split, paths in splits.items()}
    note = "; ".join(f"{role}: " + " + ".join(f"{path.name}/" for path in paths)
                     for role, paths in roles.items())
    index = PairIndex(root, splits, odd, isinstance(share, Fold), [f"the set's own folds: {note}"])
    index.folds_by = "its fold folders"
    return index


def fold_roles(where: Path, folds: list, names: list[str], share: float, held_out: str
               ) -> dict[str, list]:
    """The folds (in order; `names` in messages) that train and the one `held_out` reads
    (and val's beside test's), by role: see the module. `where`: the set, in errors."""
    if share == EVERY_IMAGE and held_out == "val":  # the test fold stays the test split
        return {"val": folds}
    if isinstance(share, Fold):
        if share.folds != len(folds):
            raise VisionsuiteError(
                f"{where}: data.folds={share.folds}, but the set comes in {len(folds)} folds of "
                f"its own ({', '.join(names)}): set data.folds={len(folds)} to rotate them, or "
                "0 to take them as shipped")
        if held_out == "test":
            raise no_test_split(where, "a test fold (rotating the set's folds leaves none)")
        return {"train": [fold for fold in folds if fold != folds[share.fold]],
                "val": [folds[share.fold]]}
    if len(folds) == 2:
        if held_out == "test":
            raise no_test_split(where, "a third fold")
        return {"train": folds[:1], "val": folds[1:]}
    if len(folds) < 2:
        raise VisionsuiteError(f"{where}: one fold ({names[0]}): nothing to validate on")
    roles = {"train": folds[:-2], "val": folds[-2:-1], "test": folds[-1:]}
    return {"train": roles["train"], "test": roles["test"]} if held_out == "test" else roles
