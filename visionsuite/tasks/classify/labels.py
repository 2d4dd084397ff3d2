"""Classification labels in a CSV table beside the images (core/image_tables.py finds and
reads the table), as Kaggle and medical sets ship them: HAM10000's metadata (`image_id`, `dx`),
APTOS' `train.csv` (`id_code`, `diagnosis`), ISIC 2018's ground truth (`image`, then one column
per class holding the one 1 of its row). The class column is data.label_column, else one named
as labels are (`label`, `class`, `dx`, `diagnosis`, ...), else the one-hot columns. A `split`
column (or fastai's `is_valid`) divides one table's rows; a `fold` (or `kfold`) column, as
Kaggle notebooks' `train_folds.csv` carry, gives each row's fold for data.folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from visionsuite.core.image_tables import (SPLIT_TABLE_NAMES, read_image_table, require_column,
                                           row_image)
from visionsuite.errors import VisionsuiteError

LABEL_COLUMN_NAMES = ("label", "labels", "class", "class_name", "category", "diagnosis", "dx",
                      "target", "y")
# A column giving each row's split: `split` (train, val, test, ...) or fastai's `is_valid`.
SPLIT_COLUMN = "split"
VALID_COLUMN = "is_valid"
# A column giving each row's fold of a k-fold cross-validation (0 .. k-1), read for data.folds.
FOLD_COLUMNS = ("fold", "kfold")
TRUE_VALUES, FALSE_VALUES = ("true", "1", "yes"), ("false", "0", "no")
ONE_HOT_VALUES = {"0", "1", "0.0", "1.0"}


@dataclass
class LabelTable:
    """A CSV's rows as (image, class name), and how they were read."""

    path: Path
    rows: list[tuple[Path, str]]
    image_column: str
    label_from: str  # "column dx", or "one-hot columns MEL, NV, ..."
    splits: list[str] | None = None  # each row's split, where a split column gives it
    split_column: str | None = None
    folds: list[int] | None = None  # each row's fold, where a fold column gives it
    fold_column: str | None = None
    fold_problem: str | None = None  # its first value that is no fold: an error for data.folds


def names_classes(header: list[str], rows: list[list[str]],
                  label_column: str | None = None) -> bool:
    """Whether a table's first rows can give classes: the label column, a column named as
    labels are, or two one-hot columns (a metadata table of sizes gives none)."""
    if label_column or any(name.lower() in LABEL_COLUMN_NAMES for name in header):
        return label_column is None or label_column in header
    return sum(bool(rows) and all(row[index].strip() in ONE_HOT_VALUES for row in rows)
               for index in range(len(header))) >= 2


def labelled_by_tables(root: Path, tables: dict[str, Path], images: dict[str, Path | None],
                       columns: tuple[str | None, str | None] = (None, None)) -> bool:
    """Whether the dataset's train (or only) table labels its images: it is a table-labelled
    set, whose test split is test.csv."""
    first = next((tables[split] for split in ("train", "all", "val") if split in tables), None)
    return first is not None and read_label_table(root, first, images, *columns) is not None


def read_label_table(root: Path, path: Path, images: dict[str, Path | None],
                     image_column: str | None = None,
                     label_column: str | None = None) -> LabelTable | None:
    """The rows of a label table; None where no column names the dataset's images (not a
    label table: only its first rows are read). A row whose image is not there, or
    ambiguous, or without a class, is an error naming the file and line."""
    table = read_image_table(path, images, image_column)
    if table is None:
        return None
    header, numbered, where = table.header, table.rows, table.header.index(table.image_column)
    names, label_from = _class_names(path, header, numbered, where, label_column)
    split_column, splits = _row_splits(path, header, numbered)
    fold_column, folds, fold_problem = _row_folds(path, header, numbered)
    found = []
    for (number, row), name in zip(numbered, names):
        image = row_image(root, f"{path}:{number}", row[where], images)
        if not name:
            raise VisionsuiteError(f"{path}:{number}: image '{row[where].strip()}' has no "
                                   "class")
        found.append((image, name))
    return LabelTable(path, found, table.image_column, label_from, splits, split_column, folds,
                      fold_column, fold_problem)


def _row_folds(path: Path, header: list[str], numbered: list[tuple[int, list[str]]]):
    """(the fold column, each row's fold, the first value that is not a whole number: the
    error data.folds raises, while a table not asked for folds reads as before)."""
    lowered = [name.lower() for name in header]
    index = next((lowered.index(name) for name in FOLD_COLUMNS if name in lowered), None)
    if index is None:
        return None, None, None
    folds, problem = [], None
    for number, row in numbered:
        value = row[index].strip()
        if not value.isdigit() and problem is None:
            problem = f"{path}:{number}: fold '{value}' is not a whole number (column " \
                      f"{header[index]})"
        folds.append(int(value) if value.isdigit() else -1)
    return header[index], folds, problem


def _row_splits(path: Path, header: list[str],
                numbered: list[tuple[int, list[str]]]) -> tuple[str | None, list[str] | None]:
    """Each row's split where a column gives it: `split` (train, val, test and their other
    names, as split tables are named) or fastai's `is_valid` (true: val); another value is an
    error naming file and line."""
    lowered = [name.lower() for name in header]
    column = SPLIT_COLUMN if SPLIT_COLUMN in lowered else \
        VALID_COLUMN if VALID_COLUMN in lowered else None
    if column is None:
        return None, None
    index = lowered.index(column)
    splits = []
    for number, row in numbered:
        value = row[index].strip().lower()
        if column == VALID_COLUMN:
            split = "val" if value in TRUE_VALUES else "train" if value in FALSE_VALUES else None
        else:
            split = next((name for name, names in SPLIT_TABLE_NAMES.items() if value in names),
                         None)
        if split is None:
            known = "true, false" if column == VALID_COLUMN else "train, val, test"
            raise VisionsuiteError(f"{path}:{number}: split '{row[index].strip()}' is none of "
                                   f"{known}")
        splits.append(split)
    return header[index], splits


def _class_names(path: Path, header: list[str], numbered: list[tuple[int, list[str]]],
                 image_index: int, label_column: str | None) -> tuple[list[str], str]:
    """Each row's class name, and where it came from: the label column, or the one-hot
    columns (the name of the column holding the row's 1)."""
    if label_column:
        require_column(path, header, label_column, "data.label_column")
    named = label_column or next((name for name in header if name.lower() in
                                  LABEL_COLUMN_NAMES), None)
    if named is not None:
        index = header.index(named)
        return [row[index].strip() for _, row in numbered], f"column {named}"
    hot = [index for index in range(len(header)) if index != image_index and numbered
           and all(row[index].strip() in ONE_HOT_VALUES for _, row in numbered)]
    if len(hot) >= 2:
        names = []
        for number, row in numbered:
            ones = [header[index] for index in hot if float(row[index]) == 1]
            if len(ones) != 1:
                raise VisionsuiteError(
                    f"{path}:{number}: {len(ones)} of the one-hot columns "
                    f"({', '.join(header[index] for index in hot)}) hold 1; a classifier "
                    "needs exactly one class per image (multi-label is not supported)")
            names.append(ones[0])
        return names, "one-hot columns " + ", ".join(header[index] for index in hot)
    others = ", ".join(name for index, name in enumerate(header) if index != image_index)
    raise VisionsuiteError(f"{path}: which column holds the class? Its columns: {others}; "
                           "name it with --set data.label_column=NAME")
