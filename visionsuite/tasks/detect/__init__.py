"""The detect task: YOLO-style object detection plugged into the core (train, evaluate, export,
benchmark, data check). Data formats: `data.py`; network, loss, decoding: `model.py`;
augmentation: `augment.py`; mAP: `metrics.py`; NMS export and `visionsuite detect`:
`predict.py`."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.config import Config
from visionsuite.core.splits import fold_of, fold_source, held_out_share
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport, Split, Task, TaskData
from visionsuite.tasks.detect.data import (Annotation, clean_boxes, describe_counts,
                                           index_detection, split_ignored, upright_annotation)
from visionsuite.tasks.detect.model import OWN_BACKBONES, check_detector_settings


@dataclass
class DetectionSplit(Split):
    """images: (N, S, S, 3) uint8, each whole image resized to S x S; targets: per image
    (M, 5) rows of (class, x1, y1, x2, y2) in pixels of the image shown upright (EXIF
    orientation applied); sizes: its (width, height); ignored: per image the (K, 5) regions
    that are neither objects to find nor false detections (VOC difficult, COCO crowd)."""

    sizes: list[tuple[int, int]] = field(default_factory=list)
    ignored: list[np.ndarray] = field(default_factory=list)


class DetectTask(Task):
    name = "detect"
    own_backbones = OWN_BACKBONES
    monitor = "val_map50"
    augmentations = ("mosaic", "flip", "vflip", "rotate90", "zoom", "translate", "rotate",
                     "hue", "saturation", "brightness", "contrast")

    def combine_outputs(self, outputs: list):
        # The heads' raw outputs (box distances and class scores per anchor) of two detectors
        # do not average into a third's: ensembles of detectors fuse their boxes after NMS.
        raise VisionsuiteError("detect runs cannot be ensembled: detectors' boxes need fusing "
                               "after NMS (weighted box fusion), which visionsuite lacks")

    def load_data(self, config: Config, train: bool = True, labels: list[str] | None = None,
                  held_out: str = "val") -> TaskData:
        from visionsuite.core.data import check_cache_fits, window_of_bit_depth
        from visionsuite.datasets import resolve_dataset

        root = resolve_dataset(config.data.path, "detect")
        share = held_out_share(config)  # data.val_fraction, or data.fold of data.folds
        index = index_detection(root, share, config.data.split_seed, held_out, train)
        fold = fold_of(share, held_out, index.split_by_fraction, root)
        for message in index.missing:
            print(f"warning: {message}; skipped", file=sys.stderr)
        names = labels or config.data.classes or index.labels
        remap = _class_remap(index.labels, names)
        if index.labels and (remap[:-1] < 0).all():
            raise VisionsuiteError(f"{root}: none of its classes ({', '.join(index.labels[:5])}"
                                   f"{' ...' if len(index.labels) > 5 else ''}) is among the "
                                   f"model's {len(names)} ({', '.join(names[:5])}"
                                   f"{' ...' if len(names) > 5 else ''})")
        wanted = ("train", "val") if train else ("val",)
        check_cache_fits(root, sum(len(getattr(index, name)) for name in wanted),
                         config.data.image_size, 3)
        if train and labels is None and not config.data.window:  # a new run (export: labels)
            window_of_bit_depth([annotation.image for name in ("train", "val")
                                 for annotation in getattr(index, name)], config)
        splits = {}
        for name in wanted:
            splits[name] = _decode_split(getattr(index, name), remap, len(names),
                                         config.data.image_size, config.data.workers, name,
                                         config.data.window)
        if len(splits["val"]) == 0:
            raise VisionsuiteError(f"{root}: the val split holds no readable images")
        return TaskData(list(names), splits["val"], splits.get("train"),
                        fold_source(root, fold, config.data.split_seed))

    def check_data(self, path: str, held_out: str = "val") -> DataReport:
        from visionsuite.tasks.detect.checks import check_detection_folder

        return check_detection_folder(path, held_out)

    def unread_test_split(self, root: Path) -> str | None:
        from visionsuite.tasks.detect.data import voc_test_list

        listed = voc_test_list(root)
        return str(listed.relative_to(root)) if listed is not None \
            else super().unread_test_split(root)

    def check_model(self, config: Config) -> None:
        super().check_model(config)
        check_detector_settings(config)

    def build_model(self, config: Config, labels: list[str]):
        from visionsuite.tasks.detect.model import build_detector

        return build_detector(config, len(labels))

    def loss_and_metrics(self, config: Config, labels: list[str]):
        from visionsuite.tasks.detect.model import _keras_loss

        return _keras_loss()(classes=len(labels), size=config.data.image_size), []

    def make_datasets(self, config: Config, data: TaskData):
        from visionsuite.tasks.detect.train import TrainBatches, val_batches

        train = TrainBatches(data.train, config)
        return train, val_batches(data.val, config)

    def epoch_callbacks(self, config: Config, data: TaskData) -> list:
        from visionsuite.tasks.detect.train import MapCallback

        return [MapCallback(self, data, config)]

    def serving_fn(self, model, config: Config):
        from visionsuite.tasks.detect.predict import serving_fn

        return serving_fn(model, config)

    def int8_network(self) -> str | None:
        # Box decoding and NMS stay float (see core.export); MediaPipe reads float outputs.
        from visionsuite.tasks.detect.model import NETWORK_NAME

        return NETWORK_NAME

    def predict(self, predictor, split: Split, config: Config):
        from visionsuite.tasks.detect.predict import predict_split

        return predict_split(predictor, split, config)

    def evaluate(self, outputs, split: Split, labels: list[str],
                 settings: dict | None = None) -> dict:
        from visionsuite.tasks.detect.metrics import detection_metrics

        return detection_metrics(outputs, split.targets, split.sizes, labels,
                                 ignored=split.ignored or None)

    def headline(self, metrics: dict) -> dict[str, float]:
        shown = {key: metrics[key] for key in ("map50", "map50_95", "precision", "recall")}
        for name, values in list(metrics["per_class"].items())[:4]:
            shown[f"ap50_{name}"] = values["ap50"]
        return shown

    def plot(self, metrics: dict, labels: list[str], folder: Path, prefix: str = "") -> list[Path]:
        from visionsuite.tasks.detect.metrics import plot_pr_curves

        path = folder / f"{prefix}pr_curve.png"
        plot_pr_curves(metrics, path)
        return [path]

    def plot_predictions(self, outputs, split: Split, labels: list[str], folder: Path,
                         metrics: dict, prefix: str = "val_"):
        from visionsuite.tasks.detect.predict import plot_detection_grid

        path = folder / f"{prefix}predictions.png"
        plot_detection_grid(split, outputs, labels, path)
        return [path]

    def tflite_metadata(self, labels: list[str], quantized_input: bool):
        from visionsuite.core.metadata import MetadataSpec

        return MetadataSpec(
            name="visionsuite object detector",
            description="Detects the objects in labels.txt (YOLO-style, NMS in the graph).",
            input_name="image",
            input_description="RGB image, the whole frame resized to the input size; pixel "
                              "values 0..255.",
            output_name="location",
            output_description="Detections: boxes, classes, scores and their count.",
            labels=labels,
            detection=True,
        )


def _class_remap(found: list[str], names: list[str]) -> np.ndarray:
    """Index of each dataset class in `names` (a trained model's labels), or -1 if absent."""
    return np.array([names.index(n) if n in names else -1 for n in found] + [-1], np.int64)


def _decode_split(annotations: list[Annotation], remap: np.ndarray, classes: int, size: int,
                  workers: int, name: str, window: list[float] | None) -> DetectionSplit:
    from visionsuite.core.data import aligned_empty, load_in_parallel
    from visionsuite.core.images import read_image, stored_geometry

    def rows(annotation: Annotation, upright: tuple[int, int]):
        ids = annotation.classes.astype(np.int64)
        mapped = remap[np.where((ids >= 0) & (ids < len(remap) - 1), ids, len(remap) - 1)]
        boxes, labels, counts = clean_boxes(
            Annotation(annotation.image, annotation.boxes, mapped, None, annotation.normalized),
            upright, classes)
        return np.concatenate([labels[:, None].astype(np.float32), boxes], 1), counts

    def load(annotation: Annotation):
        annotation, upright = upright_annotation(annotation, *stored_geometry(annotation.image))
        image = read_image(annotation.image, size, 3, window)
        objects, regions = split_ignored(annotation)
        target, counts = rows(objects, upright)
        return image, target, upright, counts, rows(regions, upright)[0]

    results, skipped = load_in_parallel(load, annotations, workers, desc=f"decoding {name}",
                                        warn="skipped")
    kept = [(a, r) for a, r in zip(annotations, results) if r is not None]
    counts = sum((r[3] for _, r in kept), Counter())
    if counts:
        print(f"warning: {name}: bad boxes: {describe_counts(counts)}", file=sys.stderr)
    images = aligned_empty((len(kept), size, size, 3), np.uint8)  # val_batches shares it
    for slot, (_, result) in zip(images, kept):
        slot[...] = result[0]
    return DetectionSplit(images, [r[1] for _, r in kept], [a.image for a, _ in kept], skipped,
                          sizes=[r[2] for _, r in kept], ignored=[r[4] for _, r in kept])


TASK = DetectTask()
