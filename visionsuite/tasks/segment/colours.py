"""Colour masks: each class drawn in its own flat colour (annotation tools' exports, a lesion
in red on black, Kaggle's colour-coded sets) rather than as a class index.

A colour mask is read as colour codes (core.images.colour_code), held as indices into its own
colours (uint8, as grey masks are held), and, once the whole dataset is decoded, its colours
become class values 0..K-1: by `data.colors` (the colour of each class, in class order) where
it is set, else by the colours found, black (background) first. The resolved colours are kept
in the run's config, so that evaluation on other data and `--resume` map colours as training
did, and `visionsuite segment` writes masks in them (palette PNGs of class indices).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from visionsuite.core.images import is_colour_mask
from visionsuite.errors import VisionsuiteError

MAX_COLOURS = 255  # class values 0..254; 255 is IGNORE
BLACK = 0


def colour_name(code: int) -> str:
    return f"#{int(code):06x}"


def parse_colours(colours: list[str]) -> list[int]:
    """data.colors ('#rrggbb' each, or 'rrggbb') as colour codes."""
    codes = []
    for colour in colours:
        text = str(colour).strip().lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise VisionsuiteError(f"data.colors: {colour!r} is not a colour; write each as "
                                   "'#rrggbb', in quotes in YAML (# starts a comment there)")
        codes.append(int(text, 16))
    if len(set(codes)) != len(codes):
        raise VisionsuiteError(f"data.colors: a colour is given twice in {colours}")
    if len(codes) > MAX_COLOURS:
        raise VisionsuiteError(f"data.colors: {len(codes)} colours; at most {MAX_COLOURS}")
    return codes


def indexed_colours(mask: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A colour mask as uint8 indices into its own colours, and those colours (codes); any
    other mask as it is, and None."""
    if not is_colour_mask(mask):
        return mask, None
    colours, indices = np.unique(mask, return_inverse=True)
    if len(colours) > MAX_COLOURS:
        raise VisionsuiteError(
            f"{path}: {len(colours)} colours; a colour mask holds one flat colour per class "
            "(smoothed or resized masks blend them: save masks without anti-aliasing)")
    return indices.reshape(mask.shape).astype(np.uint8), colours


def grey_colour(value):
    """The colour code of grey value(s) v: the colour (v, v, v). A grey mask among colour
    masks (an annotator's empty mask) is read so."""
    return value * 0x010101


def colours_rgb(colours: list[str]) -> np.ndarray:
    """data.colors as a (K, 3) uint8 array (core.images.colour_code's inverse)."""
    codes = np.array(parse_colours(colours), np.uint32)
    return np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)


def colour_classes(items: list[tuple[np.ndarray, np.ndarray | None, Path]],
                   colours: list[str] | None) -> tuple[list[np.ndarray], list[int]] | None:
    """Where any of `items` (mask, its colours or None for a grey mask, its path) is a colour
    mask: every mask as class values, and the colour of each class. The classes are `colours`
    (data.colors) where given, a colour outside them an error naming the file; else the
    colours found, black first. None where no mask has colour (the masks keep their values)."""
    if all(found is None for _, found, _ in items):
        return None
    if colours:
        codes = parse_colours(colours)
    else:
        codes = sorted(set().union(*(_codes_of(mask, found).tolist() for mask, found, _ in items)))
        if len(codes) > MAX_COLOURS:
            raise VisionsuiteError(f"the masks hold {len(codes)} colours; at most "
                                   f"{MAX_COLOURS} classes (one flat colour each)")
    index = {code: value for value, code in enumerate(codes)}
    classes = [_class_values(mask, found, index, path, codes) for mask, found, path in items]
    return classes, codes


def _codes_of(mask: np.ndarray, found: np.ndarray | None) -> np.ndarray:
    return found.astype(np.int64) if found is not None \
        else grey_colour(np.unique(mask).astype(np.int64))


def _class_values(mask: np.ndarray, found: np.ndarray | None, index: dict[int, int],
                  path: Path, codes: list[int]) -> np.ndarray:
    # A grey mask among colour ones is looked up by value: v is the colour (v, v, v).
    keys = (grey_colour(np.arange(256)) if found is None else found).tolist()
    table = np.array([index.get(code, 0) for code in keys], np.uint8)
    used = _codes_of(mask, found).tolist()
    unknown = [code for code in used if code not in index]
    if unknown:
        raise VisionsuiteError(
            f"{path}: colour {', '.join(colour_name(c) for c in unknown[:4])} is none of "
            f"data.colors ({', '.join(colour_name(c) for c in codes)})")
    return table[mask]


