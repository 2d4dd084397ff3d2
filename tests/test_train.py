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


def test_the_same_config_trains_the_same_model_twice(shapes_dir, tmp_path):
    """Shuffling and augmentation are seeded and run in a fixed order, so a saved config.yaml
    reproduces its run; another seed gives another run."""
    import csv

    from conftest import TINY_SETS
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    def run(name, seed):
        sets = TINY_SETS + ("train.epochs=2", "train.ema=true", f"train.seed={seed}",
                            "augment.rotate=20", "augment.erase=0.5")
        folder = train(load_config("classify", overrides={"data.path": str(shapes_dir)},
                                   sets=sets), output=tmp_path, name=name)
        history = [row["loss"] for row in csv.DictReader(open(folder / "history.csv"))]
        model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
        return history, model.get_weights()

    first, again, other = run("first", 0), run("again", 0), run("other", 1)
    assert first[0] == again[0]
    assert all(np.array_equal(a, b) for a, b in zip(first[1], again[1]))
    assert first[0] != other[0]


def test_a_training_that_fails_before_its_first_checkpoint_leaves_no_run_folder(
        shapes_dir, tmp_path, monkeypatch):
    from conftest import TINY_SETS
    from visionsuite.config import load_config
    from visionsuite.core import train as core_train

    config = load_config("classify", overrides={"data.path": str(shapes_dir)}, sets=TINY_SETS)

    def broken_fit(*args):
        raise VisionsuiteError("out of memory on the first batch")

    monkeypatch.setattr(core_train, "fit_model", broken_fit)
    with pytest.raises(VisionsuiteError, match="first batch"):
        core_train.train(config, output=tmp_path, name="broken")
    assert not (tmp_path / "classify" / "broken").exists()
    # A config the model refuses fails before any folder is made.
    config.model.backbone = "unet"
    with pytest.raises(VisionsuiteError):
        core_train.train(config, output=tmp_path, name="refused")
    assert not (tmp_path / "classify" / "refused").exists()


def test_the_weight_average_follows_the_first_steps_and_survives_a_resume(tmp_path):
    """The average's momentum ramps up as (1 + step) / (10 + step): after the first step it
    holds 90% of the new weights, not the 1% of a fixed 0.99 (whose average kept the initial
    weights for hundreds of steps). It is saved and loaded with the optimizer."""
    from visionsuite.core.train import WarmingEMAAdamW

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="zeros",
                                                   use_bias=False)(inputs))
    optimizer = WarmingEMAAdamW(0.1, weight_decay=0.0, use_ema=True, ema_momentum=0.99)
    model.compile(optimizer, "mse")
    # One Adam step of 0.1 from zeros (fit would end by copying the average into the weights).
    optimizer.apply([-np.ones((2, 1), "float32")], model.trainable_variables)
    weight = model.weights[0].numpy()
    average = optimizer._model_variables_moving_average[0].numpy()
    assert np.allclose(weight, 0.1) and np.allclose(average, 0.09)
    model.save(tmp_path / "last.keras")
    again = keras.saving.load_model(tmp_path / "last.keras", safe_mode=True)
    assert type(again.optimizer) is WarmingEMAAdamW
    assert np.allclose(again.optimizer._model_variables_moving_average[0].numpy(), average)


def test_curves_have_a_panel_for_metrics_only_val_measures():
    from visionsuite.core.plots import history_panels

    assert history_panels(["epoch", "loss", "val_loss", "val_map50", "learning_rate"]) == \
        ["loss", "map50"]
    assert history_panels(["epoch", "dice", "loss", "val_dice", "val_loss"]) == ["dice", "loss"]
