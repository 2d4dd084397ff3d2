"""The face task: embeddings for verification (same person?) and identification (who?),
plugged into the core (train, evaluate, export, benchmark, data check).

Data: `data.py`; finding and aligning faces: `faces.py`; network and losses: `model.py`;
metrics: `metrics.py`; `visionsuite embed / verify / enroll / identify` and the gallery file:
`commands.py`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.config import Config
from visionsuite.core.splits import Fold, fold_of, fold_source, held_out_share
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport, Split, Task, TaskData


@dataclass
class FaceSplit(Split):
    """images: (N, S, S, C) uint8 faces; targets: identity index per image, into `names`."""

    names: list[str] = field(default_factory=list)
    faces: str = ""  # how the images became faces: "whole images" or "detected faces"
    typical_shape: tuple[int, int] | None = None  # (height, width) of most images, as read
    framing: object = None  # faces.Framing of the faces in a set of whole crops
    pairs: object = None  # pairs.PairList of the images (data.val_pairs): scored on its pairs


class FaceTask(Task):
    name = "face"
    # TAR at FAR 1e-2 picks the best epoch, not ROC AUC: an untrained network's embeddings
    # all point nearly the same way yet order ORL's pairs about as well as raw pixels (AUC
    # 0.93 after one epoch), so a short run kept its first epoch, with threshold 1.0. TAR
    # alone still kept such an epoch in a short triplet run, so collapsed epochs score 0.
    monitor = "val_selection_tar"
    agreement_meaning = "mean cosine similarity of the embeddings of each val face"
    learned_settings = ("threshold", "threshold_rule", "chosen_on", "thresholds_at_far")
    averaged_settings = ("crop_framing",)
    labels_name_outputs = False

    def load_data(self, config: Config, train: bool = True, labels: list[str] | None = None,
                  held_out: str = "val") -> TaskData:
        from visionsuite.core.data import window_of_bit_depth
        from visionsuite.datasets import resolve_dataset
        from visionsuite.tasks.face.data import index_identities

        if train:
            import visionsuite.tasks.face.model  # noqa: F401  registers the losses (--resume)
        if config.data.classes:  # not left silently unused
            raise VisionsuiteError("data.classes does not apply to faces: the identities are "
                                   "the dataset's person folders")
        root = resolve_dataset(config.data.path, "face")
        share = held_out_share(config)  # data.val_fraction, or data.fold of data.folds
        if config.data.val_pairs and isinstance(share, Fold):
            raise VisionsuiteError(f"data.folds={share.folds}: the pairs of data.val_pairs "
                                   "choose the epoch, and every person trains; leave out "
                                   "data.folds (or data.val_pairs)")
        pairs = _val_pairs(config, held_out)  # in place of held-out people, if any
        splits, names, fold = {}, labels or [], None
        if train or pairs is None:
            index = index_identities(root, share, config.data.split_seed,
                                     train, held_out, everyone_trains=pairs is not None)
            fold = fold_of(share, held_out, index.held_out_by_fraction, root)
            if train and labels is None and not config.data.window:  # a new run
                window_of_bit_depth([path for items in index.splits.values()
                                     for path, _ in items] + (pairs.paths if pairs else []),
                                    config)
            for name in (["train"] if train else []) + (["val"] if pairs is None else []):
                _warn_of_single_images(index.single_image_identities(name), index.folders[name])
                splits[name] = _decode(index.splits[name], index.names[name], config, name)
            names = labels or index.names.get("train") or []
        if pairs is not None:
            splits["val"] = _decode_pairs(pairs, config)
        elif len(np.unique(splits["val"].targets)) < 2:
            raise VisionsuiteError(f"{root}: verification needs at least 2 held-out identities "
                                   "with readable faces")
        source = f"{root}, val: the pairs of {pairs.file}" if pairs else \
            fold_source(root, fold, config.data.split_seed)
        return TaskData(list(names), splits["val"], splits.get("train"), source)

    def check_data(self, path: str, held_out: str = "val") -> DataReport:
        from visionsuite.tasks.face.commands import check_face_folders

        return check_face_folders(path, held_out)

    def check_model(self, config: Config) -> None:
        from visionsuite.tasks.face.model import check_loss

        super().check_model(config)
        check_loss(config)

    def build_model(self, config: Config, labels: list[str]):
        from visionsuite.tasks.face.model import build_training_model

        return build_training_model(config, len(labels))

    def loss_and_metrics(self, config: Config, labels: list[str]):
        from visionsuite.tasks.face.model import make_loss

        return make_loss(config), []

    def make_datasets(self, config: Config, data: TaskData):
        from visionsuite.core.augment import make_augment
        from visionsuite.core.data import make_dataset
        from visionsuite.tasks.face.data import identity_batches
        from visionsuite.tasks.face.model import images_per_identity

        per_identity, batch_size = images_per_identity(config), config.train.batch_size
        batches = identity_batches(data.train.targets, per_identity, batch_size,
                                   config.train.seed) if per_identity else None
        train = make_dataset(data.train.images, data.train.targets, batch_size, training=True,
                             seed=config.train.seed, augment_fn=make_augment(config.augment),
                             index_batches=batches)
        return train, None  # other people: no Keras val loss; VerificationCallback measures

    def epoch_callbacks(self, config: Config, data: TaskData) -> list:
        from visionsuite.tasks.face.train import VerificationCallback

        return [VerificationCallback(self, data, config)]

    def inference_model(self, model, config: Config):
        from visionsuite.tasks.face.model import inference_embedder

        return inference_embedder(model, config.model.flip_average)

    def evaluate(self, outputs, split: Split, labels: list[str],
                 settings: dict | None = None) -> dict:
        from visionsuite.tasks.face.metrics import face_metrics

        threshold = (settings or {}).get("threshold")
        if getattr(split, "pairs", None) is not None:
            from visionsuite.tasks.face.pairs import chosen_pairs_metrics

            return chosen_pairs_metrics(outputs, split.pairs, threshold)
        return face_metrics(outputs, np.asarray(split.targets), threshold, split.names)

    def combine_outputs(self, outputs: list):
        """The members' unit embeddings side by side, scaled by 1/sqrt(K): a unit vector whose
        cosine similarity to another is the mean of the members' cosines."""
        import math

        import keras

        joined = keras.layers.Concatenate(name="member_embeddings")(outputs)
        return keras.layers.Rescaling(1 / math.sqrt(len(outputs)), name="embedding")(joined)

    def inference_settings(self, metrics: dict, data: TaskData, config: Config) -> dict:
        from visionsuite.tasks.face.metrics import collapsed

        if collapsed(metrics):
            print(f"warning: the held-out faces' similarities bunch near 1 (threshold "
                  f"{metrics['best_threshold']:.4f}): the embeddings have nearly collapsed, "
                  "and int8 export cannot tell them apart; train longer (triplet training "
                  "starts collapsed), or try another train.loss", file=sys.stderr)
        settings = {"threshold": round(metrics["best_threshold"], 6),
                    "threshold_rule": "highest balanced accuracy (mean of TAR and 1 - FAR)",
                    "chosen_on": f"{data.source}: {metrics['identities']} held-out "
                                 f"identities, {metrics['images']} images"
                    if "identities" in metrics else
                    f"{data.val.pairs.file}: {metrics['pairs']} pairs of "
                    f"{metrics['images']} images"}
        # The operating points of verify/identify --far: where it accepted that share of
        # the held-out different-person pairs.
        settings["thresholds_at_far"] = {far: round(cut, 6) for far, cut in
                                         metrics["thresholds_at_far"].items()}
        train = data.train
        if train is not None and train.faces == "whole images" and train.typical_shape:
            # faces.py: images of this size are taken as face crops, as in training
            settings["crop_shape"] = list(train.typical_shape)
            if train.framing is not None:  # faces found in photos are cut out framed alike
                settings["crop_framing"] = train.framing.to_json()
        return settings | super().inference_settings(metrics, data, config)  # data.window

    def headline(self, metrics: dict) -> dict[str, float]:
        keys = ("roc_auc", "tar_at_far_0.01", "tar_at_far_0.001", "eer", "rank1", "accuracy",
                "cv_accuracy", "threshold")
        return {key: metrics[key] for key in keys if key in metrics}  # pairs: no rank-1

    def detail_tables(self, metrics: dict) -> list[tuple[str, list[dict]]]:
        tables = []
        if metrics.get("hardest_identities"):
            tables.append(("held-out people by same-person pairs missed at FAR 1e-2 (worst "
                           "first):", metrics["hardest_identities"]))
        if metrics.get("folds"):  # evaluate --pairs, pairs.py
            tables.append((f"folds (LFW's protocol): accuracy {metrics['cv_accuracy']:.4f} +- "
                           f"{metrics['cv_accuracy_se']:.4f} (standard error), each fold at the "
                           "threshold most accurate on the others:", metrics["folds"]))
        if metrics.get("wrong_pairs"):  # evaluate --pairs
            tables.append((f"pairs judged wrong at {metrics['judged_at']} "
                           f"({metrics['false_rejects']} same-person pairs refused, "
                           f"{metrics['false_accepts']} different-person pairs accepted; the "
                           "worst of each first):", metrics["wrong_pairs"]))
        return tables

    def agreement(self, outputs_a, outputs_b) -> float | None:
        from visionsuite.tasks.face.metrics import unit

        return float((unit(outputs_a) * unit(outputs_b)).sum(1).mean())

    def plot(self, metrics: dict, labels: list[str], folder: Path, prefix: str = "") -> list[Path]:
        from visionsuite.tasks.face.metrics import plot_roc

        return [plot_roc({prefix.rstrip("_") or "val": metrics}, folder / f"{prefix}roc.png")]

    def tflite_metadata(self, labels: list[str], quantized_input: bool):
        from visionsuite.core.metadata import MetadataSpec

        return MetadataSpec(
            name="visionsuite face embedder",
            description="Maps a face crop to a unit-length embedding: the same person's faces "
                        "have a high cosine similarity (threshold in inference.json).",
            input_name="image",
            input_description="Face crop, pixel values 0..255: cut out of a photo as the "
                              "packed inference.json's crop_framing says (box centre and "
                              "width as fractions of the crop; its height / width), else "
                              "the square of 1.3x the face box, centred.",
            output_name="embedding",
            output_description="L2-normalised face embedding.",
            mean=0.0,
            std=1.0,
        )


