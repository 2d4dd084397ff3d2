"""Semantic segmentation with a U-Net, first of all for medical images.

Data: `train/{images,masks}/` and `val/{images,masks}/` paired by file stem, optional `roi/`
beside them (pixels outside the region of interest are left out of loss and metrics). Masks
hold 0/255 or 0/1 (binary), class indices, or palette indices; mask value 255 marks "ignore"
wherever it is not the foreground of a 0/255 mask (Pascal VOC's convention). Colour masks
(a flat colour per class) become classes by colour (colours.py).
Training runs on random crops of image_size x image_size; inference on whole images of any size
by overlapping tiles of that size, blended with a smooth window, so that the exported
fixed-size .tflite and the Keras model see exactly the same tiles.
DICOM files and NIfTI volumes (core.medical) are images like any other, read as their 2-D
slices with intensity windowing; a NIfTI input is segmented into a NIfTI label volume with
its affine, a DICOM series (a file a slice) into one in the series' geometry. Multi-modal
MRI (a file per channel as nnU-Net stores it, or 4-D NIfTI) and multi-channel microscopy
TIFFs (ImageJ hyperstacks, OME-TIFF) train on all their channels; 16-bit images are read from
their dataset's bit depth.

Modules. Reading a dataset: index (its layout or annotation format, and its pairs by split),
folders (images paired with masks by name), annotations (the pairs of annotation files and
tables, read by voc, labelme, outlines, cvat, via, supervisely, rle_tables and ctc, drawn
through shapes), pairs (the pairs and their train/val split), decode (image and mask slices),
mask_classes (mask values as classes), channels (a file per channel), colours (colour masks),
check (`data check`) and data (the decoded splits, the crop sampler). Then tiles (tiled
whole-image inference), model (U-Net, loss, training metric), metrics (Dice, IoU, ROC AUC),
surface (HD95, ASSD), components (largest-component post-processing) and commands
(`visionsuite segment`); this one plugs them into the core as the task.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from visionsuite.config import Config
from visionsuite.core.augment import AUGMENTATIONS
from visionsuite.core.data import window_of_bit_depth
from visionsuite.core.files import named_folder
from visionsuite.core.image_tables import natural_key
from visionsuite.core.splits import TEST_FOLDER_NAMES, fold_of, fold_source, held_out_share
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport, Split, Task, TaskData
from visionsuite.tasks.segment.channels import channel_names, image_channels
from visionsuite.tasks.segment.check import check_segmentation_folders
from visionsuite.tasks.segment.colours import (check_colour_names, colour_class_names,
                                               colour_name, palette_colours, parse_colours)
from visionsuite.tasks.segment.data import pad_stack, to_split
from visionsuite.tasks.segment.decode import check_pairs_fit, classes_from_colours, decode_pairs
from visionsuite.tasks.segment.folders import sided_class_names
from visionsuite.tasks.segment.index import index_pairs, unlabelled_folder
from visionsuite.tasks.segment.mask_classes import IGNORE, class_map, read_as_objects
from visionsuite.tasks.segment.metrics import predict_classes, segmentation_metrics
from visionsuite.tasks.segment.model import (OWN_BACKBONES, build_unet, check_unet_settings,
                                             keras_parts, parse_loss)
from visionsuite.tasks.segment.pairs import pair_image_files
from visionsuite.tasks.segment.tiles import (sliding_window, trained_symmetries, val_tiles,
                                             with_symmetries)
from visionsuite.tasks.segment.voc import read_voc_set, voc_segmentation_folder

WORST_IMAGES_SHOWN = 10  # in the terminal; metrics.json keeps every image's scores
GRID_ROWS = 6  # val images in val_predictions.png: the worst by mean Dice


def _warn_of_mirrored_sides(names: list[str], config: Config) -> None:
    """Classes that name sides (Montgomery's leftMask and rightMask): a mirrored or turned crop
    puts each on the other side, and the classes then differ by shape alone."""
    from visionsuite.core.progress import warn

    sided = sided_class_names(names)
    moving = [f"augment.{key}" for key in ("flip", "rotate90")
              if getattr(config.augment, key)]
    if sided and moving:
        sets = " ".join(f"--set {key}=0" for key in moving)
        warn(f"classes {', '.join(sided)} name sides, which {' and '.join(moving)} move to the "
             f"other side of the image; {sets} keeps the sides apart")


def _take_image_channels(index, splits: tuple[str, ...], config: Config,
                         train: bool) -> int | None:
    """Images that carry their own channels (a file per channel, 4-D NIfTI) set the input
    channels of a model to train (data.channels, saved in the run's config.yaml), and must
    match a trained one's; returns their count."""
    from visionsuite.core.progress import warn

    count = image_channels([pair for name in splits for pair in index.splits[name]])
    if count and not train and count != config.data.channels:
        raise VisionsuiteError(f"{index.root}: the images have {count} channels "
                               f"({', '.join(channel_names(index, count))}), but the model "
                               f"takes {config.data.channels}")
    if not count and config.data.channels not in (1, 3):
        raise VisionsuiteError(f"data.channels={config.data.channels}: the images of "
                               f"{index.root} are grey or colour, 1 or 3 channels (other "
                               "counts come from images that carry them: a file per channel "
                               "as nnU-Net stores them, 4-D NIfTI volumes)")
    if count and count != config.data.channels:
        warn(f"the images have {count} channels ({', '.join(channel_names(index, count))}): "
             f"the model takes all {count} (data.channels={count}, not "
             f"{config.data.channels})")
        config.data.channels = count
    return count


def _region_classes(regions: dict[str, list[str]] | None,
                    labels: list[str]) -> dict[str, list[int]]:
    """data.regions with class indices for the class names; a name that is no class, or a
    region named as a class, is an error naming the classes."""
    found = {}
    for name, classes in (regions or {}).items():
        unknown = [each for each in classes if each not in labels]
        if unknown:
            why = f"names no class {', '.join(unknown)}"
        elif not classes:
            why = "names no classes"
        elif name in labels:  # its dice_<name> would stand for two things
            why = "is the name of a class"
        else:
            found[name] = sorted({labels.index(each) for each in classes})
            continue
        raise VisionsuiteError(f"data.regions.{name}: {why} (the classes: {', '.join(labels)})")
    return found


def _known_structures(tolerance: float | dict[str, float] | None, labels: list[str],
                      regions: dict[str, list[int]]) -> float | dict[str, float] | None:
    """data.surface_tolerance, where it names structures: each a class or a region; another
    name is an error naming them (a typo would leave that structure without NSD)."""
    if isinstance(tolerance, dict):
        unknown = [name for name in tolerance if name not in labels and name not in regions]
        if unknown:
            known = ", ".join(labels + list(regions))
            raise VisionsuiteError(f"data.surface_tolerance.{unknown[0]}: no class or region "
                                   f"of that name (the classes and regions: {known})")
    return tolerance


def _choose_binary_masks(config: Config, index, pairs, labels: list[str] | None) -> bool:
    """data.binary_masks=auto becomes true where the masks number objects (numbers_objects:
    instance masks, read as foreground), false where classes are named (data.classes, the
    dataset's own names, data.colors, a run's labels) or the masks hold classes; kept in
    config.yaml, so that evaluate and export read the masks as training did. Returns whether
    the masks are read as foreground and number objects (scored as objects too)."""
    if config.data.binary_masks != "auto":
        return config.data.binary_masks is True and read_as_objects(index, pairs)
    named = labels or config.data.classes or index.class_names or config.data.colors
    config.data.binary_masks = not named and read_as_objects(index, pairs)
    if config.data.binary_masks:
        print("data: the masks number objects 1..N (instance masks): read as foreground, "
              "every value but 0 (data.binary_masks=auto; false keeps each value a class)",
              file=sys.stderr)
    return config.data.binary_masks


def _holds_labels(mask: np.ndarray) -> bool:
    """Whether a target mask marks any pixel with a class other than 0 (not ignored)."""
    return bool(((mask > 0) & (mask != IGNORE)).any())


class SegmentTask(Task):
    name = "segment"
    own_backbones = OWN_BACKBONES
    monitor = "val_dice"
    images_own_channels = True
    augmentations = AUGMENTATIONS + ("foreground_crops",)
    learned_settings = ("keep_largest_component", "split_touching")

    def load_data(self, config: Config, train: bool = True, labels: list[str] | None = None,
                  held_out: str = "val") -> TaskData:
        from visionsuite.core.progress import warn
        from visionsuite.datasets import resolve_dataset

        if config.data.max_size and config.data.max_size < config.data.image_size:
            raise VisionsuiteError(
                f"data.max_size ({config.data.max_size}) is smaller than data.image_size "
                f"({config.data.image_size}), the side of the training crops and tiles")
        root = resolve_dataset(config.data.path, "segment")
        share = held_out_share(config)  # data.val_fraction, or data.fold of data.folds
        index = index_pairs(root, share, config.data.split_seed, held_out,
                            config.data.rle_order, train)
        for message in index.warnings:  # the index's own, where a user's masks are missing
            warn(message)
        fold = fold_of(share, held_out, index.split_by_fraction, root)
        wanted = ("train", "val") if train else ("val",)
        own_channels = _take_image_channels(index, wanted, config, train)
        if config.data.regions and (config.data.classes or labels):  # before decoding
            _region_classes(config.data.regions, labels or config.data.classes)
        check_pairs_fit(root, {name: index.splits[name] for name in wanted},
                        config.data.channels, config.data.max_size, config.data.workers)
        numbered = _choose_binary_masks(
            config, index, [pair for name in wanted for pair in index.splits[name]], labels)
        if train and labels is None and not config.data.window:  # training (export: labels)
            window_of_bit_depth(pair_image_files(
                [pair for pairs in index.splits.values() for pair in pairs]), config)
        decoded, kept, skipped = {}, {}, {}
        for name in wanted:
            decoded[name], kept[name], skipped[name] = decode_pairs(
                index.splits[name], config.data.channels, config.data.workers,
                desc=f"decoding {name}", window=config.data.window,
                binary=config.data.binary_masks, max_size=config.data.max_size,
                # val's objects are scored (objects.py): of masks that number objects, or
                # of nuclei numbered as well as classified (HoVer-Net's, PanNuke's)
                objects=name == "val" and (numbered or not config.data.binary_masks))
        # Binary masks are background and foreground, whatever classes dataset.json names.
        names = labels or config.data.classes or (
            None if config.data.binary_masks else index.class_names)
        given = config.data.colors or (None if config.data.binary_masks
                                       else index.class_colours)  # CVAT's labelmap.txt
        colours = classes_from_colours(decoded, kept, given)
        if colours is not None:
            names = names or colour_class_names(colours)
            check_colour_names(config.data.classes, given, colours)
            config.data.colors = [colour_name(code) for code in colours]  # kept in config.yaml
        values = set()
        for items in decoded.values():
            for item in items:
                values |= set(np.unique(item.mask).tolist())
        mapping = class_map(values, names, config.data.mask_values)
        if mapping.levels and not config.data.mask_values:  # kept in config.yaml
            config.data.mask_values = mapping.levels
            print(f"data: the masks code {len(mapping.levels)} classes as grey levels "
                  f"{', '.join(map(str, mapping.levels))}: classes in that order "
                  "(data.mask_values); `segment` writes its masks in them", file=sys.stderr)
        if train:
            _warn_of_mirrored_sides(mapping.names, config)
        if colours is None and labels is None and not config.data.binary_masks \
                and not config.data.colors and not mapping.levels \
                and kept["val"]:  # VOC's palette PNGs
            config.data.colors = palette_colours(kept["val"][0].mask, len(mapping.names))
        splits = {name: to_split(decoded[name], kept[name], skipped[name], mapping)
                  for name in decoded}
        if len(splits["val"]) == 0:
            raise VisionsuiteError(f"{root}: the val split holds no readable image/mask pairs")
        splits["val"].regions = _region_classes(config.data.regions, mapping.names)
        splits["val"].surface_tolerance = _known_structures(
            config.data.surface_tolerance, mapping.names, splits["val"].regions)
        splits["val"].choose_largest_component = config.model.keep_largest_component
        splits["val"].split_touching = config.model.split_touching
        return TaskData(mapping.names, splits["val"], splits.get("train"),
                        fold_source(root, fold, config.data.split_seed, index.folds_by),
                        channel_names(index, own_channels) if own_channels else None)

    def inference_settings(self, metrics: dict, data: TaskData, config: Config) -> dict:
        # Prediction must see images at the scale the model was trained on, and writes masks
        # in the colours it was trained on.
        settings = {"max_size": config.data.max_size} if config.data.max_size else {}
        if metrics.get("keep_largest_component"):  # chosen on val (components.py)
            settings["keep_largest_component"] = metrics["keep_largest_component"]
        if metrics.get("split_touching"):  # objects' (objects.py): given, or chosen on val
            settings["split_touching"] = metrics["split_touching"]
        if data.channel_names:  # images of their own channels must come so to `segment`
            settings["image_channels"] = data.channel_names
        # deep images (16-bit, DICOM, NIfTI) windowed as in training: data.window (super)
        settings |= super().inference_settings(metrics, data, config)
        if config.data.mask_values:  # grey levels coding the classes: masks written in them
            settings["mask_values"] = config.data.mask_values
        return settings | ({"mask_colors": config.data.colors} if config.data.colors else {})

    def settings_into_config(self, settings: dict, config: Config) -> None:
        super().settings_into_config(settings, config)  # data.window
        config.data.max_size = settings.get("max_size")
        config.data.colors = settings.get("mask_colors")
        config.data.mask_values = settings.get("mask_values")
        if settings.get("image_channels"):
            config.data.channels = len(settings["image_channels"])

    def check_data(self, path: str, held_out: str = "val") -> DataReport:
        return check_segmentation_folders(path, held_out)

    def unread_test_split(self, root: Path) -> str | None:
        """Also a Pascal VOC set's ImageSets/Segmentation/test.txt; not a test/ of images
        without masks, which has nothing to score."""
        try:  # a set that cannot be read is data check's problem to report, not this one's
            voc = voc_segmentation_folder(Path(root)) if Path(root).is_dir() else None
            listed = read_voc_set(voc).lists.get("test") if voc is not None else None
        except VisionsuiteError:
            return None
        if listed:
            return str(listed.relative_to(root))
        found = super().unread_test_split(root)
        test = named_folder(Path(root), TEST_FOLDER_NAMES) if found else None
        return None if test is not None and unlabelled_folder(Path(root), test) else found

    def check_model(self, config: Config) -> None:
        super().check_model(config)
        check_unet_settings(config)

    def check_settings(self, config: Config) -> None:
        super().check_settings(config)
        if config.model.backbone in OWN_BACKBONES:
            for key in ("width", "depth"):
                if getattr(config.model, key) != 1.0:
                    raise VisionsuiteError(
                        f"model.{key}={getattr(config.model, key)}: it scales a backbone "
                        "encoder (model.backbone=resnet18, ...); the U-Net's own size is "
                        "model.filters and model.levels")
        touching = config.model.split_touching
        if touching not in (False, "auto") and (isinstance(touching, (bool, str))
                                                or touching < 0):  # 0 == False: not split
            raise VisionsuiteError(f"model.split_touching={touching}: expected auto, false "
                                   "or a tolerance in pixels (e.g. 1; 0: not split)")
        if config.data.binary_masks not in (True, False, "auto"):
            raise VisionsuiteError(f"data.binary_masks={config.data.binary_masks}: expected "
                                   "auto, true or false")
        if config.data.binary_masks is True and config.data.classes \
                and len(config.data.classes) != 2:
            raise VisionsuiteError(
                f"data.classes names {len(config.data.classes)} classes, but "
                "data.binary_masks=true reads masks as 2 (background, foreground)")
        levels = config.data.mask_values
        if levels is not None and (len(levels) < 2 or len(set(levels)) != len(levels)
                                   or not all(0 <= level <= 255 for level in levels)):
            raise VisionsuiteError(f"data.mask_values={levels}: expected the grey level "
                                   "(0..255) of each class, each once, at least 2")
        if levels and (config.data.binary_masks is True or config.data.colors):
            raise VisionsuiteError("data.mask_values goes with grey masks of classes, not "
                                   "with data.binary_masks=true or data.colors")
        if config.data.colors:
            parse_colours(config.data.colors)  # a bad colour is an error before decoding
            if config.data.binary_masks is True:
                raise VisionsuiteError("data.colors goes unused with data.binary_masks=true "
                                       "(every colour but black is foreground); leave one out")

    def build_model(self, config: Config, labels: list[str]):
        return build_unet(config, len(labels))

    def loss_and_metrics(self, config: Config, labels: list[str]):
        loss_class, score_class = keras_parts()
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
        from visionsuite.tasks.segment.data import labelled_crop_batches

        tile = config.data.image_size
        images = pad_stack(data.train.images, None)
        masks = pad_stack(data.train.targets, IGNORE)
        share = config.augment.foreground_crops
        # Slices without labels (most of a brain MRI's) are passed over for the crops that
        # are to be centred on labels, as nnU-Net's 2-D sampling does.
        batches = labelled_crop_batches(
            np.array([_holds_labels(mask) for mask in data.train.targets]),
            config.data.crops_per_image, share, config.train.batch_size,
            config.train.seed) if share else None
        train = make_dataset(images, masks, config.train.batch_size, training=True,
                             seed=config.train.seed, repeat=config.data.crops_per_image,
                             augment_fn=make_augment(config.augment, crop_size=tile),
                             spatial_targets=True, index_batches=batches,
                             labelled_flags=bool(share))
        val_images, val_masks = val_tiles(data.val, tile)
        val = make_dataset(val_images, val_masks, config.train.batch_size, training=False)
        return train, val

    def predict(self, predictor, split: Split, config: Config):
        from visionsuite.core.progress import progress

        overlap = config.data.tile_overlap
        symmetries = trained_symmetries(config.augment) if config.data.tta else []
        predict_tiles = with_symmetries(predictor.predict, symmetries)
        views = f" ({len(symmetries)} views a tile)" if len(symmetries) > 1 else ""
        return [sliding_window(predict_tiles, image, predictor.image_size, overlap)
                for image in progress(split.images, total=len(split), desc="segmenting" + views)]

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
        from visionsuite.tasks.segment.components import post_process
        from visionsuite.tasks.segment.objects import add_object_scores

        paths = [str(path) for path in split.paths]
        predicted = [predict_classes(probs).astype(np.uint8) for probs in outputs]
        if settings is not None:  # a trained model's: they say what to apply
            chosen = settings.get("keep_largest_component", [])
            split_at = settings.get("split_touching", False)
        else:  # training's val chooses them (None, auto); inference_settings saves them
            chosen = None if split.choose_largest_component else []
            split_at = split.split_touching
        predicted, kept = post_process(predicted, split.targets, paths, labels, chosen)
        metrics = segmentation_metrics(outputs, split.targets, labels,
                                       names=[path.name for path in split.paths], paths=paths,
                                       spacing=split.spacing, regions=split.regions,
                                       tolerance=split.surface_tolerance, predicted=predicted)
        add_object_scores(metrics, predicted, split.targets, split.objects, labels, split_at)
        return metrics | kept

    def headline(self, metrics: dict) -> dict[str, float]:
        shown = {key: metrics[key] for key in ("dice", "iou", "pixel_accuracy", "sensitivity",
                                                "specificity", "roc_auc") if key in metrics}
        for name, values in list(metrics["per_class"].items())[:6]:
            shown[f"dice_{name}"] = values["dice"]
        if "volume_dice" in metrics:  # the mean of each volume's Dice, as cases are reported
            shown["volume_dice"] = metrics["volume_dice"]
        if metrics.get("hd95") is not None:  # the unit in the name: mm or pixels
            shown[f"hd95_{metrics['distance_unit']}"] = metrics["hd95"]
        if metrics.get("nsd") is not None:
            shown["nsd"] = metrics["nsd"]
        for name, values in metrics.get("per_region", {}).items():
            shown[f"dice_{name}"] = values["dice"]
        if metrics.get("objects", {}).get("f1") is not None:  # instance masks (objects.py)
            shown["object_f1"] = metrics["objects"]["f1"]
            shown["panoptic_quality"] = metrics["objects"]["panoptic_quality"]
        if metrics.get("objects", {}).get("mpq") is not None:  # classes of objects: nuclei
            shown["mpq"] = metrics["objects"]["mpq"]
        return shown

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[dict]]]:
        distance = {"mm": "mm", "px": "pixels"}.get(metrics.get("distance_unit"))
        unit = f"HD95 and ASSD in {distance}" if distance else None
        tolerance = metrics.get("surface_tolerance")
        if unit and isinstance(tolerance, dict):
            unit += "; NSD within " + ", ".join(f"{value:g} {distance} ({name})"
                                                for name, value in tolerance.items())
        elif unit and tolerance:
            unit += f"; NSD within {tolerance:g} {distance}"
        tables = [(f"per class ({unit}):" if unit else title, rows)
                  for title, rows in super().detail_tables(metrics)]
        if metrics.get("per_region"):
            tables.append((f"per region (case_dice: the mean over the cases; {unit}):",
                           [{"region": name, **values}
                            for name, values in metrics["per_region"].items()]))
        if "objects" in metrics:
            tables.append(_objects_table(metrics["objects"], metrics.get("split_touching")))
        if metrics.get("split_touching_trials"):
            tables.append(("touching objects split, chosen on val (model.split_touching: "
                           "the distance map's peaks that rise this many pixels; kept where "
                           "the panoptic quality rises):",
                           [{**trial, "split_touching": _shown_tolerance(trial["split_touching"])}
                            for trial in metrics["split_touching_trials"]]))
        if metrics.get("largest_component_trials"):
            tables.append(("post-processing, chosen on val (only the largest connected "
                           "component of the structure; kept where its case Dice rises):",
                           [{**trial, "structure": _shown_structure(trial["structure"])}
                            for trial in metrics["largest_component_trials"]]))
        tables += _worst_first(metrics.get("per_volume") or [], ("volume", "slices"),
                               ("hd95", "assd", "nsd"), "val volumes by mean Dice, slices pooled",
                               unit)
        tables += _worst_first(metrics.get("per_image") or [], ("image",),
                               ("pixel_accuracy", "object_f1", "hd95", "assd", "nsd"),
                               "val images by mean Dice", unit)
        return tables

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

    def plot_predictions(self, outputs, split: Split, labels: list[str], folder: Path,
                         metrics: dict, prefix: str = "val_"):
        from visionsuite.core.plots import plot_segmentation_grid
        from visionsuite.tasks.segment.components import post_process

        path = folder / f"{prefix}predictions.png"
        scores = metrics["per_image"]
        # the images that need a look: the lowest mean Dice first
        order = sorted(range(len(scores)), key=lambda i: _by_dice(scores[i], "image"))
        order = order[:GRID_ROWS]
        kept = metrics.get("keep_largest_component")
        if kept:  # as scored: post-processed, a volume's components in 3-D
            processed, _ = post_process([predict_classes(probs).astype(np.uint8)
                                         for probs in outputs], split.targets,
                                        [str(each) for each in split.paths], labels, kept)
            shown = [processed[i] for i in order]
        else:
            shown = [predict_classes(outputs[i]) for i in order]
        plot_segmentation_grid([split.images[i] for i in order],
                               [split.targets[i] for i in order], shown, labels,
                               [f"{scores[i]['image']} (Dice {scores[i]['dice']:.3f})"
                                for i in order], path, rows=GRID_ROWS,
                               split=prefix.rstrip("_") or "val")
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


