"""Export a trained Keras model to TFLite, with metadata, and check it against the Keras model.

The graph is written through `keras.export.ExportArchive` with a fixed batch-1 input (a Keras 3
model captured by a plain `tf.Module` leaves unresolved variables in the .tflite, and dynamic
shapes break some converters), then converted by `tf.lite.TFLiteConverter` with the options of
the chosen quantization, a table below.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from visionsuite.core.files import atomic_write_bytes, writable_folder, write_json
from visionsuite.errors import VisionsuiteError, first_line
from visionsuite.quiet import native_notices_held


@dataclass(frozen=True)
class Quantization:
    name: str
    description: str
    configure: Callable  # (converter, representative_dataset) -> None


def _float16(converter, _):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, _):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, representative):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # uint8 in and out: the camera's bytes go straight in, as MediaPipe and phone apps feed them.
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8


QUANTIZATIONS = {q.name: q for q in (
    Quantization("none", "float32 weights and compute", lambda converter, _: None),
    Quantization("float16", "float16 weights, float32 compute", _float16),
    Quantization("dynamic", "int8 weights, float activations (dynamic range)", _dynamic),
    Quantization("int8", "full integer: int8 weights and activations, uint8 input and output",
                 _int8),
)}


def convert(model, quantize: str, calibration_images: np.ndarray | None = None,
            serve=None, int8_network: str | None = None, graph: str | None = None) -> bytes:
    """Convert a Keras model taking (1, S, S, C) float images in 0..255 to .tflite bytes.
    `serve` (x -> outputs) is the graph written, by default the model itself. With
    `int8_network` (the name of the Keras model `serve` calls), an int8 export quantizes only
    that network and keeps what `serve` does after it in float32, outputs included. `graph`:
    the folder serving_graph wrote for `model` and `serve`, to convert it again."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise VisionsuiteError(f"unknown quantization '{quantize}'; choose one of: "
                               + ", ".join(QUANTIZATIONS))
    if quantize == "int8" and (calibration_images is None or not len(calibration_images)):
        raise VisionsuiteError("int8 export needs calibration images")
    if graph is None:
        with serving_graph(model, serve) as written:
            return convert(model, quantize, calibration_images, serve, int8_network, written)
    converter = tf.lite.TFLiteConverter.from_saved_model(graph)
    QUANTIZATIONS[quantize].configure(converter, _representative(calibration_images,
                                                                 _input_shape(model)))
    try:
        with native_notices_held():  # e.g. the quantizer's "fully_quantize: 0, ..."
            if quantize == "int8" and int8_network:
                return _int8_network_float_postprocess(converter, int8_network)
            return converter.convert()
    except Exception as err:  # the converter raises many types, all with a long MLIR dump
        first = first_line(str(err)) or repr(err)
        raise VisionsuiteError(f"TFLite conversion ({quantize}) failed: {first}") from None


def _input_shape(model) -> tuple:
    return (1,) + tuple(model.input_shape[1:])


@contextlib.contextmanager
def serving_graph(model, serve=None):
    """A temporary folder holding `serve` (by default the model) as a SavedModel with a
    fixed batch-1 float input, what the converter reads: written once for all the
    quantizations of an export (`--quantize all` of the shipped face embedder trained on ORL
    took 82 s instead of 131 with one writing per quantization)."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="visionsuite-export-") as folder:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", serve or (lambda x: model(x, training=False)),
                             input_signature=[tf.TensorSpec(_input_shape(model), tf.float32,
                                                            name="image")])
        archive.write_out(folder, verbose=False)
        yield folder


def _int8_network_float_postprocess(converter, network: str) -> bytes:
    """int8 for every op of the Keras model `network`, float32 for the post-processing after it
    (decoding, NMS), uint8 input. Why: a detector's box decoding (softmax over distance bins,
    their expectation, corners) in int8 moved boxes by several pixels (top-box IoU with Keras
    0.88 on raccoon; 0.99 with the same int8 network and a float decoding), for under 1% of
    the compute. TFLite's converter has no public switch for this; its quantizer does (the
    QuantizationDebugger's "denylisted nodes"), so: calibrate, then quantize all but those."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import convert as lite_convert
    from tensorflow.lite.python import util as lite_util

    # Calibration only; the quantizer below then leaves the post-processing float, and the
    # input is made uint8 (float outputs: what MediaPipe's detector reads).
    converter.inference_input_type = converter.inference_output_type = tf.float32
    converter._experimental_calibrate_only = True  # noqa: SLF001  (private, TF 2.21 pinned)
    calibrated = converter.convert()
    interpreter = Interpreter(model_content=calibrated)
    tensors = interpreter.get_tensor_details()
    inputs = {d["name"] for d in interpreter.get_input_details()}
    # Tensor names carry the Keras model's name scope, "NAME/..." or "NAME_1/...".
    inside = re.compile(rf"^{re.escape(network)}(_\d+)?/")
    outside = [t["name"] for t in tensors
               if not inside.match(t["name"]) and t["name"] not in inputs]
    quantized = lite_convert.mlir_quantize(calibrated, fully_quantize=False,
                                           denylisted_nodes=outside)
    return lite_util.modify_model_io_type(quantized, tf.uint8, tf.float32)


