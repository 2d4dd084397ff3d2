"""Task-agnostic training: a run folder, the default recipe, checkpoints, logs, resume.

The recipe: AdamW (or SGD with Nesterov momentum), linear warm-up then cosine decay, label
smoothing and augmentation from the config, an exponential moving average of the weights (what
is evaluated and saved), best-checkpoint saving, early stopping, CSV and TensorBoard logs.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras

import visionsuite.core.backbones  # noqa: F401  registers the custom layers for loading

from visionsuite.config import Config, save_config
from visionsuite.core.benchmark import cpu_flags
from visionsuite.core.files import (atomic_path, atomic_write_text, check_new_run, new_run_dir,
                                    write_json)
from visionsuite.errors import VisionsuiteError


def train(config: Config, output: str | Path = "runs", name: str | None = None,
          resume: str | Path | None = None, callbacks: list | None = None) -> Path:
    """Train `config.task` and return the run folder (model.keras, metrics.json, plots, ...).
    With `resume` (a run folder), training continues there from last.keras; `config` is then
    that run's config.yaml with any overrides (more epochs, say).
    `callbacks` (Keras callbacks) run after the built-in ones."""
    from visionsuite.tasks import get_task

    started = time.monotonic()  # train.max_minutes counts from here, data loading included
    task = get_task(config.task)
    task.check_augment(config)
    if not resume:  # a run's own config.yaml keeps every key, as the defaults were then
        task.check_settings(config)
        check_new_run(Path(output) / config.task, name)  # before the data is decoded
    task.check_model(config)
    check_recipe(config)
    keras.utils.set_random_seed(config.train.seed)
    policy = compute_policy(config.train.mixed_precision)
    with dtype_policy(policy):
        return _train(task, config, output, name, resume, callbacks, started)


MIXED_PRECISION = {False: "float32", True: "mixed_float16", "float16": "mixed_float16",
                   "bfloat16": "mixed_bfloat16"}
BFLOAT16_UNIT_NAMES = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}


def check_recipe(config: Config) -> None:
    """The errors of the training recipe, named before the data is decoded."""
    if config.train.optimizer not in ("adamw", "sgd"):
        raise VisionsuiteError(f"train.optimizer must be 'adamw' or 'sgd', "
                               f"got '{config.train.optimizer}'")
    if config.train.jit_compile not in (True, False, "auto"):
        raise VisionsuiteError(f"train.jit_compile must be auto, true or false, "
                               f"got '{config.train.jit_compile}'")


def compute_policy(setting: bool | str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The Keras dtype policy that train.mixed_precision names; auto is bfloat16 where the CPU
    computes it (`bfloat16_units`: AMX, or AVX512-BF16 alone as on AMD's Zen 4), else float32.
    On Zen 4 bfloat16 trained the shipped U-Net 1.65x as fast and membrane's Dice did not fall
    (0.8168 / 0.9251 after 83 epochs in 19 minutes, against 0.8145 / 0.9242 after 48 in
    float32). An overhead of our pipeline there (0.930 of a plain model.fit at that precision,
    once) was looked for and not found: step by step, with and without the EMA, AdamW, the loss,
    the metrics or the input pipeline, ours ran as fast as the plain loop within the machine's
    noise (throwaway /tmp/an/bfprof*.py), and benchmarks/segment.py then gave 0.999.
    _build_model still keeps float32 for models whose channels do not suit bfloat16
    (`bfloat16_suits`)."""
    if setting == "auto":
        return "mixed_bfloat16" if bfloat16_units(cpuinfo) else "float32"
    if setting not in MIXED_PRECISION:
        raise VisionsuiteError(f"train.mixed_precision must be auto, false, bfloat16 or "
                               f"float16, got '{setting}'")
    return MIXED_PRECISION[setting]


