"""Semantic segmentation with a U-Net, first of all for medical images.

Data: `train/{images,masks}/` and `val/{images,masks}/` paired by file stem, optional `roi/`
beside them (pixels outside the region of interest are left out of loss and metrics). Masks
hold 0/255 or 0/1 (binary), class indices, or palette indices; mask value 255 marks "ignore"
wherever it is not the foreground of a 0/255 mask (Pascal VOC's convention).
Training runs on random crops of image_size x image_size; inference on whole images of any size
by overlapping tiles of that size, blended with a smooth window, so that the exported
fixed-size .tflite and the Keras model see exactly the same tiles.
DICOM files and NIfTI volumes (core.medical) are images like any other, read as their 2-D
slices with intensity windowing; a NIfTI input is segmented into a NIfTI label volume with
its affine.
"""

from __future__ import annotations

import math
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.config import Config
from visionsuite.core.files import atomic_path, inside
from visionsuite.core.images import (UnreadableImage, inspect_image, is_image_file,
                                     read_image_slices, read_mask_slices)
from visionsuite.core.medical import file_stem, is_nifti, labels_to_nifti, voxel_volume_mm3
from visionsuite.core.plots import colorize
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport, Split, Task, TaskData

IGNORE = 255  # target value of pixels left out of the loss and the metrics
VAL_FOLDER_NAMES = ("val", "valid", "validation")
LOSS_TERMS = ("ce", "dice", "focal")
AUC_BINS = 10000  # ROC AUC from probability histograms: exact up to 1e-4 in probability


# --------------------------------------------------------------------------- data


@dataclass
class Pair:
    image: Path
    mask: Path
    roi: Path | None = None


@dataclass
class PairIndex:
    root: Path
    splits: dict[str, list[Pair]]
    odd_files: list[Path]
    split_by_fraction: bool


def index_pairs(root: str | Path, val_fraction: float = 0.2, seed: int = 0) -> PairIndex:
    """Pair `images/` and `masks/` (and `roi/`) by file stem in `root/train` and `root/val`,
    or in `root` itself split by a seeded `val_fraction`. Unpaired files, duplicate stems and
    empty folders are one-line errors."""
    root = Path(root)
    if not root.exists():
        raise VisionsuiteError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise VisionsuiteError(f"{root}: expected a dataset folder, got a file")
    odd: list[Path] = []
    train_dir = root / "train"
    val_dir = next((root / n for n in VAL_FOLDER_NAMES if (root / n).is_dir()), None)
    if train_dir.is_dir() and val_dir is not None:
        splits = {"train": _pair_folder(root, train_dir, odd),
                  "val": _pair_folder(root, val_dir, odd)}
        return PairIndex(root, splits, odd, False)
    pairs = _pair_folder(root, train_dir if train_dir.is_dir() else root, odd)
    if not 0 < val_fraction < 1:
        raise VisionsuiteError(f"{root}: no val/ folder, and data.val_fraction={val_fraction} "
                               "cannot split it (use a value between 0 and 1)")
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    count = max(1, round(len(pairs) * val_fraction))
    if len(pairs) < 2:
        raise VisionsuiteError(f"{root}: one image cannot be split into train and val")
    val = sorted(shuffled[:count], key=lambda p: p.image.name)
    train = sorted(shuffled[count:], key=lambda p: p.image.name)
    return PairIndex(root, {"train": train, "val": val}, odd, True)


def _pair_folder(root: Path, folder: Path, odd: list[Path]) -> list[Pair]:
    images_dir, masks_dir, roi_dir = folder / "images", folder / "masks", folder / "roi"
    for needed in (images_dir, masks_dir):
        if not needed.is_dir():
            raise VisionsuiteError(f"{folder}: expected images/ and masks/ folders "
                                   f"({needed.name}/ is missing)")
    images = _by_stem(root, images_dir, odd)
    masks = _by_stem(root, masks_dir, odd)
    if not images:
        raise VisionsuiteError(f"{images_dir}: no images in the folder")
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} image(s) without a mask ({_some(lonely_images)})")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} mask(s) without an image ({_some(lonely_masks)})")
        raise VisionsuiteError(f"{folder}: unpaired files: {'; '.join(parts)}")
    rois = _by_stem(root, roi_dir, odd) if roi_dir.is_dir() else None
    if rois is not None:
        missing = sorted(set(images) - set(rois))
        if missing:
            raise VisionsuiteError(f"{roi_dir}: no region-of-interest mask for "
                                   f"{len(missing)} image(s) ({_some(missing)})")
    return [Pair(images[stem], masks[stem], rois[stem] if rois else None)
            for stem in sorted(images, key=_natural)]


