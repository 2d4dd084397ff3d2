"""CSV tables beside a dataset's images that name them, as Kaggle and medical sets ship
labels and masks: finding the tables (`train.csv` and `val.csv`, `test.csv` the test split, or
one table of another name, found among CSVs that name no images), reading their rows, and
finding the image each row names by its path in the dataset, its file name or its stem,
anywhere below the root (HAM10000's two part folders). A CSV whose first rows name no images
(Sign Language MNIST's pixel rows) is no such table, and is not read whole. Classification
labels read them in tasks/classify/labels.py, segmentation's run-length codes in
tasks/segment/rle_tables.py.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from visionsuite.core.files import holds_data, inside
from visionsuite.core.images import is_image_file
from visionsuite.core.medical import file_stem
from visionsuite.errors import VisionsuiteError

SPLIT_TABLE_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation"),
                     "test": ("test", "testing")}
SAMPLED_ROWS = 50  # rows read to find the image column


def image_table_files(root: Path, images: dict[str, Path | None] | None = None,
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


def image_lookup(root: Path, paths: list[Path] | None = None) -> dict[str, Path | None]:
    """Every image below `root` (of `paths`, where given: images below it) by its path in the
    dataset, its file name and its stem (a `.nii.gz` volume's without either suffix too); None
    for a name or stem that two images share (a row naming it would be ambiguous)."""
    found: dict[str, Path | None] = {}
    for path in sorted(paths) if paths is not None else _images_below(root):
        found[path.relative_to(root).as_posix()] = path
        for key in {path.name, path.stem, file_stem(path)}:
            found[key] = None if key in found and found[key] != path else path
    return found


def _images_below(root: Path) -> list[Path]:
    return [path for path in sorted(root.rglob("*")) if path.is_file()
            and all(holds_data(part) for part in path.relative_to(root).parts)
            and is_image_file(path)]


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
                require_column(path, header, image_column, "data.image_column")
            column = image_column or image_column_of(header, sample, images)
            if column is None or (usable is not None and not usable(header, sample)):
                return None
            if whole:
                numbered += rows_of(reader, len(header))
    except (UnicodeDecodeError, csv.Error) as err:
        raise VisionsuiteError(f"{path}: not a readable CSV ({err})") from None
    return ImageTable(header, numbered, column)


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


def require_column(path: Path, header: list[str], column: str, key: str) -> None:
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
    return sorted(names, key=natural_key)


def natural_key(name: str) -> list:
    """A name's sort key with its numbers as numbers (2.png before 10.png)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]