def bfloat16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The bfloat16 instructions of a CPU without a GPU, as Linux lists its flags: amx_bf16
    (AMX's matrix tiles, Xeon 4th generation on) and avx512_bf16 (bfloat16 dot products in
    vector registers: AMD's Zen 4, and the same Xeons); empty on a machine with a GPU, or a
    CPU that would emulate bfloat16, slower than float32. oneDNN runs convolutions on either:
    the shipped U-Net's step (fused batch norm; benchmarks/train_step.py) took 0.31 s in
    bfloat16 against 0.67 s in float32 on an AMX Xeon, 0.50 s against 0.82 s on an AMD EPYC
    with AVX512-BF16 alone. bfloat16 on GPUs was not measured, so auto leaves them float32."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return []
    flags = cpu_flags(cpuinfo)
    return [unit for unit in BFLOAT16_UNIT_NAMES if unit in flags]


def float32_twin(model):
    """An uncompiled copy of `model`'s architecture computing in float32: what is saved,
    evaluated and exported, whatever precision training used (the weights are float32 in
    both)."""
    return rebuilt_with(model, "DTypePolicy",
                        lambda node: {**node, "config": {**node["config"], "name": "float32"}})


def float32_inference_twin(model, inference_model):
    """float32_twin of `model` and `inference_model(twin)` (the task's part of it that is saved
    and evaluated), both computing in float32: a training holds its dtype policy until its end,
    and the layers an inference model adds around the twin (face: the flip averaging's mirror
    and sum) would compute in it (in bfloat16 a sum of two embeddings keeps 8 bits)."""
    twin = float32_twin(model)
    with dtype_policy("float32"):
        return twin, inference_model(twin)


def rebuilt_with(model, class_name: str, replace):
    """An uncompiled copy of `model` from its config, every object of `class_name` in it (a
    layer, a dtype policy) serialized as `replace(its serialized dict)`."""
    def rewritten(node):
        if isinstance(node, dict):
            if node.get("class_name") == class_name:
                return replace(node)
            return {key: rewritten(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewritten(value) for value in node]
        return node

    return keras.Model.from_config(rewritten(model.get_config()))


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Keras' global dtype policy is `policy` while models are built inside."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _train(task, config: Config, output, name, resume, callbacks, started) -> Path:
    if config.data.val_fraction >= 1:
        raise VisionsuiteError(f"data.val_fraction={config.data.val_fraction}: must be below 1, "
                               "leaving images to train on")
    data = task.load_data(config)
    _print_data_summary(data)
    if not config.data.path:
        print(f"data: the embedded default dataset; {config.train.epochs} epochs at "
              f"{config.data.image_size} px (pass --data PATH for your own)", file=sys.stderr)
    if len(data.train) < 1:
        raise VisionsuiteError(f"{data.source}: the train split holds no readable images")

    if resume:
        run_dir = Path(resume)
        # The task's loss and metric classes are defined (and registered with Keras) when first
        # made: made here, they are known when last.keras, compiled with them, is loaded.
        task.loss_and_metrics(config, data.labels)
        model, state = _load_resume_state(run_dir)
        if config.train.mixed_precision:  # the saved layers keep the precision they had
            compute = next((dtype for dtype in ("bfloat16", "float16")
                            if _computes_in(model, dtype)), "float32")
            print(f"precision: {compute} compute, as the run was trained", file=sys.stderr)
        save_config(config, run_dir / "config.yaml")
    else:
        # The model is built before the run folder, so that a config it refuses leaves none.
        model, state = _build_model(task, config, data.labels), {"epoch": -1}
        if config.model.weights:
            _load_start_weights(model, Path(config.model.weights))
        _compile(model, task, config, data)
        run_dir = new_run_dir(Path(output) / config.task, name)
        save_config(config, run_dir / "config.yaml")
        atomic_write_text(run_dir / "labels.txt", "\n".join(data.labels) + "\n")
    print(f"run folder: {run_dir}", file=sys.stderr)

    try:
        fit_model(model, task, config, data, run_dir, state, callbacks or [], started)
    except BaseException as err:
        if not resume and not any((run_dir / n).exists() for n in ("last.keras", "model.keras")):
            shutil.rmtree(run_dir, ignore_errors=True)  # ours, just made, and nothing to resume
        elif isinstance(err, KeyboardInterrupt):
            _say_where_the_run_stands(run_dir, config.task)
        raise
    return finish_run(run_dir, task, config, data)


def _build_model(task, config: Config, labels: list[str]):
    """The task's model under the dtype policy in force; with train.mixed_precision=auto, in
    float32 instead when its convolutions do not suit bfloat16 (`bfloat16_suits`)."""
    model = task.build_model(config, labels)
    if config.train.mixed_precision != "auto" or keras.config.dtype_policy().name == "float32":
        return model
    units = " and ".join(BFLOAT16_UNIT_NAMES[unit] for unit in bfloat16_units()) or "bfloat16"
    if bfloat16_suits(model):
        print(f"precision: bfloat16 compute, float32 weights (train.mixed_precision=auto on a "
              f"CPU with {units})", file=sys.stderr)
        return model
    print(f"precision: float32 (train.mixed_precision=auto: this CPU has {units}, but the "
          "model's channels are not multiples of 16, where bfloat16 trained slower)",
          file=sys.stderr)
    keras.config.set_dtype_policy("float32")  # until train() restores the caller's
    # Built again from the seed rather than copied (float32_twin): the copy's own build draws
    # from the random state, and the run then differed from a float32 one (val Dice 0.9874
    # against 0.9871 on the embedded default); this way it is that run, to the bit.
    keras.utils.set_random_seed(config.train.seed)
    return task.build_model(config, labels)


def bfloat16_suits(model) -> bool:
    """Whether bfloat16 (AMX or AVX512-BF16) surely speeds up training `model`: every
    convolution's channel count is a multiple of 16 (the rows of an AMX tile); a last
    convolution that no Dense layer follows, a segmentation head (a channel a class), is left
    out. Steps of the U-Net on an AMX Xeon, bfloat16 against float32, by its first level's
    filters: 16: 0.50x (256-px crops), 0.56x (128 px); 32: 0.47x; 48: 0.36x; but 8: 3.5x (the
    embedded default, 96 px) to 4.6x, 12: 2.4x, 20: 1.65x, 24: 1.3-1.5x (oneDNN's other path
    took some 400 ms a 128-px batch whatever the width). Cautious: 40 filters (0.72x) and
    MobileNetV2 encoders (0.79-0.84x; ResNet-18's, 0.63x, suit) were faster in bfloat16 all the
    same, and train.mixed_precision=bfloat16 gives them that (throwaway /tmp/an/bfsweep.py,
    bfsweep2.py). On an AMD EPYC with AVX512-BF16 alone the rule holds: 16 filters 0.60x (256
    px), 32: 0.56x, ResNet-18's encoder 0.68x; 8: 1.6-1.9x, 24: 0.86x, MobileNetV2 0.87x
    (/tmp/an/bfsweep48.py). MobileFaceNet suits by it, yet its depthwise layers made its step
    1.15x (AMX) and 1.2x (AVX512-BF16) slower: the face config trains in float32."""
    layers = list(_flat_layers(model))
    convolutions = [layer for layer in layers if _conv_channels(layer) is not None]
    if convolutions and not any(isinstance(layer, keras.layers.Dense)
                                for layer in layers[layers.index(convolutions[-1]):]):
        convolutions = convolutions[:-1]  # the head
    return bool(convolutions) and all(_conv_channels(c) % 16 == 0 for c in convolutions)


def _computes_in(model, dtype: str) -> bool:
    """Whether a layer with weights computes in `dtype` (an InputLayer reports the global
    policy's, whatever the model was saved with)."""
    return any(layer.weights and layer.compute_dtype == dtype for layer in _flat_layers(model))


def _conv_channels(layer) -> int | None:
    """The output channels of a convolution layer, else None."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return layer.kernel.shape[-2] * layer.kernel.shape[-1]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
                          keras.layers.SeparableConv2D)):
        return layer.filters
    return None


def _flat_layers(model):
    for layer in model.layers:
        yield from _flat_layers(layer) if hasattr(layer, "layers") else (layer,)


def _say_where_the_run_stands(run_dir: Path, task_name: str) -> None:
    """After a second Ctrl-C: what the run folder keeps, and how to go on."""
    try:
        epoch = json.loads((run_dir / "state.json").read_text())["epoch"] + 1
    except (OSError, ValueError, KeyError):
        return
    print(f"{run_dir} keeps its last checkpoint (after epoch {epoch}); "
          f"{resume_command(task_name, run_dir)} trains the rest", file=sys.stderr)


def resume_command(task_name: str, run_dir: Path) -> str:
    """The command that continues a stopped run, as the messages that stop one quote it."""
    return f"'visionsuite train {task_name} --resume {run_dir}'"


def _print_data_summary(data) -> None:
    skipped = len(data.val.skipped) + (len(data.train.skipped) if data.train else 0)
    train_count = len(data.train) if data.train else 0
    note = f", {skipped} unreadable skipped" if skipped else ""
    print(f"data: {data.source}: {train_count} train / {len(data.val)} val images, "
          f"{len(data.labels)} classes{note}", file=sys.stderr)


def steps_per_epoch(task, config: Config, data) -> int:
    return max(1, task.train_samples(config, data) // config.train.batch_size)


def _compile(model, task, config: Config, data) -> None:
    steps = steps_per_epoch(task, config, data)
    total, warmup = steps * config.train.epochs, int(steps * config.train.warmup_epochs)
    schedule = FittedCosineDecay(
        initial_learning_rate=config.train.lr * 0.01 if warmup else config.train.lr,
        decay_steps=max(1, total - warmup), alpha=config.train.min_lr_ratio,
        warmup_target=config.train.lr if warmup else None, warmup_steps=warmup)
    ema = {"use_ema": config.train.ema, "ema_momentum": config.train.ema_momentum}
    if config.train.optimizer == "adamw":
        optimizer = WarmingEMAAdamW(schedule, weight_decay=config.train.weight_decay, **ema)
    else:  # sgd (check_recipe)
        optimizer = WarmingEMASGD(schedule, momentum=0.9, nesterov=True,
                                  weight_decay=config.train.weight_decay, **ema)
    # Norm scales and biases are not decayed, as in the recipes these defaults come from.
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    loss, metrics = task.loss_and_metrics(config, data.labels)
    # "auto" (Keras' default) leaves XLA off on CPU-only machines: U-Net steps ran 2x slower
    # with it here.
    model.compile(optimizer, loss, metrics=metrics, jit_compile=config.train.jit_compile)
    # Built now, not inside the first traced train step: a tf.function that creates variables
    # is traced twice, and tracing a step cost up to 30 s (the YOLO detector's).
    optimizer.build(model.trainable_variables)


@keras.saving.register_keras_serializable("visionsuite")
class FittedCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Keras' warm-up and cosine decay, whose length can change while the model trains: when a
    time budget (train.max_minutes) cuts the epochs, the decay is fitted to end at the new last
    step rather than being cut off at a high learning rate. decay_steps is a variable, so the
    compiled train step reads the new value without being traced again."""

    def __init__(self, initial_learning_rate, decay_steps, **kwargs):
        super().__init__(initial_learning_rate, decay_steps, **kwargs)
        self.decay_steps = keras.Variable(decay_steps, dtype="float32", trainable=False,
                                          name="decay_steps")

    def fit_to(self, total_steps: int) -> None:
        """Make the decay end after `total_steps` steps, warm-up included."""
        self.decay_steps.assign(max(1, total_steps - self.warmup_steps))

    def get_config(self):
        return {**super().get_config(), "decay_steps": int(self.decay_steps.numpy())}


def xla_compiled(function):
    """`function` compiled by XLA, which fuses its many small ops into a few passes. Here, a
    batch of 8 256-px crops: segment's loss (forward and backward) took 4.8 ms instead of 15.6,
    each of its metric updates 3.3 ms instead of 9.0 as a one-hot product (1.4 ms now as a pair
    count). XLA compiles anew in every run, so it serves where it saves more than that (the
    weights' average, compiled before, cost 1.5-2 s a run for no step time measurable here).
    The TensorFlow backend's; elsewhere `function` as it is."""
    if keras.backend.backend() != "tensorflow":
        return function
    import tensorflow as tf

    return tf.function(function, jit_compile=True, reduce_retracing=True)


class _WarmingEMA:
    """The moving average of the weights, its momentum ramped up over the first steps as
    tf.train.ExponentialMovingAverage does: min(ema_momentum, (1 + step) / (10 + step)).
    Keras' own average starts from the initial weights at the full momentum: at 0.99 they still
    made 30% of it after 120 steps, and a 12-image segmentation set's val Dice stayed at 0.47
    (all background) for 10 epochs while the raw weights' train Dice was 0.99."""

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        import tensorflow as tf

        step = keras.ops.cast(self.iterations, "float32")
        momentum = keras.ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))
        shares = {}  # dtype -> (kept, 1 - kept): once, not once a variable (fewer ops to trace)
        fused = not tf.distribute.has_strategy()
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is None:
                continue
            variable, average = _tf_variable(variable), _tf_variable(average)
            if variable.dtype not in shares:
                kept = tf.cast(momentum, variable.dtype)
                shares[variable.dtype] = kept, 1 - kept
            kept, added = shares[variable.dtype]
            if fused:
                # average -= (1 - kept) * (average - weight) in one kernel: 4 graph ops a
                # variable instead of 6. Not compiled by XLA: the step time is the same within
                # this machine's noise, and XLA compiled it anew in every run, 1.5-2 s before
                # the shipped U-Net's first step.
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=average.handle, alpha=added, delta=average.read_value() - variable)
            else:  # a strategy's distributed variables have no single handle
                average.assign(kept * average + added * variable)


