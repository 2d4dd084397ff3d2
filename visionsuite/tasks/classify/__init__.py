"""Image classification: image folders in, class probabilities out."""

from __future__ import annotations

import functools
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.config import Config
from visionsuite.core.class_folders import scan_class_folders
from visionsuite.core.data import check_cache_fits, decode_images, window_of_bit_depth
from visionsuite.core.files import (TRAIN_FOLDER_NAMES, held_out_only, named_folder, sub_folders,
                                    wrapper_content)
from visionsuite.core.image_tables import image_lookup, image_table_files, natural_order
from visionsuite.core.splits import (EVERY_IMAGE, Fold, fold_of, fold_source, held_out_names,
                                     held_out_share, no_test_split, test_set_note)
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.base import DataReport, Split, Task, TaskData
from visionsuite.tasks.classify.labels import labelled_by_tables, names_classes, read_label_table
from visionsuite.tasks.classify.named_classes import classes_in_files, split_by_cases

@dataclass
class FolderIndex:
    """Files of an image-folder dataset, before decoding."""

    root: Path
    classes: list[str]
    splits: dict[str, list[tuple[Path, int]]]  # split name -> (file, class index)
    odd_files: list[Path]  # files that are not images by extension
    split_by_fraction: bool
    folders: dict[str, str] = field(default_factory=dict)  # split -> the folder it was read from
    left_out: list[str] = field(default_factory=list)  # class folders not in data.classes
    notes: list[str] = field(default_factory=list)  # data check's lines on how it was read
    folds_by: str | None = None  # what dealt data.folds' folds where not the seed: a column


def index_image_folders(root: str | Path, val_fraction: float = 0.2, seed: int = 0,
                        classes: list[str] | None = None, held_out: str = "val",
                        columns: tuple[str | None, str | None] = (None, None)) -> FolderIndex:
    """Index `root/train/<class>/*` and `root/val/<class>/*`, or `root/<class>/*` split by a seeded,
    per-class `val_fraction`, or the images a CSV label table names (core/image_tables.py;
    `columns`: data.image_column and data.label_column, else found). `classes` (data.classes):
    the classes to read, in this order; the others are left out. `held_out` "test":
    `root/test/<class>/*` (test.csv) alone, as the val split. Raises a one-line error for
    anything that makes the data unusable."""
    root = Path(root)
    if not root.exists():
        raise VisionsuiteError(f"{root}: dataset folder not found")
    if not root.is_dir():
        raise VisionsuiteError(f"{root}: expected a folder of class folders, got a file")
    index = _index_label_tables(root, val_fraction, seed, classes, held_out, columns) \
        if any(root.glob("*.csv")) else None
    if index is None:
        index = _index_named_classes(root, val_fraction, seed, classes, held_out)
    if index is not None:
        return index
    train_dir = named_folder(root, TRAIN_FOLDER_NAMES)
    val_dir = named_folder(root, held_out_names(held_out))
    inner = wrapper_content(root) if train_dir is None and val_dir is None else None
    if inner is not None:  # the folder an archive unpacked around the set
        return index_image_folders(inner, val_fraction, seed, classes, held_out, columns)
    odd: list[Path] = []
    chosen = _chosen_classes(classes)
    if held_out == "test" and val_dir is None:
        raise no_test_split(root, "a test/ folder of class folders")
    if held_out == "test" or (val_fraction >= 1 and held_out_only(root)):
        # EVERY_IMAGE (evaluation on another dataset) of a set that ships its test/ alone
        left_out = _folders_left_out(val_dir, chosen)
        val, classes = scan_class_folders(root, val_dir, chosen, odd, bool(chosen))
        return FolderIndex(root, classes, {"train": [], "val": val}, odd, False,
                           {"val": val_dir.name}, left_out)
    left_out = _folders_left_out(train_dir or root, chosen)
    if train_dir is not None:
        train, classes = scan_class_folders(root, train_dir, chosen, odd, bool(chosen))
        if val_dir is None:
            split_train, val = _split_by_fraction(train, val_fraction, seed, root)
            return FolderIndex(root, classes, {"train": split_train, "val": val}, odd, True,
                               {"train": train_dir.name}, left_out)
        val, _ = scan_class_folders(root, val_dir, classes, odd, bool(chosen))
        return FolderIndex(root, classes, {"train": train, "val": val}, odd, False,
                           {"train": train_dir.name, "val": val_dir.name}, left_out)
    files, classes = scan_class_folders(root, root, chosen, odd, bool(chosen))
    train, val = _split_by_fraction(files, val_fraction, seed, root)
    return FolderIndex(root, classes, {"train": train, "val": val}, odd, True, {}, left_out)


