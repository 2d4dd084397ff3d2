"""The U-Net (plain, or on an encoder of the backbone zoo), its loss and its training metric."""

from __future__ import annotations

import functools

from visionsuite.config import Config
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.mask_classes import IGNORE

LOSS_TERMS = ("ce", "dice", "focal")


# model.backbone values that mean the plain U-Net's encoder; any other names a zoo backbone.
OWN_BACKBONES = ("unet", "", None)


@functools.cache
def keras_parts():
    """The loss and the metric as Keras classes, defined once, on first use (Keras loads
    lazily), and registered, so that last.keras loads in safe mode."""
    import keras
    from keras import ops

    from visionsuite.core.train import xla_compiled

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
            self._compiled_total = xla_compiled(self._total)

        def call(self, y_true, y_pred):
            return self._compiled_total(y_true, y_pred)

        def _total(self, y_true, y_pred):
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
            self._compiled_confusion = xla_compiled(self._confusion)

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.confusion.assign_add(self._compiled_confusion(y_true, y_pred))

        def _confusion(self, y_true, y_pred):
            classes = self.classes
            y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
            predicted = ops.argmax(ops.reshape(y_pred, (-1, classes)), -1)
            if classes <= 3:
                # Each pixel's (truth, prediction) pair counted in one fused reduction: for 2
                # and 3 classes 1.4 and 2.2 ms a batch of 8 256-px crops, against 3.2 and 6.2
                # for the one-hot product below (which is faster from 5 classes).
                pairs = ops.where(y_true == IGNORE, -1,
                                  y_true * classes + ops.cast(predicted, "int32"))
                cells = ops.arange(classes * classes, dtype="int32")
                counts = ops.sum(ops.cast(pairs[:, None] == cells[None, :], "float32"), 0)
                return ops.reshape(counts, (classes, classes))
            valid = ops.cast(ops.not_equal(y_true, IGNORE), "float32")
            truth = ops.one_hot(ops.where(y_true == IGNORE, 0, y_true), classes)
            return ops.matmul(ops.transpose(truth * valid[:, None]),
                              ops.one_hot(predicted, classes))

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


def check_unet_settings(config: Config) -> None:
    """The errors of a U-Net config that need no data, so that training names them first."""
    if config.model.norm not in ("batch", "group", "none"):
        raise VisionsuiteError(f"model.norm must be batch, group or none, got "
                               f"'{config.model.norm}'")
    if config.model.upsample not in ("transpose", "bilinear"):
        raise VisionsuiteError(f"model.upsample must be transpose or bilinear, got "
                               f"'{config.model.upsample}'")
    size, levels = config.data.image_size, config.model.levels
    if config.model.backbone in OWN_BACKBONES and size % (2 ** levels):
        raise VisionsuiteError(f"data.image_size {size} must be a multiple of "
                               f"2**model.levels = {2 ** levels}")
    parse_loss(config.train.loss)
    if isinstance(config.train.class_weights, str):
        raise VisionsuiteError(f"train.class_weights={config.train.class_weights}: segment "
                               "takes one weight per class, e.g. [1.0, 3.0]")


def build_unet(config: Config, classes: int):
    """A U-Net: `levels` down-sampling steps of two 3x3 conv blocks, filters doubling at each,
    skip connections into a mirrored decoder, softmax over the classes. With model.backbone
    other than 'unet', the encoder is that backbone from the zoo and its feature maps at
    strides 2..16 are the skips."""
    import keras
    from keras import layers

    check_unet_settings(config)
    size, channels = config.data.image_size, config.data.channels
    levels, filters = config.model.levels, config.model.filters
    inputs = keras.Input((size, size, channels), name="image")
    # Raw 0..255 pixels in, as for classification: TFLite's uint8 input is the image's bytes.
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    if config.model.backbone in OWN_BACKBONES:
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

    from visionsuite.core.backbones import FusedBatchNormalization

    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=norm == "none",
                          name=f"{name}_conv{index}")(x)
        if norm == "batch":
            # Momentum 0.9, as the zoo's backbones (and PyTorch): with Keras' 0.99 the moving
            # statistics of a small set's first epochs (14 images: 14 steps each) were still
            # mostly their initial 0 and 1, and val Dice fell to 0.07 while train Dice was 0.93.
            x = FusedBatchNormalization(momentum=0.9, name=f"{name}_bn{index}")(x)
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
