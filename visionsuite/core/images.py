"""Reading images of every common format and mode into uint8 arrays, on purpose.

Pillow decodes JPEG, PNG, BMP, GIF, PGM/PPM, TIFF, WebP, AVIF and JPEG 2000 (Sentinel-2 tiles,
archives' exports) alike, and HEIC (iPhones' own photo format) through pi-heif's Pillow plugin,
so every format takes the same path. A file is an image by its extension or, when the
extension names no image format, by its first bytes:
the classic Yale faces are GIFs named `subject01.happy`, and DICOM series often come as
`IM0001` or `*.IMA`. A name like `face.pgm.bad` was renamed to be left out, and is.
Modes are converted deliberately:
- 16-bit grayscale is scaled linearly from its full range to 0..255 (not clipped, which would
  turn most 16-bit images white), and so is colour of 16 bits a channel (48- and 64-bit PNG
  and TIFF, decoded by OpenCV: Pillow keeps only the top byte of each value); 32-bit integer
  and float grayscale from the range they fit (floats 0..1), or their own minimum to maximum
  where they hold negative values. A window (data.window) replaces that range where a reader
  is given one: a new run of any task measures its training set's bit depth
  (`bit_depth_window`), since a 12-bit camera's 0..4095 scaled from 0..65535 would keep 16 of
  256 grey levels;
- RGBA and LA are composited on white, since colour under transparent pixels is undefined;
- palette images go through RGBA so that a transparent palette entry is handled the same way;
- EXIF orientation is applied, so a phone photo is seen upright, as a person sees it.
DICOM and NIfTI files (core.medical) are images too: a single slice reads as any image; volumes
are read slice by slice by the tasks that take them (segment).
Images are only ever read: nothing here writes to the file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from visionsuite.core.files import RUNS, holds_data, inside
from visionsuite.errors import VisionsuiteError

DEEP_INTEGER_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # Pillow's 16- and 32-bit grey
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".pnm", ".tif", ".tiff",
    ".webp", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".jpx", ".jpf",
)
# Masks whose values number objects (cells 1..N) are no class indices, but can be foreground.
INSTANCE_HINT = "if they number objects, set data.binary_masks=true"
LOSSY_FORMATS = ("JPEG", "MPO", "HEIF", "AVIF")  # Pillow's names; masks in them are binary
COLOUR_CODES = np.uint32  # the dtype of a colour mask's values as read_mask gives them
# Leading bytes of those formats, for files whose extension does not say (see content_kind).
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00",
                     b"MM\x00*",
                     b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")  # JPEG 2000: JP2, J2K
# HEIC/HEIF and AVIF are ISO media files: "ftyp" at byte 4, then the brand (MP4 videos differ).
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif",
                b"avis")
_NETPBM_HEADER = re.compile(rb"P[1-6]\s+(#[^\n]*\n\s*)*\d+\s+\d+\s")  # magic, width, height
_DICOM_MAGIC_OFFSET = 128  # DICOM part 10: a 128-byte preamble, then "DICM"

ORIENTATION_TAG = 0x0112  # EXIF
# The EXIF orientations that turn an image a quarter, and Pillow's transposes for them.
QUARTER_TURNS = {5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
# Each EXIF orientation's transpose, as Pillow's exif_transpose applies it
EXIF_TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, **QUARTER_TURNS}
# How inspect_image names colour stored in 16 bits a channel (48- and 64-bit PNG and TIFF),
# which Pillow would read as the top byte of each value
DEEP_COLOUR_MODES = ("RGB;16", "RGBA;16")

# A decompression-bomb guard that still admits large microscopy slides.
Image.MAX_IMAGE_PIXELS = 20000 * 20000


class UnreadableImage(VisionsuiteError):
    """One image that cannot be decoded; callers usually warn, skip and count it."""


def is_image_file(path: Path) -> bool:
    from visionsuite.core.arrays import holds_image, is_array_file
    from visionsuite.core.medical import MEDICAL_SUFFIXES

    if path.name.startswith("."):
        return False
    if is_array_file(path):  # arrays of images, not of labels or ids (core/arrays.py)
        return holds_image(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS or path.name.lower().endswith(MEDICAL_SUFFIXES):
        return True
    if any(suffix.lower() in IMAGE_EXTENSIONS for suffix in path.suffixes[:-1]):
        return False  # renamed to be left out: Extended Yale B's `*.pgm.bad`, `*.jpg.bak`
    return content_kind(path) is not None


def dataset_image_files(root: Path, paths, others: list[Path]):
    """The image files among `paths` (files of the dataset `root`); the other files are added
    to `others`. A link out of the dataset is refused."""
    for path in paths:
        inside(root, path.relative_to(root))
        if is_image_file(path):
            yield path
        else:
            others.append(path)


def folder_image_files(root: Path, folder: Path, others: list[Path], recursive: bool = False):
    """dataset_image_files of the files of `folder` (and below it, `recursive`), by name,
    leaving out what holds no data (`holds_data`): hidden files (.DS_Store), and below it
    hidden folders (Jupyter's .ipynb_checkpoints copies) and a Mac zip's __MACOSX."""
    files = (path for path in sorted(folder.rglob("*") if recursive else folder.iterdir())
             if path.is_file() and all(holds_data(part)
                                       for part in path.relative_to(folder).parts))
    return dataset_image_files(root, files, others)


def other_files_note(others: list[Path]) -> str:
    """For the error about a folder without images: what it holds instead, or ""."""
    if not others:
        return ""
    return f" ({len(others)} file{'s' * (len(others) > 1)} in no image format, " \
        f"e.g. {others[0].name})"


def content_kind(path: Path) -> str | None:
    """What the file's first bytes say it is: "image" (a format Pillow reads here), "dicom", or
    None (also for an unreadable file). For names whose extension does not say."""
    try:
        with open(path, "rb") as file:
            head = file.read(_DICOM_MAGIC_OFFSET + 4)
    except OSError:
        return None
    if head[_DICOM_MAGIC_OFFSET:] == b"DICM":
        return "dicom"
    if head.startswith(_IMAGE_SIGNATURES):
        return "image"
    if head[:2] == b"BM" and head[6:10] == bytes(4):  # BMP: its reserved bytes are zero
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if _NETPBM_HEADER.match(head):
        return "image"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image"
    return None


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIC, on the first image opened (the import costs 40 ms). pi-heif decodes
    the photo already turned by the file's own rotation (irot/imir) and sets its EXIF
    orientation to 1, so exif_transpose does not turn it a second time."""
    import pi_heif

    pi_heif.register_heif_opener()


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Image.open, with every decoding failure turned into one UnreadableImage naming `path`."""
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage(f"{path}: image too large to decode safely") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = "not an image file" if isinstance(err, UnidentifiedImageError) else str(err)
        raise UnreadableImage(f"{path}: unreadable image ({reason})") from None


def read_image(path: str | Path, size: int | None = None, channels: int = 3,
               window: list[float] | None = None) -> np.ndarray:
    """Decode `path` to a uint8 array of shape (H, W, channels), resized to size x size if given.
    `window` ([center, width]) maps the values of an image deeper than 8 bits (DICOM, NIfTI,
    16-bit, float) to 0..255."""
    from visionsuite.core.medical import is_medical_file

    if is_medical_file(Path(path)):
        return _read_single_slice(Path(path), size, channels, window)
    with _opened(Path(path)) as image:
        if size and image.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: large photos load far faster.
            image.draft("RGB", (size, size))
        return _upright_uint8(image, channels, size, window)


def _upright_uint8(image: Image.Image, channels: int, size: int | None,
                   window: list[float] | None = None) -> np.ndarray:
    if _deep_colour(image):
        return _to_uint8(_deep_colour_8bit(image, window), channels, size)
    image.load()
    return _to_uint8(ImageOps.exif_transpose(image), channels, size, window)


def _deep_colour(image: Image.Image) -> bool:
    """Whether `image` is colour stored in 16 bits a channel, which Pillow decodes to 8 bits
    by keeping each value's top byte: a 12-bit camera's 0..4095 came out as 0..15."""
    if image.mode not in ("RGB", "RGBA") or not image.tile:
        return False
    raw = image.tile[0].args[0] if isinstance(image.tile[0].args, tuple) else image.tile[0].args
    return isinstance(raw, str) and ";16" in raw


def _deep_colour_values(image: Image.Image) -> np.ndarray:
    """The 16-bit RGB(A) values of a _deep_colour image's file, as stored, through OpenCV
    (Pillow keeps 8 bits of them)."""
    import cv2

    path = Path(image.filename)
    values = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if values is None or values.dtype != np.uint16 or values.ndim != 3 \
            or values.shape[2] not in (3, 4):
        raise UnreadableImage(f"{path}: unreadable image (16-bit colour that OpenCV does not "
                              "decode)")
    return cv2.cvtColor(values, cv2.COLOR_BGRA2RGBA if values.shape[2] == 4
                        else cv2.COLOR_BGR2RGB)


def _deep_colour_8bit(image: Image.Image, window: list[float] | None) -> Image.Image:
    """A _deep_colour image in 8 bits a channel, upright: its values from `window` (else
    their full 0..65535, as 16-bit grey is read) to 0..255, alpha from its full range."""
    values = _deep_colour_values(image).astype(np.float64)
    low, top = window_bounds(window) if window else (0.0, 65535.0)
    colour = np.clip((values[..., :3] - low) * (255.0 / (top - low)), 0, 255)
    if values.shape[2] == 4:
        colour = np.concatenate([colour, values[..., 3:] * (255.0 / 65535.0)], axis=-1)
    eight = Image.fromarray(colour.round().astype(np.uint8))
    method = EXIF_TRANSPOSES.get(exif_orientation(image))
    return eight.transpose(method) if method is not None else eight


def read_image_slices(path: str | Path, channels: int = 3,
                      window: list[float] | None = None) -> list[np.ndarray]:
    """A file's images at their own size: one for 2-D formats, one per slice (or frame) for
    DICOM and NIfTI, one per page for a TIFF stack, one per slice of a multi-channel TIFF
    (ImageJ hyperstack, OME-TIFF: its channels the image's, `hyperstack_layout`). `window`
    ([center, width]) maps the values of every image deeper than 8 bits (DICOM, NIfTI,
    16-bit, float) to 0..255."""
    from visionsuite.core.medical import is_medical_file, read_slices

    if is_medical_file(Path(path)):
        return read_slices(path, channels, window)
    with _opened(Path(path)) as image:  # opened once: the pages, or the one image
        own, slices = hyperstack_layout(image)
        if own > 1:
            if channels != own:
                raise UnreadableImage(f"{path}: {own} channels (a multi-channel TIFF), but "
                                      f"the model takes {channels}")
            pages = [_to_uint8(page, 1, None, window) for page in _pages(image)]
            return [np.concatenate([pages[index] for index in slice_pages], axis=-1)
                    for slice_pages in slices]
        if stack_pages(image) > 1:
            return [_to_uint8(page, channels, None, window) for page in _pages(image)]
        return [_upright_uint8(image, channels, None, window)]


def hyperstack_layout(image: Image.Image) -> tuple[int, list[list[int]]]:
    """(channels, the page of each channel of each slice) of an opened multi-channel TIFF of
    grey pages, as microscopes and Fiji save fluorescence images (nuclei, membrane, ...):
    - an ImageJ hyperstack: its ImageDescription starts `ImageJ=` and says `channels=C`; the
      pages are C per slice, channel first (ImageJ's XYCZT order);
    - an OME-TIFF: its description's OME-XML Pixels element gives SizeC, SizeZ, SizeT and the
      DimensionOrder in which the pages run (XYZCT: every slice of one channel, then the next).
    The slices run through z, then time. (1, []) for any other image: every page a slice."""
    plain = (1, [])
    if image.format != "TIFF" or image.mode not in ("L", "F") + DEEP_INTEGER_MODES:
        return plain
    description = image.tag_v2.get(270)  # ImageDescription, on the first page
    if not isinstance(description, str):
        return plain
    sizes, order = _imagej_sizes(description) or _ome_sizes(description) or ({}, "")
    pages = stack_pages(image) if sizes.get("C", 1) > 1 else 0
    if not pages or np.prod(list(sizes.values())) != pages:
        return plain
    strides, step = {}, 1
    for letter in order:  # the first letter runs fastest through the pages
        strides[letter], step = step, step * sizes[letter]
    return sizes["C"], [[c * strides["C"] + z * strides["Z"] + t * strides["T"]
                         for c in range(sizes["C"])]
                        for t in range(sizes["T"]) for z in range(sizes["Z"])]


def _imagej_sizes(description: str) -> tuple[dict[str, int], str] | None:
    if not description.startswith("ImageJ="):
        return None
    found = dict(re.findall(r"^(channels|images)=(\d+)\s*$", description, re.MULTILINE))
    channels, images = int(found.get("channels", 1)), int(found.get("images", 0))
    if channels < 2 or not images or images % channels:
        return None
    return {"C": channels, "Z": images // channels, "T": 1}, "CZT"


def _ome_sizes(description: str) -> tuple[dict[str, int], str] | None:
    pixels = re.search(r"<(?:\w+:)?Pixels\s([^>]*)>", description)  # the first image's
    if not description.lstrip().startswith("<?xml") or not pixels:
        return None
    attributes = dict(re.findall(r'(\w+)="([^"]*)"', pixels.group(1)))
    order = attributes.get("DimensionOrder", "")
    if sorted(order[2:]) != ["C", "T", "Z"] or not order.startswith("XY"):
        return None
    try:
        return {letter: int(attributes.get(f"Size{letter}", 1)) for letter in "CZT"}, order[2:]
    except ValueError:
        return None


def tiff_channels(path: str | Path) -> int:
    """The channels of a multi-channel TIFF at `path` (hyperstack_layout), from its headers;
    1 for other files."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return 1
    with _opened(Path(path)) as image:
        return hyperstack_layout(image)[0]


def deep_maximum(path: str | Path) -> int | None:
    """The largest value of a 2-D image file stored in 16-bit (or 32-bit) integers: grey,
    over every page of a stack, or colour of 16 bits a channel (alpha aside); None for any
    other file (8-bit, float, DICOM, NIfTI)."""
    from visionsuite.core.medical import is_medical_file

    if Path(path).is_dir() or is_medical_file(Path(path)):
        return None
    with _opened(Path(path)) as image:
        if _deep_colour(image):
            return int(_deep_colour_values(image)[..., :3].max(initial=0))
        if image.mode not in DEEP_INTEGER_MODES:
            return None
        pages = _pages(image) if stack_pages(image) > 1 else [image]
        return max(int(np.asarray(page).max(initial=0)) for page in pages)


def bit_depth_window(maximum: int) -> list[float]:
    """[center, width] of 0 to the top of the smallest bit depth (of at least 8 bits) that
    holds `maximum`: a set whose 16-bit files hold a 12-bit camera's values (at most 4095) is
    read from 0..4095, every image of it alike, rather than from 0..65535 (16 grey levels)."""
    top = 2 ** max(8, int(maximum).bit_length()) - 1
    return [top / 2, float(top)]


def window_bounds(window: list[float] | tuple[float, float]) -> tuple[float, float]:
    """The values data.window ([center, width]) maps to 0 and 255."""
    if len(window) != 2 or float(window[1]) <= 0:
        raise VisionsuiteError(f"data.window must be [center, width] with width > 0, "
                               f"got {list(window)}")
    center, width = float(window[0]), float(window[1])
    return center - width / 2, center + width / 2


def read_mask_slices(path: str | Path, binary: bool = False) -> list[np.ndarray]:
    """A mask file's raw values, one (H, W) array per slice (see read_mask, read_label_slices)
    or TIFF page."""
    from visionsuite.core.medical import is_medical_file, read_label_slices

    if is_medical_file(Path(path)):
        return read_label_slices(path, binary)
    return [_checked_mask(values, Path(path), binary) for values in _page_values(Path(path))]


def read_object_slices(path: str | Path) -> list[np.ndarray] | None:
    """An instance mask's slices (or TIFF pages) as the numbers of its objects (0 the
    background; any number, 16-bit ones too: object_numbers); None where the file holds no
    such numbers (colour, negative or fractional values, several channels)."""
    from visionsuite.core.medical import is_medical_file, read_label_values

    path = Path(path)
    stack = read_label_values(path) if is_medical_file(path) else _page_values(path)
    numbered = [object_numbers(values) for values in stack] if stack is not None else [None]
    return None if any(values is None for values in numbered) else numbered


def object_numbers(values: np.ndarray) -> np.ndarray | None:
    """A grey mask's values as object numbers, where they are whole and not negative (else
    None): uint16 where they fit (2 bytes a val pixel kept), else int32."""
    if values.ndim != 2 or is_colour_mask(values) or values.dtype.kind not in "iuf":
        return None
    top = values.max(initial=0)
    if values.min(initial=0) < 0 or top > np.iinfo(np.int32).max \
            or (values.dtype.kind == "f" and not np.array_equal(values, np.round(values))):
        return None
    return values.astype(np.uint16 if top <= np.iinfo(np.uint16).max else np.int32, copy=False)


def _page_values(path: Path) -> list[np.ndarray]:
    """The raw values of a mask file's slices: its pages, or the one mask (_values_of)."""
    with _opened(path) as image:  # opened once
        pages = _pages(image) if stack_pages(image) > 1 else [image]
        return [_values_of(page, path) for page in pages]


def smaller_on_top(layers: list[tuple[int, list[np.ndarray]]], shapes: list[tuple],
                   binary: bool, orders: tuple[float, ...] | None = None) -> list[np.ndarray]:
    """Class indices (255 for every class, `binary`) of each slice from (class value, its
    slices' bool masks) layers, the smaller layers painted last: where two overlap, what lies
    inside or over the other (a tumour in its organ) keeps its class. Where the layers have
    z `orders` (CVAT's), the higher are painted over the lower, and the smaller over the
    larger among equals."""
    masks = [np.zeros(shape, np.uint8) for shape in shapes]
    orders = orders or (0,) * len(layers)
    for _, (value, found) in sorted(zip(orders, layers), key=lambda layer: (
            layer[0], -sum(m.sum() for m in layer[1][1]))):
        for mask, of_class in zip(masks, found):
            mask[of_class] = 255 if binary and value else value  # 0: a hole (LabelMe's)
    return masks


def stack_pages(image: Image.Image) -> int:
    """How many pages of an opened image are slices of one stack: every page of a multi-page
    TIFF whose pages share the first one's size and mode (an EM or microscopy stack, as ImageJ
    and Fiji save them; ISBI 2012 ships its 30 slices so), else 1: a pyramid's smaller pages or
    a thumbnail are no slices, and a photo's first page is the photo."""
    count = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
    size, mode = image.size, image.mode
    for index in range(1, count):
        image.seek(index)
        if image.size != size or image.mode != mode:
            count = 1
            break
    image.seek(0)
    return count


def tiff_stack_depth(path: str | Path) -> int:
    """The slices of the file at `path`, from its headers: stack_pages, a multi-channel
    TIFF's divided by its channels (1 for other files)."""
    with _opened(Path(path)) as image:
        return stack_pages(image) // hyperstack_layout(image)[0]


def _pages(image: Image.Image) -> Iterator[Image.Image]:
    for index in range(image.n_frames):
        image.seek(index)
        image.load()
        yield image


def _read_single_slice(path: Path, size: int | None, channels: int, window) -> np.ndarray:
    from visionsuite.core.medical import read_slices

    slices = read_slices(path, channels, window)
    if len(slices) != 1:
        raise UnreadableImage(f"{path}: a volume of {len(slices)} slices; only the segment "
                              "task reads volumes (slice by slice)")
    image = slices[0]
    if size and image.shape[:2] != (size, size):
        resized = Image.fromarray(image[..., 0] if channels == 1 else image)
        image = np.asarray(resized.resize((size, size), Image.BILINEAR, reducing_gap=3.0))
        image = image[..., None] if channels == 1 else image
    return image


def inspect_image(path: str | Path, decode: bool = True) -> tuple[tuple[int, int], str]:
    """(width, height) upright, as read_image gives it (EXIF orientation applied), and Pillow
    mode (for DICOM/NIfTI: their kind, e.g. 'DICOM CT'), after decoding the pixels once to
    prove they decode (`decode=False`: from the header only, for files already decoded)."""
    from visionsuite.core.medical import describe, is_medical_file, read_header, read_slices

    if is_medical_file(Path(path)):
        if not decode:
            header = read_header(path)
            return header.size or (0, 0), header.kind
        first = read_slices(path, 3)[0]
        return (first.shape[1], first.shape[0]), describe(path)
    with _opened(Path(path)) as image:
        mode = f"{image.mode};16" if _deep_colour(image) else image.mode  # before decoding
        if decode:
            image.load()
        return upright_size(image.size, exif_orientation(image)), mode


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8; 1 = stored upright) that read_image applies."""
    try:
        orientation = int(image.getexif().get(ORIENTATION_TAG, 1))
    except (ValueError, TypeError, SyntaxError, OSError):  # a damaged EXIF block: as stored
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def stored_geometry(path: str | Path, decode: bool = False) -> tuple[tuple[int, int], int]:
    """(width, height) as stored, and the EXIF orientation (DICOM/NIfTI: 1), from the header;
    `decode`: after decoding the pixels once to prove they decode."""
    from visionsuite.core.medical import is_medical_file

    if is_medical_file(Path(path)):
        return inspect_image(path, decode)[0], 1
    with _opened(Path(path)) as image:
        if decode:
            image.load()
        return image.size, exif_orientation(image)


def turn_upright(values: np.ndarray, orientation: int) -> np.ndarray:
    """A 2-D array of a stored image's pixels (a mask drawn on them), turned as read_image
    turns the image (Pillow's exif_transpose)."""
    method = QUARTER_TURNS.get(orientation)
    if method is None:
        return values
    return np.asarray(Image.fromarray(values).transpose(method))


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The size shown upright: orientations 5 to 8 turn the image a quarter."""
    return (size[1], size[0]) if orientation >= 5 else size


def fitted_size(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """(height, width) scaled down, aspect kept, so that the longer side is at most max_size."""
    longer = max(height, width)
    if not max_size or longer <= max_size:
        return height, width
    scale = max_size / longer
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_within(array: np.ndarray, max_size: int | None, nearest: bool = False) -> np.ndarray:
    """An image (H, W[, C]) scaled down to fitted_size: by pixel area, or nearest-neighbour
    for masks (whose values are classes); unchanged when it already fits."""
    import cv2

    height, width = fitted_size(array.shape[0], array.shape[1], max_size)
    if (height, width) == array.shape[:2]:
        return array
    resized = cv2.resize(array, (width, height),
                         interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    return resized.reshape((height, width) + array.shape[2:])


def _to_uint8(image: Image.Image, channels: int, size: int | None,
              window: list[float] | None = None) -> np.ndarray:
    image = _to_8bit(image, window)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    if size and image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


def _to_8bit(image: Image.Image, window: list[float] | None = None) -> Image.Image:
    if image.mode in DEEP_INTEGER_MODES + ("F",):
        array = np.asarray(image, dtype=np.float64)
        array = np.where(np.isfinite(array), array, 0.0)  # NaN: no signal, as in masked floats
        low, top = window_bounds(window) if window else _intensity_range(image.mode, array)
        scaled = np.clip((array - low) * (255.0 / (top - low)), 0, 255).round()
        return Image.fromarray(scaled.astype(np.uint8), mode="L")
    if image.mode == "1":
        return image.convert("L")
    if image.mode == "CMYK" or image.mode == "YCbCr":
        return image.convert("RGB")
    return image


def _intensity_range(mode: str, array: np.ndarray) -> tuple[float, float]:
    """The values a deep image maps to 0 and 255. 16-bit: its full 0..65535 (the same scale for
    every image of a set). 32-bit integers and floats by the range they fit in: 0..1 for floats
    (scikit-image's and most tools' convention: a float microscopy TIFF read against 255 was
    black), else 0..255, 0..65535 or 0..their maximum; values below 0 (CT numbers, differences)
    have no such range and are spread from their own minimum to maximum."""
    if mode.startswith("I;16"):
        return 0.0, 65535.0
    low, high = float(array.min(initial=0)), float(array.max(initial=0))
    if low < 0:
        return low, max(high, low + 1e-6)
    for top in ((1.0,) if mode == "F" else ()) + (255.0, 65535.0):
        if high <= top:
            return 0.0, top
    return 0.0, high


def collect_images(inputs: list[str] | tuple[str, ...], outputs: tuple = ()) -> list[Path]:
    """Image files named on the command line, folders searched recursively, in sorted order.
    The search skips hidden and __MACOSX folders, and visionsuite's own output folders inside
    a searched folder (./runs and `outputs`): `visionsuite segment RUN .` run twice would
    otherwise segment the first run's masks and overlays, and classify a run's plots. Named
    directly, such a folder is searched like any other. A file reached twice is given once."""
    found: list[Path] = []
    left_out = 0
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            skipped = _output_folders_within(path, (RUNS, *outputs))
            for file in sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)
                               and all(holds_data(part)
                                       for part in p.relative_to(path).parts[:-1])):
                if any(file.relative_to(path).parts[:len(s)] == s for s in skipped):
                    left_out += 1
                else:
                    found.append(file)
        elif path.is_file():
            found.append(path)
        else:
            raise VisionsuiteError(f"{path}: no such file or folder")
    if left_out:
        print(f"note: left out {left_out} image(s) in visionsuite's output folders "
              f"({', '.join(str(o) for o in (RUNS, *outputs))}); name a folder to read it",
              file=sys.stderr)
    if not found:
        raise VisionsuiteError(f"{', '.join(inputs)}: no image files found")
    first_found: dict[str, Path] = {}  # a file named and inside a folder named too: once
    for path in found:
        first_found.setdefault(os.path.abspath(path), path)
    return list(first_found.values())


def _output_folders_within(folder: Path, outputs: tuple) -> list[tuple[str, ...]]:
    """The parts, relative to `folder`, of each output folder that lies strictly inside it."""
    root = Path(os.path.abspath(folder))  # abspath, not absolute(): it folds "a/../b"
    inner = []
    for output in outputs:
        output = Path(os.path.abspath(output))
        if output != root and root in output.parents:
            inner.append(output.relative_to(root).parts)
    return inner


def read_mask(path: str | Path, binary: bool = False) -> np.ndarray:
    """Decode a label mask to its raw values, (H, W) uint8, without any resampling; `binary`:
    0 where the value is 0, else 255 (instance masks, whose values number the objects).

    Palette images keep their indices (class-index palette PNGs), unless the palette is grey,
    which is how binary masks are often stored (GIF); grey, 1-bit and 16-bit masks keep their
    values (16-bit values above 255 are refused: they cannot be class indices here); an RGB mask
    whose channels are equal is read as grey, a colour one as colour codes (COLOUR_CODES, see
    colour_code): segmentation turns its colours into classes. JPEG masks (Kvasir-SEG's, for
    one) are binary: compression blurs their values, so they are read as 0/255, cut at 128 (on
    the brightest channel, so that a red mask is read as one)."""
    path = Path(path)
    return _checked_mask(_mask_values(path), path, binary)


def mask_values(path: str | Path) -> np.ndarray:
    """A mask file's raw values (its first page's), before the checks read_mask makes: 16-bit
    values above 255 kept, colour masks as COLOUR_CODES."""
    return _mask_values(Path(path))


def colour_code(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours as one COLOUR_CODES number each, 0xRRGGBB (black is 0)."""
    rgb = rgb.astype(COLOUR_CODES)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def is_colour_mask(values: np.ndarray) -> bool:
    """Whether read_mask gave colour codes (grey masks come as uint8, uint16 or int32)."""
    return values.dtype == COLOUR_CODES


def _checked_mask(values: np.ndarray, path: Path, binary: bool) -> np.ndarray:
    if binary:  # of a colour mask too: every colour but black is foreground
        return np.where(values > 0, 255, 0).astype(np.uint8)
    if is_colour_mask(values):
        return values
    if values.max(initial=0) > 255 or values.min(initial=0) < 0:
        raise UnreadableImage(f"{path}: mask values up to {values.max()}; class indices must be "
                              f"0..255 ({INSTANCE_HINT})")
    return values.astype(np.uint8)


def _mask_values(path: Path) -> np.ndarray:
    with _opened(path) as image:
        return _values_of(image, path)


def _values_of(image: Image.Image, path: Path) -> np.ndarray:
    """The raw values of an opened mask (or mask page); see read_mask."""
    image.load()
    if image.format in LOSSY_FORMATS:
        brightest = np.asarray(image.convert("RGB")).max(axis=-1)
        return np.where(brightest >= 128, 255, 0).astype(np.uint8)
    if image.mode == "P":
        palette = np.asarray(image.getpalette() or [], np.uint8).reshape(-1, 3)
        indices = np.asarray(image, np.uint8)
        grey = len(palette) and (palette[:, 0] == palette[:, 1]).all() \
            and (palette[:, 1] == palette[:, 2]).all()
        return palette[indices, 0] if grey else indices
    if image.mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
            return colour_code(rgb)
        return np.ascontiguousarray(rgb[..., 0])
    if image.mode in ("LA", "PA"):
        image = image.getchannel(0)
    values = np.asarray(image.convert("L") if image.mode == "1" else image)
    if values.ndim != 2:
        raise UnreadableImage(f"{path}: mask of mode {image.mode} not understood")
    return values
