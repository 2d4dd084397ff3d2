"""Run configuration: dataclass defaults < YAML file < command-line overrides.

Every key is declared here with its type; an unknown key or a value of the wrong type is a
one-line error naming the file and the closest valid key. YAML is read with ``safe_load`` and
``--set key=value`` values are parsed as YAML scalars, never evaluated.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from visionsuite.errors import VisionsuiteError

PACKAGE_CONFIGS = Path(__file__).parent / "configs"

# The shipped configs are tuned for real datasets; the small embedded default datasets (used
# when no dataset is given) train in about a minute with these instead.
EMBEDDED_SETTINGS = {
    "classify": {"data.image_size": 48, "train.epochs": 35, "train.warmup_epochs": 1.0,
                 "train.ema_momentum": 0.95},  # 600 images: 19 steps an epoch
    # 240 images of 160x120 with 0-3 plain shapes: a small input and network suffice.
    "detect": {"data.image_size": 128, "model.width": 0.125, "train.epochs": 30,
               "augment.mosaic_off_epochs": 5, "train.ema_momentum": 0.95,
               "train.warmup_epochs": 1.0},
    # 24 drawn people x 8 images of 96x96 (OpenCV's cascades do not see drawn faces); batches
    # of 16 give ArcFace enough steps to converge.
    "face": {"data.image_size": 64, "data.face_detect": False, "model.width": 0.5,
             "train.batch_size": 16, "train.epochs": 30, "train.warmup_epochs": 1.0,
             "train.ema_momentum": 0.95},
    # 24 images of 192x144 with plain nuclei: a small U-Net on 96-px crops, about 30 s.
    "segment": {"data.image_size": 96, "data.classes": ["background", "nucleus"],
                "model.levels": 3, "model.filters": 8, "train.epochs": 12,
                "train.warmup_epochs": 1.0, "train.ema_momentum": 0.95},
}


@dataclass
class DataConfig:
    path: str | None = None  # dataset root; empty = the embedded default dataset
    image_size: int = 96  # images are resized to image_size x image_size
    channels: int = 3  # 3 = RGB (grayscale is replicated), 1 = grayscale
    val_fraction: float = 0.2  # only when the dataset has no val/ folder
    split_seed: int = 0  # seed of that split, fixed so that runs compare
    workers: int = 0  # decoding threads; 0 = one per CPU core
    # segment: image_size is the side of training crops and inference tiles
    # class names; empty = discovered. segment: in mask-value order; detect: by class id;
    # classify: the class folders to train on, in this order (the others are left out)
    classes: list[str] | None = None
    # classify, images labelled by a CSV table: the columns naming the image and its class;
    # empty = found (the column whose values name images; label, class, dx, ... or one-hot)
    image_column: str | None = None
    label_column: str | None = None
    # segment: every mask value but 0 is foreground (true), each a class (false), or true
    # where the masks number objects 1..N (auto: instance masks, as Cellpose's)
    binary_masks: bool | str = "auto"
    # segment, colour masks: the colour ('#rrggbb') of each class, in class order; empty =
    # the colours found, black first (training saves them here in the run's config.yaml)
    colors: list[str] | None = None
    # segment, grey masks that code classes as a few grey levels (REFUGE's 0, 128, 255): the
    # value of each class in class order; empty = found (training saves them here)
    mask_values: list[int] | None = None
    # segment: classes also scored together, as regions (BraTS: whole tumour = necrosis +
    # edema + enhancing tumour), each a name and the classes' names
    regions: dict[str, list[str]] | None = None
    # segment, masks as run-length codes in a CSV (Kaggle's): how the codes number pixels,
    # column (top to bottom, then left to right) or row (left to right, then top to bottom)
    rle_order: str = "column"
    # segment: also the normalised surface Dice (NSD) at this distance, in the unit of the
    # surface distances (mm where the files give voxel sizes, else pixels), or at each named
    # structure's own ({kidney: 1, tumour: 2}: classes or regions); empty = none
    surface_tolerance: float | dict[str, float] | None = None
    crops_per_image: int = 8  # random crops per image and epoch
    # k-fold cross-validation of a dataset without a val split: split it into `folds`
    # seeded folds (classify: stratified by class; segment: whole cases where it has case
    # folders; face: whole people) and validate on fold `fold` (0 .. folds-1), one run per
    # fold; 0 = a val_fraction split
    folds: int = 0
    fold: int = 0
    tile_overlap: float = 0.25  # overlap of inference tiles, fraction of the tile side
    # segment: test-time augmentation: each tile also predicted in the flips and quarter turns
    # the run trained with (augment.flip, vflip, rotate90), and the predictions averaged
    tta: bool = False
    # images whose longer side exceeds this many pixels are scaled down to it (masks
    # nearest-neighbour) for training, metrics and prediction, and predicted masks scaled back
    # to the image's own size; empty = every image at its own size
    max_size: int | None = None
    # DICOM, NIfTI and 16-bit intensities: [center, width] (CT: [40, 400] soft tissue,
    # [-600, 1500] lung); empty = the file's own window (DICOM WindowCenter/Width, NIfTI
    # cal_min/max), else its 0.5-99.5 percentile range; 16-bit PNG/TIFF: the dataset's bit
    # depth, which a new run of any task measures and keeps here (images.bit_depth_window)
    window: list[float] | None = None
    # face: auto (find faces; a set whose faces fill the frame is used whole) | true (crop
    # each image's face; images without one are skipped) | false (the images are face crops)
    face_detect: bool | str = "auto"
    # face: a file of verification pairs (LFW's pairs.txt, lines 'IMAGE_A IMAGE_B 1|0', or
    # an InsightFace .bin holding its images; evaluate --pairs' formats) that picks the
    # epoch and the threshold instead of held-out people: every person of train trains. Its
    # images are under val_pairs_images; empty = found as evaluate --pairs finds them
    # without --data (beside the file)
    val_pairs: str | None = None
    val_pairs_images: str | None = None


@dataclass
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    vflip: float = 0.0  # probability of a vertical flip (microscopy, slides: no "up")
    rotate: float = 10.0  # max rotation, degrees
    rotate90: float = 0.0  # probability of a quarter turn (exact; with flips: all 8 symmetries)
    translate: float = 0.1  # max shift, fraction of the image side
    zoom: float = 0.1  # max zoom in or out, fraction
    brightness: float = 0.2  # max brightness change, fraction of the range
    contrast: float = 0.2  # max contrast change, fraction
    erase: float = 0.0  # probability of random erasing (cutout)
    # elastic deformation (U-Net paper: 10 px on a 3x3 grid): a smooth random displacement
    # of every pixel, this standard deviation in pixels, varying over elastic_grid nodes
    elastic: float = 0.0
    elastic_grid: int = 3
    # segment: share of the training crops taken from images that hold labels (a class other
    # than 0), centred on a pixel of a class drawn among those the image holds: small lesions
    # in large scans are seldom in a random crop (nnU-Net forces a third of its patches onto
    # them)
    foreground_crops: float = 0.0
    # detect
    mosaic: float = 0.0  # probability of a 4-image mosaic
    mosaic_off_epochs: int = 10  # no mosaic in the last epochs (train on whole images)
    hue: float = 0.0  # max hue change, fraction
    saturation: float = 0.0  # max saturation change, fraction


# The keys of AugmentConfig that switch an augmentation on (0 = off); the others only qualify
# one of them. Each task says which switches it applies (Task.augmentations).
AUGMENT_SWITCHES = tuple(item.name for item in dataclasses.fields(AugmentConfig)
                         if item.name not in ("mosaic_off_epochs", "elastic_grid"))


@dataclass
class ModelConfig:
    backbone: str = "resnet18"  # see `visionsuite models`
    width: float = 1.0  # channel multiplier
    depth: float = 1.0  # block-count multiplier (families that have stages of blocks)
    dropout: float = 0.2  # before the classifier
    weights: str | None = None  # a local .keras / .weights.h5 file to start from
    # segment (U-Net)
    levels: int = 4  # down-sampling steps of the U-Net
    filters: int = 32  # filters of the first level, doubled at each level down
    norm: str = "batch"  # batch | group | none
    upsample: str = "transpose"  # transpose (learned) | bilinear
    # keep only the largest connected component of a class (and of all foreground classes
    # together) where that raises the val Dice, chosen at the end of training (nnU-Net)
    keep_largest_component: bool = True
    # touching objects of a class split where the distance map has a peak in each (objects
    # scored and numbered, not pixels): auto (chosen on val) | false | a tolerance in px
    split_touching: bool | float | str = "auto"
    # detect: non-max suppression, in evaluation and inside the exported graph
    score_threshold: float = 0.001  # boxes scoring less are dropped before NMS
    nms_iou: float = 0.6  # boxes of a class overlapping a better one more than this go
    max_detections: int = 100  # per image
    # face
    embedding_size: int = 128  # length of the unit-vector embedding; 0 = the pooled features
    flip_average: bool = False  # the saved model embeds the face and its mirror image


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 32
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 0.002  # peak learning rate, after warm-up
    weight_decay: float = 0.05
    warmup_epochs: float = 3.0
    min_lr_ratio: float = 0.01  # cosine decay ends at lr * min_lr_ratio
    label_smoothing: float = 0.1
    loss: str = "ce"  # segment: ce | dice | focal, or sums such as ce+dice; face: arcface |
    # cosface | triplet
    margin: float | None = None  # face: the loss's margin; empty = the paper's (0.5, 0.35, 0.2)
    scale: float = 32.0  # face: scale of the cosine logits (ArcFace, CosFace)
    # face: K >= 2 makes each batch batch_size / K identities with K images each (the "PK"
    # batches that batch-hard triplets need); 0 = random batches; empty = 4 for triplet, else 0
    images_per_identity: int | None = None
    # segment, classify: the weight of each class in the loss (segment: ce and focal);
    # classify also takes `balanced`: count of train images / (classes x the class's count)
    class_weights: list[float] | str | None = None
    ema: bool = True  # evaluate and save an exponential moving average of the weights
    ema_momentum: float = 0.99  # its most: min(ema_momentum, (1 + step) / (10 + step))
    patience: int = 20  # early stopping on the val metric; 0 = off
    # wall-clock limit of a run, from its start to its last epoch: when the epochs would not
    # fit, fewer are trained and the learning-rate decay is fitted to them; empty = none
    max_minutes: float | None = None
    checkpoint_seconds: float = 60.0  # save last.keras (for --resume) at most this often
    seed: int = 0
    # auto (bfloat16 on CPUs with AMX or AVX512-BF16 for models whose convolutions' channels
    # are multiples of 16, else float32: core.train.bfloat16_suits) | false | bfloat16 (those
    # CPUs, recent GPUs) | float16 (GPUs; true means float16). Weights, the saved model and
    # exports stay float32.
    mixed_precision: bool | str = False
    jit_compile: bool | str = "auto"  # XLA: auto (Keras: off on CPU-only machines) | true | false
    tensorboard: bool = True


@dataclass
class ExportConfig:
    quantize: str = "int8"  # none | float16 | dynamic | int8
    calibration: int = 200  # representative images for int8


@dataclass
class Config:
    task: str = "classify"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def default_config_path(task: str) -> Path:
    """`configs/TASK.yaml` of the working directory if present, else the packaged one."""
    local = Path("configs") / f"{task}.yaml"
    return local if local.is_file() else PACKAGE_CONFIGS / f"{task}.yaml"


def load_config(
    task: str,
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | tuple[str, ...] = (),
    *,
    whole: bool = False,
) -> Config:
    """Resolve a config: the shipped configs/TASK.yaml, then the keys of the YAML file `path`,
    then `overrides`, then `key=value` sets. So a file of one's own needs only the keys it
    changes. `whole`: `path` is a whole config (a run's config.yaml, for --resume), read over
    the dataclass defaults alone, as it was saved. Without a dataset, the embedded default
    dataset's own settings (EMBEDDED_SETTINGS) replace the shipped file's, except for keys given
    in `path`, as overrides or as sets."""
    explicit = {key for key, value in (overrides or {}).items() if value is not None}
    explicit |= {item.partition("=")[0].strip() for item in sets}
    if path and whole:
        config = _build(Config, _task_yaml(path, task), str(path), "")
    else:
        shipped = default_config_path(task)
        config = _build(Config, _task_yaml(shipped, task), str(shipped), "")
        for key, value in dotted_items(_task_yaml(path, task) if path else {}):
            set_key(config, key, value, str(path))
            explicit.add(key)
    for key, value in (overrides or {}).items():
        if value is not None:
            set_key(config, key, value, "command line")
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep:
            raise VisionsuiteError(f"--set {item}: expected key=value, e.g. train.epochs=30")
        set_key(config, key.strip(), yaml.safe_load(text) if text.strip() else None, "--set")
    if not whole and not config.data.path:
        for key, value in EMBEDDED_SETTINGS.get(task, {}).items():
            if key not in explicit:
                set_key(config, key, value, "embedded dataset settings")
    return config


def _task_yaml(path: str | Path, task: str) -> dict:
    raw = read_yaml(path)
    raw.setdefault("task", task)
    if raw["task"] != task:
        raise VisionsuiteError(f"{path}: config is for task '{raw['task']}', not '{task}'")
    return raw


def dotted_items(raw: dict):
    """(section.key, value) of a config file's mapping; a section left empty sets nothing."""
    sections = Config()
    for name, value in raw.items():
        if isinstance(value, dict):
            yield from ((f"{name}.{key}", item) for key, item in value.items())
        elif value is not None or not dataclasses.is_dataclass(getattr(sections, str(name), 0)):
            yield str(name), value  # set_key names what is wrong with it


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise VisionsuiteError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise VisionsuiteError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VisionsuiteError(f"{path}: expected a mapping of sections at the top level")
    return data


def config_from_dict(raw: dict, source: str) -> Config:
    return _build(Config, raw, source, "")


def set_key(config: Config, dotted: str, value: Any, source: str) -> None:
    """Set `section.key` on a resolved config, with the same checks as the YAML file."""
    target: Any = config
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(target)]
        if part not in names:
            prefix = ".".join(parts[:depth])
            raise VisionsuiteError(_unknown_key(source, prefix, part, names))
        if depth == len(parts) - 1:
            hint = typing.get_type_hints(type(target))[part]
            if dataclasses.is_dataclass(hint):
                raise VisionsuiteError(f"{source}: '{dotted}' is a section; set one of its keys")
            setattr(target, part, _in_range(_coerce(value, hint, source, dotted), source, dotted))
        else:
            target = getattr(target, part)
            if not dataclasses.is_dataclass(target):
                raise VisionsuiteError(f"{source}: '{'.'.join(parts[:depth + 1])}' has no keys")


