"""Loading trained models safely, and running Keras and TFLite models behind one interface."""

from __future__ import annotations

import functools
import zipfile
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.errors import VisionsuiteError, first_line
from visionsuite.quiet import native_notices_held

# Settings learned in training that inference needs (Task.inference_settings), beside
# model.keras in a run folder and packed into exported .tflite files.
INFERENCE_SETTINGS = "inference.json"
# The folder of a run that `visionsuite export` writes into by default.
EXPORT_FOLDER = "exported"


@dataclass
class ModelSource:
    """What `RUN` on the command line points at: a run folder, a .keras or a .tflite file."""

    path: Path  # the model file
    kind: str  # "keras" | "tflite"
    run_dir: Path | None
    labels: list[str] | None
    settings: dict = field(default_factory=dict)  # the run's inference.json, if any


def resolve_model(run: str | Path) -> ModelSource:
    path = Path(run)
    if not path.exists():
        raise VisionsuiteError(f"{path}: no such run folder or model file")
    if path.is_dir():
        model = path / "model.keras"
        if not model.is_file():
            raise VisionsuiteError(f"{path}: not a run folder (no model.keras in it)")
        return ModelSource(model, "keras", path, read_labels(path / "labels.txt"),
                           read_settings(path / INFERENCE_SETTINGS))
    suffix = path.suffix.lower()
    if suffix == ".keras":
        run_dir = path.parent if (path.parent / "config.yaml").is_file() else None
        return ModelSource(path, "keras", run_dir, read_labels(path.parent / "labels.txt"),
                           read_settings(path.parent / INFERENCE_SETTINGS))
    if suffix == ".tflite":
        return ModelSource(path, "tflite", _run_of_export(path), tflite_labels(path),
                           tflite_settings(path))
    raise VisionsuiteError(f"{path}: expected a run folder, a .keras or a .tflite file")


def _run_of_export(path: Path) -> Path | None:
    """The run folder of a file `visionsuite export` wrote into it (RUN/exported/NAME.tflite),
    whose config then tells evaluate the dataset and segment its tiling; None elsewhere (a file
    copied out of its run carries what inference needs itself)."""
    run = path.parent.parent
    return run if path.parent.name == EXPORT_FOLDER and (run / "config.yaml").is_file() else None


def model_task(source: ModelSource) -> str | None:
    """The task a model was trained for: its run's config, else what an exported file says;
    None for a bare .keras."""
    config = source.run_dir / "config.yaml" if source.run_dir is not None else None
    if config is not None and config.is_file():
        from visionsuite.config import read_yaml

        spec = read_yaml(config)
        return spec.get("task") if isinstance(spec, dict) else None
    return source.settings.get("task")


def require_task(source: ModelSource, task: str, run: str | Path) -> None:
    """A one-line error when RUN's model was trained for another task."""
    trained_for = model_task(source)
    if trained_for is not None and trained_for != task:
        raise VisionsuiteError(f"{run}: a {trained_for} model, not a {task} model")


