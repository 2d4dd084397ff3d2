"""The face embedder, the training model around it, and the metric-learning losses.

The embedder maps a face to a unit vector: backbone, global depthwise convolution (MobileFaceNet's
"GDConv": a learned weighting of the positions of the last map, where global average pooling
would treat the eyes and the background alike), a linear projection to the embedding size, batch
norm, L2 normalisation. The training model adds cosine logits to a learned centre per training
identity for CosFace and ArcFace; triplet training uses the embeddings themselves. Only the
embedder is saved as model.keras and exported.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from visionsuite.config import Config
from visionsuite.errors import VisionsuiteError

EMBEDDING = "embedding"  # the unit-vector output's layer
LOSSES = ("arcface", "cosface", "triplet")
# Margins of the papers: ArcFace adds 0.5 rad to the angle, CosFace takes 0.35 off the cosine;
# a triplet's negative must be 0.2 (squared distance of unit vectors) further than its positive.
DEFAULT_MARGINS = {"arcface": 0.5, "cosface": 0.35, "triplet": 0.2}


def check_loss(config: Config) -> str:
    if config.train.loss not in LOSSES:
        raise VisionsuiteError(f"train.loss must be one of {', '.join(LOSSES)} for face, "
                               f"got '{config.train.loss}'")
    return config.train.loss


def build_embedder(config: Config) -> keras.Model:
    from visionsuite.core.backbones import FusedBatchNormalization, build_backbone

    size, depth = config.data.image_size, config.data.channels
    inputs = keras.Input((size, size, depth), name="image")
    # Raw 0..255 pixels in, so that an int8 file's uint8 input is the camera's bytes.
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    x = build_backbone(config.model.backbone, x, config.model.width, config.model.depth)
    if len(x.shape) == 4:
        x = layers.DepthwiseConv2D(tuple(x.shape[1:3]), padding="valid", use_bias=False,
                                   name="gdconv")(x)
        x = FusedBatchNormalization(momentum=0.9, epsilon=1e-3, name="gdconv_bn")(x)
        x = layers.Flatten(name="flatten")(x)
    if config.model.dropout > 0:
        x = layers.Dropout(config.model.dropout, name="dropout")(x)
    if config.model.embedding_size > 0:
        x = layers.Dense(config.model.embedding_size, use_bias=False, name="projection")(x)
        x = FusedBatchNormalization(momentum=0.9, epsilon=1e-3, name="projection_bn")(x)
    outputs = layers.UnitNormalization(axis=-1, dtype="float32", name=EMBEDDING)(x)
    return keras.Model(inputs, outputs, name=f"face_{config.model.backbone}")


def build_training_model(config: Config, identities: int) -> keras.Model:
    """The embedder, plus cosine logits to each training identity for the margin losses."""
    from visionsuite.core.backbones import CosineClassifier

    embedder = build_embedder(config)
    if check_loss(config) == "triplet":
        return embedder
    logits = CosineClassifier(identities, dtype="float32", name="identity_cosines")(
        embedder.output)
    return keras.Model(embedder.input, logits, name=embedder.name)


def embedder_of(model: keras.Model) -> keras.Model:
    """The embedder inside a training model (the model itself when it is one)."""
    output = model.get_layer(EMBEDDING).output
    if model.outputs[0] is output:
        return model
    return keras.Model(model.inputs, output, name=model.name)


def inference_embedder(model: keras.Model, flip_average: bool) -> keras.Model:
    """What is saved and exported: the embedder, or with `flip_average` the direction halfway
    between the embeddings of the face and of its mirror image (the test-time flip of face
    recognition papers: on ORL it raised TAR at FAR 1e-2 by several points, for twice the
    compute)."""
    from visionsuite.core.backbones import SumOfHalves, WithMirrors

    embedder = embedder_of(model)
    if not flip_average:
        return embedder
    inputs = keras.Input(embedder.input_shape[1:], name="image")
    mirrored = WithMirrors(name="mirror")(inputs)
    both = SumOfHalves(name="sum")(embedder(mirrored))
    outputs = layers.UnitNormalization(axis=-1, dtype="float32", name=EMBEDDING)(both)
    return keras.Model(inputs, outputs, name=embedder.name)


def margin(config: Config) -> float:
    return config.train.margin if config.train.margin is not None \
        else DEFAULT_MARGINS[check_loss(config)]


def images_per_identity(config: Config) -> int:
    """K of the PK batches (0: random batches). Batch-hard triplets need several images of each
    identity in a batch; the margin losses compare each face with identity centres instead."""
    chosen = config.train.images_per_identity
    if chosen is None:
        return 4 if check_loss(config) == "triplet" else 0
    if chosen != 0 and not 2 <= chosen <= config.train.batch_size:
        raise VisionsuiteError(f"train.images_per_identity must be 0 (random batches) or 2 to "
                               f"train.batch_size ({config.train.batch_size}), got {chosen}")
    return chosen


def make_loss(config: Config) -> keras.losses.Loss:
    kind = check_loss(config)
    if kind == "triplet":
        return TripletLoss(margin(config))
    return MarginSoftmaxLoss(kind, margin(config), config.train.scale)


@keras.saving.register_keras_serializable("visionsuite")
class MarginSoftmaxLoss(keras.losses.Loss):
    """Softmax cross-entropy over scaled cosines with an additive margin on the true identity:
    CosFace (Wang et al. 2018) uses cos(t) - m, ArcFace (Deng et al. 2019) cos(t + m). Where
    t + m would pass pi, ArcFace's cosine stops decreasing; there it falls back to CosFace's
    form (the "easy margin" fix of the reference code). y_true: identity indices; y_pred:
    cosines (B, identities)."""

    def __init__(self, kind="arcface", margin=0.5, scale=32.0, name="margin_softmax", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kind, self.margin, self.scale = kind, float(margin), float(scale)

    def call(self, y_true, y_pred):
        cosines = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-6, 1.0 - 1e-6)
        identities = ops.shape(cosines)[-1]
        onehot = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), identities)
        if self.kind == "cosface":
            target = cosines - self.margin
        else:
            import math

            sines = ops.sqrt(1.0 - cosines * cosines)
            shifted = cosines * math.cos(self.margin) - sines * math.sin(self.margin)
            target = ops.where(cosines > math.cos(math.pi - self.margin), shifted,
                               cosines - math.sin(math.pi - self.margin) * self.margin)
        logits = self.scale * (onehot * target + (1.0 - onehot) * cosines)
        return keras.losses.categorical_crossentropy(onehot, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "margin": self.margin,
                "scale": self.scale}


@keras.saving.register_keras_serializable("visionsuite")
class TripletLoss(keras.losses.Loss):
    """Batch-hard triplet loss (Hermans et al. 2017): for each face, its farthest same-identity
    face in the batch and its closest other-identity face; the loss asks the second to be
    `margin` further (squared Euclidean distance of unit vectors) than the first. Faces with no
    other image of their identity in the batch add nothing."""

    def __init__(self, margin=0.2, name="triplet", **kwargs):
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        embeddings = ops.cast(y_pred, "float32")
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        distances = ops.maximum(2.0 - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings)),
                                0.0)
        same = ops.equal(labels[:, None], labels[None, :])
        eye = ops.eye(ops.shape(labels)[0], dtype="bool")
        positives = ops.logical_and(same, ops.logical_not(eye))
        hardest_positive = ops.max(ops.where(positives, distances, 0.0), axis=1)
        hardest_negative = ops.min(ops.where(same, 4.0 + distances, distances), axis=1)
        has_positive = ops.cast(ops.any(positives, axis=1), "float32")
        return has_positive * ops.relu(hardest_positive - hardest_negative + self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
