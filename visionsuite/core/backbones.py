"""CNN backbones written for this project, registered by name, scalable in width and depth.

Why not `keras.applications`: those fix the stem and block counts of the ImageNet models, some
carry their own preprocessing layers, and none scales to the tiny instances that tests convert
to int8 in seconds. These follow the papers' blocks closely and take a `width` (channel) and a
`depth` (blocks per stage) multiplier. Every op is one TFLite has full-integer kernels for.

A backbone maps an input tensor (already scaled to [-1, 1]) to a feature tensor: a feature map
(B, h, w, C), or (B, C) for LeNet whose classic design ends in dense layers.
Adding a backbone means one function and one `@register` line.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
from keras import layers

BACKBONES: dict[str, Callable] = {}


def register(*names: str, **preset):
    """Register a builder under `names`; `preset` keyword arguments are bound per name."""

    def wrap(builder):
        for name in names:
            BACKBONES[name] = (builder, preset.get(name, {}))
        return builder

    return wrap


def check_backbone_name(name: str, own: tuple[str, ...] = ()) -> None:
    """A one-line error for a backbone that is neither in the zoo nor one of a task's `own`
    (the U-Net's, the YOLO detector's), with the closest name."""
    from visionsuite.errors import VisionsuiteError

    if name in BACKBONES or name in own:
        return
    import difflib

    known = [n for n in own if n] + sorted(BACKBONES)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise VisionsuiteError(f"unknown backbone '{name}'{hint}; choose one of: "
                           + ", ".join(known))


def build_backbone(name: str, inputs, width: float = 1.0, depth: float = 1.0):
    check_backbone_name(name)
    builder, preset = BACKBONES[name]
    return builder(inputs, width=width, depth=depth, **preset)


def feature_maps(name: str, inputs, width: float = 1.0, depth: float = 1.0):
    """The backbone's output, and for each spatial side the last feature map of that side
    inside it: the skips of a U-Net, the pyramid of a detector."""
    import keras

    top = build_backbone(name, inputs, width, depth)
    by_side = {}
    for layer in keras.Model(inputs, top).layers:
        shape = getattr(layer.output, "shape", None)
        if shape is not None and len(shape) == 4:
            by_side[shape[1]] = layer.output
    return top, by_side


def channels(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of `divisor`, never below 90% of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def repeats(count: int, depth: float) -> int:
    return max(1, int(math.ceil(count * depth)))


def conv_bn(x, filters, kernel=3, stride=1, activation="relu", depthwise=False, name=None):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False,
                                   name=name and name + "_dw")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False,
                          name=name and name + "_conv")(x)
    x = FusedBatchNormalization(momentum=0.9, epsilon=1e-3, name=name and name + "_bn")(x)
    if activation == "hard_swish":
        x = HardSwish(name=name and name + "_act")(x)
    elif activation == "prelu":
        x = PReLU(name=name and name + "_act")(x)
    elif activation:
        x = layers.Activation(activation, name=name and name + "_act")(x)
    return x


@keras.saving.register_keras_serializable(package="visionsuite")
class FusedBatchNormalization(layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training step runs TensorFlow's fused kernel
    (oneDNN's on CPUs). Keras 3 writes batch norm as a dozen separate ops, each a pass over the
    tensor, and casts bfloat16 activations to float32 and back around them: they took most of a
    U-Net's train step here (bfloat16: 0.68 s of which convolutions 0.13 s; fused: 0.35 s;
    float32: 0.86 s, fused 0.64 s). The same function, gradients and moving statistics; the
    kernel's batch variance is unbiased, Keras' is not, and is converted back. Inference, and so
    every export, is Keras' own code."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,))
        beta = self.beta if self.center else tf.zeros((channels,))
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.cast(gamma, "float32"), tf.cast(beta, "float32"), epsilon=self.epsilon,
            data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(inputs, out_type=tf.int64) // channels, "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask) -> bool:
        """Where the kernel computes what Keras' code does: 4-D channels-last tensors of a
        float type it takes, and none of the options it lacks."""
        return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (-1, 3) and inputs.shape[-1] is not None and mask is None
                and not self.renorm and not self.synchronized and self.epsilon >= 1.001e-5
                and keras.backend.standardize_dtype(inputs.dtype)
                in ("float32", "bfloat16", "float16"))


@keras.saving.register_keras_serializable(package="visionsuite")
class HardSwish(layers.Layer):
    """x * relu6(x + 3) / 6, written so that the TFLite converter does not fuse it into its
    HARD_SWISH op: LiteRT's XNNPACK delegate has no int8 kernel for that op, so each one splits
    the int8 graph and runs outside XNNPACK (MobileNetV3-small int8 ran 3.5x slower than float32
    here). As ADD(relu6) and two MULs, the whole int8 graph stays in XNNPACK."""

    def call(self, inputs):
        return (inputs * (1.0 / 6.0)) * keras.ops.relu6(inputs + 3.0)


@keras.saving.register_keras_serializable(package="visionsuite")
class PReLU(layers.Layer):
    """max(x, 0) + a * min(x, 0) with one learned slope `a` per channel (He et al. 2015;
    initial 0.25), kept in [0, 1] and computed as max(x, a * x). Why not keras.layers.PReLU:
    it becomes TFLite's PRELU op, which LiteRT's XNNPACK delegate does not run in int8, and an
    int8 MobileFaceNet then ran 13x slower than its float32 file (3.2 vs 0.25 ms; written with
    RELU ops instead: 4 ms). XNNPACK does not take int8 MAXIMUM either (LiteRT 2.1 and 2.3:
    the shipped face embedder runs as 36 XNNPACK partitions, its 66 MAXIMUMs in LiteRT's own
    kernels between them), yet it ran fastest so: a * x + relu((1 - a) * x), which XNNPACK
    takes whole, ran 1.44 against 1.27 ms in int8 and 1.19 against 1.09 ms in float32
    (AMD Zen 3, 1 thread)."""

    def build(self, input_shape):
        self.slope = self.add_weight(shape=(input_shape[-1],), name="slope",
                                     initializer=keras.initializers.Constant(0.25))

    def call(self, inputs):
        slope = keras.ops.clip(keras.ops.cast(self.slope, inputs.dtype), 0.0, 1.0)
        return keras.ops.maximum(inputs, inputs * slope)


def squeeze_excite(x, reduced, gate="sigmoid", name=None):
    filters = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=name and name + "_pool")(x)
    s = layers.Conv2D(reduced, 1, activation="relu", name=name and name + "_reduce")(s)
    s = layers.Conv2D(filters, 1, activation=gate, name=name and name + "_expand")(s)
    return layers.Multiply(name=name and name + "_scale")([x, s])


# LeNet-5 (LeCun et al. 1998), with ReLU and max-pooling as it is used today.
@register("lenet")
def lenet(x, width=1.0, depth=1.0):
    x = layers.Conv2D(channels(6 * width, 2), 5, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(channels(16 * width, 2), 5, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(channels(120 * width, 2), activation="relu", name="fc1")(x)
    return layers.Dense(channels(84 * width, 2), activation="relu", name="fc2")(x)


# VGG (Simonyan & Zisserman 2014) with batch norm; global pooling replaces the 4096-wide dense
# layers, which hold 90% of the original's weights and add nothing at these image sizes.
VGG_STAGES = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3),
              "vgg19": (2, 2, 4, 4, 4)}


@register(*VGG_STAGES, **{name: {"stages": stages} for name, stages in VGG_STAGES.items()})
def vgg(x, width=1.0, depth=1.0, stages=(2, 2, 3, 3, 3)):
    for stage, (count, filters) in enumerate(zip(stages, (64, 128, 256, 512, 512)), 1):
        for block in range(repeats(count, depth)):
            x = conv_bn(x, channels(filters * width), name=f"stage{stage}_{block}")
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    return x


# ResNet v1.5 (He et al. 2015): stride on the 3x3 conv of bottlenecks.
RESNET_BLOCKS = {"resnet18": ((2, 2, 2, 2), False), "resnet34": ((3, 4, 6, 3), False),
                 "resnet50": ((3, 4, 6, 3), True), "resnet101": ((3, 4, 23, 3), True)}


@register(*RESNET_BLOCKS, **{n: {"blocks": b, "bottleneck": k}
                             for n, (b, k) in RESNET_BLOCKS.items()})
def resnet(x, width=1.0, depth=1.0, blocks=(2, 2, 2, 2), bottleneck=False):
    x = conv_bn(x, channels(64 * width), 7, 2, name="stem")
    x = layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    for stage, (count, filters) in enumerate(zip(blocks, (64, 128, 256, 512)), 1):
        for block in range(repeats(count, depth)):
            stride = 2 if block == 0 and stage > 1 else 1
            name = f"stage{stage}_{block}"
            x = _resnet_block(x, channels(filters * width), stride, bottleneck, name)
    return x


def _resnet_block(x, filters, stride, bottleneck, name):
    out_filters = filters * 4 if bottleneck else filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out_filters:
        shortcut = conv_bn(x, out_filters, 1, stride, activation=None, name=name + "_short")
    if bottleneck:
        y = conv_bn(x, filters, 1, name=name + "_a")
        y = conv_bn(y, filters, 3, stride, name=name + "_b")
        y = conv_bn(y, out_filters, 1, activation=None, name=name + "_c")
    else:
        y = conv_bn(x, filters, 3, stride, name=name + "_a")
        y = conv_bn(y, filters, 3, activation=None, name=name + "_b")
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def _inverted_residual(x, expand, out, kernel, stride, activation, se_ratio, name, se_gate):
    """MobileNetV2/V3 and EfficientNet's MBConv: expand 1x1, depthwise, (SE), project 1x1."""
    inputs = x
    hidden = channels(x.shape[-1] * expand)
    if expand != 1:
        x = conv_bn(x, hidden, 1, activation=activation, name=name + "_expand")
    x = conv_bn(x, hidden, kernel, stride, activation=activation, depthwise=True, name=name)
    if se_ratio:
        x = squeeze_excite(x, channels(hidden * se_ratio), se_gate, name=name + "_se")
    x = conv_bn(x, out, 1, activation=None, name=name + "_project")
    if stride == 1 and inputs.shape[-1] == out:
        x = layers.Add(name=name + "_add")([inputs, x])
    return x