def _build(cls: type, raw: Any, source: str, prefix: str):
    if not isinstance(raw, dict):
        raise VisionsuiteError(f"{source}: '{prefix}' must be a mapping of keys")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in names:
            raise VisionsuiteError(_unknown_key(source, prefix, str(key), names))
        keypath = f"{prefix}.{key}" if prefix else key
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value or {}, source, keypath)
        else:
            values[key] = _in_range(_coerce(value, hint, source, keypath), source, keypath)
    return cls(**values)


def _unknown_key(source: str, prefix: str, key: str, names: list[str]) -> str:
    where = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean '{prefix + '.' if prefix else ''}{close[0]}'?)" if close else ""
    return f"{source}: unknown config key '{where}'{hint}"


def _coerce(value: Any, hint: Any, source: str, keypath: str) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise VisionsuiteError(f"{source}: '{keypath}' needs a value")
    for kind in allowed:
        if kind is bool:
            if isinstance(value, bool):
                return value
        elif kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif kind is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind is str:
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return str(value)
        elif typing.get_origin(kind) is list:
            if isinstance(value, list):
                item = typing.get_args(kind)[0]
                return [_coerce(v, item, source, f"{keypath}[{i}]") for i, v in enumerate(value)]
        elif typing.get_origin(kind) is dict:
            if isinstance(value, dict):
                item = typing.get_args(kind)[1]
                return {str(k): _coerce(v, item, source, f"{keypath}.{k}")
                        for k, v in value.items()}
    names = " or ".join(_type_name(k) for k in allowed if k is not type(None))
    raise VisionsuiteError(f"{source}: '{keypath}' must be {names}, got {value!r}")


