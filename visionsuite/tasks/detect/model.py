"""The YOLOv8-style detector: CSP backbone (or one of the zoo), PAN neck, decoupled anchor-free
head; its loss (task-aligned assignment, CIoU, distribution focal loss, BCE) and the decoding
of its raw output into boxes.

Written here rather than taken whole from keras-cv: keras-cv's YOLOV8Detector is a subclassed
model whose decoding and loss live in Python methods, so its saved file needs keras-cv to load
and its graph cannot carry our NMS export; and its loss has no distribution focal term. The
network below is plain Keras layers (loads in safe mode, converts at a fixed size), and the
task-aligned assigner is keras-cv's (`keras_cv.models.yolov8.LabelEncoder`), which is the part
worth reusing.

Raw output: (B, anchors, 4 * REG_MAX + classes): per anchor, for each side (left, top, right,
bottom) a distribution over REG_MAX distances in stride units, then one logit per class.
Anchors are cell centres of the stride 8, 16 and 32 grids, in that order, row-major.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from visionsuite.config import Config
from visionsuite.errors import VisionsuiteError

REG_MAX = 16
STRIDES = (8, 16, 32)
# YOLOv8's loss gains, as in Ultralytics' defaults.
BOX_GAIN, CLASS_GAIN, DFL_GAIN = 7.5, 0.5, 1.5
NETWORK_NAME = "detector_network"  # of `head_outputs`: what an int8 export quantizes


# model.backbone values that mean YOLOv8's CSP backbone; any other names a zoo backbone.
OWN_BACKBONES = ("yolo", "csp", "", None)

def anchor_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centres (A, 2) as (x, y) pixels and their strides (A,), for a size x size input."""
    points, strides = [], []
    for stride in STRIDES:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()], 1) * stride + stride / 2)
        strides.append(np.full(cells * cells, stride))
    return (np.concatenate(points).astype(np.float32),
            np.concatenate(strides).astype(np.float32))


# --------------------------------------------------------------------------- network