# MobileNetV2 (Sandler et al. 2018): (expansion, channels, repeats, stride).
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@register("mobilenetv2")
def mobilenetv2(x, width=1.0, depth=1.0):
    x = conv_bn(x, channels(32 * width), 3, 2, activation="relu6", name="stem")
    for stage, (expand, filters, count, stride) in enumerate(MOBILENETV2_STAGES, 1):
        for block in range(repeats(count, depth)):
            x = _inverted_residual(x, expand, channels(filters * width), 3,
                                   stride if block == 0 else 1, "relu6", 0,
                                   f"stage{stage}_{block}", "sigmoid")
    return conv_bn(x, channels(1280 * max(width, 1.0)), 1, activation="relu6", name="top")


# MobileFaceNet (Chen et al. 2018): MobileNetV2 blocks sized for 112x112 faces, with PReLU and
# a 512-channel top; (expansion, channels, repeats, stride). Its global depthwise head lives in
# the face task, so that any backbone here can embed faces.
MOBILEFACENET_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2),
                        (2, 128, 2, 1))


@register("mobilefacenet")
def mobilefacenet(x, width=1.0, depth=1.0):
    x = conv_bn(x, channels(64 * width), 3, 2, activation="prelu", name="stem")
    x = conv_bn(x, channels(64 * width), 3, activation="prelu", depthwise=True, name="stem_dw")
    for stage, (expand, filters, count, stride) in enumerate(MOBILEFACENET_STAGES, 1):
        for block in range(repeats(count, depth)):
            x = _inverted_residual(x, expand, channels(filters * width), 3,
                                   stride if block == 0 else 1, "prelu", 0,
                                   f"stage{stage}_{block}", "sigmoid")
    return conv_bn(x, channels(512 * width), 1, activation="prelu", name="top")


