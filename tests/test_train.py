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


def test_auto_precision_is_bfloat16_on_a_cpu_that_computes_it(tmp_path):
    """AMX (Xeon 4th generation on) or AVX512-BF16 alone (AMD's Zen 4); a CPU with neither
    would emulate bfloat16, slower than float32."""
    from visionsuite.core.train import bfloat16_units

    amx, zen4, older = tmp_path / "amx", tmp_path / "zen4", tmp_path / "older"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    zen4.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n")
    older.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert bfloat16_units(amx) == ["amx_bf16", "avx512_bf16"]
    assert bfloat16_units(zen4) == ["avx512_bf16"]
    assert compute_policy("auto", amx) == compute_policy("auto", zen4) == "mixed_bfloat16"
    assert compute_policy("auto", older) == "float32"
    assert compute_policy("auto", tmp_path / "absent") == "float32"


@pytest.mark.parametrize("overrides, suits", [
    ({"model.filters": 16}, True),  # the shipped U-Net: 2x faster steps in bfloat16 here
    ({"model.filters": 32, "model.levels": 3}, True),
    ({"model.filters": 8, "model.levels": 3}, False),  # the embedded default: 3.5x slower
    ({"model.filters": 24, "model.levels": 3}, False),  # 1.4x slower
    ({"model.backbone": "resnet18"}, True),  # a nested encoder: 0.63x
    ({"model.backbone": "mobilenetv2", "model.width": 0.35}, False),  # cautious: 0.84x
])
def test_auto_precision_keeps_bfloat16_for_models_whose_channels_suit_it(overrides, suits):
    from visionsuite.config import load_config
    from visionsuite.core.train import _build_model, dtype_policy
    from visionsuite.tasks import get_task

    config = load_config("segment", overrides={"data.path": "unused", "data.image_size": 64,
                                               **overrides})
    assert config.train.mixed_precision == "auto"
    task, labels = get_task("segment"), ["background", "cell"]
    with dtype_policy("mixed_bfloat16"):  # as train() sets it on a CPU that computes it
        keras.utils.set_random_seed(0)
        model = _build_model(task, config, labels)
    with dtype_policy("float32"):
        keras.utils.set_random_seed(0)
        float32_model = task.build_model(config, labels)
    assert model.layers[1].dtype_policy.name == ("mixed_bfloat16" if suits else "float32")
    if not suits:  # the same weights as a float32 run of the same seed
        for ours, theirs in zip(model.get_weights(), float32_model.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_auto_precision_leaves_out_a_segmentation_head_but_not_a_classifiers_last_conv():
    from visionsuite.core.train import bfloat16_suits

    def model(last_filters: int, classifier: bool):
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(16, 3)(inputs)
        x = keras.layers.Conv2D(last_filters, 1)(x)
        if classifier:
            x = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
        return keras.Model(inputs, x)

    assert bfloat16_suits(model(3, classifier=False))  # 3 classes: the head's channels
    assert not bfloat16_suits(model(20, classifier=True))  # a hidden layer of 20 channels
    assert bfloat16_suits(model(32, classifier=True))


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


def _tiny_regression(schedule):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(keras.optimizers.SGD(schedule), "mse")
    return model


class _FakeClock:
    """Stands in for time.monotonic: each epoch takes `epoch_seconds`."""

    def __init__(self, epoch_seconds: float, first_epoch_seconds: float | None = None):
        self.now, self.epoch_seconds = 0.0, epoch_seconds
        self.first_epoch_seconds = first_epoch_seconds  # tracing the graph

    def __call__(self) -> float:
        return self.now

    def tick(self):
        return keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self._advance())

    def _advance(self):
        first, self.first_epoch_seconds = self.first_epoch_seconds, None
        self.now += self.epoch_seconds if first is None else first


