"""What a task plugs into the core: data, model, loss, metrics, plots and TFLite metadata.

The core (training, evaluation, export, benchmark) calls only these hooks, so it never needs
to know which task it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.config import AUGMENT_SWITCHES, Config, settings_not_read
from visionsuite.core.augment import AUGMENTATIONS
from visionsuite.errors import VisionsuiteError


@dataclass
class Split:
    """One decoded split: uint8 images (N, S, S, C) and their targets; tasks whose images keep
    their own sizes (segment) hold lists of arrays instead."""

    images: np.ndarray | list[np.ndarray]
    targets: np.ndarray | list[np.ndarray]
    paths: list[Path]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class TaskData:
    labels: list[str]
    val: Split
    train: Split | None = None
    source: str = ""  # the dataset folder, for messages
    # Images that carry their own channels (multi-modal MRI: FLAIR, T1, ...): their names.
    channel_names: list[str] | None = None


@dataclass
class DataReport:
    """What `visionsuite data check` prints, and whether the dataset can be used at all."""

    text: str
    usable: bool
    problem: str = ""  # one line that names the file or folder at fault


class Task:
    name = ""
    monitor = "val_accuracy"  # Keras log key that picks the best checkpoint
    monitor_mode = "max"
    # Images may carry channels of their own (segment: multi-modal MRI), which set
    # data.channels to any count; other tasks read grey or RGB.
    images_own_channels = False
    # What Task.agreement measures, for the export report.
    agreement_meaning = "same answer per image, or per pixel"
    # The augment keys this task's training applies (see core.augment.AUGMENTATIONS)
    augmentations = AUGMENTATIONS
    # model.backbone names the task builds itself, besides the zoo's (core.backbones)
    own_backbones: tuple[str, ...] = ()
    # inference.json keys chosen on val (inference_settings), which an ensemble (core.ensemble)
    # chooses again on its own val outputs rather than take from a member
    learned_settings: tuple[str, ...] = ()
    # inference.json keys measured on each run's training data (face's crop framing), which
    # differ a little between the members of an ensemble: it takes their mean
    averaged_settings: tuple[str, ...] = ()
    # Whether labels.txt names the model's outputs (classes), which the members of an ensemble
    # must then share; face's names the people it trained on, whose embeddings name no one.
    labels_name_outputs = True

    def check_model(self, config: Config) -> None:
        """One-line errors for model settings that need no data (here an unknown
        model.backbone; tasks add their own), raised before the data is decoded (minutes for
        a large set) rather than when the model is built after it."""
        from visionsuite.core.backbones import check_backbone_name

        check_backbone_name(config.model.backbone, self.own_backbones)

    def check_augment(self, config: Config) -> None:
        """A one-line error for an augmentation switched on that this task does not apply,
        rather than a run that silently trains without it."""
        for key in AUGMENT_SWITCHES:
            value = getattr(config.augment, key)
            if value and key not in self.augmentations:
                raise VisionsuiteError(
                    f"augment.{key}={value}: {self.name} does not apply it (it applies "
                    f"{', '.join(self.augmentations)}); set it to 0")

    def check_settings(self, config: Config) -> None:
        """A one-line error for a setting of other tasks (config.TASK_KEYS) given a value here,
        rather than a run that silently trains without it."""
        for key, value, readers in settings_not_read(config):
            verb = "reads" if len(readers) == 1 else "read"
            raise VisionsuiteError(f"{key}={value}: {self.name} does not read it "
                                   f"({' and '.join(readers)} {verb} it); leave it out")
        if config.data.channels not in (1, 3) and not self.images_own_channels:
            raise VisionsuiteError(f"data.channels={config.data.channels}: must be 1 (grey) "
                                   "or 3 (RGB)")

    def load_data(self, config: Config, train: bool = True, labels: list[str] | None = None,
                  held_out: str = "val") -> TaskData:
        """Decode the val split (and the train split if `train`). With `labels` (a trained
        model's classes), the dataset's classes are mapped onto them. `held_out` "test": the
        dataset's test split takes the val split's place (evaluate --split test), and a
        dataset without one is an error (files.no_test_split)."""
        raise NotImplementedError

    def check_data(self, path: str, held_out: str = "val") -> DataReport:
        """Inspect a dataset folder read-only: counts, unreadable and odd files, sizes, modes.
        `held_out` "test": its test split alone, as `evaluate --split test` reads it."""
        raise NotImplementedError

    def unread_test_split(self, root: Path) -> str | None:
        """Where the dataset keeps a test split that training does not read, for data check
        to point at `evaluate --split test` (core.splits.unread_test_split)."""
        from visionsuite.core.splits import unread_test_split

        return unread_test_split(root)

    def build_model(self, config: Config, labels: list[str]):
        raise NotImplementedError

    def loss_and_metrics(self, config: Config, labels: list[str]):
        raise NotImplementedError

    def target_fn(self, labels: list[str]):
        """A tf function turning stored targets into what the loss expects (or None)."""
        return None

    def make_datasets(self, config: Config, data: TaskData):
        """The tf.data train and val datasets that Keras fits on: shuffled, augmented batches
        of the decoded images."""
        from visionsuite.core.augment import make_augment
        from visionsuite.core.data import make_dataset

        target_fn = self.target_fn(data.labels)
        train = make_dataset(data.train.images, data.train.targets, config.train.batch_size,
                             training=True, seed=config.train.seed,
                             augment_fn=make_augment(config.augment), target_fn=target_fn)
        val = make_dataset(data.val.images, data.val.targets, config.train.batch_size * 2,
                           training=False, target_fn=target_fn)
        return train, val

    def epoch_callbacks(self, config: Config, data: TaskData) -> list:
        """Keras callbacks that measure after each epoch's validation (task metrics too costly
        for a Keras metric); they run first, while the averaged weights are swapped in."""
        return []

    def inference_model(self, model, config: Config):
        """The part of the trained model that is saved as model.keras, evaluated and exported
        (face: the embedder without the training identities' logits)."""
        return model

    def inference_settings(self, metrics: dict, data: TaskData, config: Config) -> dict:
        """Settings that inference needs, learned from the val metrics at the end of training
        (face: the verification threshold) or chosen in `config` (segment: data.max_size): saved
        as the run's inference.json, packed into exported files, and handed back to
        `evaluate`. Here: data.window, where deep images (16-bit) are read through one."""
        return {"window": config.data.window} if config.data.window else {}

    def settings_into_config(self, settings: dict, config: Config) -> None:
        """For an exported file, which carries no config: put back into the task's default
        `config` the inference settings that decide what its inputs are (segment: the scale
        data.max_size; every task: data.window)."""
        config.data.window = settings.get("window")

    def serving_fn(self, model, config: Config):
        """What the exported graph computes from a (1, S, S, C) float image."""
        return lambda x: model(x, training=False)

    def int8_network(self) -> str | None:
        """None: an int8 export is integer throughout, uint8 in and out. Else the name of the
        Keras model that serving_fn calls: only its ops are quantized, and the post-processing
        after it (and so the outputs) stays float32."""
        return None

    def train_samples(self, config: Config, data: TaskData) -> int:
        """Training samples per epoch (the learning-rate schedule counts steps from it)."""
        return len(data.train)

    def combine_outputs(self, outputs: list):
        """The Keras tensor of an ensemble (core.ensemble) from its members' output tensors:
        here the mean of their probabilities (softmax classes, per image or per pixel)."""
        import keras

        return keras.layers.Average(name="mean_probabilities")(outputs)

    def predict(self, predictor, split: Split, config: Config):
        """Model outputs for every image of `split` (a Keras or TFLite predictor)."""
        return predictor.predict(split.images)

    def calibration_images(self, split: Split, count: int, seed: int, size: int) -> np.ndarray:
        """`count` uint8 model inputs (size x size) for int8 calibration, evenly over a seeded
        shuffle."""
        order = np.random.default_rng(seed).permutation(len(split))[:max(0, count)]
        return split.images[np.sort(order)]

    def evaluate(self, outputs: np.ndarray, split: Split, labels: list[str],
                 settings: dict | None = None) -> dict:
        """Metrics of model `outputs` on `split`; the same names for every model format.
        `settings`: the model's inference settings (see inference_settings), if it has any."""
        raise NotImplementedError

    def headline(self, metrics: dict) -> dict[str, float]:
        """The few scalar metrics shown in tables and compared between formats."""
        raise NotImplementedError

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[dict]]]:
        """(title, rows) of the tables that `train` and `evaluate` print under the headline:
        by default the per-class metrics, where the task has them."""
        if not metrics.get("per_class"):
            return []
        return [("per class:", [{"class": name, **values}
                                for name, values in metrics["per_class"].items()])]

    def agreement(self, outputs_a: np.ndarray, outputs_b: np.ndarray) -> float | None:
        """How often two models (Keras and its .tflite) give the same answer, where that means
        something for the task."""
        return None

    def plot(self, metrics: dict, labels: list[str], folder: Path, prefix: str = "") -> list[Path]:
        return []

    def plot_predictions(self, outputs, split: Split, labels: list[str], folder: Path,
                         metrics: dict, prefix: str = "val_") -> list[Path]:
        """PNGs of predictions next to the truth, where a picture says more than the metrics
        (`metrics`: what evaluate made of them)."""
        return []

    def tflite_metadata(self, labels: list[str], quantized_input: bool):
        """A `visionsuite.core.metadata.MetadataSpec` for the exported model."""
        raise NotImplementedError