def _index_label_tables(root: Path, val_fraction: float, seed: int, classes: list[str] | None,
                        held_out: str,
                        columns: tuple[str | None, str | None]) -> FolderIndex | None:
    """The splits of a dataset whose CSV tables label its images: train.csv and val.csv, or a
    table's split column, as listed; else one table split by val_fraction; test.csv (or the
    test rows) for `held_out` "test". None where the tables name no images (not label
    tables)."""
    images = image_lookup(root)
    tables = image_table_files(
        root, images, lambda header, rows: names_classes(header, rows, columns[1]))
    # Kaggle's test.csv often lists ids without classes: read only for --split test.
    read = {}
    for split in ("train", "val", "all") + (("test",) if held_out == "test" else ()):
        if split in tables:
            table = read_label_table(root, tables[split], images, *columns)
            if table is None:
                return None
            read[split] = table
    if not read:
        return None
    rows = _rows_by_split(read)
    if held_out == "test":
        if "test" not in rows:
            raise no_test_split(root, "test.csv, or test rows of a split column")
        rows = {"test": rows["test"]}
    else:  # test rows of a split column are not trained on
        rows.pop("test", None)
    found = natural_order({name for listed in rows.values() for _, name in listed})
    chosen = _chosen_classes(classes) or found
    missing = [name for name in chosen if name not in found]
    if missing:
        raise VisionsuiteError(f"{root}: no image of class(es) {', '.join(missing)} named in "
                               f"data.classes (the tables' classes: {', '.join(found)})")
    if len(chosen) < 2 and held_out == "val":  # a test set may hold one of the model's
        raise VisionsuiteError(f"{next(iter(read.values())).path}: one class "
                               f"({', '.join(chosen)}); a classifier needs at least 2")
    number = {name: index for index, name in enumerate(chosen)}
    items = {split: [(image, number[name]) for image, name in listed if name in number]
             for split, listed in rows.items()}
    notes = [f"labels: {table.path.name} (images: column {table.image_column}; classes: "
             f"{table.label_from}" + (f"; splits: column {table.split_column}"
                                      if table.split_column else "")
             + (f"; folds for data.folds: column {table.fold_column}"
                if table.fold_column else "") + ")"
             for table in read.values()]
    left_out = [name for name in found if name not in number]
    if held_out == "test" or ("train" in items and "val" in items):
        splits = {"train": items.get("train", []), "val": items.get("val", items.get("test"))}
        return FolderIndex(root, chosen, splits, [], False, {}, left_out, notes)
    every = items.get("train", []) + items.get("all", []) + items.get("val", [])
    by_column = _split_by_column_folds(every, val_fraction, read)
    train, val = by_column or _split_by_fraction(every, val_fraction, seed, root)
    return FolderIndex(root, chosen, {"train": train, "val": val}, [], True, {}, left_out, notes,
                       f"column {read[next(iter(read))].fold_column}" if by_column else None)


def _index_named_classes(root: Path, val_fraction: float, seed: int, classes: list[str] | None,
                         held_out: str) -> FolderIndex | None:
    """The splits of a dataset of array files that name their classes (named_classes.py:
    Figshare's brain tumour MRI), whole cases in val where the files name them; None for
    others."""
    named = classes_in_files(root, _chosen_classes(classes), held_out)
    if named is None:
        return None
    if "val" in named.splits:
        return FolderIndex(root, named.classes, {"train": [], **named.splits}, named.odd_files,
                           False, named.folders, named.left_out, named.notes)
    pool = named.splits["train"]
    by_case = split_by_cases(pool, val_fraction, seed)
    train, val = by_case[:2] if by_case else _split_by_fraction(pool, val_fraction, seed, root)
    notes = named.notes + ([by_case[2]] if by_case else [])
    return FolderIndex(root, named.classes, {"train": train, "val": val}, named.odd_files, True,
                       named.folders, named.left_out, notes)