def test_a_time_budget_cuts_the_epochs_and_ends_the_decay_at_the_last_of_them():
    from visionsuite.core.train import FittedCosineDecay, TimeBudget

    schedule = FittedCosineDecay(0.1, decay_steps=20, alpha=0.01)  # 10 epochs of 2 steps
    model = _tiny_regression(schedule)
    clock, state, plans = _FakeClock(epoch_seconds=10.0), {}, []
    budget = TimeBudget(0.5, epochs=10, started=0.0, state=state, steps_per_epoch=2,
                        on_plan=plans.append, clock=clock)
    x = np.ones((8, 2), "float32")
    history = model.fit(x, x[:, :1], batch_size=4, epochs=10, verbose=0,
                        callbacks=[clock.tick(), budget])
    # 30 s hold three epochs of 10 s; the decay then ends at step 6, not 20.
    assert len(history.history["loss"]) == 3
    assert state == {"planned_epochs": 3, "train_seconds": 30.0}
    # The training data hears of it (detect moves its mosaic-free epochs).
    assert plans == [10, 3]
    assert float(schedule(6)) == pytest.approx(0.1 * 0.01)
    assert float(schedule(3)) == pytest.approx(0.1 * (0.01 + 0.99 * 0.5))
    # A resumed run counts its earlier sessions: this one has used its budget.
    assert TimeBudget(0.5, 10, started=clock.now, state=state, steps_per_epoch=2,
                      clock=clock).spent()


@pytest.mark.parametrize("minutes, said", [
    (2.0, None),  # the 30-s first epoch alone says 4 fit; at 10 s an epoch all 10 do
    (1.0, "about 4 of 10 epochs fit in train.max_minutes=1 at 10 s an epoch"),
    (0.4, "about 1 of 10 epochs fit in train.max_minutes=0.4 at 30 s an epoch"),
])
def test_a_time_budget_speaks_of_a_cut_once_the_tracing_is_left_out(capsys, minutes, said):
    from visionsuite.core.train import FittedCosineDecay, TimeBudget

    model = _tiny_regression(FittedCosineDecay(0.1, decay_steps=20))
    clock = _FakeClock(epoch_seconds=10.0, first_epoch_seconds=30.0)
    budget = TimeBudget(minutes, epochs=10, started=0.0, state={}, steps_per_epoch=2,
                        clock=clock)
    x = np.ones((8, 2), "float32")
    model.fit(x, x[:, :1], batch_size=4, epochs=10, verbose=0, callbacks=[clock.tick(), budget])
    err = capsys.readouterr().err
    if said is None:
        assert "time budget" not in err
        assert budget.trained == 10
    else:
        assert err.count("time budget: about") == 1 and said in err, err
        assert f"trained {budget.trained} of 10 epochs" in err
        assert budget.trained == int(said.split()[1])


def test_a_time_budget_cuts_an_epoch_longer_than_its_share_where_the_budget_runs_out(capsys):
    """An epoch of 4 steps of 25 s against a budget of 60 s: cut after its third step, then
    validated (its epoch end runs). Before, it ran whole: a PanNuke-sized epoch of 23 minutes
    ran past train.max_minutes=19 by minutes, and its validation after that."""
    from visionsuite.core.train import FittedCosineDecay, TimeBudget

    model = _tiny_regression(FittedCosineDecay(0.1, decay_steps=40))
    clock = _FakeClock(epoch_seconds=0.0)
    step = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: setattr(clock, "now", clock.now + 25.0))
    budget = TimeBudget(1.0, epochs=10, started=0.0, state={}, steps_per_epoch=4, clock=clock)
    x = np.ones((16, 2), "float32")
    history = model.fit(x, x[:, :1], batch_size=4, epochs=10, verbose=0,
                        validation_data=(x, x[:, :1]), callbacks=[step, budget])
    assert len(history.history["val_loss"]) == 1 and budget.cut == (3, 4)
    err = capsys.readouterr().err
    assert "train.max_minutes=1 spent at step 3 of 4 of an epoch of about 2 minutes" in err
    assert "trained 1 of 10 epochs, the last 3 of its 4 steps in 1.2 minutes" in err
    assert "epochs fit" not in err  # no plan to tell
    # Epochs of 4 steps of 7 s, under a twentieth of 10 minutes, end whole: the budget,
    # spent at the second step of the first (590 s went before), ends training after it.
    clock.now, seven = 0.0, keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: setattr(clock, "now", clock.now + 7.0))
    short = TimeBudget(10.0, epochs=10, started=-590.0, state={}, steps_per_epoch=4,
                       clock=clock)
    history = _tiny_regression(FittedCosineDecay(0.1, decay_steps=40)).fit(
        x, x[:, :1], batch_size=4, epochs=10, verbose=0, callbacks=[seven, short])
    assert short.cut is None and len(history.history["loss"]) == 1 and clock.now == 28.0


