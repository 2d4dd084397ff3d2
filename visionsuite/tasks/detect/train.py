"""Feeding the detector during `fit`: augmented batches, val batches, and mAP after each epoch."""

from __future__ import annotations

import numpy as np

import keras

from visionsuite.config import Config
from visionsuite.tasks.detect.augment import augment_sample, pack_targets


def max_boxes(split) -> int:
    return max([len(t) for t in split.targets] + [1])


class TrainBatches(keras.utils.PyDataset):
    """Augmented training batches (mosaic, scale, shift, flip, colour), rebuilt each epoch
    from a seed of (train.seed, epoch, batch) so that a run can be repeated. Mosaic is turned
    off for the last `augment.mosaic_off_epochs` epochs, so that training ends on images like
    those it is evaluated on (YOLOv8's close_mosaic); a time budget that cuts the epochs moves
    those last epochs with it (`plan_epochs`)."""

    def __init__(self, split, config: Config):
        # Two threads: OpenCV releases the GIL, so augmenting the next batch overlaps the step.
        super().__init__(workers=2, use_multiprocessing=False, max_queue_size=4)
        self.split, self.config = split, config
        self.batch = config.train.batch_size
        self.boxes = [t[:, 1:] * _scale(size, config.data.image_size)
                      for t, size in zip(split.targets, split.sizes)]
        self.classes = [t[:, 0].astype(np.int64) for t in split.targets]
        # Mosaic packs up to four images' boxes into one.
        self.max_boxes = max_boxes(split) * (4 if config.augment.mosaic > 0 else 1)
        self.epoch, self.epochs = 0, config.train.epochs

    def __len__(self) -> int:
        return max(1, len(self.split) // self.batch)

    def on_epoch_end(self):
        self.epoch += 1

    def start_at_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def plan_epochs(self, epochs: int) -> None:
        self.epochs = epochs

    def __getitem__(self, index: int):
        augment = self.config.augment
        rng = np.random.default_rng([self.config.train.seed, self.epoch, index])
        order = np.random.default_rng([self.config.train.seed, self.epoch]).permutation(
            len(self.split))
        picks = order[index * self.batch:(index + 1) * self.batch]
        use_mosaic = self.epoch < self.epochs - augment.mosaic_off_epochs
        images, boxes, classes = [], [], []
        for pick in picks:
            image, box, label = augment_sample(int(pick), self.split.images, self.boxes,
                                               self.classes, augment, use_mosaic, rng)
            images.append(image)
            boxes.append(box)
            classes.append(label)
        return (np.stack(images).astype(np.float32),
                pack_targets(boxes, classes, self.max_boxes))


def _scale(size: tuple[int, int], side: int) -> np.ndarray:
    """Pixel boxes on the stored image to pixels on the side x side model input."""
    width, height = size
    return np.array([side / width, side / height, side / width, side / height], np.float32)


def val_batches(split, config: Config):
    """(images, targets) for Keras' val loss: the val images unaugmented, each batch cast to
    float32 from the uint8 images in RAM (not the split in float32: 4x its size)."""
    from visionsuite.core.data import make_dataset

    boxes = [t[:, 1:] * _scale(s, config.data.image_size) for t, s in zip(split.targets,
                                                                         split.sizes)]
    classes = [t[:, 0].astype(np.int64) for t in split.targets]
    targets = pack_targets(boxes, classes, max_boxes(split))
    return make_dataset(split.images, targets, config.train.batch_size, training=False)


class MapCallback(keras.callbacks.Callback):
    """val mAP@0.5 (and @0.5:0.95) of the weights Keras validates with, as `val_map50` and
    `val_map50_95` in the epoch logs, for the best checkpoint and history.csv.

    It must come before SwapEMAWeights in the callback list: it measures in on_test_end,
    while the averaged weights are still swapped in, and reports in on_epoch_end."""

    def __init__(self, task, data, config: Config):
        super().__init__()
        self.task, self.data, self.config = task, data, config
        self.result, self.predictor = {}, None

    def on_test_end(self, logs=None):
        from visionsuite.core.models import KerasPredictor

        if self.predictor is None:  # built once: its traced function serves every epoch
            self.predictor = KerasPredictor(self.model)
        outputs = self.task.predict(self.predictor, self.data.val, self.config)
        metrics = self.task.evaluate(outputs, self.data.val, self.data.labels)
        self.result = {"val_map50": metrics["map50"], "val_map50_95": metrics["map50_95"]}

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.result)