def export_target(source, quantize: str, output: str | Path | None) -> Path:
    """Where the .tflite goes. Inside the run folder by default, so that runs of different tasks
    (all named `exp` at first) never share a file; a file exported from another model is
    replaced with a warning, since its name alone does not tell the two apart."""
    from visionsuite.core.models import EXPORT_FOLDER

    if output is None:
        output = source.run_dir / EXPORT_FOLDER if source.run_dir is not None else EXPORT_FOLDER
    name = (source.run_dir or source.path.parent).name if source.path.stem == "model" \
        else source.path.stem
    target = writable_folder(Path(output), "the export") / f"{name}-{quantize}.tflite"
    earlier = _read_report(target.with_suffix(".json")).get("source")
    if earlier and target.exists() and earlier != str(source.path.resolve()):
        print(f"warning: replacing {target}, exported from {earlier}", file=sys.stderr)
    return target


def _read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _representative(images: np.ndarray | None, shape):
    """Calibration samples; the first one pins the input range to exactly 0..255, so that the
    uint8 input gets scale 1 and zero point 0 and a phone can feed raw pixel bytes."""

    def generate():
        extremes = np.full(shape, 127.5, np.float32)
        extremes.reshape(-1)[0], extremes.reshape(-1)[-1] = 0.0, 255.0
        yield [extremes]
        for image in images:
            yield [image[None].astype(np.float32)]

    return generate


def parse_quantizations(text: str) -> list[str]:
    """"int8", "float16,int8" or "all" (every quantization, float32 first): the names, in
    order, once each."""
    if text.strip() == "all":
        return list(QUANTIZATIONS)
    return known_quantizations([name.strip() for name in text.split(",") if name.strip()])


def known_quantizations(names: list[str]) -> list[str]:
    """`names`, each checked to be a quantization, in order, once each."""
    for name in names:
        if name not in QUANTIZATIONS:
            raise VisionsuiteError(f"unknown quantization '{name}'; choose "
                                   f"{', '.join(QUANTIZATIONS)}, a comma-separated list of "
                                   "them, or all")
    if not names:
        raise VisionsuiteError("no quantization given; choose " + ", ".join(QUANTIZATIONS))
    return list(dict.fromkeys(names))


LATENCY_RUNS = 50  # timed invokes per exported file (after benchmark.WARMUP_RUNS)


def export(run: str | Path, quantize: str = "int8", output: str | Path | None = None,
           calibration: int | None = None, data: str | None = None) -> dict:
    """Export RUN to `output/NAME-QUANT.tflite`, with metadata, and write the parity report
    `output/NAME-QUANT.json`: the same metrics of the Keras model and the .tflite on val, and
    the file's median latency at 1 thread. `output` defaults to the run folder's `exported/`
    (a lone .keras file: `./exported`)."""
    return export_all(run, [quantize], output, calibration, data)[0]


class ExportFailed(VisionsuiteError):
    """Some conversions of `export_all` failed. The others were still written and checked:
    `reports` holds theirs, `failures` each failed quantization's one-line reason."""

    def __init__(self, reports: list[dict], failures: dict[str, str]):
        super().__init__("; ".join(failures.values()))
        self.reports, self.failures = reports, failures