def _warn_of_single_images(people: list[str], folder: Path) -> None:
    """One warning for the identities of one image (LFW has thousands), naming a few."""
    from visionsuite.tasks.face.data import named_few

    if len(people) == 1:
        print(f"warning: {folder / people[0]}: identity '{people[0]}' has a single image: no "
              "same-person pair", file=sys.stderr)
    elif people:
        print(f"warning: {folder}: {len(people)} identities have a single image, so no "
              f"same-person pair: {named_few(people)}", file=sys.stderr)


def _val_pairs(config: Config, held_out: str):
    """data.val_pairs read (pairs.read_pairs), where they stand for the val split: not for
    --split test, nor on another dataset evaluated whole (EVERY_IMAGE)."""
    from visionsuite.core.splits import EVERY_IMAGE
    from visionsuite.tasks.face.pairs import read_pairs

    if not config.data.val_pairs or held_out != "val" or \
            config.data.val_fraction == EVERY_IMAGE:
        return None
    images = config.data.val_pairs_images
    return read_pairs(Path(config.data.val_pairs).expanduser(),
                      Path(images).expanduser() if images else None)


def _decode_pairs(pairs, config: Config) -> FaceSplit:
    """The faces of the pairs' images, as a val split scored on the pairs; the pairs of an
    image without a face are left out, and counted."""
    from visionsuite.core.progress import warn

    split = _decode([(path, 0) for path in pairs.paths], [], config, "val pairs")
    position = {path: index for index, path in enumerate(pairs.paths)}
    split.pairs = pairs.keep_images([position[path] for path in split.paths])
    left_out = len(pairs.same) - len(split.pairs.same)
    if left_out:
        warn(f"{pairs.file}: {left_out} pairs left out (an image without a face)")
    return split


def _decode(items, names: list[str], config: Config, split: str) -> FaceSplit:
    from visionsuite.core.progress import warn_some
    from visionsuite.tasks.face.faces import face_mode, prepare_faces

    paths = [path for path, _ in items]
    faces = prepare_faces(paths, config.data.image_size, config.data.channels,
                          config.data.face_detect, config.data.workers, desc=f"decoding {split}",
                          window=config.data.window)
    warn_some([f"{message}; skipped" for message in faces.skipped],
              f"{{}} more {split} images skipped (`visionsuite data check face` names more)")
    if face_mode(config.data.face_detect) != "false":
        print(f"{split}: {faces.summary}", file=sys.stderr)
        if not faces.kept and any("no face found" in m for m in faces.skipped):
            raise VisionsuiteError(
                f"{paths[0].parent.parent}: no face found in any {split} image; if they are "
                "face crops already, set data.face_detect=false (--set data.face_detect=false)")
    targets = np.array([items[i][1] for i in faces.kept], np.int32)
    return FaceSplit(faces.images, targets, [paths[i] for i in faces.kept], faces.skipped,
                     names=names, faces=faces.mode, typical_shape=faces.typical_shape,
                     framing=faces.framing)


TASK = FaceTask()