class GraphSwapEMAWeights(keras.callbacks.SwapEMAWeights):
    """The swap of the weights and their average around each validation, by copies and as one
    graph. Keras' swap adds and subtracts them (w + a - a), in place to save memory: its rounding
    reached the weights, so a run hung on the average's last bits (classify's embedded default
    scored val accuracy 0.915 or 0.89 with averages that differed by 1e-6). Copying costs one
    weight's size in a temporary and gives both back to the bit. A swap of the shipped U-Net's
    50 variables took 17.8 ms with Keras' eager assignments, 0.93 ms as a graph and 0.50 ms as
    a graph of copies (twice a validation). Under a tf.distribute strategy, Keras' own swap."""

    def _tf_swap_variables(self, optimizer):
        import tensorflow as tf

        if tf.distribute.has_strategy():
            return super()._tf_swap_variables(optimizer)
        graphs = self.__dict__.setdefault("_graphs", {})
        if id(optimizer) not in graphs:
            graphs[id(optimizer)] = tf.function(lambda: _exchange_values(
                optimizer._trainable_variables, optimizer._model_variables_moving_average))
        graphs[id(optimizer)]()


def _exchange_values(variables, others) -> None:
    """Swap the values of two lists of variables (inside a tf.function: its automatic control
    dependencies order each variable's read before its assignment)."""
    import tensorflow as tf

    pairs = [(variable.value, other.value) for variable, other in zip(variables, others)
             if other is not None]
    kept = [tf.identity(variable) for variable, _ in pairs]
    for (variable, other), value in zip(pairs, kept):
        variable.assign(other)
        other.assign(value)