def export_all(run: str | Path, quantizations: list[str], output: str | Path | None = None,
               calibration: int | None = None, data: str | None = None) -> list[dict]:
    """`export` once per quantization, in order, loading the model and the data and running
    the Keras model on val once for all of them: the reports, to choose the file to ship.
    A conversion that fails does not stop the others (their converters take other paths):
    ExportFailed is raised after the last one, with the reports of those written."""
    from visionsuite.core.evaluate import load_run_config
    from visionsuite.core.models import load_keras_model, resolve_model
    from visionsuite.tasks import get_task

    quantizations = known_quantizations(quantizations)
    source = resolve_model(run)
    if source.kind != "keras":
        raise VisionsuiteError(f"{source.path}: export takes a run folder or a .keras model")
    # A folder we cannot write fails now, not after the conversions.
    targets = {quantize: export_target(source, quantize, output) for quantize in quantizations}
    model = load_keras_model(source.path)
    config = load_run_config(source, data, needs_data=True)
    task = get_task(config.task)
    labels = source.labels or [f"class_{i}" for i in range(model.output_shape[-1])]
    calibrating = "int8" in quantizations
    dataset = task.load_data(config, train=calibrating, labels=labels)
    calibration_images = None
    if calibrating:  # on train images: the parity check below is measured on val
        count = calibration if calibration is not None else config.export.calibration
        pool = dataset.train if dataset.train is not None and len(dataset.train) \
            else dataset.val
        calibration_images = task.calibration_images(pool, count, config.train.seed,
                                                     model.input_shape[1])
    check, reports, failures = _ParityCheck(model, task, dataset, config, labels, source), [], {}
    print("writing the graph to convert ...", file=sys.stderr)
    with serving_graph(model, task.serving_fn(model, config)) as graph:
        for quantize in quantizations:
            target = targets[quantize]
            print(f"converting ({quantize}) ...", file=sys.stderr)
            started = time.perf_counter()
            try:
                _write_tflite(target, model, quantize, calibration_images, task, config,
                              labels, source.settings, graph)
            except VisionsuiteError as err:
                # An older export to the same path is not this model's file: say so, as a user
                # who finds it there would otherwise ship it.
                stale = f" ({target} is left from an earlier export)" if target.exists() else ""
                failures[quantize] = f"{err}{stale}"
                continue
            seconds = time.perf_counter() - started
            print(f"checking {target.name} against the Keras model on val ...", file=sys.stderr)
            report = {"quantize": quantize, "file": str(target),
                      "source": str(source.path.resolve()),
                      "size_bytes": target.stat().st_size,
                      "convert_seconds": round(seconds, 2),
                      "calibration_images": len(calibration_images) if quantize == "int8" else 0,
                      **check.report(target)}
            write_json(target.with_suffix(".json"), report)
            reports.append(report)
    if failures:
        raise ExportFailed(reports, failures)
    return reports


class _ParityCheck:
    """A .tflite file's metrics on val beside the Keras model's, their agreement and the
    file's latency; the Keras model runs on val once, when the first file is checked."""

    def __init__(self, model, task, dataset, config, labels: list[str], source):
        self.model, self.task, self.val, self.config = model, task, dataset.val, config
        self.labels, self.settings = labels, source.settings
        self.keras_out = self.keras_metrics = None

    def report(self, target: Path) -> dict:
        from visionsuite.core.models import KerasPredictor, TFLitePredictor

        if self.keras_out is None:
            self.keras_out = self.task.predict(KerasPredictor(self.model), self.val, self.config)
            self.keras_metrics = self._headline(self.keras_out)
        tflite_out = self.task.predict(TFLitePredictor(target), self.val, self.config)
        return {"val_images": len(self.val),
                "keras": self.keras_metrics,
                "tflite": self._headline(tflite_out),
                "agreement": self.task.agreement(self.keras_out, tflite_out),
                "agreement_meaning": self.task.agreement_meaning,
                "latency_ms_1_thread": _median_latency(target)}

    def _headline(self, outputs) -> dict:
        return self.task.headline(self.task.evaluate(outputs, self.val, self.labels,
                                                     self.settings))


def _write_tflite(target: Path, model, quantize: str, calibration_images, task, config,
                  labels: list[str], settings: dict, graph: str) -> None:
    """Convert, add the metadata and the files that travel inside, write `target` whole."""
    from visionsuite.core.metadata import build_metadata, outputs_in_signature_order, populate
    from visionsuite.core.models import INFERENCE_SETTINGS

    tflite = convert(model, quantize, calibration_images, int8_network=task.int8_network(),
                     graph=graph)
    spec = task.tflite_metadata(labels, quantized_input=quantize == "int8")
    spec.channels = config.data.channels
    files = {spec.labels_file: ("\n".join(labels) + "\n").encode()} if spec.labels else {}
    # The task and the learned settings (a face model's threshold) travel with the file.
    files[INFERENCE_SETTINGS] = json.dumps({"task": config.task, **settings},
                                           indent=2).encode()
    tflite = populate(outputs_in_signature_order(tflite), build_metadata(spec), files)
    atomic_write_bytes(target, tflite)


def _median_latency(target: Path) -> float:
    """Median ms of one invoke at 1 thread (LiteRT, XNNPACK), as a phone's single core runs
    it: what `visionsuite benchmark` measures, with fewer runs."""
    from visionsuite.core.benchmark import time_tflite

    return round(float(np.median(time_tflite(target, 1, LATENCY_RUNS))), 3)