def _split_by_column_folds(items, fraction: float, read: dict):
    """(train, val) by the tables' fold column, where data.folds asks for a fold (a Fold) and
    a fold column gives every row's; None otherwise (the folds are drawn by the seed)."""
    tables = list(read.values())
    if not isinstance(fraction, Fold) or not all(table.folds for table in tables):
        return None
    problem = next((table.fold_problem for table in tables if table.fold_problem), None)
    if problem:
        raise VisionsuiteError(problem)
    fold_of = {image: fold for table in tables
               for (image, _), fold in zip(table.rows, table.folds)}
    numbers = sorted(set(fold_of.values()))
    if numbers != list(range(fraction.folds)):
        named = ", ".join(f"{table.path.name}'s column {table.fold_column}" for table in tables)
        raise VisionsuiteError(f"data.folds={fraction.folds}: {named} numbers folds "
                               f"{', '.join(map(str, numbers[:10]))}, not 0 to "
                               f"{fraction.folds - 1}")
    return ([item for item in items if fold_of[item[0]] != fraction.fold],
            [item for item in items if fold_of[item[0]] == fraction.fold])


def _split_column_test_rows(root: Path, tables: dict[str, Path]) -> str | None:
    """The test rows of a label table's split column, named as data check points at them."""
    images = image_lookup(root) if tables else {}
    for split in ("train", "all"):
        table = read_label_table(root, tables[split], images) if split in tables else None
        if table is not None and table.splits and "test" in table.splits:
            return (f"the {table.splits.count('test')} rows of {table.path.name} whose "
                    f"{table.split_column} is test")
    return None


def _rows_by_split(read: dict) -> dict[str, list[tuple[Path, str]]]:
    """The tables' rows by split: each table's own (train.csv's are train, a table of
    another name's "all"), or where a split column gives a row's, that one."""
    rows: dict[str, list[tuple[Path, str]]] = {}
    for split, table in read.items():
        for row, tagged in zip(table.rows, table.splits or [split] * len(table.rows)):
            rows.setdefault(tagged, []).append(row)
    return rows


def _chosen_classes(classes: list[str] | None) -> list[str] | None:
    if not classes:
        return None
    names = [str(name) for name in classes]
    if len(set(names)) != len(names) or len(names) < 2:
        raise VisionsuiteError(f"data.classes must name at least 2 different class folders, "
                               f"got {names}")
    return names


def _folders_left_out(folder: Path, chosen: list[str] | None) -> list[str]:
    """The class folders that data.classes leaves out; each class it names needs a folder."""
    if chosen is None:
        return []
    found = [path.name for path in sub_folders(folder)]
    missing = [name for name in chosen if name not in found]
    if missing:
        raise VisionsuiteError(f"{folder}: no folder for class(es) {', '.join(missing)} "
                               f"named in data.classes (folders: {', '.join(found)})")
    return [name for name in found if name not in chosen]


def balanced_weights(targets: np.ndarray, classes: int) -> list[float]:
    """train.class_weights=balanced: images / (classes x the class's images), as
    scikit-learn's "balanced", so that every class weighs as much in the loss; a class without
    train images gets 0."""
    counts = np.bincount(targets, minlength=classes).astype(float)
    weights = np.where(counts > 0, len(targets) / (classes * np.maximum(counts, 1)), 0.0)
    return [round(float(w), 4) for w in weights]