class _ScalarsOncePerStep:
    """The optimizer's step with its scalars computed once a step instead of once a variable.
    Keras' TensorFlow optimizer evaluates the learning-rate schedule again for each decayed
    variable and Adam's bias corrections for each variable, each a few graph ops; tracing
    those ops for some 200 variables was most of a train step's tracing (face: 17 of 22 s in
    a profile; the first step of every run, resumes too, waits for it). Each variable's update
    is then one of TensorFlow's fused optimizer kernels where one computes it (Adam's, and
    plain descent for the weight decay). Under a tf.distribute strategy, Keras' own
    per-replica update."""

    def _apply_weight_decay(self, variables):
        import tensorflow as tf

        if self.weight_decay is None or tf.distribute.has_strategy():
            return super()._apply_weight_decay(variables)
        learning_rate = self.learning_rate  # the schedule, evaluated once
        scalars = {}  # dtype -> (decay, learning rate), also made once
        for variable in variables:
            if self._use_weight_decay(variable):
                value = _tf_variable(variable)
                if value.dtype not in scalars:
                    scalars[value.dtype] = (tf.cast(self.weight_decay, value.dtype),
                                            tf.cast(learning_rate, value.dtype))
                decay, rate = scalars[value.dtype]
                # value -= rate * (value * decay) in one kernel: Keras' value * decay * rate,
                # to the bit, with one op fewer.
                tf.raw_ops.ResourceApplyGradientDescent(var=value.handle, alpha=rate,
                                                        delta=value * decay)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        import tensorflow as tf

        if tf.distribute.has_strategy():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        # Tensors of this trace only: dropped when the step is built.
        self._step_scalars = {}
        try:
            for grad, variable in zip(grads, trainable_variables):
                self.update_step(grad, _tf_variable(variable), learning_rate)
        finally:
            del self._step_scalars


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


