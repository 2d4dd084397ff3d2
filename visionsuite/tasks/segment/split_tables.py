"""A table beside a set's images that gives each one's split, as Lizard ships its info.csv:

    Lizard/
      Lizard_Images1/consep_1.png, ...          the images
      Lizard_Labels/Labels/consep_1.mat         their nuclei (core/arrays.py)
      Lizard_Labels/info.csv                    Filename,Source,Split: consep_1,consep,1

A CSV at the top of the set or one folder below it, whose column `split` (in any case) gives
each image's split: a word (train, val, test and their other names) or a fold number, as
Lizard's 1, 2 and 3, which split as fold folders do (fold_folders.py: the last test, the one
before it val, the others train; data.folds rotates them).
"""

from __future__ import annotations

from pathlib import Path

from visionsuite.core.files import holds_data
from visionsuite.core.image_tables import SPLIT_TABLE_NAMES, image_lookup, read_image_table
from visionsuite.core.splits import Fold, no_test_split
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.fold_folders import fold_roles
from visionsuite.tasks.segment.pairs import Pair

SPLIT_COLUMN = "split"


def table_splits(root: Path, pairs: list[Pair], share: float, held_out: str
                 ) -> tuple[dict[str, list[Pair]], list[str], str] | None:
    """The pairs' train and val (`held_out` "test": test) splits by the split table, data
    check's line, and how the run's data line names the table; None where the set has none.
    An image the table gives no split, or a value that is neither a split's word nor a whole
    number, is an error naming the file."""
    found = _split_table(root, pairs)
    if found is None:
        return None
    path, column, split_of = found
    missing = [pair.image.name for pair in pairs if pair.image not in split_of]
    if missing:
        raise VisionsuiteError(f"{path}: its column {column} gives no split for "
                               f"{len(missing)} image(s) ({', '.join(missing[:3])}"
                               f"{', ...' if len(missing) > 3 else ''})")
    values = {split_of[pair.image] for pair in pairs}
    roles = _roles(path, column, values, share, held_out)
    splits = {split: [pair for pair in pairs if split_of[pair.image] in roles.get(name, ())]
              for split, name in (("train", "train"), ("val", held_out))}
    shown = "; ".join(f"{role}: {', '.join(map(str, kept))}" for role, kept in roles.items())
    return (splits, [f"split by {path.relative_to(root)}'s column {column}: {shown}"],
            f"{path.name}'s column {column}")


def _roles(path: Path, column: str, values: set[str], share: float, held_out: str
           ) -> dict[str, list[str]]:
    """The column's values that train and that `held_out` reads (and val's beside test's)."""
    if all(value.isdigit() for value in values):
        folds = sorted(values, key=int)
        return fold_roles(path, folds, [f"{column} {fold}" for fold in folds], share,
                          held_out)
    roles = {role: sorted(value for value in values if value.lower() in names)
             for role, names in SPLIT_TABLE_NAMES.items()}
    other = sorted(values - {value for kept in roles.values() for value in kept})
    if other:
        raise VisionsuiteError(f"{path}: column {column} holds '{other[0]}', neither a split "
                               "(train, val, test) nor a fold number")
    if isinstance(share, Fold):
        raise VisionsuiteError(f"{path}: column {column} splits the set already; data.folds "
                               "splits a set without a split of its own")
    if not roles[held_out]:
        if held_out == "test":
            raise no_test_split(path.parent, f"rows of {path.name} whose {column} is test")
        raise VisionsuiteError(f"{path}: no row's {column} is val")
    return {role: kept for role, kept in roles.items() if kept}


def _split_table(root: Path, pairs: list[Pair]) -> tuple[Path, str, dict[Path, str]] | None:
    """(the CSV, its split column, each paired image's value) of the first CSV at the top of
    `root` or one folder below whose rows name the pairs' images and that has a split column;
    None where none does."""
    images = image_lookup(root, list({pair.image for pair in pairs}))
    for path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        if not path.is_file() or not all(holds_data(part) for part in path.relative_to(
                root).parts):
            continue
        try:
            table = read_image_table(path, images)
        except VisionsuiteError:
            continue  # not a readable table: not this one
        lowered = [name.lower() for name in table.header] if table else []
        if table is None or SPLIT_COLUMN not in lowered:
            continue
        image_at, split_at = table.header.index(table.image_column), lowered.index(SPLIT_COLUMN)
        split_of = {}
        for _, row in table.rows:
            name = row[image_at].strip()
            image = images.get(name) or images.get(Path(name).name)
            if image is not None and row[split_at].strip():
                split_of[image] = row[split_at].strip()
        return path, table.header[split_at], split_of
    return None