def read_labels(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_settings(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise VisionsuiteError(f"{path}: unreadable inference settings ({first_line(str(err))})") \
            from None
    if not isinstance(settings, dict):
        raise VisionsuiteError(f"{path}: inference settings must be a JSON object")
    return settings


def tflite_settings(path: Path) -> dict:
    """The inference settings packed into a .tflite's associated files, if any."""
    try:
        with zipfile.ZipFile(path) as archive:
            if INFERENCE_SETTINGS not in archive.namelist():
                return {}
            settings = json.loads(archive.read(INFERENCE_SETTINGS).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def tflite_labels(path: Path) -> list[str] | None:
    """Labels from the label file packed into a .tflite by its metadata (the file is a zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith(".txt")), None)
            if name is None:
                return None
            text = archive.read(name).decode("utf-8")
    except (zipfile.BadZipFile, OSError):
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_keras_model(path: Path):
    """Load a .keras file in Keras safe mode: a Lambda layer (arbitrary code) is refused."""
    import keras

    import visionsuite.core.backbones  # noqa: F401  registers the project's own layers

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as err:
        text = str(err)
        if "Lambda" in text or "safe_mode" in text:
            raise VisionsuiteError(
                f"{path}: the model holds a Lambda layer (arbitrary Python code); "
                "refusing to load it (Keras safe mode)") from None
        raise VisionsuiteError(f"{path}: cannot load the model ({first_line(text)})") from None
    except (OSError, zipfile.BadZipFile, KeyError, TypeError) as err:
        raise VisionsuiteError(f"{path}: not a readable .keras model ({first_line(str(err))})") \
            from None


class KerasPredictor:
    """Runs a Keras model on uint8 images in batches. Its first `eager_batches` batches run
    eagerly: tracing the model into a graph (and TensorFlow's optimisation of it) costs 2-3 s
    here, the time of a few eager batches, and pays off only from the batches after those.
    So a command on one photo (verify, detect, segment) answers seconds sooner, and a long
    evaluation still runs in the graph. Both give the same outputs to within float rounding
    (about 1e-7 of a face embedding)."""

    def __init__(self, model, batch_size: int = 64, eager_batches: int = 2):
        self.model = model
        self.batch_size = batch_size
        self.eager_batches = eager_batches
        shape = model.input_shape
        self.image_size, self.channels = shape[1], shape[3]
        self._call = None

    def predict(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, S, S, C) to float outputs."""
        import tensorflow as tf

        outputs = []
        for start in range(0, len(images), self.batch_size):
            batch = tf.constant(images[start:start + self.batch_size], tf.float32)
            outputs.append(np.asarray(self._run(batch)))
        return np.concatenate(outputs)

    def _run(self, batch):
        if self.eager_batches > 0:
            self.eager_batches -= 1
            return self.model(batch, training=False)
        if self._call is None:  # one trace for every batch size, the last short batch included
            import tensorflow as tf

            spec = tf.TensorSpec((None,) + tuple(self.model.input_shape[1:]), tf.float32)
            self._call = tf.function(lambda x: self.model(x, training=False),
                                     input_signature=[spec])
            # TF keys its "frequent retracing" warning by this lambda's code, so predictors of
            # different models (a benchmark's four exports) read as one function retraced.
            self._call._omit_frequent_tracing_warning = True  # noqa: SLF001  (TF 2.21 pinned)
        return self._call(batch)


class TFLitePredictor:
    """Runs a .tflite with LiteRT, quantizing inputs and dequantizing outputs as its tensors say."""

    def __init__(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_notices_held():  # LiteRT's "Created ... XNNPACK delegate" notice
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise VisionsuiteError(f"{path}: not a loadable .tflite model "
                                   f"({first_line(str(err))})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()
        _, self.image_size, _, self.channels = self.input["shape"]

    def quantize_input(self, images: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return images.astype(np.float32)
        scale, zero = self.input["quantization"]
        if scale == 1.0 and zero == 0 and dtype == np.uint8:
            return images.astype(np.uint8)
        info = np.iinfo(dtype)
        values = np.round(images.astype(np.float32) / scale + zero)
        return np.clip(values, info.min, info.max).astype(dtype)

    def invoke(self, image: np.ndarray) -> list[np.ndarray]:
        """One already-quantized input (1, S, S, C) to the raw output tensors."""
        self.interpreter.set_tensor(self.input["index"], image)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(o["index"]) for o in self.outputs]

    def predict(self, images: np.ndarray) -> np.ndarray:
        quantized = self.quantize_input(images)
        results = []
        for index in range(len(images)):
            raw = self.invoke(quantized[index:index + 1])[0]
            results.append(dequantize(raw, self.outputs[0]))
        return np.concatenate(results)


def dequantize(values: np.ndarray, details: dict) -> np.ndarray:
    scale, zero = details["quantization"]
    if details["dtype"] == np.float32 or scale == 0:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero) * scale


def load_predictor(source: ModelSource, threads: int | None = None):
    if source.kind == "tflite":
        return TFLitePredictor(source.path, threads)
    return _loaded_keras_predictor(Path(source.path))


def _loaded_keras_predictor(path: Path) -> KerasPredictor:
    try:
        stat = path.stat()
    except OSError:  # load_keras_model says what is wrong with the path
        return KerasPredictor(load_keras_model(path))
    return _keras_predictor_of(str(path.resolve()), (stat.st_mtime_ns, stat.st_size, stat.st_ino))


@functools.lru_cache(maxsize=2)
def _keras_predictor_of(path: str, version: tuple) -> KerasPredictor:
    """A .keras file's predictor, loaded once per version of the file (its time, size and
    inode) in a process: loading costs 1.7-3 s here, so a program (or a test) that calls
    verify, identify or evaluate again and again pays it once, and its later calls run the
    traced graph; a run trained again, or a file replaced, is loaded again. The last two files
    are kept. Predictors only read their model."""
    return KerasPredictor(load_keras_model(Path(path)))