def test_the_fitted_decay_is_saved_with_the_model(tmp_path):
    from visionsuite.core.train import FittedCosineDecay

    schedule = FittedCosineDecay(0.1, decay_steps=100, warmup_target=0.2, warmup_steps=10)
    schedule.fit_to(50)
    model = _tiny_regression(schedule)
    model.save(tmp_path / "last.keras")
    loaded = keras.saving.load_model(tmp_path / "last.keras", safe_mode=True).optimizer
    assert isinstance(loaded._learning_rate, FittedCosineDecay)
    for step in (0, 5, 10, 30, 50, 80):
        assert float(loaded._learning_rate(step)) == pytest.approx(float(schedule(step)))
    assert float(schedule(50)) == pytest.approx(0.0)  # alpha 0: the decay ends at step 50


def test_a_run_stops_at_its_time_budget_and_resuming_it_trains_no_more(
        shapes_dir, tmp_path, capsys):
    import json

    from conftest import TINY_SETS
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    config = load_config("classify", overrides={"data.path": str(shapes_dir)},
                         sets=TINY_SETS + ("train.epochs=5", "train.max_minutes=0.001"))
    run = train(config, output=tmp_path, name="budget")
    err = capsys.readouterr().err
    # Spent at the first step: an epoch longer than a twentieth of the budget is cut there.
    assert "train.max_minutes=0.001 spent at step 1 of 2 of an epoch" in err
    assert "trained 1 of 5 epochs, the last 1 of its 2 steps" in err
    assert (run / "model.keras").is_file()
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 0 and state["planned_epochs"] == 1 and state["train_seconds"] > 0
    train(load_config("classify", run / "config.yaml"), resume=run)
    assert "already trained for its train.max_minutes (0.001)" in capsys.readouterr().err
    assert json.loads((run / "state.json").read_text()) == state


def test_the_throughput_benchmark_times_every_epoch_and_leaves_the_config_as_given(
        shapes_dir, tmp_path):
    from conftest import TINY_SETS, load_benchmark
    from visionsuite.config import load_config

    common = load_benchmark("common")
    config = load_config("classify", overrides={"data.path": str(shapes_dir)},
                         sets=TINY_SETS + ("train.epochs=3", "train.max_minutes=0.001"))
    x = np.ones((32, 2), "float32")
    result = common.interleaved_throughput(config, _tiny_regression(0.01), (x, x[:, :1]),
                                           (x, x[:, :1]), samples=32, unit="images")
    # The plain epochs run inside ours, so the budget is off there: all 3 epochs are timed.
    assert len(result["visionsuite_epoch_s"]) == len(result["plain_epoch_s"]) == 3
    assert result["ratio"] > 0
    # ... and on only there: the caller's config (its full training's) keeps its budget.
    assert config.train.max_minutes == 0.001


def test_a_finished_run_given_to_a_benchmark_carries_its_own_training_record(tmp_path):
    import json

    from conftest import load_benchmark

    common = load_benchmark("common")
    assert common.recorded_training(tmp_path) == {}  # not a run: no row of its own
    (tmp_path / "state.json").write_text(json.dumps({"epoch": 82, "train_seconds": 1132.8}))
    (tmp_path / "config.yaml").write_text("task: segment\ntrain:\n  epochs: 100\n"
                                          "  max_minutes: 19\n")
    assert common.recorded_training(tmp_path) == {"epochs": 83, "planned_epochs": 100,
                                                  "max_minutes": 19, "train_minutes": 18.88}
    # A run of an earlier version, whose state.json has no training time.
    (tmp_path / "state.json").write_text(json.dumps({"epoch": 47}))
    assert "train_minutes" not in common.recorded_training(tmp_path)


class _CtrlC(keras.callbacks.Callback):
    """Presses Ctrl-C `times` times during the second epoch's first step."""

    def __init__(self, times: int):
        super().__init__()
        self.times, self.epoch = times, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        import signal

        if self.epoch == 1 and batch == 0:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)


def test_ctrl_c_ends_training_with_that_epoch_saved_and_evaluated_and_resume_trains_the_rest(
        shapes_dir, tmp_path, capsys):
    import json
    import signal

    from conftest import TINY_SETS
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    config = load_config("classify", overrides={"data.path": str(shapes_dir)},
                         sets=TINY_SETS + ("train.epochs=4",))
    before = signal.getsignal(signal.SIGINT)  # ignored where the tests run in the background
    run = train(config, output=tmp_path, name="stopped", callbacks=[_CtrlC(times=1)])
    assert "stopped by Ctrl-C after epoch 2 of 4" in capsys.readouterr().err
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert (run / "metrics.json").is_file() and (run / "model.keras").is_file()
    assert signal.getsignal(signal.SIGINT) is before  # given back
    train(load_config("classify", run / "config.yaml"), resume=run)
    assert json.loads((run / "state.json").read_text())["epoch"] == 3
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 4