def _by_stem(root: Path, folder: Path, odd: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        inside(root, path.relative_to(root))  # a link out of the dataset is refused
        if not is_image_file(path):
            odd.append(path)
            continue
        stem = file_stem(path)
        if stem in found:
            raise VisionsuiteError(f"{folder}: two files with the stem '{stem}' "
                                   f"({found[stem].name}, {path.name}); pairing is by stem")
        found[stem] = path
    return found


def _natural(stem: str):
    """Sort key: '2' before '10'."""
    return [int(part) if part.isdigit() else part
            for part in re.split(r"(\d+)", stem)]


def _some(stems: list[str], count: int = 3) -> str:
    return ", ".join(stems[:count]) + (", ..." if len(stems) > count else "")


@dataclass
class ClassMap:
    names: list[str]
    lookup: np.ndarray  # 256 entries: raw mask value -> class index, IGNORE, or -1 (invalid)
    binary_255: bool  # masks are 0/255


def class_map(values: set[int], names: list[str] | None) -> ClassMap:
    """How raw mask values become class indices. With `names` (K classes): values 0..K-1, and
    255 as the foreground of a 2-class 0/255 mask. Without: 0/255 and 0/1 masks are binary
    (background, foreground); otherwise values 0..max are classes and 255 is 'ignore'."""
    lookup = np.full(256, -1, np.int16)
    binary_255 = values <= {0, 255} and 255 in values
    if names:
        count = len(names)
        if count < 2:
            raise VisionsuiteError("data.classes needs at least 2 names (background first)")
        lookup[:min(count, 256)] = np.arange(min(count, 256))
        if count == 2 and values <= {0, 255}:
            lookup[255] = 1
        elif count < 255:
            lookup[255] = IGNORE
        return ClassMap(list(names), lookup, count == 2 and binary_255)
    if values <= {0, 1} or binary_255:
        lookup[0], lookup[1 if not binary_255 else 255] = 0, 1
        return ClassMap(["background", "foreground"], lookup, binary_255)
    classes = sorted(values - {IGNORE})
    top = max(classes, default=0)
    count = max(top + 1, 2)
    lookup[:count] = np.arange(count)
    lookup[IGNORE] = IGNORE
    return ClassMap([f"class_{i}" for i in range(count)], lookup, False)


def apply_class_map(mask: np.ndarray, mapping: ClassMap, path: Path) -> np.ndarray:
    mapped = mapping.lookup[mask]
    if (mapped < 0).any():
        bad = sorted(int(v) for v in np.unique(mask[mapped < 0]))
        raise VisionsuiteError(
            f"{path}: mask values {bad[:8]} are outside the {len(mapping.names)} classes "
            f"({', '.join(mapping.names)}); set data.classes to name every class")
    return mapped.astype(np.uint8)


@dataclass
class DecodedPair:
    image: np.ndarray
    mask: np.ndarray  # raw values
    roi: np.ndarray | None
    slice: int | None = None  # the slice of a volume (DICOM frames, NIfTI), None for 2-D files


def _slice_name(path: Path, index: int | None) -> Path:
    """How messages and plots name slice `index` of `path`: 'ct.nii.gz[12]'."""
    return path if index is None else path.with_name(f"{path.name}[{index}]")


def _decode_pair(pair: Pair, channels: int, window: list[float] | None) -> list[DecodedPair]:
    images = read_image_slices(pair.image, channels, window)
    masks = read_mask_slices(pair.mask)
    rois = read_mask_slices(pair.roi) if pair.roi is not None else [None] * len(images)
    for path, found in ((pair.mask, masks), (pair.roi, rois)):
        if len(found) != len(images):
            raise VisionsuiteError(f"{path}: {len(found)} slice(s) but its image "
                                   f"{pair.image.name} has {len(images)}")
    decoded = []
    for index, (image, mask, roi) in enumerate(zip(images, masks, rois)):
        number = index if len(images) > 1 else None
        for path, other, what in ((pair.mask, mask, "mask"),
                                  (pair.roi, roi, "region-of-interest mask")):
            if other is not None and other.shape != image.shape[:2]:
                raise VisionsuiteError(
                    f"{_slice_name(path, number)}: {what} is {other.shape[1]}x{other.shape[0]} "
                    f"but its image {pair.image.name} is {image.shape[1]}x{image.shape[0]}")
        decoded.append(DecodedPair(image, mask, None if roi is None else roi > 0, number))
    return decoded


def decode_pairs(pairs: list[Pair], channels: int, workers: int = 0, desc: str = "decoding",
                 window: list[float] | None = None):
    """Decode image/mask pairs in parallel, volumes into one pair per slice; a pair whose image
    or mask cannot be decoded is warned about, skipped and counted; a size mismatch stops
    everything (the data is wrong). Returns the decoded slices, the Pair of each, the skips."""
    from visionsuite.core.data import load_in_parallel

    results, skipped = load_in_parallel(lambda pair: _decode_pair(pair, channels, window),
                                        pairs, workers, desc, warn="pair skipped")
    decoded, kept = [], []
    for slices, pair in zip(results, pairs):
        for item in slices or []:
            decoded.append(item)
            kept.append(pair)
    return decoded, kept, skipped


def _to_split(decoded: list[DecodedPair], pairs: list[Pair], skipped: list[str],
              mapping: ClassMap) -> Split:
    masks = []
    for item, pair in zip(decoded, pairs):
        mask = apply_class_map(item.mask, mapping, _slice_name(pair.mask, item.slice))
        if item.roi is not None:
            mask = np.where(item.roi, mask, IGNORE).astype(np.uint8)
        masks.append(mask)
    names = [_slice_name(pair.image, item.slice) for item, pair in zip(decoded, pairs)]
    return Split([item.image for item in decoded], masks, names, skipped)


def pad_stack(arrays: list[np.ndarray], fill: int | None) -> np.ndarray:
    """Stack arrays of different heights and widths, padded at the bottom and right to the
    largest: images by reflection (fill None), masks with `fill` (IGNORE)."""
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    out = []
    for array in arrays:
        pad = [(0, height - array.shape[0]), (0, width - array.shape[1])]
        pad += [(0, 0)] * (array.ndim - 2)
        if fill is None:
            out.append(np.pad(array, pad, mode="symmetric"))
        else:
            out.append(np.pad(array, pad, constant_values=fill))
    return np.stack(out)


# --------------------------------------------------------------------------- tiling


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets covering 0..length, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_window(tile: int) -> np.ndarray:
    """A (tile, tile) weight that falls smoothly towards the tile borders, where a U-Net sees
    the least context; never 0, so that a pixel covered by one tile only keeps its value."""
    ramp = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


def sliding_window(predict_tiles, image: np.ndarray, tile: int, overlap: float,
                   batch: int = 16) -> np.ndarray:
    """Class probabilities (H, W, K) of a whole image of any size from a model that takes
    (N, tile, tile, C) uint8 tiles: overlapping tiles, blended with `blend_window`. Images
    smaller than a tile are reflected up to its size, and the result cropped back."""
    height, width = image.shape[:2]
    padded = image
    if height < tile or width < tile:
        pad = [(0, max(0, tile - height)), (0, max(0, tile - width)), (0, 0)]
        padded = np.pad(image, pad, mode="symmetric")
    full_h, full_w = padded.shape[:2]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    corners = [(y, x) for y in tile_starts(full_h, tile, stride)
               for x in tile_starts(full_w, tile, stride)]
    window = blend_window(tile)[..., None]
    total = None
    weight = np.zeros((full_h, full_w, 1), np.float32)
    for start in range(0, len(corners), batch):
        chunk = corners[start:start + batch]
        tiles = np.stack([padded[y:y + tile, x:x + tile] for y, x in chunk])
        outputs = np.asarray(predict_tiles(tiles), np.float32)
        if total is None:
            total = np.zeros((full_h, full_w, outputs.shape[-1]), np.float32)
        for (y, x), output in zip(chunk, outputs):
            total[y:y + tile, x:x + tile] += output * window
            weight[y:y + tile, x:x + tile] += window
    return (total / weight)[:height, :width]


def val_tiles(split: Split, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping tiles covering every val image (reflected at the borders, with IGNORE
    masks there), for the quick val metrics Keras reports each epoch."""
    images, masks = [], []
    for image, mask in zip(split.images, split.targets):
        height, width = mask.shape
        full_h, full_w = math.ceil(height / tile) * tile, math.ceil(width / tile) * tile
        padded = np.pad(image, [(0, full_h - height), (0, full_w - width), (0, 0)],
                        mode="symmetric")
        padded_mask = np.pad(mask, [(0, full_h - height), (0, full_w - width)],
                             constant_values=IGNORE)
        for y in range(0, full_h, tile):
            for x in range(0, full_w, tile):
                images.append(padded[y:y + tile, x:x + tile])
                masks.append(padded_mask[y:y + tile, x:x + tile])
    return np.stack(images), np.stack(masks)


# --------------------------------------------------------------------------- metrics


def segmentation_metrics(probabilities: list[np.ndarray], masks: list[np.ndarray],
                         labels: list[str], threshold: float = 0.5) -> dict:
    """Per class and mean Dice and IoU, pixel accuracy; for 2 classes also sensitivity,
    specificity and ROC AUC of the foreground (class 1) probability. Pixels marked IGNORE
    (outside the region of interest) are left out."""
    count = len(labels)
    confusion = np.zeros((count, count), np.int64)
    positives = np.zeros(AUC_BINS + 1, np.int64)
    negatives = np.zeros(AUC_BINS + 1, np.int64)
    for probs, mask in zip(probabilities, masks):
        valid = mask != IGNORE
        truth = mask[valid].astype(np.int64)
        predicted = predict_classes(probs, threshold)[valid]
        confusion += np.bincount(truth * count + predicted,
                                 minlength=count * count).reshape(count, count)
        if count == 2:
            bins = np.clip(np.round(probs[..., 1][valid] * AUC_BINS), 0, AUC_BINS).astype(int)
            positives += np.bincount(bins[truth == 1], minlength=AUC_BINS + 1)
            negatives += np.bincount(bins[truth == 0], minlength=AUC_BINS + 1)
    true_pos = np.diag(confusion).astype(float)
    truth_sum, pred_sum = confusion.sum(1).astype(float), confusion.sum(0).astype(float)
    dice = _ratio(2 * true_pos, truth_sum + pred_sum)
    iou = _ratio(true_pos, truth_sum + pred_sum - true_pos)
    present = (truth_sum + pred_sum) > 0
    metrics = {
        "dice": float(dice[present].mean()) if present.any() else 0.0,
        "iou": float(iou[present].mean()) if present.any() else 0.0,
        "pixel_accuracy": float(true_pos.sum() / max(confusion.sum(), 1)),
        "images": len(masks),
        "pixels": int(confusion.sum()),
    }
    if count == 2:
        tp, fn, fp, tn = confusion[1, 1], confusion[1, 0], confusion[0, 1], confusion[0, 0]
        metrics["sensitivity"] = float(tp / max(tp + fn, 1))
        metrics["specificity"] = float(tn / max(tn + fp, 1))
        metrics["roc_auc"] = _auc(positives, negatives)
    metrics["per_class"] = {
        name: {"dice": float(dice[i]), "iou": float(iou[i]), "pixels": int(truth_sum[i]),
               "pixel_fraction": float(truth_sum[i] / max(confusion.sum(), 1))}
        for i, name in enumerate(labels)}
    metrics["confusion_matrix"] = confusion.tolist()
    return metrics


def predict_classes(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class index per pixel: the most probable class, or for 2 classes foreground where its
    probability reaches `threshold`."""
    if probs.shape[-1] == 2:
        return (probs[..., 1] >= threshold).astype(np.int64)
    return probs.argmax(-1)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    return np.divide(top, bottom, out=np.zeros_like(top, dtype=float), where=bottom > 0)


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve from score histograms; ties count half, as in Mann-Whitney."""
    total_pos, total_neg = positives.sum(), negatives.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    below = np.cumsum(negatives) - negatives  # negatives scored strictly lower
    wins = (positives * below).sum() + 0.5 * (positives * negatives).sum()
    return float(wins / (total_pos * total_neg))


# --------------------------------------------------------------------------- Keras parts


def _keras_parts():
    """The loss and the metric as Keras classes, defined on first use (Keras loads lazily)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable("visionsuite")
    class SegmentationLoss(keras.losses.Loss):
        """Sum of cross-entropy, Dice and focal terms over pixels whose target is not IGNORE.
        y_true: (B, H, W) class indices; y_pred: (B, H, W, K) probabilities."""

        def __init__(self, terms=("ce",), classes=2, class_weights=None, gamma=2.0,
                     name="segmentation_loss", **kwargs):
            super().__init__(name=name, **kwargs)
            self.terms, self.classes = tuple(terms), int(classes)
            self.class_weights = list(class_weights) if class_weights else None
            self.gamma = float(gamma)

        def call(self, y_true, y_pred):
            y_true = ops.cast(y_true, "int32")
            valid = ops.cast(ops.not_equal(y_true, IGNORE), "float32")
            onehot = ops.one_hot(ops.where(y_true == IGNORE, 0, y_true), self.classes)
            onehot = onehot * valid[..., None]
            probs = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0 - 1e-7)
            count = ops.maximum(ops.sum(valid), 1.0)
            weights = ops.convert_to_tensor(self.class_weights or [1.0] * self.classes,
                                            "float32")
            pixel_weight = ops.sum(onehot * weights, axis=-1)  # 0 where ignored
            true_prob = ops.sum(onehot * probs, axis=-1) + (1.0 - valid)
            total = 0.0
            if "ce" in self.terms:
                total += ops.sum(-ops.log(true_prob) * pixel_weight) / count
            if "focal" in self.terms:
                focal = -((1.0 - true_prob) ** self.gamma) * ops.log(true_prob)
                total += ops.sum(focal * pixel_weight) / count
            if "dice" in self.terms:
                masked = probs * valid[..., None]
                intersection = ops.sum(onehot * masked, axis=(0, 1, 2))
                sizes = ops.sum(onehot, axis=(0, 1, 2)) + ops.sum(masked, axis=(0, 1, 2))
                total += 1.0 - ops.mean((2.0 * intersection + 1.0) / (sizes + 1.0))
            return total

        def get_config(self):
            return {**super().get_config(), "terms": list(self.terms), "classes": self.classes,
                    "class_weights": self.class_weights, "gamma": self.gamma}

    @keras.saving.register_keras_serializable("visionsuite")
    class SegmentationScore(keras.metrics.Metric):
        """Mean Dice or pixel accuracy over a whole epoch, from a running confusion matrix
        (not a mean of per-batch scores), pixels whose target is IGNORE left out."""

        def __init__(self, classes=2, score="dice", name="dice", **kwargs):
            super().__init__(name=name, **kwargs)
            self.classes, self.score = int(classes), score
            self.confusion = self.add_variable((self.classes, self.classes), "zeros",
                                               name="confusion")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
            valid = ops.cast(ops.not_equal(y_true, IGNORE), "float32")
            truth = ops.one_hot(ops.where(y_true == IGNORE, 0, y_true), self.classes)
            truth = truth * valid[:, None]
            predicted = ops.one_hot(ops.argmax(ops.reshape(y_pred, (-1, self.classes)), -1),
                                    self.classes)
            self.confusion.assign_add(ops.matmul(ops.transpose(truth), predicted))

        def result(self):
            diagonal = ops.diagonal(self.confusion)
            if self.score == "pixel_accuracy":
                return ops.sum(diagonal) / ops.maximum(ops.sum(self.confusion), 1.0)
            sizes = ops.sum(self.confusion, 0) + ops.sum(self.confusion, 1)
            present = ops.cast(sizes > 0, "float32")
            dice = 2.0 * diagonal / ops.maximum(sizes, 1.0)
            return ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)

        def reset_state(self):
            self.confusion.assign(ops.zeros_like(self.confusion))

        def get_config(self):
            return {**super().get_config(), "classes": self.classes, "score": self.score}

    return SegmentationLoss, SegmentationScore


