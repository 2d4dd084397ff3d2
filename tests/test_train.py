"""Pieces of the training core that need no dataset."""

import keras
import numpy as np
import pytest

from visionsuite.core.train import compute_policy, float32_twin
from visionsuite.errors import VisionsuiteError


def test_mixed_precision_settings_name_keras_policies():
    assert compute_policy(False) == "float32"
    assert compute_policy("bfloat16") == "mixed_bfloat16"
    assert compute_policy(True) == compute_policy("float16") == "mixed_float16"
    with pytest.raises(VisionsuiteError, match="train.mixed_precision"):
        compute_policy("int8")


def test_a_model_trained_in_bfloat16_is_saved_as_a_float32_twin():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
        x = keras.layers.BatchNormalization()(x)
        outputs = keras.layers.Conv2D(2, 1, activation="softmax", dtype="float32")(x)
        mixed = keras.Model(inputs, outputs)
    finally:
        keras.config.set_dtype_policy(previous)
    twin = float32_twin(mixed)
    twin.set_weights(mixed.get_weights())
    assert {layer.compute_dtype for layer in twin.layers[1:]} == {"float32"}
    assert mixed.layers[1].compute_dtype == "bfloat16"
    images = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    # The same function, without bfloat16's rounding (8 bits of mantissa).
    assert np.allclose(twin(images), mixed(images), atol=0.03)