def test_a_second_ctrl_c_quits_at_once_keeping_the_last_checkpoint(shapes_dir, tmp_path, capsys):
    import json
    import signal

    from conftest import TINY_SETS
    from visionsuite.config import load_config
    from visionsuite.core.train import train

    config = load_config("classify", overrides={"data.path": str(shapes_dir)},
                         sets=TINY_SETS + ("train.epochs=4", "train.checkpoint_seconds=0"))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(config, output=tmp_path, name="quit", callbacks=[_CtrlC(times=2)])
    run = tmp_path / "classify" / "quit"
    assert json.loads((run / "state.json").read_text())["epoch"] == 0
    assert not (run / "metrics.json").exists()  # never evaluated
    assert (f"{run} keeps its last checkpoint (after epoch 1); "
            f"'visionsuite train classify --resume {run}' trains the rest"
            ) in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before
    # An epoch logged after the last checkpoint (checkpoints come every checkpoint_seconds) is
    # trained again on --resume, and history.csv keeps it once.
    history = run / "history.csv"
    header, first = history.read_text().splitlines()
    history.write_text("\n".join([header, first, "1" + first[1:]]) + "\n")
    train(load_config("classify", run / "config.yaml"), resume=run)
    logged = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in logged[1:]] == ["0", "1", "2", "3"]


def test_graph_swap_exchanges_weights_and_average_both_ways_to_the_bit():
    """Keras' own swap adds and subtracts: with a weight of 1e-9 beside an average of 1,
    (w + a) - a is 0, and the weight would come back from a validation changed."""
    from visionsuite.core import train as core_train

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    optimizer = core_train.WarmingEMAAdamW(0.1, use_ema=True)
    model.compile(optimizer, "mse")
    model.train_on_batch(np.ones((4, 2), "float32"), np.zeros((4, 3), "float32"))
    model.trainable_variables[0].assign(np.full((2, 3), 1e-9, "float32"))  # the kernel
    optimizer._model_variables_moving_average[0].assign(np.ones((2, 3), "float32"))
    weights = [v.numpy() for v in model.trainable_variables]
    averages = [v.numpy() for v in optimizer._model_variables_moving_average]
    assert not np.allclose(weights[1], averages[1])  # the bias, as training left it
    swap = core_train.GraphSwapEMAWeights(swap_on_epoch=False)
    swap.set_model(model)
    for _ in range(2):  # the second time through the traced graph
        swap.on_test_begin()
        for variable, average in zip(model.trainable_variables, averages):
            np.testing.assert_array_equal(variable.numpy(), average)
        swap.on_test_end()
        for variable, weight in zip(model.trainable_variables, weights):
            np.testing.assert_array_equal(variable.numpy(), weight)
        for average, expected in zip(optimizer._model_variables_moving_average, averages):
            np.testing.assert_array_equal(average.numpy(), expected)


def test_last_checkpoint_counts_the_epochs_own_seconds_not_the_time_between():
    from visionsuite.core.train import LastCheckpoint

    now = [0.0]
    checkpoint = LastCheckpoint(None, {}, every_seconds=10, best=None, clock=lambda: now[0])
    saved = []
    checkpoint.save = saved.append
    checkpoint.set_params({"epochs": 6})
    model = keras.Sequential()
    model.stop_training = False  # fit sets it
    checkpoint.set_model(model)
    for epoch in range(6):
        checkpoint.on_epoch_begin(epoch)
        now[0] += 4.0  # the epoch
        checkpoint.on_epoch_end(epoch)
        now[0] += 30.0  # a caller's callbacks after it, or a benchmark's other models
    # 4 s epochs: saved once 10 s of them have passed (epochs 2 and 5, the last), not after
    # every epoch as the 34 s between ends would have it.
    assert saved == [2, 5]