@functools.cache
def weighted_crossentropy_class():
    """The Keras loss class of train.class_weights, defined once, on first use (Keras is
    imported lazily), and registered, so that last.keras loads in safe mode for --resume."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable("visionsuite")
    class WeightedCategoricalCrossentropy(keras.losses.Loss):
        """Categorical cross-entropy (label smoothing included) of each image times the
        weight of its true class."""

        def __init__(self, class_weights, label_smoothing=0.0,
                     name="weighted_categorical_crossentropy", **kwargs):
            super().__init__(name=name, **kwargs)
            self.class_weights = [float(w) for w in class_weights]
            self.label_smoothing = label_smoothing

        def call(self, y_true, y_pred):
            loss = keras.losses.categorical_crossentropy(
                y_true, y_pred, label_smoothing=self.label_smoothing)
            weights = ops.convert_to_tensor(self.class_weights, dtype=loss.dtype)
            return loss * ops.sum(ops.cast(y_true, loss.dtype) * weights, axis=-1)

        def get_config(self):
            return {**super().get_config(), "class_weights": self.class_weights,
                    "label_smoothing": self.label_smoothing}

    return WeightedCategoricalCrossentropy


def _split_by_fraction(items, fraction: float, seed: int, root: Path):
    if fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset
        return [], list(items)
    if not 0 < fraction < 1:
        raise VisionsuiteError(f"{root}: no val/ folder, and data.val_fraction={fraction} "
                               "cannot split it (use a value between 0 and 1)")
    train, val = [], []
    for label in sorted({label for _, label in items}):
        members = [item for item in items if item[1] == label]
        random.Random(seed * 1000 + label).shuffle(members)
        if isinstance(fraction, Fold):  # stratified k-fold: every folds-th of each class
            val += members[fraction.fold::fraction.folds]
            train += [item for i, item in enumerate(members)
                      if i % fraction.folds != fraction.fold]
            continue
        count = max(1, round(len(members) * fraction)) if len(members) > 1 else 0
        val += members[:count]
        train += members[count:]
    return train, val


class ClassifyTask(Task):
    name = "classify"
    monitor = "val_accuracy"

    def load_data(self, config: Config, train: bool = True, labels: list[str] | None = None,
                  held_out: str = "val") -> TaskData:
        from visionsuite.datasets import resolve_dataset

        root = resolve_dataset(config.data.path, "classify")
        share = held_out_share(config)  # data.val_fraction, or data.fold of data.folds
        index = index_image_folders(root, share, config.data.split_seed,
                                    config.data.classes, held_out,
                                    (config.data.image_column, config.data.label_column))
        fold = fold_of(share, held_out, index.split_by_fraction, root)
        if index.left_out:
            print(f"data: the {len(index.classes)} classes of data.classes; classes left out: "
                  f"{', '.join(index.left_out)}", file=sys.stderr)
        mapping = None
        if labels is not None:
            unknown = sorted(set(index.classes) - set(labels))
            if unknown:
                raise VisionsuiteError(f"{root}: classes {unknown} are not among the model's "
                                       f"{len(labels)} classes")
            mapping = np.array([labels.index(name) for name in index.classes])
        wanted = ("train", "val") if train else ("val",)
        check_cache_fits(root, sum(len(index.splits[name]) for name in wanted),
                         config.data.image_size, config.data.channels)
        if train and labels is None and not config.data.window:  # a new run (export: labels)
            window_of_bit_depth([path for items in index.splits.values() for path, _ in items],
                                config)
        splits = {}
        for name in wanted:
            splits[name] = self._decode(index.splits[name], config, name, mapping)
        if len(splits["val"]) == 0:
            raise VisionsuiteError(f"{root}: the val split holds no readable images")
        if train and config.train.class_weights == "balanced":
            # Resolved here, so that the run's config.yaml keeps the weights it trained with.
            config.train.class_weights = balanced_weights(splits["train"].targets,
                                                          len(index.classes))
            print(f"train.class_weights=balanced: {config.train.class_weights}", file=sys.stderr)
        return TaskData(labels or index.classes, splits["val"], splits.get("train"),
                        fold_source(root, fold, config.data.split_seed, index.folds_by))

    def check_model(self, config: Config) -> None:
        super().check_model(config)
        weights = config.train.class_weights
        if isinstance(weights, str) and weights != "balanced":
            raise VisionsuiteError(f"train.class_weights must be 'balanced' or one weight per "
                                   f"class, got '{weights}'")
        if isinstance(weights, list) and (not weights or min(weights) < 0 or max(weights) <= 0):
            raise VisionsuiteError(f"train.class_weights {weights}: weights must be at least 0, "
                                   "and one above 0")

    @staticmethod
    def _decode(items, config: Config, name: str, mapping) -> Split:
        paths = [path for path, _ in items]
        targets = np.array([label for _, label in items], np.int32)
        decoded = decode_images(paths, config.data.image_size, config.data.channels,
                                config.data.workers, desc=f"decoding {name}",
                                window=config.data.window)
        targets = targets[decoded.kept]
        if mapping is not None:
            targets = mapping[targets].astype(np.int32)
        return Split(decoded.images, targets, [paths[i] for i in decoded.kept], decoded.skipped)

    def check_data(self, path: str, held_out: str = "val") -> DataReport:
        return check_image_folders(path, held_out)

    def unread_test_split(self, root: Path) -> str | None:
        """Also the test.csv of a set whose train table labels its images, and the test rows
        of a table's split column."""
        tables = image_table_files(Path(root)) if Path(root).is_dir() else {}
        try:  # a train.csv that cannot be read is data check's problem to report, not this one's
            if "test" in tables and labelled_by_tables(root, tables, image_lookup(Path(root))):
                return tables["test"].name
            rows = _split_column_test_rows(Path(root), tables)
        except VisionsuiteError:
            return None
        return rows or super().unread_test_split(root)

    def build_model(self, config: Config, labels: list[str]):
        import keras

        from visionsuite.core.backbones import build_backbone

        size, depth = config.data.image_size, config.data.channels
        inputs = keras.Input((size, size, depth), name="image")
        # The model takes raw 0..255 pixels, so that TFLite's uint8 input is the camera's bytes.
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
        features = build_backbone(config.model.backbone, x, config.model.width, config.model.depth)
        if len(features.shape) == 4:
            features = keras.layers.GlobalAveragePooling2D(name="pool")(features)
        if config.model.dropout > 0:
            features = keras.layers.Dropout(config.model.dropout, name="dropout")(features)
        outputs = keras.layers.Dense(len(labels), activation="softmax", dtype="float32",
                                     name="probabilities")(features)
        return keras.Model(inputs, outputs, name=config.model.backbone)

    def loss_and_metrics(self, config: Config, labels: list[str]):
        import keras

        weights = config.train.class_weights
        if weights is None:
            loss = keras.losses.CategoricalCrossentropy(
                label_smoothing=config.train.label_smoothing)
        elif len(weights) != len(labels):
            raise VisionsuiteError(f"train.class_weights has {len(weights)} values for "
                                   f"{len(labels)} classes ({', '.join(labels)})")
        else:
            loss = weighted_crossentropy_class()(weights, config.train.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if len(labels) > 5:  # with 5 classes or fewer, top-5 is always 1
            metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
        return loss, metrics

    def target_fn(self, labels: list[str]):
        import tensorflow as tf

        return lambda y: tf.one_hot(y, len(labels))

    def evaluate(self, outputs: np.ndarray, split: Split, labels: list[str],
                 settings: dict | None = None) -> dict:
        return classification_metrics(outputs, split.targets, labels)

    def headline(self, metrics: dict) -> dict[str, float]:
        keys = ("accuracy", "top5", "macro_f1")
        return {key: metrics[key] for key in keys if key in metrics}

    def agreement(self, outputs_a: np.ndarray, outputs_b: np.ndarray) -> float | None:
        return float((outputs_a.argmax(1) == outputs_b.argmax(1)).mean())

    def plot(self, metrics: dict, labels: list[str], folder: Path, prefix: str = "") -> list[Path]:
        from visionsuite.core.plots import plot_confusion

        path = folder / f"{prefix}confusion_matrix.png"
        plot_confusion(np.array(metrics["confusion_matrix"]), labels, path)
        return [path]

    def tflite_metadata(self, labels: list[str], quantized_input: bool):
        from visionsuite.core.metadata import MetadataSpec

        return MetadataSpec(
            name="visionsuite image classifier",
            description="Classifies an RGB image into one of the labels in labels.txt.",
            input_name="image",
            input_description="RGB image; pixel values 0..255.",
            output_name="probability",
            output_description="Probability of each class, in the order of labels.txt.",
            labels=labels,
            # Float models take 0..255 too (they scale inside the graph): mean 0, std 1.
            mean=0.0,
            std=1.0,
            output_range=(0.0, 1.0),
        )


def classification_metrics(probabilities: np.ndarray, targets: np.ndarray,
                           labels: list[str]) -> dict:
    """Accuracy, top-5 (more than 5 classes), per-class precision/recall/F1 and the confusion
    matrix."""
    count = len(labels)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((count, count), np.int64)
    np.add.at(confusion, (targets, predicted), 1)
    metrics = {"accuracy": float((predicted == targets).mean()), "images": int(len(targets))}
    if count > 5:
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        metrics["top5"] = float((top5 == targets[:, None]).any(axis=1).mean())
    true_pos = np.diag(confusion).astype(float)
    precision = np.divide(true_pos, confusion.sum(0), out=np.zeros(count),
                          where=confusion.sum(0) > 0)
    recall = np.divide(true_pos, confusion.sum(1), out=np.zeros(count), where=confusion.sum(1) > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(count), where=denominator > 0)
    present = confusion.sum(1) > 0
    metrics["macro_f1"] = float(f1[present].mean()) if present.any() else 0.0
    metrics["per_class"] = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(confusion[i].sum())}
        for i, label in enumerate(labels)
    }
    metrics["confusion_matrix"] = confusion.tolist()
    return metrics


