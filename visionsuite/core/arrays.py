"""NumPy (.npy, .npz), HDF5 (.h5, .hdf5) and MATLAB (.mat) files as images and masks: the
arrays that preprocessed medical datasets ship. TransUNet's Synapse and ACDC slices are .npz
and .h5 files that each hold an `image` and its `label`; Figshare's brain tumour MRI are MATLAB
7.3 files of a `cjdata` struct holding `image` and `tumorMask`.

- A file holds an image and a mask where it has an array named as each (IMAGE_NAMES,
  LABEL_NAMES; the last part of an HDF5 path or MATLAB struct field, in any case). A file of
  one array (a .npy) is an image or a mask by the folder it is in, as image files are.
- Shapes: (H, W) is one slice; (S, H, W) a volume of S slices along its first axis, as NumPy
  code stacks them; (H, W, C) one image of C channels where its last axis is its shortest and
  at most MAX_CHANNELS long (RGB, 4 MRI modalities, 13 Sentinel-2 bands); (S, H, W, C)
  slices of C channels (a preprocessed BraTS volume's (128, 128, 128, 4)).
  MATLAB 7.3 files store arrays column-major, so h5py gives them transposed: turned back here.
- Channels first, as PyTorch and MONAI store them: (C, S, H, W) where C is at most
  MAX_CHANNELS and the last axis longer; and (C, H, W) where the file holds its mask too, of
  one (H, W) slice (a 2.5-D input of neighbouring slices, or an image's modalities). Alone,
  (C, H, W) stays C slices: ACDC's volumes are (10, 256, 216).
- A mask of C > 1 channels of 0 and 1 is C class layers, one-hot (the BraTS 2020 .h5 slices'
  (240, 240, 3) mask: necrosis, edema, enhancing tumour): read as class indices 1..C, 0
  where none is set; where layers overlap, the smaller one's class is kept (a tumour in its
  organ), as for masks of a folder per class. Layers may also number their class' objects
  (PanNuke's (N, 256, 256, 6) masks: nuclei of 5 classes), if they do not overlap. A first
  or last layer set where no other is (a one-hot's background channel, PanNuke's sixth) is
  background, 0, and the other layers are classes 1..C-1.
- An inst_map that numbers nuclei is read as their classes where the file gives each one's
  (Lizard's `class` of the nuclei its `id`s number; HoVer-Net's inst_type), else as it is.
- Intensities: uint8 arrays are read as they are, and so are 8-bit values stored as floats
  (PanNuke's images); bool arrays and floats within 0..1 (the slices TransUNet normalised) as
  0..1; other values go through data.window where set, else each file's own percentile range
  (core.medical's windowing).
- Files are read with `allow_pickle=False`: arrays of Python objects are refused, not run.
  HDF5 datasets stored in other files (external storage, virtual datasets) are not read: a
  dataset's files never lead reading out of it.
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.progress import report_part

ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".mat")
IMAGE_NAMES = ("image", "images", "img", "imgs", "data", "x", "input", "volume", "vol", "raw")
# HoVer-Net's nuclei labels (CoNSeP, CPM-17, Kumar; Lizard): type_map of classes where there
# is one, else inst_map, which numbers the nuclei (read as foreground, as instance masks are)
LABEL_NAMES = ("label", "labels", "mask", "masks", "seg", "segmentation", "gt", "y", "target",
               "tumormask", "annotation", "type_map", "inst_map")
# Each nucleus' class beside an inst_map that numbers them (Lizard's `class`, with its `id`s;
# HoVer-Net's inst_type): the mask is then the map of their classes
INSTANCE_CLASS_NAMES = ("class", "classes", "inst_type")
INSTANCE_ID_NAMES = ("id", "ids", "inst_id")
# an array that names the file's patient or case (Figshare's cjdata/PID): slices of one case
# are kept on one side of a split
CASE_NAMES = ("pid", "patient", "patient_id", "patientid", "case", "case_id", "subject",
              "subject_id")
# a one-value array that names the file's class, for classification: Figshare's cjdata/label
# (1 meningioma, 2 glioma, 3 pituitary tumour)
CLASS_NAMES = ("label", "class", "category", "diagnosis", "dx", "target", "y")
MIN_SIDE = 8  # an array narrower than this on either side of a slice is no image (labels, ids)
MAX_CHANNELS = 16  # a last axis this short, and the shortest, holds channels, not columns


class UnreadableArray(ValueError):
    """An array file that holds no image or mask, or cannot be read."""


def is_array_file(path: Path) -> bool:
    return path.name.lower().endswith(ARRAY_SUFFIXES)


def array_format(path: Path) -> str:
    suffix = path.suffix.lower()
    return "NumPy" if suffix in (".npy", ".npz") else "MATLAB" if suffix == ".mat" else "HDF5"


def holds_image(path: Path) -> bool:
    """Whether an array file holds an image or a mask (see the module): an array named as one,
    or its one array, shaped as slices. Annotation files of other datasets (Oxford Flowers'
    imagelabels.mat, WIDER FACE's lists) hold none, and stay other files."""
    try:
        shapes = array_shapes(path)
    except UnreadableArray:
        return False
    if _named(shapes, IMAGE_NAMES) or _named(shapes, LABEL_NAMES):
        return True
    return len(shapes) == 1 and _slice_shape(next(iter(shapes.values()))) is not None


def holds_pair(path: Path) -> bool:
    """Whether an array file holds both an image and its mask (Synapse's .npz slices)."""
    try:
        shapes = array_shapes(path)
    except UnreadableArray:
        return False
    return _named(shapes, IMAGE_NAMES) is not None and _named(shapes, LABEL_NAMES) is not None


def labels_only(path: Path) -> str | None:
    """The name of the labels an array file holds where it holds labels and no image
    (HoVer-Net's Labels/train_1.mat of inst_map and type_map), for a folder of images and
    labels given to prediction; None for any other file."""
    try:
        shapes = array_shapes(path)
    except UnreadableArray:
        return None
    named = _named(shapes, LABEL_NAMES)
    return named if named is not None and _named(shapes, IMAGE_NAMES) is None else None


def array_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of every array in the file, read from its headers where the format
    allows (MATLAB 5 files are small and read whole): '' for a .npy's one array, HDF5 paths
    ('cjdata/image'), MATLAB struct fields likewise; MATLAB shapes as MATLAB gives them."""
    try:
        stat = Path(path).stat()
    except OSError as err:
        raise UnreadableArray(f"{path}: unreadable {array_format(path)} file "
                              f"({type(err).__name__}: {err})") from None
    return dict(_stored_shapes(Path(path), str(Path(path).absolute()),
                               (stat.st_mtime_ns, stat.st_size, stat.st_ino)))


# Pairing, splitting, sizing, data check and reading each ask a file's shapes: read once while
# the file is unchanged (its time, size and inode), not eight times (BraTS 2020's 57,000 .h5)
@functools.lru_cache(maxsize=1 << 17)
def _stored_shapes(path: Path, absolute: str, version: tuple) -> dict[str, tuple[int, ...]]:
    try:
        if path.suffix.lower() == ".npy":
            return {"": np.load(path, mmap_mode="r", allow_pickle=False).shape}
        if path.suffix.lower() == ".npz":
            return _npz_shapes(path)
        if _is_hdf5(path):
            return _hdf5_shapes(path)
        if path.suffix.lower() == ".mat":
            return {name: np.shape(value) for name, value in _matlab5_arrays(path).items()}
    except Exception as err:  # the readers raise many kinds on a corrupt file (IndexError ...)
        raise UnreadableArray(f"{path}: unreadable {array_format(path)} file "
                              f"({type(err).__name__}: {err})") from None
    raise UnreadableArray(f"{path}: unreadable HDF5 file (no HDF5 signature)")


def read_array(path: Path, labels: bool = False) -> np.ndarray:
    """The file's image (or with `labels`, its mask) as slices: (S, H, W), or (S, H, W, C)
    for an image of C > 1 channels, with the values as stored."""
    name, shape, channels_first = _array_slices(path, labels)
    values = _slices_of(path, name, shape, channels_first)
    if labels and name.rsplit("/", 1)[-1].lower() == "inst_map":
        values = _classes_of_instances(path, values)
    return values[..., 0] if values.ndim == 4 and values.shape[-1] == 1 else values


def instances_beside_classes(path: Path) -> str | None:
    """The name of a label file's inst_map where its mask is the map of their classes
    (HoVer-Net's: CoNSeP's type_map beside it, Lizard's `class` of each nucleus), whose
    nuclei are then scored as objects too; None where it has none, or where its mask is the
    inst_map as stored (CPM-17's, which numbers the objects itself)."""
    try:
        shapes = array_shapes(path)
    except UnreadableArray:
        return None
    instances = _named(shapes, ("inst_map",))
    if instances is None:
        return None
    kinds = _by_last_name(shapes, INSTANCE_CLASS_NAMES)
    classified = kinds is not None and int(np.prod(shapes[kinds])) > 0
    return instances if classified or _named(shapes, LABEL_NAMES) != instances else None


def read_instances(path: Path, name: str) -> np.ndarray:
    """A label file's inst_map `name` (instances_beside_classes) as (S, H, W) slices, as
    stored."""
    _, shape, channels_first = _array_slices(path, labels=True, name=name)
    return _slices_of(path, name, shape, channels_first).reshape(shape[:3])


def _slices_of(path: Path, name: str, shape: tuple[int, ...],
               channels_first: bool) -> np.ndarray:
    """Array `name` of the file as slices of `shape` (_array_slices)."""
    try:
        values = _array_of(path, name)
    except Exception as err:  # as in array_shapes
        raise UnreadableArray(f"{path}: unreadable {array_format(path)} file "
                              f"({type(err).__name__}: {err})") from None
    values = (np.moveaxis(values, 0, -1) if channels_first else values).reshape(shape)
    if values.dtype.kind not in "biuf":
        raise UnreadableArray(f"{path}: array '{name or path.name}' holds {values.dtype} "
                              "values, not numbers")
    return values


def _classes_of_instances(path: Path, instances: np.ndarray) -> np.ndarray:
    """An inst_map as the map of its nuclei's classes where the file gives each nucleus'
    class (INSTANCE_CLASS_NAMES: Lizard's `class` of the nuclei its `id`s number, else
    1..N); the inst_map as it is where it gives none (CPM-17's: foreground)."""
    try:
        shapes = array_shapes(path)
        count = {name: int(np.prod(shape)) for name, shape in shapes.items()}
        kinds = _by_last_name(count, INSTANCE_CLASS_NAMES)
        if kinds is None or count[kinds] == 0:
            return instances
        ids = _by_last_name(count, INSTANCE_ID_NAMES)
        classes = np.ravel(_array_of(path, kinds))
        numbers = np.ravel(_array_of(path, ids)) if ids is not None and \
            count[ids] == count[kinds] else np.arange(1, len(classes) + 1)
    except Exception:  # as in array_shapes: the inst_map alone is read
        return instances
    if not (np.array_equal(classes, np.round(classes)) and np.array_equal(numbers, np.round(
            numbers)) and numbers.min() > 0 and classes.min() >= 0):
        return instances
    whole = instances.astype(np.int64)
    if whole.min(initial=0) < 0 or not np.isin(np.unique(whole), [0, *numbers]).all():
        return instances  # a nucleus without a class: the classes are of something else
    lookup = np.zeros(max(int(numbers.max()), int(whole.max(initial=0))) + 1, np.int64)
    lookup[numbers.astype(np.int64)] = classes.astype(np.int64)
    return lookup[whole]


def _by_last_name(arrays, names: tuple[str, ...]) -> str | None:
    """The first of the `arrays` (names, in the file's order) whose last name part, in any
    case, comes first in `names` (an HDF5 path's or MATLAB struct field's: cjdata/PID)."""
    by_name = {}
    for name in arrays:
        by_name.setdefault(name.rsplit("/", 1)[-1].lower(), name)
    return next((by_name[wanted] for wanted in names if wanted in by_name), None)


def one_hot_classes(layers: np.ndarray) -> np.ndarray | None:
    """(S, H, W, C) class layers as (S, H, W) class indices 1..C, 0 where none is set: layers
    of 0 and 1, one-hot (the smaller layer's class where several are set), or layers that
    number their class' objects (PanNuke's nuclei: a layer per class), which must not overlap
    (1% of their pixels aside: the first layer's class kept). A first or last layer set where
    no other is, a one-hot's background channel (PanNuke's sixth), is background: the others
    are classes 1..C-1. None where the values are not whole numbers >= 0, or where numbered
    layers overlap or are an 8-bit colour mask's channels."""
    scan = _scan_layers(layers)
    return None if scan is None else _classes_of(layers, scan)


def numbered_layers(layers: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Class layers as one_hot_classes' class indices and, where they number their class'
    objects (PanNuke's nuclei), the objects' numbers (S, H, W), from one pass: number n of
    layer l as n x C + l, told apart across layers, 0 where the class is 0. (classes, None)
    for layers of 0 and 1; (None, None) for no class layers."""
    scan = _scan_layers(layers, numbers=True)
    if scan is None:
        return None, None
    classes = _classes_of(layers, scan)
    if scan.binary:
        return classes, None
    numbers = scan.numbers
    numbers[classes == 0] = 0  # in place: a PanNuke fold's are 660 MB, 330 MB as uint16
    return classes, numbers.astype(np.uint16) if numbers.max(initial=0) <= 0xFFFF else numbers


def _classes_of(layers: np.ndarray, scan: _LayerScan) -> np.ndarray:
    """The class indices of one_hot_classes, from the layers' scan."""
    from visionsuite.core.images import smaller_on_top

    if scan.binary:
        kept = [index for index in range(layers.shape[-1]) if index != scan.background]
        return np.stack(smaller_on_top(
            [(number, list(layers[..., index] == 1)) for number, index in enumerate(kept, 1)],
            [layers.shape[1:3]] * len(layers), binary=False))
    return scan.classes()


LAYER_CHUNK = 64  # slices read at a time: a PanNuke fold's masks are 8 GB of float64


@dataclass
class _LayerScan:
    """What one pass over class layers found (_scan_layers): whether they hold only 0 and 1,
    the background layer, and each pixel's first set layer (middle: 1 + the index of the first
    of the layers between the first and the last, 0 where none; first, last: where those are
    set), from which classes() numbers the classes without reading the layers again."""
    binary: bool
    background: int | None
    count: int
    middle: np.ndarray
    first: np.ndarray
    last: np.ndarray
    numbers: np.ndarray | None = None  # the first set layer's number n as n x C + layer

    def classes(self) -> np.ndarray:
        """The class indices, the first set layer's where several are (see one_hot_classes),
        numbered in `middle` itself: called once."""
        classes = self.middle
        if self.background == 0:
            classes[classes > 0] -= 1
        if self.background != self.count - 1:
            classes[(classes == 0) & self.last] = self.count - (self.background == 0)
        if self.background != 0:
            classes[self.first] = 1
        return classes


def _scan_layers(layers: np.ndarray, numbers: bool = False) -> _LayerScan | None:
    """One pass over class layers, a chunk of slices at a time into one buffer (a PanNuke
    fold's are 8 GB, read mapped); None where they are no class layers (one_hot_classes).
    `numbers`: also each pixel's object number (numbered_layers)."""
    count = layers.shape[-1]
    shape = layers.shape[:3]
    middle = np.zeros(shape, np.uint8)
    objects = np.zeros(shape, np.int32) if numbers else None
    first, last = np.zeros(shape, bool), np.zeros(shape, bool)
    ends = {0: first, count - 1: last} if count > 1 else {}
    binary = True
    overlaps = {None: 0, **dict.fromkeys(ends, 0)}  # pixels of two layers, an end left out
    agree = dict.fromkeys(ends, 0)  # pixels where an end is set just where no other is
    covered = np.zeros(count, np.int64)
    buffer = np.empty((min(LAYER_CHUNK, len(layers)), *layers.shape[1:]), layers.dtype)
    rounded = np.empty_like(buffer) if layers.dtype.kind == "f" else None
    for start in range(0, len(layers), LAYER_CHUNK):
        part = slice(start, start + LAYER_CHUNK)
        chunk = buffer[:len(layers[part])]
        chunk[...] = layers[part]
        if chunk.min(initial=0) < 0 or rounded is not None and not np.array_equal(
                chunk, np.round(chunk, out=rounded[:len(chunk)])):
            return None
        binary = binary and chunk.max(initial=0) <= 1
        set_count = np.zeros(chunk.shape[:3], np.uint8)
        for layer in range(count - 1, -1, -1):  # the first set layer painted last, kept
            marked = chunk[..., layer] > 0
            if objects is not None:
                objects[part][marked] = chunk[..., layer][marked].astype(np.int32) * count + layer
            covered[layer] += np.count_nonzero(marked)
            set_count += marked
            if layer == 0:
                first[part] = marked
            elif layer == count - 1:
                last[part] = marked
            else:
                middle[part][marked] = layer + 1
        overlaps[None] += np.count_nonzero(set_count > 1)
        for end, marks in ends.items():
            seen = marks[part]
            others = set_count - seen
            overlaps[end] += np.count_nonzero(others > 1)
            agree[end] += np.count_nonzero(seen == (others == 0))
        report_part("masks", min(start + LAYER_CHUNK, len(layers)), len(layers))
    # The background: set where no other layer is (99%: a slip of the brush aside). In a
    # partition every layer is so: the larger end, a one-hot's first, PanNuke's last.
    candidates = [end for end in ends if agree[end] >= 0.99 * np.prod(shape)]
    background = max(candidates, key=covered.__getitem__) if candidates else None
    if not binary and (layers.dtype == np.uint8 and count in (3, 4)
                       or overlaps[background] > 0.01 * covered.sum()):
        return None  # a colour mask's channels, or numbered layers that overlap
    return _LayerScan(binary, background, count, middle, first, last, objects)


def slices_shape(path: Path, labels: bool = False) -> tuple[int, ...]:
    """The shape read_array gives, from the file's headers."""
    shape = _array_slices(path, labels)[1]
    return shape[:3] if len(shape) == 4 and shape[-1] == 1 else shape


def _array_slices(path: Path, labels: bool,
                  name: str | None = None) -> tuple[str, tuple[int, ...], bool]:
    """The name of the file's image (or mask) array (or of array `name`), its shape as
    slices, and whether its channels come first (its first axis moves last)."""
    shapes = array_shapes(path)
    name = name or _named(shapes, LABEL_NAMES if labels else IMAGE_NAMES)
    if name is None and len(shapes) == 1 \
            and _named(shapes, IMAGE_NAMES if labels else LABEL_NAMES) is None:
        name = next(iter(shapes))  # a file's one array, named as neither
    if name is None:
        wanted = "a mask (label, mask, ...)" if labels else "an image (image, data, ...)"
        raise UnreadableArray(f"{path}: no array shaped as slices and named as {wanted} among its "
                              f"{len(shapes)} ({', '.join(sorted(shapes)[:6]) or 'none'})")
    stored = shapes[name]
    mask = None if labels else shapes.get(_named(shapes, LABEL_NAMES))
    channels_first = _channels_first(stored) or _channels_beside_mask(stored, mask)
    shape = (1, *stored[1:], stored[0]) if channels_first and len(stored) == 3 \
        else _slice_shape(stored)
    if shape is None:  # a file's one array, shaped as no image
        raise UnreadableArray(f"{path}: array '{name or path.name}' of shape {stored} is no "
                              "image: expected (H, W), (S, H, W), (H, W, C), (S, H, W, C) or "
                              "(C, S, H, W)")
    return name, shape, channels_first


def channels_first_advice(path: Path, image_slices: int, mask_slices: int) -> str:
    """For the error of an image whose slices its mask's do not match: where a lone
    (C, H, W) array was read as C slices beside a mask of one, how to have its first axis
    read as channels (see the module); "" otherwise."""
    if not is_array_file(path) or mask_slices != 1 or not 1 < image_slices <= MAX_CHANNELS:
        return ""
    return (f" (if its first axis holds {image_slices} channels, as PyTorch's (C, H, W), store "
            "them last, (H, W, C), or the mask beside them in one file)")


def case_of(path: Path) -> tuple[str, str] | None:
    """The case an array file names itself, as (array name, value): a short array named as a
    patient or case (CASE_NAMES), a MATLAB string (Figshare's PID '100360') or a number;
    None where it names none."""
    return _named_value(path, CASE_NAMES, 64)


def class_of(path: Path) -> tuple[str, str] | None:
    """The class an array file names itself, as (array name, value): a one-value array named
    as a class (CLASS_NAMES; Figshare's cjdata/label, 1); None where it names none."""
    return _named_value(path, CLASS_NAMES, 1)


def _named_value(path: Path, names: tuple[str, ...], most: int) -> tuple[str, str] | None:
    """(array name, value as text) of the file's first array of at most `most` values whose
    last name part comes first in `names`; None where there is none."""
    try:
        short = _short_arrays(path, most)
        name = _by_last_name(short, names)
        if name is None:
            return None
        value = _value_text(path, name)
    except Exception:  # as in array_shapes; decoding the file reports it
        return None
    return (name, value) if value else None


def _short_arrays(path: Path, most: int) -> list[str]:
    """The names of the file's arrays of at most `most` values (ids, not images)."""
    if path.suffix.lower() == ".npy":
        return []
    if path.suffix.lower() == ".npz":
        return [name for name, shape in _npz_shapes(path).items() if np.prod(shape) <= most]
    if _is_hdf5(path):
        import h5py

        found = []
        with h5py.File(path, "r") as file:
            file.visititems(lambda name, item: found.append(name) if isinstance(
                item, h5py.Dataset) and item.size <= most and not item.external
                and not item.is_virtual else None)
        return found
    return [name for name, value in _matlab5_values(path).items() if np.size(value) <= most]


def _value_text(path: Path, name: str) -> str:
    """A short array's value as text: MATLAB 7.3 chars (uint16 codes) decoded, a whole number
    without its '.0'."""
    if _is_hdf5(path):
        import h5py

        with h5py.File(path, "r") as file:
            item = file[name]
            values = item[()]
            if item.attrs.get("MATLAB_class") in (b"char", "char"):
                return "".join(chr(code) for code in np.ravel(values, order="F"))
    elif path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            values = arrays[name]
    else:
        values = _matlab5_values(path)[name]
    values = np.ravel(values)
    if values.dtype.kind in "US":
        return "".join(str(value) for value in values).strip()
    if values.dtype.kind in "biuf" and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    return "-".join(str(value) for value in values)


def own_window(values: np.ndarray) -> tuple[float, float] | None:
    """The (center, width) an array's values are read through when data.window is not set:
    0..255 for uint8 and for 8-bit values stored as floats (PanNuke's float64 images: whole
    numbers within 0..255, some above 1); 0..1 for bool and for floats that stay within it;
    None for others (the file's percentile range)."""
    if values.dtype == np.uint8:
        return 127.5, 255.0
    if values.dtype == bool:
        return 0.5, 1.0
    if values.dtype.kind != "f" or not values.size or np.nanmin(values) < 0:
        return None
    top = np.nanmax(values)
    if top <= 1:
        return 0.5, 1.0
    if top <= 255 and all(np.array_equal(chunk, np.round(chunk)) for chunk in (
            values[start:start + LAYER_CHUNK] for start in range(0, len(values), LAYER_CHUNK))):
        return 127.5, 255.0
    return None


def _slice_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """`shape` as (S, H, W) or (S, H, W, C) slices (see the module); None for no image."""
    if len(shape) == 2:
        shape = (1, *shape)
    elif len(shape) == 3 and shape[-1] <= MAX_CHANNELS and shape[-1] < min(shape[:2]):
        shape = (1, *shape)
    elif _channels_first(shape):
        shape = (*shape[1:], shape[0])
    elif len(shape) != 4 and len(shape) != 3:
        return None
    if shape[1] < MIN_SIDE or shape[2] < MIN_SIDE or len(shape) == 4 and \
            shape[3] > MAX_CHANNELS:
        return None
    return shape


def _channels_first(shape: tuple[int, ...]) -> bool:
    """(C, S, H, W): a first axis of channels, the last too long for them."""
    return len(shape) == 4 and shape[0] <= MAX_CHANNELS < shape[3]


def _channels_beside_mask(shape: tuple[int, ...], mask: tuple[int, ...] | None) -> bool:
    """(C, H, W) read as slices, beside a mask of one (H, W) slice: C channels of one image."""
    return mask is not None and len(shape) == 3 and _slice_shape(shape) == shape \
        and 1 < shape[0] <= MAX_CHANNELS and _slice_shape(mask) == (1, *shape[1:])


def _named(shapes: dict[str, tuple[int, ...]], names: tuple[str, ...]) -> str | None:
    """The first array shaped as slices whose last name part, in any case, comes first in
    `names` (Figshare's cjdata/tumorMask, not its cjdata/label: the tumour's kind, 1x1)."""
    return _by_last_name([name for name, shape in shapes.items()
                          if _slice_shape(shape) is not None], names)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    """HDF5 by its signature: .h5 and .hdf5 files, and MATLAB 7.3 .mat files, whose 512-byte
    user block (MATLAB's text header) comes first: HDF5 looks for its superblock at 0, 512,
    1024, 2048, ..."""
    with open(path, "rb") as file:
        for offset in (0, 512, 1024, 2048, 4096):
            file.seek(offset)
            if file.read(8) == HDF5_SIGNATURE:
                return True
    return False


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each array's shape from its .npy header inside the zip, without reading the array."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as file:
                version = np.lib.format.read_magic(file)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                    else np.lib.format.read_array_header_2_0
                shapes[member[:-len(".npy")]] = read(file)[0]
    return shapes


def _hdf5_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each numeric dataset's path and shape (a MATLAB 7.3 file's turned back)."""
    import h5py

    matlab = path.suffix.lower() == ".mat"
    found = {}

    def add(name: str, item) -> None:
        if isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf" \
                and not item.external and not item.is_virtual:
            found[name] = item.shape[::-1] if matlab else item.shape

    with h5py.File(path, "r") as file:
        file.visititems(add)
    return found


def _matlab5_arrays(path: Path) -> dict[str, np.ndarray]:
    """A MATLAB 5 file's numeric arrays by name, struct fields as 'struct/field'."""
    return {name: value for name, value in _matlab5_values(path).items()
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf"}


def _matlab5_values(path: Path) -> dict[str, object]:
    """A MATLAB 5 file's arrays, numbers and strings by name, struct fields as
    'struct/field'."""
    import scipy.io

    try:
        contents = scipy.io.loadmat(path, simplify_cells=True)
    except NotImplementedError as err:  # scipy's word for a 7.3 file without the signature
        raise ValueError(str(err)) from None
    found = {}

    def add(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                add(f"{prefix}/{key}" if prefix else key, inner)
        elif isinstance(value, (np.ndarray, np.generic, str, int, float)):
            found[prefix] = np.asarray(value)

    for key, value in contents.items():
        if not key.startswith("__"):
            add(key, value)
    return found


def _array_of(path: Path, name: str) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":  # mapped: a PanNuke fold's masks are 8 GB, read a chunk at a time
        return np.load(path, mmap_mode="r", allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[name]
    if _is_hdf5(path):
        import h5py

        with h5py.File(path, "r") as file:
            values = file[name][()]
        # MATLAB writes column-major: h5py's axes are MATLAB's reversed
        return np.transpose(values) if suffix == ".mat" else values
    return _matlab5_arrays(path)[name]