# MobileNetV3 (Howard et al. 2019): (kernel, expansion, channels, squeeze-excite, activation,
# stride), one row per block, as in the paper's tables.
MOBILENETV3_BLOCKS = {
    "mobilenetv3_small": ((3, 1, 16, True, "relu", 2), (3, 4.5, 24, False, "relu", 2),
                          (3, 3.67, 24, False, "relu", 1), (5, 4, 40, True, "hard_swish", 2),
                          (5, 6, 40, True, "hard_swish", 1), (5, 6, 40, True, "hard_swish", 1),
                          (5, 3, 48, True, "hard_swish", 1), (5, 3, 48, True, "hard_swish", 1),
                          (5, 6, 96, True, "hard_swish", 2), (5, 6, 96, True, "hard_swish", 1),
                          (5, 6, 96, True, "hard_swish", 1)),
    "mobilenetv3_large": ((3, 1, 16, False, "relu", 1), (3, 4, 24, False, "relu", 2),
                          (3, 3, 24, False, "relu", 1), (5, 3, 40, True, "relu", 2),
                          (5, 3, 40, True, "relu", 1), (5, 3, 40, True, "relu", 1),
                          (3, 6, 80, False, "hard_swish", 2), (3, 2.5, 80, False, "hard_swish", 1),
                          (3, 2.3, 80, False, "hard_swish", 1), (3, 2.3, 80, False, "hard_swish", 1),
                          (3, 6, 112, True, "hard_swish", 1), (3, 6, 112, True, "hard_swish", 1),
                          (5, 6, 160, True, "hard_swish", 2), (5, 6, 160, True, "hard_swish", 1),
                          (5, 6, 160, True, "hard_swish", 1)),
}