def _at_least(low):
    return (lambda value: value >= low), f"at least {low}"


def _above(low):
    return (lambda value: value > low), f"above {low}"


def _between(low, high):
    return (lambda value: low <= value <= high), f"between {low} and {high}"


def _one_of(*choices):
    return (lambda value: value in choices), " or ".join(str(c) for c in choices)


def _below(low, high):
    return (lambda value: low <= value < high), f"at least {low} and below {high}"


# The numbers a key can take, where its type alone admits nonsense (a negative epoch count,
# a flip probability of 2) that would fail deep inside TensorFlow or silently do nothing.
RANGES = {
    "data.image_size": _at_least(16), "data.channels": _at_least(1),
    "data.val_fraction": _between(0, 1), "data.crops_per_image": _at_least(1),
    "data.tile_overlap": _below(0, 1), "data.workers": _at_least(0),
    "data.max_size": _at_least(16), "data.surface_tolerance": _above(0),
    "data.rle_order": _one_of("column", "row"), "data.folds": _at_least(0),
    "data.fold": _at_least(0),
    **{f"augment.{key}": _between(0, 1) for key in (
        "flip", "vflip", "rotate90", "erase", "mosaic", "brightness", "contrast", "hue",
        "saturation", "foreground_crops")},
    "augment.rotate": _between(0, 180), "augment.translate": _below(0, 1),
    "augment.zoom": _below(0, 1), "augment.mosaic_off_epochs": _at_least(0),
    "augment.elastic": _at_least(0), "augment.elastic_grid": _at_least(2),
    "model.width": _above(0), "model.depth": _above(0), "model.dropout": _below(0, 1),
    "model.levels": _at_least(1), "model.filters": _at_least(1),
    "model.score_threshold": _between(0, 1), "model.nms_iou": _between(0, 1),
    "model.max_detections": _at_least(1), "model.embedding_size": _at_least(0),
    "train.epochs": _at_least(1), "train.batch_size": _at_least(1), "train.lr": _above(0),
    "train.weight_decay": _at_least(0), "train.warmup_epochs": _at_least(0),
    "train.min_lr_ratio": _between(0, 1), "train.label_smoothing": _below(0, 1),
    "train.margin": _at_least(0), "train.scale": _above(0), "train.ema_momentum": _below(0, 1),
    "train.patience": _at_least(0), "train.max_minutes": _above(0),
    "train.checkpoint_seconds": _at_least(0),
    "export.calibration": _at_least(1),
}


