"""Masks as run-length codes in a CSV table, as Kaggle's segmentation sets ship them: the 2018
Data Science Bowl's nuclei, SIIM-ACR's pneumothorax (DICOM), Severstal's steel defects, Airbus'
ships, Carvana's cars. One row per object (or per image and class): the image, named by its
path, file name or stem (core/image_tables.py finds the column), and its pixels as
`start length start length ...`, 1-based; an empty code (or -1) is an image without objects.
Rows of one image are its objects together; with a class column (`ClassId`, `class`, ...)
each object gets its class, after background, else the set is binary.

The pixel numbering is data.rle_order: `column`, top to bottom, then left to right, as Kaggle
documents it and the Data Science Bowl, SIIM, Severstal and Airbus number them (the default),
or `row`, left to right, then top to bottom (Carvana, HuBMAP). Tables: train.csv and val.csv
(test.csv: the test split), or one table, split by data.val_fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.image_tables import natural_order, read_image_table, row_image
from visionsuite.errors import VisionsuiteError

RLE_COLUMN_NAMES = ("encodedpixels", "encoded_pixels", "rle", "rle_mask", "mask_rle",
                    "segmentation", "annotation")
CLASS_COLUMN_NAMES = ("classid", "class_id", "class", "label", "category")
EMPTY_CODES = ("", "-1", "nan")
RLE_ORDERS = {"column": "top to bottom, then left to right",
              "row": "left to right, then top to bottom"}


@dataclass(frozen=True)
class RunLengths:
    """One object's run-length code, and where it was read (file:line, for errors)."""

    code: str
    order: str
    source: str


@dataclass
class RleTable:
    """A table's images, each with its objects as (class name, RunLengths)."""

    path: Path
    images: dict[Path, list[tuple[str, RunLengths]]]
    image_column: str
    rle_column: str
    class_column: str | None


def rle_column(header: list[str]) -> str | None:
    """The column of run-length codes, by its name; None where there is none."""
    return next((name for name in header if name.lower() in RLE_COLUMN_NAMES), None)


def holds_codes(header: list[str], rows: list[list[str]]) -> bool:
    """Whether a table has a column of run-length codes (an image_table_files `usable` test)."""
    return rle_column(header) is not None


def read_rle_table(root: Path, path: Path, images: dict[str, Path | None],
                   order: str) -> RleTable | None:
    """A table's run-length codes by image; None where it has no code column or no column
    names the dataset's images (not a mask table)."""
    table = read_image_table(path, images, usable=holds_codes)
    if table is None:
        return None
    header, numbered, column, codes = table.header, table.rows, table.image_column, \
        rle_column(table.header)
    where, code_at = header.index(column), header.index(codes)
    classes = next((name for name in header if name.lower() in CLASS_COLUMN_NAMES), None)
    found: dict[Path, list[tuple[str, RunLengths]]] = {}
    for number, row in numbered:
        image = row_image(root, f"{path}:{number}", row[where], images)
        objects = found.setdefault(image, [])
        code = row[code_at].strip()
        if code.lower() not in EMPTY_CODES:
            name = row[header.index(classes)].strip() if classes else "foreground"
            objects.append((name, RunLengths(code, order, f"{path}:{number}")))
    return RleTable(path, found, column, codes, classes)


def rle_class_names(tables: list[RleTable]) -> list[str]:
    """background, then the tables' classes (numbers as numbers)."""
    names = {name for table in tables for objects in table.images.values()
             for name, _ in objects}
    return ["background", *natural_order(names - {"background"})] if names else \
        ["background", "foreground"]


def decode_run_lengths(runs: RunLengths, height: int, width: int) -> np.ndarray:
    """The (height, width) bool mask of a run-length code, in its pixel order; a code that
    is not pairs of positive numbers inside the image is an error naming file and line."""
    try:
        numbers = np.asarray(runs.code.split(), dtype=np.int64)
    except ValueError:
        raise VisionsuiteError(f"{runs.source}: the run-length code holds something that is "
                               "not a whole number") from None
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    total = height * width
    if len(numbers) % 2 or (starts < 0).any() or (lengths < 0).any() \
            or (starts + lengths > total).any():
        raise VisionsuiteError(
            f"{runs.source}: not `start length` pairs inside the {width}x{height} image "
            f"({total} pixels); is this the code of another image, or of another size?")
    change = np.zeros(total + 1, np.int32)
    np.add.at(change, starts, 1)
    np.add.at(change, starts + lengths, -1)
    flat = np.cumsum(change[:-1]) > 0
    if runs.order == "column":  # top to bottom, then left to right
        return flat.reshape(width, height).T
    return flat.reshape(height, width)