def test_fused_average_matches_keras_ops_and_leaves_training_untouched():
    """The average updated by one fused kernel a variable gives the average of Keras' ops (to
    rounding), and the weights train bit for bit as with Keras' ops, validations between epochs
    included: the average feeds nothing back into training."""
    from visionsuite.core.train import GraphSwapEMAWeights, WarmingEMAAdamW, _tf_variable

    def keras_average(optimizer, variables):
        step = keras.ops.cast(optimizer.iterations, "float32")
        kept = keras.ops.minimum(optimizer.ema_momentum, (1.0 + step) / (10.0 + step))
        for variable, average in zip(variables, optimizer._model_variables_moving_average):
            _tf_variable(average).assign(kept * average + (1.0 - kept) * variable)

    def trained(fused: bool):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(4, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
        optimizer = WarmingEMAAdamW(0.05, weight_decay=0.01, use_ema=True, ema_momentum=0.9)
        if not fused:
            optimizer._update_model_variables_moving_average = \
                lambda variables: keras_average(optimizer, variables)
        model.compile(optimizer, "mse")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 3)).astype("float32")
        y = rng.normal(size=(40, 2)).astype("float32")
        raw = {}  # the weights after the last epoch's validation (fit then puts the average in)
        keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: raw.update(
            weights=[v.numpy() for v in model.trainable_variables],
            averages=[a.numpy() for a in optimizer._model_variables_moving_average]))
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(x, y),
                  callbacks=[GraphSwapEMAWeights(swap_on_epoch=False), keep])
        return raw["weights"], raw["averages"]

    (weights, averages), (keras_weights, keras_averages) = trained(True), trained(False)
    for ours, theirs in zip(weights, keras_weights):
        np.testing.assert_array_equal(ours, theirs)
    for ours, theirs, weight in zip(averages, keras_averages, weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
        assert not np.allclose(ours, weight)  # a real average, not the weights


@pytest.mark.parametrize("optimizer_class, options, tolerance", [
    # TensorFlow's Adam kernel computes 1 - beta in float32 (1 - 0.999: 0.00099998713, Keras
    # 0.001): its second moments differ from Keras' by 1.3e-5 (relative), the weights by up
    # to 7e-7 after 12 steps; epsilon 10% off, or beta_1 0.9001, fails these tolerances.
    ("WarmingEMAAdamW", {"weight_decay": 0.05}, (3e-5, 1.5e-6)),
    ("WarmingEMASGD", {"weight_decay": 0.05, "momentum": 0.9, "nesterov": True}, (0, 0)),
    ("WarmingEMASGD", {"momentum": 0.9}, (0, 0)),
])
def test_the_step_traced_with_its_scalars_once_trains_as_keras_step(
        optimizer_class, options, tolerance):
    """The optimizer's step with the schedule and Adam's bias corrections computed once a step
    and fused kernels (fewer ops to trace) moves the weights and its slots as Keras' own step:
    to the bit, or for Adam to the rounding of its kernel."""
    import tensorflow as tf
    from keras.src.backend.tensorflow.optimizer import TFOptimizer

    from visionsuite.core import train as core_train

    rng = np.random.default_rng(0)
    shapes = {"kernel": (3, 3, 4, 8), "bias": (8,), "gamma": (5,), "dense": (7, 3)}
    gradients = [[rng.normal(size=shape).astype("float32") * 10.0 ** rng.uniform(-4, 1)
                  for shape in shapes.values()] for _ in range(12)]

    def trained(keras_step: bool):
        variables = [keras.Variable(np.random.default_rng(1).normal(size=shape), name=name,
                                    dtype="float32") for name, shape in shapes.items()]
        schedule = core_train.FittedCosineDecay(1e-3, 20, warmup_target=1e-2, warmup_steps=3)
        optimizer = getattr(core_train, optimizer_class)(schedule, use_ema=True, **options)
        optimizer.exclude_from_weight_decay(var_names=["gamma", "bias"])
        if keras_step:  # the methods of Keras' classes, as without _ScalarsOncePerStep
            keras_update = type(optimizer).__mro__[3].update_step
            for name, method in (("_apply_weight_decay", TFOptimizer._apply_weight_decay),
                                 ("_backend_update_step", TFOptimizer._backend_update_step),
                                 ("update_step", keras_update)):
                setattr(optimizer, name, method.__get__(optimizer))
        optimizer.build(variables)
        step = tf.function(lambda grads: optimizer.apply(grads, variables))
        for grads in gradients:
            step([tf.constant(g) for g in grads])
        graph = step.get_concrete_function([tf.constant(g) for g in gradients[0]]).graph
        return [v.numpy() for v in variables + list(optimizer.variables)], \
            len(graph.get_operations())

    (ours, our_ops), (theirs, their_ops) = trained(False), trained(True)
    for mine, keras_value in zip(ours, theirs):
        np.testing.assert_allclose(mine, keras_value, *tolerance)
    assert not np.array_equal(ours[0], np.random.default_rng(1).normal(size=shapes["kernel"])
                              .astype("float32"))  # trained
    assert our_ops < their_ops