def parse_loss(text: str) -> tuple[str, ...]:
    terms = tuple(part.strip() for part in text.lower().split("+") if part.strip())
    unknown = [t for t in terms if t not in LOSS_TERMS]
    if not terms or unknown:
        raise VisionsuiteError(f"train.loss '{text}': use {', '.join(LOSS_TERMS)} "
                               "or a sum such as ce+dice")
    return terms


def build_unet(config: Config, classes: int):
    """A U-Net: `levels` down-sampling steps of two 3x3 conv blocks, filters doubling at each,
    skip connections into a mirrored decoder, softmax over the classes. With model.backbone
    other than 'unet', the encoder is that backbone from the zoo and its feature maps at
    strides 2..16 are the skips."""
    import keras
    from keras import layers

    size, channels = config.data.image_size, config.data.channels
    levels, filters = config.model.levels, config.model.filters
    if config.model.norm not in ("batch", "group", "none"):
        raise VisionsuiteError(f"model.norm must be batch, group or none, got "
                               f"'{config.model.norm}'")
    if config.model.upsample not in ("transpose", "bilinear"):
        raise VisionsuiteError(f"model.upsample must be transpose or bilinear, got "
                               f"'{config.model.upsample}'")
    inputs = keras.Input((size, size, channels), name="image")
    # Raw 0..255 pixels in, as for classification: TFLite's uint8 input is the image's bytes.
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    if config.model.backbone in ("unet", "", None):
        if size % (2 ** levels):
            raise VisionsuiteError(f"data.image_size {size} must be a multiple of "
                                   f"2**model.levels = {2 ** levels}")
        skips = []
        for level in range(levels):
            x = _conv_block(x, filters * 2 ** level, config.model.norm, f"down{level}")
            skips.append(x)
            x = layers.MaxPooling2D(name=f"pool{level}")(x)
        x = _conv_block(x, filters * 2 ** levels, config.model.norm, "bottom")
    else:
        skips, x = _backbone_encoder(config, x, filters)
    if config.model.dropout > 0:
        x = layers.Dropout(config.model.dropout, name="bottom_dropout")(x)
    for level in reversed(range(len(skips))):
        width = max(filters * 2 ** level, 8)
        if config.model.upsample == "transpose":
            x = layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level}")(x)
        else:
            x = layers.UpSampling2D(interpolation="bilinear", name=f"up{level}")(x)
            x = layers.Conv2D(width, 1, name=f"up{level}_proj")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, width, config.model.norm, f"dec{level}")
    outputs = layers.Conv2D(classes, 1, activation="softmax", dtype="float32",
                            name="probabilities")(x)
    return keras.Model(inputs, outputs, name="unet")