@register(*MOBILENETV3_BLOCKS, **{n: {"blocks": b} for n, b in MOBILENETV3_BLOCKS.items()})
def mobilenetv3(x, width=1.0, depth=1.0, blocks=()):
    x = conv_bn(x, channels(16 * width), 3, 2, activation="hard_swish", name="stem")
    for index, (kernel, expand, filters, se, activation, stride) in enumerate(blocks):
        # depth < 1 drops repeated blocks (stride 1, same width), never a down-sampling one.
        if depth < 1 and stride == 1 and index % max(1, round(1 / depth)):
            continue
        x = _inverted_residual(x, expand, channels(filters * width), kernel, stride, activation,
                               0.25 if se else 0, f"block{index}", "hard_sigmoid")
    return conv_bn(x, channels(x.shape[-1] * 6), 1, activation="hard_swish", name="top")


# EfficientNet (Tan & Le 2019): B0's (expansion, channels, repeats, stride, kernel) and the
# compound (width, depth) coefficients of B0-B3.
EFFICIENTNET_STAGES = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
                       (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))
EFFICIENTNET_SCALES = {"efficientnet_b0": (1.0, 1.0), "efficientnet_b1": (1.0, 1.1),
                       "efficientnet_b2": (1.1, 1.2), "efficientnet_b3": (1.2, 1.4)}


@register(*EFFICIENTNET_SCALES, **{n: {"scale": s} for n, s in EFFICIENTNET_SCALES.items()})
def efficientnet(x, width=1.0, depth=1.0, scale=(1.0, 1.0)):
    width, depth = width * scale[0], depth * scale[1]
    x = conv_bn(x, channels(32 * width), 3, 2, activation="swish", name="stem")
    for stage, (expand, filters, count, stride, kernel) in enumerate(EFFICIENTNET_STAGES, 1):
        for block in range(repeats(count, depth)):
            # SE is sized from the block's input channels, as in the paper.
            x = _inverted_residual(x, expand, channels(filters * width), kernel,
                                   stride if block == 0 else 1, "swish", 0.25 / expand,
                                   f"stage{stage}_{block}", "sigmoid")
    return conv_bn(x, channels(1280 * width), 1, activation="swish", name="top")


