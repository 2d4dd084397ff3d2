"""Classification labels in a CSV table beside the images, as Kaggle and medical sets ship
them: HAM10000's metadata (`image_id`, `dx`; the images in two part folders), APTOS'
`train.csv` (`id_code`, `diagnosis`), ISIC 2018's ground truth (`image`, then one column per
class holding the one 1 of its row). One row per image, naming it by its path in the dataset,
its file name or its stem.

Tables: `train.csv` and `val.csv` (`valid`, `validation`; `test.csv` is the test split), or one
table of another name (`labels.csv`, `HAM10000_metadata.csv`, found among CSVs that name no
images), whose rows a `split` column (or fastai's `is_valid`) divides, else training by
data.val_fraction. The image column is the one whose values name the dataset's images; the
class column is data.label_column, else one named as labels are (`label`, `class`, `dx`,
`diagnosis`, ...), else the one-hot columns. A CSV that names no images (Sign Language MNIST's
pixel rows) is no label table: the folders are read as class folders. Finding the tables,
reading their rows and finding their images also serve segment's run-length tables
(tasks/segment/rle_tables.py).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from visionsuite.core.files import holds_data, inside
from visionsuite.core.images import is_image_file
from visionsuite.errors import VisionsuiteError

LABEL_COLUMN_NAMES = ("label", "labels", "class", "class_name", "category", "diagnosis", "dx",
                      "target", "y")
SPLIT_TABLE_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation"),
                     "test": ("test", "testing")}
# A column giving each row's split: `split` (train, val, test, ...) or fastai's `is_valid`.
SPLIT_COLUMN = "split"
VALID_COLUMN = "is_valid"
TRUE_VALUES, FALSE_VALUES = ("true", "1", "yes"), ("false", "0", "no")
SAMPLED_ROWS = 50  # rows read to find the image column
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


def label_table_files(root: Path, images: dict[str, Path | None] | None = None,
                      usable=None) -> dict[str, Path]:
    """The CSV files at the top of `root` by split ("train", "val", "test"), or {"all": the
    one table} where none is named as a split; {} where there is none. Of several CSVs of other
    names, with `images` (image_lookup's), the one whose first rows name images and pass
    `usable(header, rows)` (HAM10000's metadata beside its pixel tables), else of those the
    one named train (the Data Science Bowl's stage1_train_labels beside its sample
    submission); several such are an error."""
    tables = sorted(path for path in root.glob("*.csv") if path.is_file())
    by_split = {split: path for path in tables for split, names in SPLIT_TABLE_NAMES.items()
                if path.stem.lower() in names}
    if by_split:
        return by_split
    if len(tables) > 1 and images is not None:
        tables = [path for path in tables if _names_images(path, images, usable)]
        trained = [path for path in tables if "train" in path.stem.lower()]
        tables = trained if len(tables) > 1 and len(trained) == 1 else tables
        if len(tables) > 1:  # not guessed: the wrong one would train without a word
            raise VisionsuiteError(f"{root}: several CSVs name its images ("
                                   f"{', '.join(path.name for path in tables)}); rename the "
                                   "one to train on train.csv (and a val table val.csv)")
    return {"all": tables[0]} if len(tables) == 1 else {}


def _names_images(path: Path, images: dict[str, Path | None], usable=None) -> bool:
    """Whether a CSV's first rows name the dataset's images (and pass `usable`); an
    unreadable CSV does not."""
    try:
        return read_image_table(path, images, usable=usable, whole=False) is not None
    except VisionsuiteError:
        return False


def names_classes(header: list[str], rows: list[list[str]],
                  label_column: str | None = None) -> bool:
    """Whether a table's first rows can give classes: the label column, a column named as
    labels are, or two one-hot columns (a metadata table of sizes gives none)."""
    if label_column or any(name.lower() in LABEL_COLUMN_NAMES for name in header):
        return label_column is None or label_column in header
    return sum(bool(rows) and all(row[index].strip() in ONE_HOT_VALUES for row in rows)
               for index in range(len(header))) >= 2


def image_lookup(root: Path) -> dict[str, Path | None]:
    """Every image below `root` by its path in the dataset, its file name and its stem; None
    for a name or stem that two images share (a row naming it would be ambiguous)."""
    found: dict[str, Path | None] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or not all(holds_data(part) for part in relative.parts) \
                or not is_image_file(path):
            continue
        found[relative.as_posix()] = path
        for key in {path.name, path.stem}:
            found[key] = None if key in found and found[key] != path else path
    return found


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
    found = []
    for (number, row), name in zip(numbered, names):
        image = row_image(root, f"{path}:{number}", row[where], images)
        if not name:
            raise VisionsuiteError(f"{path}:{number}: image '{row[where].strip()}' has no "
                                   "class")
        found.append((image, name))
    return LabelTable(path, found, table.image_column, label_from, splits, split_column)


@dataclass
class ImageTable:
    """A CSV whose rows name the dataset's images: its header, its rows as (line number,
    cells), and the column naming the images."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    image_column: str


def read_image_table(path: Path, images: dict[str, Path | None],
                     image_column: str | None = None, usable=None,
                     whole: bool = True) -> ImageTable | None:
    """A CSV's rows, where its first rows name the dataset's images (in `image_column`, else
    the column image_column_of finds) and pass `usable(header, rows)`; None where they do not,
    reading only those first rows (a pixel table of 80 MB is not read whole to be set aside).
    `whole`: all its rows, else the first only. An unreadable CSV, or an `image_column` it
    lacks, is an error naming the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = [name.strip() for name in next(reader, [])]
            numbered = rows_of(reader, len(header), SAMPLED_ROWS)
            sample = [row for _, row in numbered]
            if image_column:
                _require_column(path, header, image_column, "data.image_column")
            column = image_column or image_column_of(header, sample, images)
            if column is None or (usable is not None and not usable(header, sample)):
                return None
            if whole:
                numbered += rows_of(reader, len(header))
    except (UnicodeDecodeError, csv.Error) as err:
        raise VisionsuiteError(f"{path}: not a readable CSV ({err})") from None
    return ImageTable(header, numbered, column)


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


def rows_of(reader, width: int, count: int | None = None) -> list[tuple[int, list[str]]]:
    """(line number, row padded to `width`) of the reader's next `count` rows (all, where
    None) that hold anything."""
    found = []
    for row in reader:
        if any(cell.strip() for cell in row):
            found.append((reader.line_num, row + [""] * (width - len(row))))
            if count is not None and len(found) == count:
                break
    return found


def image_column_of(header: list[str], rows: list[list[str]],
                    images: dict[str, Path | None]) -> str | None:
    """The column whose sampled values most often name an image, where most of them do."""
    sample = rows[:SAMPLED_ROWS]
    scores = [sum(images.get(row[index].strip().replace("\\", "/")) is not None
                  or images.get(Path(row[index].strip()).name) is not None for row in sample)
              for index in range(len(header))]
    best = max(range(len(header)), key=lambda index: scores[index], default=None)
    return header[best] if best is not None and sample and scores[best] * 2 > len(sample) \
        else None


def _class_names(path: Path, header: list[str], numbered: list[tuple[int, list[str]]],
                 image_index: int, label_column: str | None) -> tuple[list[str], str]:
    """Each row's class name, and where it came from: the label column, or the one-hot
    columns (the name of the column holding the row's 1)."""
    if label_column:
        _require_column(path, header, label_column, "data.label_column")
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


def _require_column(path: Path, header: list[str], column: str, key: str) -> None:
    if column not in header:
        raise VisionsuiteError(f"{path}: no column '{column}' ({key}); its columns: "
                               f"{', '.join(header)}")


def row_image(root: Path, where: str, reference: str, images: dict[str, Path | None]) -> Path:
    """The image a table's row names (find_image; Windows' backslashes read as slashes); one
    that is not there, or twice, is an error naming the row (`where`: file:line)."""
    reference = reference.strip().replace("\\", "/")
    image = find_image(root, reference, images)
    if image is None:
        missing = "is in two places" if images.get(reference, 0) is None else "is not there"
        raise VisionsuiteError(f"{where}: image '{reference}' {missing} (below {root})")
    return image


def find_image(root: Path, reference: str, images: dict[str, Path | None]) -> Path | None:
    """The image a row names: by its path in the dataset (never outside it), else its file
    name, else its stem (HAM10000 names images without their extension)."""
    if not reference:
        return None
    if "/" in reference:
        image = inside(root, reference)
        if image.is_file():
            return image
    return images.get(reference) or images.get(Path(reference).name)


def natural_order(names) -> list[str]:
    """Class names sorted with their numbers as numbers: APTOS' grades 0-4, and 2 before 10."""
    return sorted(names, key=lambda name: [int(part) if part.isdigit() else part.lower()
                                           for part in re.split(r"(\d+)", name)])