def colour_class_names(codes: list[int]) -> list[str] | None:
    """Names of classes found as colours: none of our own for black and one colour (then
    background and foreground), else each colour's '#rrggbb', black as background."""
    if len(codes) < 2 or (len(codes) == 2 and codes[0] == BLACK):
        return None
    return ["background" if code == BLACK else colour_name(code) for code in codes]


def check_colour_names(classes: list[str] | None, given: list[str] | None,
                       colours: list[int]) -> None:
    """data.classes over colour masks needs data.colors to say which colour each name is,
    unless there are two classes and the masks are black and one colour (background first)."""
    if not classes:
        return
    if given and len(given) != len(classes):
        raise VisionsuiteError(f"data.colors has {len(given)} colours for the "
                               f"{len(classes)} classes of data.classes")
    if not given and not (len(classes) == 2 and len(colours) <= 2 and colours[0] == BLACK):
        raise VisionsuiteError(
            "the masks are colour masks: set data.colors to the colour of each of data.classes, "
            f"in its order (found: {', '.join(colour_name(code) for code in colours)})")


COLOUR_TABLE_NAMES = ("name", "class", "class_name", "classname", "label")


def colour_table(root: Path) -> tuple[list[str], list[str], str] | None:
    """The classes of a CSV table of class colours at the top of `root`, header `name,r,g,b`
    and a row per class, as CamVid (class_dict.csv), DeepGlobe and the Massachusetts roads
    (label_class_dict.csv) come: the names and '#rrggbb' colours in its order, and its file
    name; None where there is no such table."""
    for path in sorted(root.glob("*.csv")):
        with path.open(newline="", errors="replace") as handle:
            reader = csv.reader(handle)
            header = [cell.strip().lower() for cell in next(reader, [])]
            if header[1:] != ["r", "g", "b"] or header[0] not in COLOUR_TABLE_NAMES:
                continue  # another table (run-length codes, metadata): its header alone read
            rows = [(number, row[0], row[1:]) for number, row in enumerate(reader, 2) if row]
        names, colours = named_colours(path, rows, "a class name and its r, g and b from 0 "
                                                   "to 255")
        return names, colours, path.name
    return None


def named_colours(path: Path, rows: list[tuple[int, str, list[str]]],
                  expected: str) -> tuple[list[str], list[str]]:
    """The class names and '#rrggbb' colours of a file's rows, (line number, name, [r, g, b]
    as text) each; a row that is not `expected`, or a name or colour given twice, is an error
    naming the file."""
    names, colours = [], []
    for number, name, rgb in rows:
        if len(rgb) != 3 or not all(v.strip().isdigit() and int(v) < 256 for v in rgb):
            raise VisionsuiteError(f"{path}:{number}: expected {expected}, got "
                                   f"{','.join([name, *rgb])!r}")
        names.append(name.strip())
        colours.append("#" + "".join(f"{int(v):02x}" for v in rgb))
    if len(set(names)) != len(names) or len(set(colours)) != len(colours):
        raise VisionsuiteError(f"{path}: a class name or colour is given twice")
    return names, colours


def palette_colours(path: Path, count: int) -> list[str] | None:
    """The colours of the first `count` indices of a palette mask's palette (VOC's: class
    indices shown in colour), so that masks written for a run trained on such masks show
    them alike; None for any other mask, a grey palette (its values are read, not its
    indices), or a palette that gives two classes one colour."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode != "P":
                return None
            palette = np.asarray(image.getpalette() or [], np.uint8).reshape(-1, 3)
    except OSError:
        return None
    grey = (palette[:, 0] == palette[:, 1]).all() and (palette[:, 1] == palette[:, 2]).all()
    codes = [int(r) << 16 | int(g) << 8 | int(b) for r, g, b in palette[:count]]
    if grey or len(codes) < count or len(set(codes)) < count:
        return None
    return [colour_name(code) for code in codes]