def _conv_block(x, filters: int, norm: str, name: str):
    from keras import layers

    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=norm == "none",
                          name=f"{name}_conv{index}")(x)
        if norm == "batch":
            x = layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        elif norm == "group":
            x = layers.GroupNormalization(min(8, filters), name=f"{name}_gn{index}")(x)
        x = layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def _backbone_encoder(config: Config, x, filters: int):
    """Skips at strides 1 (a conv block on the input), 2, 4, 8, 16 and the bottom at 32,
    taken as the last feature map of each resolution inside the backbone."""
    from visionsuite.core.backbones import feature_maps

    size = config.data.image_size
    if size % 32:
        raise VisionsuiteError(f"data.image_size {size} must be a multiple of 32 with a "
                               f"backbone encoder ({config.model.backbone})")
    stem = _conv_block(x, filters, config.model.norm, "down0")
    features, by_size = feature_maps(config.model.backbone, x, config.model.width,
                                     config.model.depth)
    if len(features.shape) != 4 or features.shape[1] != size // 32:
        raise VisionsuiteError(f"model.backbone {config.model.backbone} has no stride-32 "
                               "feature map to build a U-Net on")
    skips = [stem]
    for stride in (2, 4, 8, 16):
        if size // stride not in by_size:
            raise VisionsuiteError(f"model.backbone {config.model.backbone}: no feature map "
                                   f"at stride {stride}")
        skips.append(by_size[size // stride])
    return skips, features


# --------------------------------------------------------------------------- the task


class SegmentTask(Task):
    name = "segment"
    monitor = "val_dice"

    def load_data(self, config: Config, train: bool = True,
                  labels: list[str] | None = None) -> TaskData:
        from visionsuite.datasets import resolve_dataset

        root = resolve_dataset(config.data.path, "segment")
        index = index_pairs(root, config.data.val_fraction, config.data.split_seed)
        decoded, kept, skipped = {}, {}, {}
        for name in (("train", "val") if train else ("val",)):
            decoded[name], kept[name], skipped[name] = decode_pairs(
                index.splits[name], config.data.channels, config.data.workers,
                desc=f"decoding {name}", window=config.data.window)
        values = set()
        for items in decoded.values():
            for item in items:
                values |= set(np.unique(item.mask).tolist())
        mapping = class_map(values, labels or config.data.classes)
        splits = {name: _to_split(decoded[name], kept[name], skipped[name], mapping)
                  for name in decoded}
        if len(splits["val"]) == 0:
            raise VisionsuiteError(f"{root}: the val split holds no readable image/mask pairs")
        return TaskData(mapping.names, splits["val"], splits.get("train"), str(root))

    def check_data(self, path: str) -> DataReport:
        return check_segmentation_folders(path)

    def build_model(self, config: Config, labels: list[str]):
        return build_unet(config, len(labels))

    def loss_and_metrics(self, config: Config, labels: list[str]):
        loss_class, score_class = _keras_parts()
        weights = config.train.class_weights
        if weights is not None and len(weights) != len(labels):
            raise VisionsuiteError(f"train.class_weights has {len(weights)} values for "
                                   f"{len(labels)} classes ({', '.join(labels)})")
        loss = loss_class(parse_loss(config.train.loss), len(labels), weights)
        metrics = [score_class(len(labels), "dice", name="dice"),
                   score_class(len(labels), "pixel_accuracy", name="pixel_accuracy")]
        return loss, metrics

    def train_samples(self, config: Config, data: TaskData) -> int:
        return len(data.train) * config.data.crops_per_image

    def make_datasets(self, config: Config, data: TaskData):
        from visionsuite.core.augment import make_augment
        from visionsuite.core.data import make_dataset

        tile = config.data.image_size
        images = pad_stack(data.train.images, None)
        masks = pad_stack(data.train.targets, IGNORE)
        train = make_dataset(images, masks, config.train.batch_size, training=True,
                             seed=config.train.seed, repeat=config.data.crops_per_image,
                             augment_fn=make_augment(config.augment, crop_size=tile),
                             spatial_targets=True)
        val_images, val_masks = val_tiles(data.val, tile)
        val = make_dataset(val_images, val_masks, config.train.batch_size, training=False)
        return train, val

    def predict(self, predictor, split: Split, config: Config):
        from visionsuite.core.progress import progress

        overlap = config.data.tile_overlap
        return [sliding_window(predictor.predict, image, predictor.image_size, overlap)
                for image in progress(split.images, total=len(split), desc="segmenting")]

    def calibration_images(self, split: Split, count: int, seed: int, size: int) -> np.ndarray:
        """Random tiles of the split's images (the model takes tiles, not whole images)."""
        tile = size
        rng = np.random.default_rng(seed)
        crops = []
        for _ in range(max(0, count)):
            image = split.images[rng.integers(len(split))]
            if image.shape[0] < tile or image.shape[1] < tile:
                image = np.pad(image, [(0, max(0, tile - image.shape[0])),
                                       (0, max(0, tile - image.shape[1])), (0, 0)],
                               mode="symmetric")
            y = rng.integers(image.shape[0] - tile + 1)
            x = rng.integers(image.shape[1] - tile + 1)
            crops.append(image[y:y + tile, x:x + tile])
        return np.stack(crops) if crops else np.zeros((0, tile, tile, 3), np.uint8)

    def evaluate(self, outputs, split: Split, labels: list[str],
                 settings: dict | None = None) -> dict:
        return segmentation_metrics(outputs, split.targets, labels)

    def headline(self, metrics: dict) -> dict[str, float]:
        shown = {key: metrics[key] for key in ("dice", "iou", "pixel_accuracy", "sensitivity",
                                                "specificity", "roc_auc") if key in metrics}
        for name, values in list(metrics["per_class"].items())[:6]:
            shown[f"dice_{name}"] = values["dice"]
        return shown

    def agreement(self, outputs_a, outputs_b) -> float | None:
        same = sum(int((predict_classes(a) == predict_classes(b)).sum())
                   for a, b in zip(outputs_a, outputs_b))
        total = sum(a.shape[0] * a.shape[1] for a in outputs_a)
        return float(same / max(total, 1))

    def plot(self, metrics: dict, labels: list[str], folder: Path, prefix: str = "") -> list[Path]:
        from visionsuite.core.plots import plot_confusion

        path = folder / f"{prefix}confusion_matrix.png"
        plot_confusion(np.array(metrics["confusion_matrix"]), labels, path)
        return [path]

    def plot_predictions(self, outputs, split: Split, labels: list[str], folder: Path):
        from visionsuite.core.plots import plot_segmentation_grid

        path = folder / "val_predictions.png"
        predicted = [predict_classes(p) for p in outputs]
        plot_segmentation_grid(split.images, split.targets, predicted, labels,
                               [p.name for p in split.paths], path)
        return [path]

    def tflite_metadata(self, labels: list[str], quantized_input: bool):
        from visionsuite.core.metadata import MetadataSpec

        return MetadataSpec(
            name="visionsuite image segmenter",
            description="Segments an RGB tile into the classes in labels.txt (U-Net).",
            input_name="image",
            input_description="RGB image tile; pixel values 0..255.",
            output_name="segmentation_masks",
            output_description="Probability of each class for each pixel, in the order of "
                               "labels.txt.",
            labels=labels,
            mean=0.0,
            std=1.0,
            output_is_image=True,
        )


TASK = SegmentTask()


# --------------------------------------------------------------------------- data check


def check_segmentation_folders(path: str) -> DataReport:
    from collections import Counter

    from visionsuite.core.report import table

    try:
        index = index_pairs(path)
    except VisionsuiteError as err:
        return DataReport(f"dataset: {path}", False, str(err).removeprefix(f"{path}: "))
    rows, sizes, modes, unreadable, values = [], Counter(), Counter(), [], set()
    problem = ""
    decoded_all = {}
    for split, pairs in index.splits.items():
        try:
            decoded, kept, skipped = decode_pairs(pairs, 3, desc=f"checking {split}")
        except VisionsuiteError as err:
            return DataReport(f"dataset: {index.root}", False, str(err))
        unreadable += skipped
        decoded_all[split] = (decoded, kept)
        for item in decoded:
            sizes[f"{item.image.shape[1]}x{item.image.shape[0]}"] += 1
            values |= set(np.unique(item.mask).tolist())
        files = {id(pair): pair for pair in kept}.values()  # a volume's slices share a pair
        for pair in files:  # decoded above: the header is enough for the mode
            modes[inspect_image(pair.image, decode=False)[1]] += 1
        rows.append({"split": split, "files": len(files), "pairs": len(kept),
                     "skipped": len(skipped),
                     "roi": "yes" if any(p.roi for p in pairs) else "no"})
    try:
        mapping = class_map(values, None)
        counts = np.zeros(len(mapping.names), np.int64)
        for decoded, kept in decoded_all.values():
            for mask in _to_split(decoded, kept, [], mapping).targets:
                counts += np.bincount(mask[mask != IGNORE], minlength=len(mapping.names))
    except VisionsuiteError as err:
        mapping, problem = None, str(err)
    split_note = " (val split by val_fraction 0.2, seed 0)" if index.split_by_fraction else ""
    lines = [f"dataset: {index.root}{split_note}", table(rows), "",
             "sizes: " + ", ".join(f"{s} ({n})" for s, n in sizes.most_common(5)),
             "modes: " + ", ".join(f"{m} ({n})" for m, n in modes.most_common()),
             "mask values: " + ", ".join(str(v) for v in sorted(values)[:20])]
    if mapping is not None:
        total = max(int(counts.sum()), 1)
        lines.append("classes: " + ", ".join(
            f"{i} {name} ({100 * counts[i] / total:.1f}% of pixels)"
            for i, name in enumerate(mapping.names)))
    lines.append(f"unreadable pairs: {len(unreadable)}")
    lines += [f"  {message}" for message in unreadable]
    lines.append(f"files that are not images (ignored): {len(index.odd_files)}")
    lines += [f"  {p}" for p in index.odd_files[:20]]
    if not problem and not decoded_all.get("train", ([], []))[0]:
        problem = "no readable image/mask pairs in train"
    return DataReport("\n".join(lines), not problem, problem)


# --------------------------------------------------------------------------- inference


def segment_images(run: str, inputs, output: str | Path | None = None, overlay: bool = False,
                   threshold: float = 0.5, tile_overlap: float | None = None,
                   window: list[float] | None = None) -> list[dict]:
    """Segment each image in `inputs` with RUN; write `<stem>.png` masks at the input's size
    (0/255 for 2 classes, else class indices) and, with `overlay`, `<stem>_overlay.png`.
    A NIfTI volume gives `<stem>.nii.gz`, class indices with the input's affine and header; a
    multi-frame DICOM one `<stem>_<frame>.png` per frame. DICOM/NIfTI intensities are
    windowed by `window` ([center, width]), else as the run was trained.
    Returns per-image class areas (and volumes in mm^3 for NIfTI)."""
    from visionsuite.core.evaluate import load_run_config
    from visionsuite.core.files import new_run_dir
    from visionsuite.core.images import collect_images
    from visionsuite.core.models import load_predictor, resolve_model
    from visionsuite.core.progress import progress

    source = resolve_model(run)
    predictor = load_predictor(source)
    labels = source.labels or [f"class_{i}" for i in range(2)]
    overlap = tile_overlap
    if source.run_dir is not None:
        trained = load_run_config(source).data
        overlap = trained.tile_overlap if overlap is None else overlap
        window = window or trained.window
    overlap = 0.25 if overlap is None else overlap
    if not 0 <= threshold <= 1:
        raise VisionsuiteError(f"--threshold {threshold}: must be between 0 and 1")
    paths = collect_images(inputs)
    folder = Path(output) if output else new_run_dir(Path("runs") / "segment", None, "predict")
    folder.mkdir(parents=True, exist_ok=True)
    results, used = [], set()
    for path in progress(paths, total=len(paths), desc="segmenting"):
        try:
            images = read_image_slices(path, predictor.channels, window)
        except UnreadableImage as err:
            print(f"warning: {err}; skipped", file=sys.stderr)
            continue
        predicted, class_count = [], 2
        for image in images:
            probs = sliding_window(predictor.predict, image, predictor.image_size, overlap)
            predicted.append(predict_classes(probs, threshold).astype(np.uint8))
            class_count = probs.shape[-1]
        stem = _unique_stem(file_stem(path), used)
        results.append(_write_segmentation(path, images, predicted, labels, folder, stem,
                                           overlay, class_count))
    if not results:
        raise VisionsuiteError("none of the images could be read")
    return results


def _write_segmentation(path: Path, images: list[np.ndarray], predicted: list[np.ndarray],
                        labels: list[str], folder: Path, stem: str, overlay: bool,
                        class_count: int) -> dict:
    """The mask file(s) of one input, its overlays, and its class areas."""
    result = {"image": str(path)}
    numbered = len(images) > 1
    if is_nifti(path):
        result["mask"] = str(labels_to_nifti(predicted, path, folder / f"{stem}.nii.gz",
                                             class_count))
    else:
        masks = []
        for index, classes in enumerate(predicted):
            mask_path = folder / (f"{stem}_{index:03d}.png" if numbered else f"{stem}.png")
            _save_png(classes * 255 if class_count == 2 else classes, mask_path)
            masks.append(str(mask_path))
        result["mask" if not numbered else "masks"] = masks[0] if not numbered else masks
    if overlay:
        overlays = []
        for index, (image, classes) in enumerate(zip(images, predicted)):
            name = f"{stem}_overlay_{index:03d}.png" if numbered else f"{stem}_overlay.png"
            _save_png(overlay_image(image, classes), folder / name)
            overlays.append(str(folder / name))
        result["overlay" if not numbered else "overlays"] = overlays if numbered else overlays[0]
    if numbered:
        result["slices"] = len(images)
    result["areas"] = _areas(np.stack(predicted), labels, class_count, voxel_volume_mm3(path))
    return result


def _unique_stem(stem: str, used: set[str]) -> str:
    candidate, number = stem, 2
    while candidate in used:
        candidate, number = f"{stem}_{number}", number + 1
    used.add(candidate)
    return candidate


def _areas(classes: np.ndarray, labels: list[str], count: int,
           voxel_mm3: float | None = None) -> dict:
    pixels = np.bincount(classes.ravel(), minlength=count)
    total = max(int(classes.size), 1)
    names = labels if len(labels) == count else [f"class_{i}" for i in range(count)]
    areas = {name: {"pixels": int(pixels[i]), "fraction": round(float(pixels[i] / total), 5)}
             for i, name in enumerate(names)}
    if voxel_mm3:
        for i, name in enumerate(names):
            areas[name]["volume_mm3"] = round(float(pixels[i] * voxel_mm3), 3)
    return areas


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def overlay_image(image: np.ndarray, classes: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (grey or RGB) with every class but class 0 tinted by its colour."""
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    colors = colorize(classes).astype(np.float32)
    tint = (classes > 0)[..., None]
    mixed = np.where(tint, (1 - alpha) * rgb + alpha * colors, rgb)
    return np.clip(mixed, 0, 255).astype(np.uint8)
