"""Every backbone family builds, trains a step, and converts to full-integer int8 TFLite."""

import re

import numpy as np
import pytest

from visionsuite.config import load_config
from visionsuite.core.backbones import BACKBONES

# One tiny instance per family: (name, width, depth, image size).
TINY_FAMILIES = [
    ("lenet", 1.0, 1.0, 32),
    ("vgg11", 0.125, 1.0, 32),
    ("resnet18", 0.125, 0.5, 32),
    ("resnet50", 0.0625, 0.34, 32),
    ("mobilenetv2", 0.25, 0.34, 32),
    ("mobilenetv3_small", 0.25, 0.5, 32),
    ("mobilefacenet", 0.25, 0.2, 32),
    ("mobilenetv3_large", 0.25, 0.5, 32),
    ("efficientnet_b0", 0.25, 0.34, 32),
    ("convnext_atto", 0.25, 0.5, 32),
]


def test_every_registered_family_has_a_tiny_instance_here():
    families = {name.split("_")[0].rstrip("0123456789") for name in BACKBONES}
    tested = {name.split("_")[0].rstrip("0123456789") for name, *_ in TINY_FAMILIES}
    assert families == tested


@pytest.mark.slow
@pytest.mark.parametrize("name,width,depth,size", TINY_FAMILIES)
def test_tiny_backbone_trains_and_exports_int8(name, width, depth, size):
    import keras

    from conftest import compile_quickly
    from visionsuite.core.export import convert
    from visionsuite.core.models import TFLitePredictor
    from visionsuite.tasks.classify import TASK

    config = load_config("classify", sets=[f"model.backbone={name}", f"model.width={width}",
                                           f"model.depth={depth}", f"data.image_size={size}"])
    labels = ["a", "b", "c"]
    model = TASK.build_model(config, labels)
    compile_quickly(model, "categorical_crossentropy")
    images = np.random.default_rng(0).integers(0, 256, (8, size, size, 3)).astype(np.float32)
    model.fit(images, keras.utils.to_categorical(np.arange(8) % 3, 3), epochs=1, verbose=0)

    tflite = convert(model, "int8", images.astype(np.uint8))
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.tflite"
        path.write_bytes(tflite)
        predictor = TFLitePredictor(path)
        assert predictor.input["dtype"] == np.uint8
        assert predictor.outputs[0]["dtype"] == np.uint8
        scores = predictor.predict(images[:2].astype(np.uint8))
    assert scores.shape == (2, 3)
    assert np.allclose(scores.sum(1), 1.0, atol=0.05)


def test_prelu_is_max_of_x_and_its_slope_times_x():
    import keras

    from visionsuite.core.backbones import PReLU

    layer = PReLU()
    x = np.array([[[[-2.0, 3.0], [4.0, -1.0]]]], np.float32)
    layer.build(x.shape)
    layer.slope.assign(np.array([0.25, 1.5], np.float32))  # the second is kept at 1
    out = keras.ops.convert_to_numpy(layer(x))
    assert np.allclose(out, [[[[-0.5, 3.0], [4.0, -1.0]]]])


@pytest.mark.parametrize("shape, scale", [((4, 6, 5, 3), True), ((3, 1, 1, 4), False),
                                          ((5, 3), True)])
def test_fused_batch_norm_trains_as_keras_batch_norm(shape, scale):
    """Same outputs, gradients and moving statistics as Keras' own layer in training, whether
    fused (4-D, a (B, 1, 1, C) head included) or not (2-D), and the same at inference."""
    import keras
    import tensorflow as tf

    from visionsuite.core.backbones import FusedBatchNormalization

    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, shape), tf.float32)
    layers = []
    for kind in (keras.layers.BatchNormalization, FusedBatchNormalization):
        layer = kind(momentum=0.9, epsilon=1e-3, scale=scale)
        layer.build(shape)
        layer.set_weights([w + 0.1 * i for i, w in enumerate(layer.get_weights())])
        layers.append(layer)
    results = []
    for layer in layers:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, y.shape[-1] + 1.0))
        grads = tape.gradient(loss, [x] + layer.trainable_weights)
        results.append([y] + grads + [v.value for v in layer.non_trainable_weights]
                       + [layer(x, training=False)])
    for keras_value, fused_value in zip(*results):
        assert np.allclose(keras_value, fused_value, atol=1e-4), (keras_value, fused_value)


def test_fused_batch_norm_computes_in_bfloat16_under_mixed_precision():
    import keras

    from visionsuite.core.backbones import FusedBatchNormalization

    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    x = np.random.default_rng(0).normal(0, 1, (2, 4, 4, 3)).astype(np.float32)
    y = layer(keras.ops.cast(x, "bfloat16"), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert np.allclose(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")),
                       (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-3), atol=0.05)


@pytest.mark.parametrize("task, setting, message", [
    ("classify", "model.backbone=resnt18",
     "unknown backbone 'resnt18' (did you mean 'resnet18'?); choose one of: convnext_atto"),
    ("face", "model.backbone=resnt18", "unknown backbone 'resnt18' (did you mean 'resnet18'?)"),
    ("segment", "model.backbone=resnt18", "choose one of: unet, convnext_atto"),
    ("detect", "model.backbone=resnt18", "choose one of: yolo, csp, convnext_atto"),
    ("segment", "data.image_size=196", "data.image_size 196 must be a multiple of 2**model.levels"),
    ("segment", "train.loss=ce+dise", "train.loss 'ce+dise': use ce, dice, focal"),
    ("detect", "data.image_size=200", "data.image_size 200 must be a multiple of 32"),
    ("face", "train.loss=softmax", "train.loss must be one of"),
    ("classify", "train.optimizer=adam", "train.optimizer must be 'adamw' or 'sgd'"),
])
def test_a_bad_model_or_recipe_setting_is_named_before_any_data_is_decoded(task, setting,
                                                                           message, monkeypatch):
    from visionsuite.core.train import train
    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks import get_task

    def decoding(*args, **kwargs):
        raise AssertionError("the data was decoded before the config was checked")

    monkeypatch.setattr(type(get_task(task)), "load_data", decoding)
    with pytest.raises(VisionsuiteError, match=re.escape(message)):
        train(load_config(task, sets=[setting]))


@pytest.mark.parametrize("task, own", [("segment", "unet"), ("detect", "yolo"), ("face", None)])
def test_the_tasks_own_networks_and_the_zoos_pass_the_early_check(task, own):
    from visionsuite.tasks import get_task

    for backbone in filter(None, (own, "mobilenetv2")):
        get_task(task).check_model(load_config(task, sets=[f"model.backbone={backbone}"]))
