"""Decoding pairs into image and mask slices (volumes slice by slice; DICOM SEG and RTSTRUCT
labels; annotations drawn as class indices; colour masks), and the sizes and RAM that
training on them takes, from the files' headers."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.arrays import (channels_first_advice, instances_beside_classes,
                                     is_array_file)
from visionsuite.core.images import (QUARTER_TURNS, fit_within, fitted_size, inspect_image,
                                     object_numbers, read_mask_slices, read_object_slices,
                                     smaller_on_top, stored_geometry, tiff_stack_depth,
                                     turn_upright, upright_size)
from visionsuite.core.medical import (dicom_label_slices, dicom_labels_kind, is_medical_file,
                                      is_volume, label_slices_for, read_header,
                                      read_instance_slices, read_numbered_layers,
                                      separate_images, voxel_spacing)
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.channels import read_channel_files
from visionsuite.tasks.segment.colours import colour_classes, indexed_colours
from visionsuite.tasks.segment.pairs import Pair
from visionsuite.tasks.segment.rle_tables import RunLengths, decode_run_lengths
from visionsuite.tasks.segment.shapes import PlacedMask


@dataclass
class DecodedPair:
    image: np.ndarray
    mask: np.ndarray  # raw values; of a colour mask, indices into `colours`
    roi: np.ndarray | None
    slice: int | None = None  # the slice of a volume (DICOM frames, NIfTI), None for 2-D files
    colours: np.ndarray | None = None  # a colour mask's own colours, until classes_from_colours
    spacing: tuple[float, float, float] | None = None  # as decoded (SegmentSplit.spacing)
    separate: bool = False  # `slice` numbers an image of a stack, not a volume's slice
    objects: np.ndarray | None = None  # the mask's objects' numbers (_object_slices)

    def named(self, path: Path) -> Path:
        """How messages name this slice of `path` (slice_name): its image's or mask's."""
        return slice_name(path, self.slice, self.separate)


def slice_name(path: Path, index: int | None, separate: bool = False) -> Path:
    """How messages and plots name slice `index` of `path`: 'ct.nii.gz[12]' (volume_of's
    inverse); image `index` of a stack of `separate` images 'images.npy#12', a case of its
    own."""
    if index is None:
        return path
    return path.with_name(f"{path.name}#{index}" if separate else f"{path.name}[{index}]")


_SLICE_NAME = re.compile(r"^(.*)\[(\d+)\]$")  # as slice_name writes them


def volume_of(name: str) -> str:
    """The volume (or DICOM series) that a slice's name (slice_name) belongs to; a 2-D
    image's name is its own, as is an image's of a stack of separate images."""
    found = _SLICE_NAME.match(name)
    return found.group(1) if found else name


def case_members(paths: list[str]) -> list[list[int]]:
    """The indices of each case's images, in order: a volume's slices (volume_of), which
    come together and in order, are one case; a 2-D image is its own."""
    cases: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        cases.setdefault(volume_of(path), []).append(index)
    return list(cases.values())


def decode_pair(pair: Pair, channels: int, window: list[float] | None,
                binary: bool, max_size: int | None = None,
                objects: bool = False) -> list[DecodedPair]:
    """A pair's slices. `objects`: each slice keeps the numbers of its objects too, where
    its mask file gives them (_object_slices); with `binary`, the masks number objects."""
    images = read_channel_files(pair.image, pair.channels, channels, window)
    numbers, masks = _object_slices(pair, binary) if objects else (None, None)
    masks = _upright_masks(pair.image, _read_masks(pair, binary) if masks is None else masks)
    numbers = _upright_masks(pair.image, numbers) if numbers is not None \
        else [None] * len(masks)
    # A region of interest is wherever its mask is not 0, whatever it stores there.
    rois = _upright_masks(pair.image, _mask_slices(pair, pair.roi, True)) \
        if pair.roi is not None else [None] * len(images)
    for path, found in ((pair.mask, masks), (pair.roi, rois)):
        if len(found) != len(images):
            raise VisionsuiteError(f"{path}: {len(found)} slice(s) but its image "
                                   f"{pair.image.name} has {len(images)}"
                                   f"{channels_first_advice(pair.image, len(images), len(found))}")
    decoded, spacing = [], voxel_spacing(pair.image)
    separate = len(images) > 1 and not pair.channels and separate_images(pair.image)
    for index, (image, mask, roi, found) in enumerate(zip(images, masks, rois, numbers)):
        number = index if len(images) > 1 else None
        for path, other, what in ((pair.mask, mask, "mask"),
                                  (pair.roi, roi, "region-of-interest mask")):
            if other is not None and other.shape != image.shape[:2]:
                raise VisionsuiteError(
                    f"{slice_name(path, number, separate)}: {what} is {other.shape[1]}x"
                    f"{other.shape[0]} but its image {pair.image.name} is "
                    f"{image.shape[1]}x{image.shape[0]}")
        if roi is not None:
            roi = fit_within(roi, max_size, nearest=True) > 0
        mask, colours = indexed_colours(mask, slice_name(pair.mask, number, separate))
        fitted = fit_within(image, max_size)
        if found is not None:
            found = fit_within(found, max_size, nearest=True)
        decoded.append(DecodedPair(fitted, fit_within(mask, max_size, nearest=True), roi,
                                   number, colours, _scaled(spacing, image, fitted), separate,
                                   found))
    return decoded


def _scaled(spacing: tuple[float, float, float] | None, image: np.ndarray,
            fitted: np.ndarray) -> tuple[float, float, float] | None:
    """The in-plane spacing of a slice that data.max_size scaled down grows by the scale
    (one factor for both sides, as fitted_size keeps the shape; rounding aside)."""
    if spacing is None:
        return None
    scale = max(image.shape[:2]) / max(fitted.shape[:2])
    return spacing[0], spacing[1] * scale, spacing[2] * scale


def _read_masks(pair: Pair, binary: bool) -> list[np.ndarray]:
    """The slices of the pair's mask, with its more_masks merged in: where several mark a
    pixel, the highest value is kept (for 0/255 lesion masks, their union). Masks of a folder
    per class make class indices (1 for the first folder's, ...; 255 for all, `binary`), as
    do a COCO, YOLO or run-length image's annotations (_drawn_classes)."""
    if pair.class_masks:
        return _class_indices(pair, binary)
    if pair.shapes is not None:
        return [_drawn_classes(pair, binary)]
    masks = _mask_slices(pair, pair.mask, binary)
    for other in pair.more_masks:
        more = _mask_slices(pair, other, binary)
        if [m.shape for m in more] != [m.shape for m in masks]:
            raise VisionsuiteError(f"{other}: its size or slices differ from {pair.mask.name}, "
                                   "the mask it adds to")
        masks = [np.maximum(mask, extra) for mask, extra in zip(masks, more)]
    return masks


def _object_slices(pair: Pair, binary: bool
                   ) -> tuple[list[np.ndarray] | None, list[np.ndarray] | None]:
    """The object numbers of each slice of a pair's mask, where it is one file read as it
    is stored (not drawn, nor a folder per class, nor joined from several files, nor a label
    volume resampled onto its image): a HoVer-Net file's inst_map beside the classes of its
    nuclei (CoNSeP's, Lizard's), class layers that number their nuclei (PanNuke's), or the
    `binary` mask's own values, which number its objects; and the mask's slices where they
    come from the same read. (None, None) where it gives none."""
    if pair.class_masks or pair.shapes is not None or pair.more_masks:
        return None, None
    if is_array_file(pair.mask):
        instances = instances_beside_classes(pair.mask)
        if instances is not None:
            return read_instance_slices(pair.mask, instances), None
        layered = read_numbered_layers(pair.mask, binary)
        if layered is not None:
            masks, numbers = layered
            if numbers is None:
                return None, masks
            return [object_numbers(values) for values in numbers], masks
    if not binary:
        return None, None
    numbers = _mask_slices(pair, pair.mask, binary=True, objects=True)
    if numbers is None:
        return None, None
    return numbers, [np.where(values > 0, 255, 0).astype(np.uint8) for values in numbers]


def _class_indices(pair: Pair, binary: bool) -> list[np.ndarray]:
    """A pair's masks of a folder per class as one mask of class indices: each file's pixels
    not 0 get its class. Where two overlap, the smaller mask's class is kept: what lies inside
    or over another structure (a tumour in its organ, the SCR's clavicles over the lungs) is
    the smaller one, and would otherwise vanish under it."""
    layers = [(value, path, [m > 0 for m in _mask_slices(pair, path, binary=True)])
              for value, (_, path) in enumerate(pair.class_masks, start=1) if path is not None]
    shapes = [m.shape for m in layers[0][2]]
    for _, path, found in layers[1:]:
        if [m.shape for m in found] != shapes:
            raise VisionsuiteError(f"{path}: its size or slices differ from {pair.mask.name}, "
                                   "the same image's mask of another class")
    return smaller_on_top([(value, found) for value, _, found in layers], shapes, binary)


def _drawn_classes(pair: Pair, binary: bool) -> np.ndarray:
    """A COCO image's annotations (polygons, RLE or uncompressed RLE) filled in as class
    indices at the size its file gives, a YOLO image's polygons at its own size, or a CSV's
    run-length codes at its stored size (smaller annotations on top: smaller_on_top)."""
    from pycocotools import mask as coco_mask

    runs = any(isinstance(segmentation, RunLengths) for _, segmentation in pair.shapes)
    if pair.shapes_size is None:  # YOLO: normalised to the image as shown (EXIF applied)
        stored, orientation = stored_geometry(pair.image)
        # run-length codes number the stored pixels (_upright_masks turns them after)
        width, height = stored if runs else upright_size(stored, orientation)
    else:
        width, height = pair.shapes_size
    layers = []
    for value, segmentation in pair.shapes:
        if isinstance(segmentation, RunLengths):
            layers.append((value, [decode_run_lengths(segmentation, height, width)]))
            continue
        if isinstance(segmentation, PlacedMask):  # CVAT's runs, Supervisely's bitmaps
            try:
                layers.append((value, [segmentation.drawn(height, width)]))
            except (ValueError, OSError, zlib.error):
                raise VisionsuiteError(f"{pair.mask}: a mask of {pair.image.name} cannot be "
                                       "decoded (a bitmap that is no base64 of a zlib "
                                       "compressed PNG)") from None
            continue
        if pair.shapes_size is None:
            segmentation = [(np.reshape(polygon, (-1, 2)) * (width, height)).ravel().tolist()
                            for polygon in segmentation]
        try:
            if isinstance(segmentation, list):  # polygons [x1, y1, x2, y2, ...], 3+ points
                polygons = [polygon for polygon in segmentation if len(polygon) >= 6]
                drawn = coco_mask.decode(coco_mask.merge(
                    coco_mask.frPyObjects(polygons, height, width))) if polygons \
                    else np.zeros((height, width), np.uint8)
            elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
                drawn = coco_mask.decode(coco_mask.frPyObjects(segmentation, height, width))
            else:
                drawn = coco_mask.decode(segmentation)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            raise VisionsuiteError(f"{pair.mask}: an annotation of {pair.image.name} is neither "
                                   "polygons nor RLE") from None
        if drawn.shape != (height, width):
            raise VisionsuiteError(f"{pair.mask}: an annotation of {pair.image.name} is "
                                   f"{drawn.shape[1]}x{drawn.shape[0]}, its image "
                                   f"{width}x{height}")
        layers.append((value, [drawn.astype(bool)]))
    return smaller_on_top(layers, [(height, width)], binary, pair.shape_orders)[0]


def _mask_slices(pair: Pair, path: Path, binary: bool,
                 objects: bool = False) -> list[np.ndarray] | None:
    """A mask file's slices; the label volume of a DICOM series folder, or of a NIfTI volume
    of another size, is resampled onto the image's slices through the two affines.
    `objects`: as object numbers (read_object_slices), None where they are not read so."""
    kind = dicom_labels_kind(path)
    if kind:  # a DICOM SEG or RTSTRUCT of a series or one DICOM image
        return None if objects else dicom_label_slices(path, pair.image, kind, binary)
    if pair.image.is_dir() or (is_volume(pair.image) and is_volume(path)):
        return None if objects else label_slices_for(path, pair.image, binary)
    return read_object_slices(path) if objects else read_mask_slices(path, binary)


def _upright_masks(image: Path, masks: list[np.ndarray]) -> list[np.ndarray]:
    """Masks drawn on the stored pixels of a photo that EXIF turns a quarter (they have its
    stored size, not its upright one), turned as read_image turns the photo."""
    if is_medical_file(image) or len(masks) != 1:
        return masks
    stored, orientation = stored_geometry(image)
    if orientation not in QUARTER_TURNS or masks[0].shape != (stored[1], stored[0]) \
            or stored[0] == stored[1]:
        return masks
    return [turn_upright(masks[0], orientation)]


def decode_pairs(pairs: list[Pair], channels: int, workers: int = 0, desc: str = "decoding",
                 window: list[float] | None = None, binary: bool = False,
                 max_size: int | None = None, objects: bool = False):
    """Decode image/mask pairs in parallel, volumes into one pair per slice; a pair whose image
    or mask cannot be decoded is warned about, skipped and counted; a size mismatch stops
    everything (the data is wrong). `binary`: masks are 0 (background) or not (foreground).
    `max_size`: slices whose longer side is larger are scaled down to it, masks nearest.
    `objects`: each slice keeps its objects' numbers where its mask gives them (decode_pair).
    Returns the decoded slices, the Pair of each, the skips."""
    from visionsuite.core.data import load_in_parallel

    results, skipped = load_in_parallel(
        lambda pair: decode_pair(pair, channels, window, binary, max_size, objects), pairs,
        workers, desc, warn="pair skipped")
    decoded, kept = [], []
    for slices, pair in zip(results, pairs):
        for item in slices or []:
            decoded.append(item)
            kept.append(pair)
    return decoded, kept, skipped


def slice_sizes(pairs: list[Pair], max_size: int | None = None,
                workers: int = 0) -> list[tuple[int, int]]:
    """(height, width) of every image slice of `pairs` as decoding will give it (upright,
    scaled down to max_size), from the files' headers; unreadable headers are left to
    decoding to report."""
    from visionsuite.core.data import load_in_parallel

    def layout(path: Path) -> tuple[int, tuple[int, int]]:
        if is_medical_file(path):
            header = read_header(path)
            return header.count, header.size or (0, 0)
        return tiff_stack_depth(path), inspect_image(path, decode=False)[0]

    found, _ = load_in_parallel(layout, [pair.image for pair in pairs], workers, "sizing")
    return [fitted_size(height, width, max_size) for count, (width, height) in filter(None, found)
            for _ in range(count)]


MAX_SIZE_ADVICE = "set data.max_size (the longer side in pixels, e.g. 1024) or train on a subset"


def check_pairs_fit(root: Path, splits: dict[str, list[Pair]], channels: int,
                    max_size: int | None, workers: int = 0) -> None:
    """A one-line error, before decoding, when the slices of `splits` would not fit in RAM
    while training."""
    from visionsuite.core.data import check_fits_in_memory

    needed, sizes = memory_to_train(splits, channels, max_size, workers)
    if sizes:
        height, width = max(sizes, key=lambda size: size[0] * size[1])
        check_fits_in_memory(root, needed, f"{len(sizes)} image slices (the largest "
                             f"{width}x{height})", MAX_SIZE_ADVICE)


def memory_to_train(splits: dict[str, list[Pair]], channels: int, max_size: int | None,
                    workers: int = 0) -> tuple[int, list[tuple[int, int]]]:
    """About how many bytes training on `splits` holds, from the headers, and the slice sizes:
    each slice is kept decoded with its masks; the train slices are stacked again, padded to
    the largest (tf.data gathers from that stack's memory: core.data.shared_tensor); the val
    slices are tiled, and their predicted probabilities (float32, 2 classes or more) are kept
    for the metrics."""
    needed, sizes = 0, []
    for name, pairs in splits.items():
        found = slice_sizes(pairs, max_size, workers)
        if not found:
            continue
        pixels = sum(height * width for height, width in found)
        needed += pixels * (channels + 3)  # image, mask, region of interest, class-index mask
        if name == "train":
            padded = max(h for h, _ in found) * max(w for _, w in found)
            needed += len(found) * padded * (channels + 1)
        else:
            needed += pixels * (channels + 1 + 8)
        sizes += found
    return needed, sizes


def classes_from_colours(decoded: dict[str, list[DecodedPair]], kept: dict[str, list[Pair]],
                         colours: list[str] | None) -> list[int] | None:
    """Where the decoded masks of any split are colour masks, all of them turned into class
    values in place (see colours.colour_classes); the colour of each class, else None."""
    items = [(item, pair) for name in decoded for item, pair in zip(decoded[name], kept[name])]
    found = colour_classes([(item.mask, item.colours, item.named(pair.mask))
                            for item, pair in items], colours)
    if found is None:
        return None
    for (item, _), mask in zip(items, found[0]):
        item.mask, item.colours = mask, None
    return found[1]