def _conv(x, filters, kernel=1, stride=1, name=""):
    from keras import layers

    from visionsuite.core.backbones import FusedBatchNormalization

    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = FusedBatchNormalization(momentum=0.97, epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.Activation("swish", name=f"{name}_act")(x)


def _c2f(x, filters, depth, shortcut, name):
    """YOLOv8's C2f: two 1x1 branches (one conv split in two in the original; two convs here
    compute the same without a split op in the graph), a chain of bottlenecks on the second,
    every intermediate output concatenated and mixed by a 1x1 conv."""
    from keras import layers

    hidden = max(filters // 2, 8)
    outputs = [_conv(x, hidden, 1, name=f"{name}_a"), _conv(x, hidden, 1, name=f"{name}_b")]
    y = outputs[-1]
    for index in range(depth):
        z = _conv(y, hidden, 3, name=f"{name}_m{index}_1")
        z = _conv(z, hidden, 3, name=f"{name}_m{index}_2")
        y = layers.Add(name=f"{name}_m{index}_add")([y, z]) if shortcut else z
        outputs.append(y)
    x = layers.Concatenate(name=f"{name}_cat")(outputs)
    return _conv(x, filters, 1, name=f"{name}_out")


def _sppf(x, filters, name):
    from keras import layers

    hidden = filters // 2
    x = _conv(x, hidden, 1, name=f"{name}_pre")
    pooled = [x]
    for index in range(3):
        pooled.append(layers.MaxPooling2D(5, 1, padding="same", name=f"{name}_pool{index}")(
            pooled[-1]))
    return _conv(layers.Concatenate(name=f"{name}_cat")(pooled), filters, 1, name=f"{name}_out")


def _channels(value: float) -> int:
    return max(8, int(math.ceil(value / 8) * 8))


def csp_darknet(x, width: float, depth: float):
    """YOLOv8's backbone; returns the stride 8, 16 and 32 feature maps."""
    widths = [_channels(c * width) for c in (64, 128, 256, 512, 1024)]
    depths = [max(1, round(d * depth)) for d in (3, 6, 6, 3)]
    x = _conv(x, widths[0], 3, 2, name="stem")
    features = []
    for stage, (filters, count) in enumerate(zip(widths[1:], depths)):
        x = _conv(x, filters, 3, 2, name=f"stage{stage}_down")
        x = _c2f(x, filters, count, True, name=f"stage{stage}")
        if stage == 3:
            x = _sppf(x, filters, name="sppf")
        if stage >= 1:
            features.append(x)
    return features


def _zoo_features(config: Config, x):
    """Stride 8/16/32 maps of a zoo backbone: the last feature map at each of those sizes."""
    from visionsuite.core.backbones import feature_maps

    size = config.data.image_size
    _, by_size = feature_maps(config.model.backbone, x, config.model.width, config.model.depth)
    missing = [s for s in STRIDES if size // s not in by_size]
    if missing:
        raise VisionsuiteError(f"model.backbone {config.model.backbone}: no feature map at "
                               f"stride {missing[0]}")
    return [by_size[size // s] for s in STRIDES]


def check_detector_settings(config: Config) -> None:
    """The errors of a detector config that need no data, so that training names them first."""
    size = config.data.image_size
    if size % 32:
        raise VisionsuiteError(f"data.image_size {size} must be a multiple of 32 for detection")


def build_detector(config: Config, classes: int):
    import keras
    from keras import layers

    check_detector_settings(config)
    size = config.data.image_size
    inputs = keras.Input((size, size, 3), name="image")
    # Raw 0..255 pixels in, as for the other tasks: TFLite's uint8 input is the image's bytes.
    x = layers.Rescaling(1 / 255.0, name="scale")(inputs)
    if config.model.backbone in OWN_BACKBONES:
        p3, p4, p5 = csp_darknet(x, config.model.width, config.model.depth)
    else:
        p3, p4, p5 = _zoo_features(config, x)
    depth = max(1, round(3 * config.model.depth))
    c3, c4, c5 = (_channels(c * config.model.width) for c in (256, 512, 1024))
    # PAN neck: top-down, then bottom-up.
    up = layers.UpSampling2D(name="neck_up5")(p5)
    n4 = _c2f(layers.Concatenate(name="neck_cat4")([up, p4]), c4, depth, False, "neck_td4")
    up = layers.UpSampling2D(name="neck_up4")(n4)
    out3 = _c2f(layers.Concatenate(name="neck_cat3")([up, p3]), c3, depth, False, "neck_out3")
    down = _conv(out3, c3, 3, 2, name="neck_down3")
    out4 = _c2f(layers.Concatenate(name="neck_cat_bu4")([down, n4]), c4, depth, False,
                "neck_out4")
    down = _conv(out4, c4, 3, 2, name="neck_down4")
    out5 = _c2f(layers.Concatenate(name="neck_cat_bu5")([down, p5]), c5, depth, False,
                "neck_out5")
    box_width = max(16, c3 // 4, 4 * REG_MAX)
    class_width = max(c3, min(classes, 100))
    outputs = []
    for feature, stride in zip((out3, out4, out5), STRIDES):
        name = f"head{stride}"
        box = _conv(_conv(feature, box_width, 3, name=f"{name}_box1"), box_width, 3,
                    name=f"{name}_box2")
        box = layers.Conv2D(4 * REG_MAX, 1, name=f"{name}_box",
                            bias_initializer=keras.initializers.Constant(1.0))(box)
        cls = _conv(_conv(feature, class_width, 3, name=f"{name}_cls1"), class_width, 3,
                    name=f"{name}_cls2")
        # Prior: about 5 objects per 640x640 image spread over the classes (YOLOv8's init).
        prior = math.log(5 / classes / (640 / stride) ** 2)
        cls = layers.Conv2D(classes, 1, name=f"{name}_cls",
                            bias_initializer=keras.initializers.Constant(prior))(cls)
        merged = layers.Concatenate(name=f"{name}_out")([box, cls])
        outputs.append(layers.Reshape((-1, 4 * REG_MAX + classes), name=f"{name}_flat")(merged))
    raw = layers.Concatenate(axis=1, name="raw", dtype="float32")(outputs)
    return keras.Model(inputs, raw, name="yolo_detector")


# --------------------------------------------------------------------------- decoding


def decode(raw, size: int):
    """Boxes (B, A, 4) as pixel corners x1 y1 x2 y2 and class probabilities (B, A, C) from the
    raw output; keras ops, so the same code runs in training, evaluation and the export."""
    from keras import ops

    points, strides = anchor_grid(size)
    distances = ops.reshape(raw[..., :4 * REG_MAX], (-1, raw.shape[1], 4, REG_MAX))
    bins = ops.arange(REG_MAX, dtype="float32")
    expected = ops.sum(ops.softmax(distances, axis=-1) * bins, axis=-1)  # (B, A, 4)
    expected = expected * strides[None, :, None]
    points = ops.convert_to_tensor(points)[None]
    boxes = ops.concatenate([points - expected[..., :2], points + expected[..., 2:]], axis=-1)
    return boxes, ops.sigmoid(raw[..., 4 * REG_MAX:])


def head_outputs(model):
    """A function of the input sharing `model`'s weights that returns each level's box and
    class logits before they are concatenated: (box8, box16, box32, class8, class16, class32).
    It is two parts: the network up to the heads' last features, a Keras model named
    NETWORK_NAME (what an int8 export quantizes), then the heads' final 1x1 convolutions
    called outside it, so that they stay float: quantizing the distance logits that the box
    decoding reads cost 2-4 points of mAP@0.5 on raccoon, and these convolutions are about
    1% of the compute."""
    import keras

    finals = [model.get_layer(f"head{s}_box") for s in STRIDES] + \
        [model.get_layer(f"head{s}_cls") for s in STRIDES]
    # model.input, not the list model.inputs: called on one tensor, the list warned in Keras.
    features = keras.Model(model.input, [layer.input for layer in finals], name=NETWORK_NAME)

    def heads(x, training=False):
        return [layer(f) for layer, f in zip(finals, features(x, training=training))]

    return heads


def decode_levels(outputs, size: int):
    """`decode` computed level by level from `head_outputs`. What is exported: in a full-integer
    model every tensor has one scale, and the concatenated raw output would force box logits
    and class logits (of different ranges) onto one; here each keeps its own, and
    probabilities and pixel coordinates are only concatenated once they share a range.
    Boxes come out clipped to the image."""
    from keras import ops

    boxes, probs = [], []
    for stride, box, cls in zip(STRIDES, outputs[:3], outputs[3:]):
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        points = (np.stack([xs.ravel(), ys.ravel()], 1) * stride + stride / 2)[None]
        points = ops.convert_to_tensor(points.astype(np.float32))
        logits = ops.reshape(box, (-1, cells * cells, 4, REG_MAX))
        bins = ops.arange(REG_MAX, dtype="float32")
        distance = ops.sum(ops.softmax(logits, axis=-1) * bins, axis=-1) * float(stride)
        corners = ops.concatenate([points - distance[..., :2], points + distance[..., 2:]], -1)
        # Clipped to the image before the levels meet: int8 gives the concatenated tensor one
        # scale, and unclipped corners (far outside, at stride 32) made its steps ~5 px.
        boxes.append(ops.clip(corners, 0.0, float(size)))
        probs.append(ops.reshape(ops.sigmoid(cls), (-1, cells * cells, cls.shape[-1])))
    return ops.concatenate(boxes, axis=1), ops.concatenate(probs, axis=1)


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, conf: float, iou: float,
              max_detections: int, agnostic: bool = False):
    """Per-class non-max suppression of one image's decoded output: (boxes (N, 4),
    scores (N,), classes (N,)) sorted by score. Numpy, for evaluation on the host."""
    from visionsuite.tasks.detect.metrics import box_iou

    classes = scores.argmax(1)
    best = scores[np.arange(len(scores)), classes]
    keep = best >= conf
    boxes, best, classes = boxes[keep], best[keep], classes[keep]
    order = np.argsort(-best, kind="stable")[:max(max_detections * 30, 3000)]
    boxes, best, classes = boxes[order], best[order], classes[order]
    offsets = boxes + (0 if agnostic else classes[:, None] * 1e5)  # classes never overlap
    chosen = []
    suppressed = np.zeros(len(boxes), bool)
    for index in range(len(boxes)):
        if suppressed[index]:
            continue
        chosen.append(index)
        if len(chosen) >= max_detections:
            break
        rest = np.arange(index + 1, len(boxes))
        rest = rest[~suppressed[rest]]
        if len(rest):
            overlap = box_iou(offsets[index:index + 1], offsets[rest])[0]
            suppressed[rest[overlap > iou]] = True
    chosen = np.array(chosen, np.int64)
    return boxes[chosen], best[chosen], classes[chosen]


# --------------------------------------------------------------------------- loss


@functools.cache
def _keras_loss():
    """The loss as a Keras class, defined once, on first use (Keras loads lazily), and
    registered, so that last.keras loads in safe mode."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable("visionsuite")
    class DetectionLoss(keras.losses.Loss):
        """YOLOv8's loss. y_true: (B, M, 5) rows of (class, x1, y1, x2, y2) in input pixels,
        padded with class -1; y_pred: the raw output. Anchors are matched to boxes by
        task-aligned assignment (keras-cv's LabelEncoder: top 10 anchors inside each box by
        score^0.5 * CIoU^6); matched anchors learn their box (CIoU and distribution focal
        loss), every anchor learns its class scores against the soft alignment targets (BCE).
        """

        def __init__(self, classes=1, size=640, name="detection_loss", **kwargs):
            super().__init__(name=name, **kwargs)
            self.classes, self.size = int(classes), int(size)
            from keras_cv.models.yolov8 import LabelEncoder

            self.assigner = LabelEncoder(num_classes=self.classes)
            points, strides = anchor_grid(self.size)
            self.points, self.strides = points, strides

        def call(self, y_true, y_pred):
            y_pred = ops.cast(y_pred, "float32")
            y_true = ops.cast(y_true, "float32")
            gt_classes, gt_boxes = y_true[..., 0], y_true[..., 1:]
            gt_mask = ops.expand_dims(gt_classes >= 0, -1)
            boxes, scores = decode(y_pred, self.size)
            strides = ops.convert_to_tensor(self.strides)[None, :, None]
            points = ops.convert_to_tensor(self.points)
            target_boxes, target_scores, foreground = self.assigner(
                ops.stop_gradient(scores), ops.stop_gradient(boxes), points,
                gt_classes, gt_boxes, gt_mask)
            foreground = ops.cast(foreground, "float32")
            score_sum = ops.maximum(ops.sum(target_scores), 1.0)
            logits = y_pred[..., 4 * REG_MAX:]
            class_loss = ops.sum(ops.maximum(logits, 0) - logits * target_scores
                                 + ops.log1p(ops.exp(-ops.abs(logits)))) / score_sum
            weight = ops.sum(target_scores, -1) * foreground  # (B, A)
            ciou = _ciou(boxes, target_boxes)
            box_loss = ops.sum((1.0 - ciou) * weight) / score_sum
            dfl = _dfl(y_pred[..., :4 * REG_MAX], target_boxes, points, strides)
            dfl_loss = ops.sum(dfl * weight) / score_sum
            batch = ops.cast(ops.shape(y_pred)[0], "float32")
            # Ultralytics multiplies by the batch size: gains are per image, not per anchor.
            return (BOX_GAIN * box_loss + CLASS_GAIN * class_loss + DFL_GAIN * dfl_loss) * batch

        def get_config(self):
            return {**super().get_config(), "classes": self.classes, "size": self.size}

    def _ciou(a, b):
        eps = 1e-7
        aw, ah = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1] + eps
        bw, bh = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1] + eps
        iw = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]), 0)
        ih = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]), 0)
        inter = iw * ih
        union = aw * ah + bw * bh - inter + eps
        iou = inter / union
        cw = ops.maximum(a[..., 2], b[..., 2]) - ops.minimum(a[..., 0], b[..., 0])
        ch = ops.maximum(a[..., 3], b[..., 3]) - ops.minimum(a[..., 1], b[..., 1])
        diagonal = cw ** 2 + ch ** 2 + eps
        centre = ((a[..., 0] + a[..., 2] - b[..., 0] - b[..., 2]) ** 2
                  + (a[..., 1] + a[..., 3] - b[..., 1] - b[..., 3]) ** 2) / 4
        v = (4 / math.pi ** 2) * (ops.arctan(bw / bh) - ops.arctan(aw / ah)) ** 2
        alpha = ops.stop_gradient(v / (v - iou + (1 + eps)))
        return iou - (centre / diagonal + v * alpha)

    def _dfl(distributions, target_boxes, points, strides):
        """Distribution focal loss: cross-entropy of each side's distribution against the two
        bins around the target distance, weighted by nearness (Li et al., GFL)."""
        shape = ops.shape(distributions)
        logits = ops.reshape(distributions, (shape[0], shape[1], 4, REG_MAX))
        points = points[None]
        target = ops.concatenate([points - target_boxes[..., :2],
                                  target_boxes[..., 2:] - points], -1) / strides
        target = ops.clip(target, 0.0, REG_MAX - 1 - 0.01)
        left = ops.floor(target)
        right_weight = target - left
        log_probs = ops.log_softmax(logits, axis=-1)
        left_index = ops.cast(left, "int32")
        left_lp = ops.take_along_axis(log_probs, left_index[..., None], axis=-1)[..., 0]
        right_lp = ops.take_along_axis(log_probs, left_index[..., None] + 1, axis=-1)[..., 0]
        loss = -(left_lp * (1 - right_weight) + right_lp * right_weight)
        return ops.mean(loss, -1)

    return DetectionLoss