@keras.saving.register_keras_serializable("visionsuite")
class WarmingEMAAdamW(_ScalarsOncePerStep, _WarmingEMA, keras.optimizers.AdamW):
    def update_step(self, gradient, variable, learning_rate):
        """Keras' Adam step (keras/src/optimizers/adam.py) as TensorFlow's fused Adam kernel
        (ResourceApplyAdam, tf.keras' Adam), one graph op a variable instead of some 15: a
        YOLO detector's train step (207 variables) traced and ran its first step in 13.5-17 s
        instead of 18.5-23, the step time the same within this machine's noise. The kernel's
        arithmetic is Keras' in the same order, but for 1 - beta, which it computes in the
        variable's dtype (float32: 1 - 0.999 is 0.00099998713, Keras' 0.001): the second
        moments differ from Keras' by 1.3e-5 of their value, as if beta_2 were 0.99900001.
        The step size and constants are made once a step for all variables of a dtype
        (_ScalarsOncePerStep)."""
        import tensorflow as tf

        scalars = getattr(self, "_step_scalars", None)
        if scalars is None or self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        if dtype not in scalars:
            local_step = keras.ops.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
            scalars[dtype] = (tf.pow(beta_1, local_step), tf.pow(beta_2, local_step),
                              tf.cast(learning_rate, dtype), beta_1, beta_2,
                              tf.constant(self.epsilon, dtype))
        beta_1_power, beta_2_power, rate, beta_1, beta_2, epsilon = scalars[dtype]
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle, beta1_power=beta_1_power,
            beta2_power=beta_2_power, lr=rate, beta1=beta_1, beta2=beta_2, epsilon=epsilon,
            grad=tf.cast(gradient, dtype))


@keras.saving.register_keras_serializable("visionsuite")
class WarmingEMASGD(_ScalarsOncePerStep, _WarmingEMA, keras.optimizers.SGD):
    pass


def fit_model(model, task, config: Config, data, run_dir: Path, state: dict,
              extra_callbacks: list, started: float) -> None:
    """Train `model` for the config's epochs, within train.max_minutes counted from `started`
    (a time.monotonic() reading) plus the run's earlier sessions."""
    train_ds, val_ds = task.make_datasets(config, data)
    if state["epoch"] >= 0:
        _forget_epochs_after(run_dir / "history.csv", state["epoch"])
    callbacks = list(task.epoch_callbacks(config, data))
    if config.train.ema:
        # Validation sees the averaged weights (BestCheckpoint saves them); training and
        # last.keras keep the raw ones, so that --resume continues exactly.
        callbacks.append(GraphSwapEMAWeights(swap_on_epoch=False))
    best = BestCheckpoint(run_dir, task.monitor, task.monitor_mode, state,
                          lambda model: task.inference_model(model, config))
    callbacks += [
        best,
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=state["epoch"] >= 0),
    ]
    if config.train.patience > 0:
        callbacks.append(EarlyStop(config.train.patience, state))
    if config.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"),
                                                     write_graph=False, update_freq="epoch"))
    if config.train.max_minutes:
        budget = TimeBudget(config.train.max_minutes, config.train.epochs, started, state,
                            steps_per_epoch(task, config, data),
                            on_plan=getattr(train_ds, "plan_epochs", None))
        if state["epoch"] >= 0 and budget.spent():  # a new run trains at least one epoch
            print(f"{run_dir}: already trained for its train.max_minutes "
                  f"({config.train.max_minutes:g}); raise it to train on", file=sys.stderr)
            return
        callbacks.append(budget)
    else:
        callbacks.append(TrainingClock(started, state))
    # Last: it saves the state that the callbacks above update.
    callbacks.append(LastCheckpoint(run_dir, state, config.train.checkpoint_seconds, best))
    callbacks += extra_callbacks
    start = state["epoch"] + 1
    if hasattr(train_ds, "start_at_epoch"):  # epoch-dependent augmentation, on --resume too
        train_ds.start_at_epoch(start)
    if start >= config.train.epochs:
        print(f"{run_dir}: already trained for {config.train.epochs} epochs", file=sys.stderr)
        return
    stop = StopOnInterrupt()
    callbacks.insert(0, stop)  # first, so that LastCheckpoint sees the stop of that epoch
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=config.train.epochs,
                  initial_epoch=start, callbacks=callbacks, shuffle=False,
                  verbose=1 if sys.stdout.isatty() else 2)
    finally:
        stop.restore()
    if stop.requested:
        print(f"stopped by Ctrl-C after epoch {stop.epochs_done} of {config.train.epochs}; "
              f"{resume_command(config.task, run_dir)} trains the rest", file=sys.stderr)