# Keys that only some tasks read, and which. Set to anything but its default for another task,
# such a key would change nothing without a word: Task.check_settings refuses it.
TASK_KEYS = {
    **{f"data.{key}": ("segment",) for key in (
        "binary_masks", "colors", "mask_values", "regions", "surface_tolerance",
        "crops_per_image", "tile_overlap", "tta", "max_size", "rle_order")},
    "data.window": ("segment", "classify", "detect", "face"),
    "data.face_detect": ("face",), "data.val_pairs": ("face",),
    "data.val_pairs_images": ("face",),
    **{f"data.{key}": ("classify",) for key in ("image_column", "label_column")},
    **{f"model.{key}": ("segment",) for key in (
        "levels", "filters", "norm", "upsample", "keep_largest_component", "split_touching")},
    "model.dropout": ("classify", "face", "segment"),
    **{f"model.{key}": ("detect",) for key in ("score_threshold", "nms_iou", "max_detections")},
    "model.embedding_size": ("face",), "model.flip_average": ("face",),
    "train.label_smoothing": ("classify",), "train.loss": ("segment", "face"),
    **{f"train.{key}": ("face",) for key in ("margin", "scale", "images_per_identity")},
    "train.class_weights": ("segment", "classify"),
}


def settings_not_read(config: Config) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(key, value, the tasks that read it) for each key of TASK_KEYS that `config` sets to
    something other than its default although its task does not read it."""
    found = []
    defaults = Config()
    for dotted, readers in TASK_KEYS.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if config.task not in readers and value != getattr(getattr(defaults, section), key):
            found.append((dotted, value, readers))
    return found


def _in_range(value: Any, source: str, keypath: str) -> Any:
    check = RANGES.get(keypath)
    if isinstance(value, dict):  # one number per name (data.surface_tolerance's structures)
        for key, item in value.items():
            if check is not None and not check[0](item):
                raise VisionsuiteError(f"{source}: '{keypath}.{key}' must be {check[1]}, "
                                       f"got {item!r}")
    elif check is not None and value is not None and not check[0](value):
        raise VisionsuiteError(f"{source}: '{keypath}' must be {check[1]}, got {value!r}")
    return value


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is list:
        return f"a list of {typing.get_args(kind)[0].__name__}"
    if typing.get_origin(kind) is dict:
        return "a mapping of names to " + _type_name(typing.get_args(kind)[1]).replace(
            "a list of", "lists of")
    return kind.__name__


def save_config(config: Config, path: Path) -> None:
    from visionsuite.core.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