@keras.saving.register_keras_serializable(package="visionsuite")
class LayerScale(layers.Layer):
    """Per-channel learnable scale of a residual branch (ConvNeXt, CaiT)."""

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(input_shape[-1],), initializer=keras.initializers.Constant(self.init_value),
            name="gamma")

    def call(self, inputs):
        return inputs * self.gamma

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="visionsuite")
class CosineClassifier(layers.Layer):
    """Cosine similarity of each (unit) embedding to each class's learned centre: the logits of
    margin-based softmax losses (CosFace, ArcFace), which add their margin to them."""

    def __init__(self, classes, **kwargs):
        super().__init__(**kwargs)
        self.classes = int(classes)

    def build(self, input_shape):
        self.centres = self.add_weight(shape=(input_shape[-1], self.classes),
                                       initializer="glorot_uniform", name="centres")

    def call(self, inputs):
        centres = keras.ops.normalize(keras.ops.cast(self.centres, inputs.dtype), axis=0)
        return keras.ops.matmul(keras.ops.normalize(inputs, axis=-1), centres)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}


@keras.saving.register_keras_serializable(package="visionsuite")
class HorizontalFlip(layers.Layer):
    """The image mirrored left to right. What face runs saved before WithMirrors flip with."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=2)


@keras.saving.register_keras_serializable(package="visionsuite")
class WithMirrors(layers.Layer):
    """The batch, then its images mirrored left to right: for test-time flip averaging, one
    pass of a network over both (SumOfHalves joins them). One batch of 2N ran faster than two
    of N: the face embedder's .tflite took 1.13 instead of 1.38 ms in float32, 1.28 instead
    of 1.42 in int8 (AMD Zen 3, 1 thread), with half the ops."""

    def call(self, inputs):
        return keras.ops.concatenate([inputs, keras.ops.flip(inputs, axis=2)], axis=0)

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else 2 * input_shape[0]
        return (batch, *input_shape[1:])


@keras.saving.register_keras_serializable(package="visionsuite")
class SumOfHalves(layers.Layer):
    """The first half of the batch plus the second: each image's output and its mirror's
    (WithMirrors)."""

    def call(self, inputs):
        batch = keras.ops.shape(inputs)[0] // 2
        return inputs[:batch] + inputs[batch:]

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // 2
        return (batch, *input_shape[1:])


# ConvNeXt (Liu et al. 2022) and the small variants of timm (atto ... nano).
CONVNEXT_SIZES = {"convnext_atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
                  "convnext_femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
                  "convnext_pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
                  "convnext_nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
                  "convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768))}


@register(*CONVNEXT_SIZES, **{n: {"blocks": b, "dims": d} for n, (b, d) in CONVNEXT_SIZES.items()})
def convnext(x, width=1.0, depth=1.0, blocks=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
    for stage, (count, dim) in enumerate(zip(blocks, dims), 1):
        dim = channels(dim * width)
        name = f"stage{stage}"
        if stage == 1:
            x = layers.Conv2D(dim, 4, 4, name="stem_conv")(x)
            x = layers.LayerNormalization(epsilon=1e-6, name="stem_norm")(x)
        else:
            x = layers.LayerNormalization(epsilon=1e-6, name=name + "_down_norm")(x)
            x = layers.Conv2D(dim, 2, 2, name=name + "_down_conv")(x)
        for block in range(repeats(count, depth)):
            x = _convnext_block(x, dim, f"{name}_{block}")
    return layers.LayerNormalization(epsilon=1e-6, name="top_norm")(x)


def _convnext_block(x, dim, name):
    y = layers.DepthwiseConv2D(7, padding="same", name=name + "_dw")(x)
    y = layers.LayerNormalization(epsilon=1e-6, name=name + "_norm")(y)
    y = layers.Dense(4 * dim, activation="gelu", name=name + "_fc1")(y)
    y = layers.Dense(dim, name=name + "_fc2")(y)
    y = LayerScale(name=name + "_scale")(y)
    return layers.Add(name=name + "_add")([x, y])