TASK = ClassifyTask()


def check_image_folders(path: str, held_out: str = "val") -> DataReport:
    from collections import Counter

    from visionsuite.core.data import bit_depth_check, inspect_images
    from visionsuite.core.report import table

    test_set = held_out == "test" or held_out_only(path)
    try:
        index = index_image_folders(path, EVERY_IMAGE if test_set else 0.2, held_out=held_out)
    except VisionsuiteError as err:
        return DataReport(f"classify dataset {path}", False, str(err))
    rows, sizes, modes, unreadable, empty = [], Counter(), Counter(), [], []
    for key, items in index.splits.items():
        if test_set and key == "train":
            continue
        split = held_out if key == "val" else key
        infos, errors = inspect_images([p for p, _ in items])
        unreadable += errors
        readable = Counter(label for (_, label), info in zip(items, infos) if info)
        for info in filter(None, infos):
            sizes[f"{info[0][0]}x{info[0][1]}"] += 1
            modes[info[1]] += 1
        for label, name in enumerate(index.classes):
            rows.append({"split": split, "class": name, "images": readable[label]})
            if split == "train" and readable[label] == 0:
                empty.append(name)
    split_note = " (val split by val_fraction 0.2, seed 0)" if index.split_by_fraction else ""
    lines = [f"classify dataset {index.root}{split_note}"]
    shown = {name: held_out if name == "val" else name for name in index.folders}
    lines += [f"  {shown[name]}: {folder}/" for name, folder in index.folders.items()
              if folder != shown[name]]
    lines += [f"  {note}" for note in index.notes]
    lines += [f"  {test_set_note(held_out)}"] if test_set else []
    lines += [f"classes: {len(index.classes)}",
             table(rows), "",
             "sizes: " + ", ".join(f"{s} ({n})" for s, n in sizes.most_common(5))
             + (f", ... {len(sizes)} sizes in all" if len(sizes) > 5 else ""),
             "modes: " + ", ".join(f"{m} ({n})" for m, n in modes.most_common()),
             *bit_depth_check([path for items in index.splits.values() for path, _ in items],
                              modes)[1]]
    lines.append(f"unreadable images: {len(unreadable)}")
    lines += [f"  {message}" for message in unreadable]
    lines.append(f"files that are not images (ignored): {len(index.odd_files)}")
    lines += [f"  {p}" for p in index.odd_files[:20]]
    problem = (f"{path}: no readable images for class(es) {', '.join(empty)} in train"
               if empty else "")
    return DataReport("\n".join(lines), not problem, problem)


def classify_images(run: str, inputs, top_k: int = 5) -> list[dict]:
    """Top-k predictions of RUN (run folder, .keras or .tflite) for each image in `inputs`."""
    from visionsuite.core.images import collect_images
    from visionsuite.core.models import load_predictor, require_task, resolve_model

    source = resolve_model(run)
    require_task(source, "classify", run)
    predictor = load_predictor(source)
    paths = collect_images(inputs)
    decoded = decode_images(paths, predictor.image_size, predictor.channels, desc="reading",
                            window=source.settings.get("window"))
    if not len(decoded.kept):
        raise VisionsuiteError("none of the images could be read")
    outputs = predictor.predict(decoded.images)
    if outputs.ndim != 2:  # a bare .keras does not say its task
        raise VisionsuiteError(f"{run}: outputs of shape {outputs.shape[1:]}, not class scores; "
                               "not a classify model")
    labels = source.labels or [f"class_{i}" for i in range(outputs.shape[1])]
    results = []
    for index, scores in zip(decoded.kept, outputs):
        best = np.argsort(-scores)[:top_k]
        results.append({"image": str(paths[index]), "predictions": [
            {"label": labels[i], "score": round(float(scores[i]), 5)} for i in best]})
    return results