def _shown_structure(name: str) -> str:
    """A structure of the post-processing table as shown: all foreground classes of many
    (Pascal VOC's 20) by their count, not named one by one across the terminal."""
    parts = name.split("+")
    return name if len(parts) <= 3 else f"all {len(parts)} foreground classes"


def _by_dice(row: dict, name: str) -> tuple:
    """A scored image's (or volume's) place, worst first: its mean Dice, ties in the order of
    its `name` column with numbers as numbers (2.png before 10.png; images of Dice 1 tie)."""
    return row["dice"], natural_key(str(row[name]))


def _shown_tolerance(tolerance: float | str) -> str:
    """A split_touching trial's tolerance as the table shows it: "0.5 px", or "off"."""
    return tolerance if isinstance(tolerance, str) else f"{tolerance:g} px"


def _objects_table(objects: dict, split: float | None) -> tuple[str, list[dict]]:
    """The object scores (objects.py): of all foreground, and of each class where classes
    of objects are scored; `split`: the tolerance touching objects were split at."""
    shown = ("images", "truth", "predicted", "matched", "precision", "recall", "f1",
             "segmentation_quality", "panoptic_quality", "mean_ap")
    rows = [{"objects of": name, **{key: scores[key] for key in shown}}
            for name, scores in {"all foreground": objects,
                                 **objects.get("per_class", {})}.items()]
    mean = f"; mpq: the mean of the classes' PQs, {objects['mpq']:.4f}" \
        if objects.get("mpq") is not None else ""
    found = f"touching ones split at {split:g} px" if split else "not split"
    return (f"objects (the masks' numbered objects against the predicted connected components, "
            f"{found}; matched at IoU > 0.5; mean_ap: the Data Science Bowl 2018's{mean}):",
            rows)


def _worst_first(scored: list[dict], before: tuple[str, ...], after: tuple[str, ...],
                 title: str, unit: str | None = None) -> list[tuple[str, list[dict]]]:
    """A table of the lowest mean Dice first (WORST_IMAGES_SHOWN at most): each row's `before`
    columns, its Dice, its `after` columns where it has them, its Dice per class; none for
    fewer than two rows. `unit` says the distances' unit."""
    if len(scored) < 2:
        return []
    worst = sorted(scored, key=lambda row: _by_dice(row, before[0]))[:WORST_IMAGES_SHOWN]
    rows = [{**{key: row[key] for key in before}, "dice": row["dice"],
             **{key: row[key] for key in after if key in row},
             **{f"dice_{name}": value for name, value in list(row["dice_per_class"].items())[:6]}}
            for row in worst]
    shown = f"{len(worst)} of {len(scored)}, " if len(worst) < len(scored) else ""
    unit = f"; {unit}" if unit and any("hd95" in row for row in rows) else ""
    return [(f"{title} ({shown}worst first{unit}):", rows)]


TASK = SegmentTask()