def _forget_epochs_after(history_csv: Path, last_epoch: int) -> None:
    """Drops the rows of epochs after the checkpoint that a run resumes from: a killed run logs
    every epoch but checkpoints only every train.checkpoint_seconds, and the epochs trained
    again would otherwise be logged twice (and drawn as a curve going back)."""
    if not history_csv.is_file():
        return

    def later(line: str) -> bool:
        epoch = line.split(",", 1)[0]
        return epoch.isdigit() and int(epoch) > last_epoch

    lines = history_csv.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if not later(line)]
    if len(kept) < len(lines):
        atomic_write_text(history_csv, "".join(kept))


def finish_run(run_dir: Path, task, config: Config, data) -> Path:
    """Evaluate the best checkpoint on val and write metrics.json and the plots."""
    from visionsuite.core.models import INFERENCE_SETTINGS, KerasPredictor, load_keras_model
    from visionsuite.core.plots import plot_history
    from visionsuite.core.report import detail_text, table

    model = load_keras_model(run_dir / "model.keras")
    started = time.perf_counter()
    outputs = task.predict(KerasPredictor(model), data.val, config)
    metrics = task.evaluate(outputs, data.val, data.labels)
    metrics["eval_seconds"] = round(time.perf_counter() - started, 3)
    metrics["skipped_images"] = len(data.val.skipped) + len(data.train.skipped)
    settings = task.inference_settings(metrics, data, config)
    if settings:
        write_json(run_dir / INFERENCE_SETTINGS, settings)
    write_json(run_dir / "metrics.json", metrics)
    plot_history(run_dir / "history.csv", run_dir / "curves.png")
    task.plot(metrics, data.labels, run_dir)
    task.plot_predictions(outputs, data.val, data.labels, run_dir, metrics)
    print(table([{"split": "val", **task.headline(metrics)}]))
    print(detail_text(task.detail_tables(metrics)), end="")
    return run_dir


class BestCheckpoint(keras.callbacks.Callback):
    """Tracks the best epoch (ties go to the lower val_loss) and keeps a copy of its weights (the
    averaged ones when EMA is on), which `flush` writes to model.keras without optimizer state.
    LastCheckpoint flushes on its schedule and at the end: a save costs 0.15-0.25 s of CPU here,
    a few percent of a short epoch on 2 cores, too much to pay after every improving epoch.
    Writes run on a background thread, to a temporary name that is then renamed."""

    def __init__(self, run_dir: Path, monitor: str, mode: str, state: dict,
                 inference_model=lambda model: model):
        super().__init__()
        self.run_dir, self.monitor, self.mode, self.state = run_dir, monitor, mode, state
        self.to_inference_model = inference_model  # the part of the model that is saved
        state.setdefault("best", None)
        state.setdefault("best_loss", math.inf)
        self.twin = self.inference_model = None  # built once: an uncompiled twin
        self.best_weights = None  # not yet written
        self.writer = ThreadPoolExecutor(1)
        self.pending = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value, loss = logs.get(self.monitor), logs.get("val_loss", math.inf)
        if value is None:
            raise VisionsuiteError(f"metric '{self.monitor}' was not computed")
        best = self.state["best"]
        better = (best is None or (value > best if self.mode == "max" else value < best)
                  or (value == best and loss < self.state["best_loss"]))
        if better:
            self.state.update(best=float(value), best_loss=float(loss), best_epoch=epoch)
            self.best_weights = averaged_weights(self.model)

    def flush(self) -> None:
        if self.best_weights is None:
            return
        if self.twin is None:
            self.twin, self.inference_model = float32_inference_twin(self.model,
                                                                     self.to_inference_model)
        self.wait()  # one save at a time, in epoch order
        self.pending = self.writer.submit(self._save, self.best_weights)
        self.best_weights = None

    def _save(self, weights: list) -> None:
        self.twin.set_weights(weights)
        with atomic_path(self.run_dir / "model.keras", suffix=".keras") as tmp:
            self.inference_model.save(tmp)

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()  # re-raises a failed save here, in the training thread
            self.pending = None

    def on_train_end(self, logs=None):
        self.flush()
        self.wait()


def averaged_weights(model) -> list:
    """The model's weights with each trainable variable replaced by its moving average, when
    the optimizer keeps one (use_ema); else the weights as they are."""
    optimizer = model.optimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or not averages:
        return model.get_weights()
    average_of = {id(v): a for v, a in zip(optimizer._trainable_variables, averages)}
    return [keras.ops.convert_to_numpy(average_of.get(id(v), v)) for v in model.weights]


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) while training. The first ends training after the current step: that
    epoch is validated and checkpointed and the run is evaluated, as if it had been the last
    one, so that a run stopped because it is good enough is kept whole. The second quits at
    once; the last checkpoint stays, for --resume. Python handles signals in the main thread
    only: elsewhere (training started from a worker thread) Ctrl-C is left as it was."""

    def __init__(self):
        super().__init__()
        self.requested, self.installed, self.previous = False, False, None
        self.epochs_done = 0  # when stopped: the epochs of the run, earlier sessions included

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._interrupt)
            self.installed = True

    def _interrupt(self, signum, frame):
        if self.requested:
            self.restore()
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: training stops after this step; the epoch is validated, saved and "
              "evaluated (Ctrl-C again quits at once)", file=sys.stderr)

    def on_train_batch_end(self, batch, logs=None):
        # Set here, not in the handler: Keras clears stop_training as fit starts.
        if self.requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        self.on_train_batch_end(None)  # Ctrl-C during validation

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self) -> None:
        if self.installed:  # None: a handler not set from Python; Python's own then
            signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)
            self.installed = False


class EarlyStop(keras.callbacks.Callback):
    """Stops when the best epoch is `patience` epochs old; reads the state BestCheckpoint keeps,
    so that it survives --resume."""

    def __init__(self, patience: int, state: dict):
        super().__init__()
        self.patience, self.state = patience, state

    def on_epoch_end(self, epoch, logs=None):
        if epoch - self.state.get("best_epoch", epoch) >= self.patience:
            print(f"early stop: no improvement in {self.patience} epochs", file=sys.stderr)
            self.model.stop_training = True


class LastCheckpoint(keras.callbacks.Callback):
    """After every `every_seconds` of training and after the last epoch: writes the best model
    (BestCheckpoint), then last.keras (raw weights and optimizer state) and state.json for
    --resume, so that the three always agree. A killed run loses at most `every_seconds` of
    training. The seconds are the epochs' own, from their start to this callback: callbacks
    after it (a caller's) do not make checkpoints come more often. benchmarks/segment.py runs
    two other models' epochs there, and on the wall clock a 0.5-s save fell on every other
    epoch of ours instead of one in seven."""

    def __init__(self, run_dir: Path, state: dict, every_seconds: float, best: BestCheckpoint,
                 clock=time.monotonic):
        super().__init__()
        self.run_dir, self.state, self.every, self.best = run_dir, state, every_seconds, best
        self.clock = clock
        self.trained = 0.0  # seconds of epochs since the last save
        self.epoch_began = clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_began = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        self.trained += self.clock() - self.epoch_began
        last = epoch + 1 >= self.params["epochs"] or self.model.stop_training
        if last or self.trained >= self.every:
            self.save(epoch)
            self.trained = 0.0

    def save(self, epoch: int) -> None:
        self.best.flush()
        with atomic_path(self.run_dir / "last.keras", suffix=".keras") as tmp:
            self.model.save(tmp)
        write_json(self.run_dir / "state.json", {**self.state, "epoch": epoch})


class TrainingClock(keras.callbacks.Callback):
    """Keeps the run's training time (seconds from the start of `train`, over all its sessions)
    in the state, as `train_seconds`."""

    def __init__(self, started: float, state: dict, clock=time.monotonic):
        super().__init__()
        self.started, self.state, self.clock = started, state, clock
        self.earlier = state.get("train_seconds", 0.0)  # sessions before a --resume

    def elapsed(self) -> float:
        return self.earlier + self.clock() - self.started

    def on_epoch_end(self, epoch, logs=None):
        self.state["train_seconds"] = round(self.elapsed(), 1)


# An epoch longer than this share of train.max_minutes is cut where the budget runs out: its
# overrun could be that long. Membrane's 16-s epochs of a 19-minute budget (1.4%) end whole.
LONG_EPOCH = 0.05


class TimeBudget(TrainingClock):
    """train.max_minutes: after each epoch, the epochs that still fit in the budget at the mean
    epoch time so far (the first of a session is left out when there are others: it traces
    the graph) set where training stops, and the learning-rate decay is fitted to end there,
    as Ultralytics' `time` does (the training data's `plan_epochs` is told too, where it has
    one). The run folder's config keeps train.epochs; state.json keeps the epochs that fitted.
    An epoch longer than LONG_EPOCH of the budget (a PanNuke-sized set's: 20 minutes and more)
    is cut at the step where the budget runs out, then validated and saved, as Ctrl-C cuts
    one; shorter ones end whole, as planned."""

    def __init__(self, minutes: float, epochs: int, started: float, state: dict,
                 steps_per_epoch: int, on_plan=None, clock=time.monotonic):
        super().__init__(started, state, clock)
        self.budget, self.epochs, self.steps = minutes * 60, epochs, steps_per_epoch
        self.on_plan = on_plan  # told the planned epochs (detect's last epochs without mosaic)
        self.durations, self.last_end, self.announced, self.trained = [], None, False, 0
        self.planned = state.get("planned_epochs", epochs)
        self.epoch_began, self.cut = None, None  # cut: (steps trained, of) in the last epoch

    def spent(self) -> bool:
        return self.elapsed() >= self.budget

    def on_train_begin(self, logs=None):
        self.last_end = self.clock()
        if self.on_plan:  # a resumed run's plan, from its state
            self.on_plan(self.planned)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_began = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.cut or self.epoch_began is None or batch + 1 >= self.steps \
                or not self.spent():
            return  # its last step ends the epoch anyway
        epoch_seconds = (self.clock() - self.epoch_began) * self.steps / (batch + 1)
        if epoch_seconds > LONG_EPOCH * self.budget:
            self.model.stop_training = True
            self.cut = (batch + 1, self.steps)
            self.announced = True  # no plan of epochs to tell after this
            print(f"\ntime budget: train.max_minutes={self.budget / 60:g} spent at step "
                  f"{batch + 1} of {self.steps} of an epoch of about {epoch_seconds / 60:.0f} "
                  "minutes: it stops there, validated and saved", file=sys.stderr)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        # From one epoch's end to the next: validation and checkpoints included.
        now = self.clock()
        self.durations.append(now - self.last_end)
        self.last_end = now
        typical = self.durations[1:] or self.durations
        per_epoch = sum(typical) / len(typical)
        fitting = epoch + 1 + int(max(0.0, self.budget - self.elapsed()) // per_epoch)
        planned = min(self.epochs, fitting)
        # Said once the estimate leaves the first epoch's tracing out (it made membrane's
        # 9-s epochs 15 s: "about 74 of 100 epochs fit", then all 100 did), or when training
        # stops now. The plan moves by an epoch or two with the machine's speed; the end says
        # what was trained.
        settled = len(self.durations) > 1 or epoch + 1 >= planned
        if planned < self.epochs and settled and not self.announced:
            print(f"\ntime budget: about {planned} of {self.epochs} epochs fit in "
                  f"train.max_minutes={self.budget / 60:g} at {per_epoch:.0f} s an epoch",
                  file=sys.stderr)
            self.announced = True
        if planned != self.planned:
            self.planned = planned
            # Private: Keras keeps the schedule object only there. Runs of older versions have
            # Keras' own CosineDecay, which stays as it is.
            schedule = getattr(self.model.optimizer, "_learning_rate", None)
            if isinstance(schedule, FittedCosineDecay):
                schedule.fit_to(planned * self.steps)
            if self.on_plan:
                self.on_plan(planned)
        self.state["planned_epochs"] = self.planned
        self.trained = epoch + 1
        if epoch + 1 >= self.planned:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.announced:  # a cut epoch is announced too
            cut = f", the last {self.cut[0]} of its {self.cut[1]} steps" if self.cut else ""
            print(f"time budget: trained {self.trained} of {self.epochs} epochs{cut} in "
                  f"{self.elapsed() / 60:.1f} minutes", file=sys.stderr)


def _load_resume_state(run_dir: Path):
    last, state_file = run_dir / "last.keras", run_dir / "state.json"
    if not last.is_file() or not state_file.is_file():
        raise VisionsuiteError(f"{run_dir}: nothing to resume (no last.keras / state.json)")
    model = keras.saving.load_model(last, safe_mode=True)
    state = json.loads(state_file.read_text())
    return model, state


def _load_start_weights(model, path: Path) -> None:
    from visionsuite.core.models import load_keras_model

    if not path.is_file():
        raise VisionsuiteError(f"{path}: model.weights file not found")
    if path.suffix == ".keras":
        source = load_keras_model(path)
        loaded = 0
        for layer in model.layers:
            try:
                other = source.get_layer(layer.name)
            except ValueError:
                continue
            shapes = [w.shape for w in other.get_weights()]
            if shapes and shapes == [w.shape for w in layer.get_weights()]:
                layer.set_weights(other.get_weights())
                loaded += 1
        print(f"weights: {loaded} layers loaded from {path}", file=sys.stderr)
    else:
        model.load_weights(path, skip_mismatch=True)
