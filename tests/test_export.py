"""Export: every quantization converts, carries metadata, and is checked against Keras."""

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from visionsuite.core.mediapipe_tasks import mediapipe_top1
from visionsuite.core.metadata import MetadataSpec, build_metadata, populate, read_metadata
from visionsuite.core.models import KerasPredictor, TFLitePredictor, tflite_labels
from visionsuite.errors import VisionsuiteError


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    from visionsuite.core.export import export_all

    folder = tmp_path_factory.mktemp("exported")
    reports = export_all(tiny_run, ["none", "int8"], folder, calibration=20)
    return {report["quantize"]: report for report in reports}


def test_export_writes_file_and_parity_report(exported, tiny_run):
    for quantize, report in exported.items():
        path = report["file"]
        assert path.endswith(f"tiny-{quantize}.tflite")
        saved = json.loads(open(path.replace(".tflite", ".json")).read())
        assert saved["quantize"] == quantize and saved["size_bytes"] > 0
        assert set(saved["keras"]) == set(saved["tflite"]) == {"accuracy", "macro_f1"}
    none = exported["none"]
    assert none["tflite"]["accuracy"] == pytest.approx(none["keras"]["accuracy"])
    assert none["agreement"] == 1.0
    assert exported["int8"]["keras"] == none["keras"]  # one Keras evaluation serves both
    assert all(report["latency_ms_1_thread"] > 0 for report in exported.values())
    assert exported["int8"]["calibration_images"] == 20 and none["calibration_images"] == 0


def test_quantizations_are_named_one_by_one_in_a_list_or_all():
    from visionsuite.core.export import parse_quantizations

    assert parse_quantizations("int8") == ["int8"]
    assert parse_quantizations(" float16, int8,float16 ") == ["float16", "int8"]
    assert parse_quantizations("all") == ["none", "float16", "dynamic", "int8"]
    for bad in ("int4", "int8,int4", ","):
        with pytest.raises(VisionsuiteError, match="quantization"):
            parse_quantizations(bad)


def test_int8_is_full_integer_with_raw_pixel_input(exported):
    predictor = TFLitePredictor(exported["int8"]["file"])
    assert predictor.input["dtype"] == np.uint8
    assert predictor.input["quantization"] == (1.0, 0)  # pixels go in as they are
    assert predictor.outputs[0]["dtype"] == np.uint8


def test_metadata_names_labels_and_normalization(exported):
    for report in exported.values():
        data = open(report["file"], "rb").read()
        metadata = read_metadata(data)
        assert metadata["inputs"][0]["name"] == "image"
        assert metadata["inputs"][0]["normalization"] == {"mean": [0.0], "std": [1.0]}
        assert metadata["inputs"][0]["color_space"] == "RGB"
        assert metadata["outputs"][0]["name"] == "probability"
        assert metadata["outputs"][0]["files"] == ["labels.txt"]
        assert tflite_labels(report["file"]) == ["circle", "square", "triangle"]


def test_mediapipe_runs_the_int8_file_like_litert(exported, shapes_dir):
    from visionsuite.core.data import decode_images
    from visionsuite.tasks.classify import index_image_folders

    paths = [p for p, _ in index_image_folders(shapes_dir).splits["val"]]
    images = decode_images(paths, 32, 3).images
    path = exported["int8"]["file"]
    ours = TFLitePredictor(path).predict(images).argmax(1)
    theirs = mediapipe_top1(path, images, ["circle", "square", "triangle"])
    assert (ours == theirs).mean() >= 0.99


def test_populate_replaces_existing_metadata_and_keeps_the_model_loadable(exported, tmp_path):
    original = open(exported["none"]["file"], "rb").read()
    spec = MetadataSpec("n", "d", "in", "in", "out", "out", labels=["x", "y", "z"])
    again = populate(original, build_metadata(spec), {"labels.txt": b"x\ny\nz\n"})
    assert read_metadata(again)["inputs"][0]["name"] == "in"
    path = tmp_path / "again.tflite"
    path.write_bytes(again)
    assert zipfile.ZipFile(path).read("labels.txt") == b"x\ny\nz\n"
    assert TFLitePredictor(path).predict(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 3)


def test_unknown_quantization_and_missing_calibration_are_errors(tiny_run):
    from visionsuite.core.export import convert
    from visionsuite.core.models import load_keras_model

    model = load_keras_model(tiny_run / "model.keras")
    with pytest.raises(VisionsuiteError, match="unknown quantization"):
        convert(model, "int4")
    with pytest.raises(VisionsuiteError, match="calibration"):
        convert(model, "int8", None)


def test_keras_predictor_traces_once_for_every_batch_size(caplog):
    """After its eager batches, a short last batch or a single image reuses the one graph,
    and predictors of several models in one process (a benchmark's four exports) print no
    retracing warning."""
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D()])
    predictor = KerasPredictor(model, batch_size=4)
    for count in (10, 3, 1):
        assert predictor.predict(np.zeros((count, 8, 8, 3), np.uint8)).shape == (count, 2)
    assert predictor._call.experimental_get_tracing_count() == 1
    for _ in range(6):
        KerasPredictor(keras.models.clone_model(model), eager_batches=0).predict(
            np.zeros((2, 8, 8, 3), np.uint8))
    assert "retracing" not in caplog.text


def test_keras_predictor_runs_its_first_batches_eagerly_as_the_graph_does():
    """A command on one photo answers without tracing the model; the graph that runs the
    batches after gives the same outputs."""
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.GlobalAveragePooling2D()])
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    one_photo = KerasPredictor(model, batch_size=4)
    one_photo.predict(images[:1])
    assert one_photo._call is None
    eager = KerasPredictor(model, batch_size=2).predict(images)  # 2 eager batches, 1 traced
    traced = KerasPredictor(model, batch_size=2, eager_batches=0).predict(images)
    np.testing.assert_allclose(eager, traced, rtol=1e-5, atol=1e-6)


def test_a_keras_file_is_loaded_once_until_it_changes(tmp_path):
    """load_predictor keeps the last files' predictors: a second command on a run in the same
    process does not load it again; a file written again is loaded again."""
    from visionsuite.core.models import ModelSource, load_predictor

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D()])
    path = tmp_path / "m.keras"
    model.save(path)
    source = ModelSource(path, "keras", None, None)
    first = load_predictor(source)
    assert load_predictor(source) is first
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    model.save(tmp_path / "new.keras")
    (tmp_path / "new.keras").replace(path)  # as training writes it: a new file renamed
    again = load_predictor(source)
    assert again is not first
    assert not np.allclose(again.model.get_weights()[0], first.model.get_weights()[0])


def _fake_run(folder):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("task: classify\n")
    (folder / "model.keras").write_bytes(b"")
    return folder


def test_export_goes_into_the_run_folder_so_runs_of_two_tasks_never_share_a_file(
        tmp_path, monkeypatch, capsys):
    from visionsuite.core.export import export_target
    from visionsuite.core.models import resolve_model

    segment, detect = (_fake_run(tmp_path / "runs" / task / "exp")
                       for task in ("segment", "detect"))
    for run in (segment, detect):
        assert export_target(resolve_model(run), "int8", None) == run / "exported/exp-int8.tflite"
    lone = tmp_path / "mine.keras"
    lone.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert export_target(resolve_model(lone), "float16", None) == \
        Path("exported/mine-float16.tflite")

    # One --output for both: the second export says whose file it replaces.
    shared = tmp_path / "phone"
    first = export_target(resolve_model(segment), "int8", shared)
    assert not shared.exists()  # made when the file is written
    shared.mkdir()
    first.write_bytes(b"tflite")
    first.with_suffix(".json").write_text(json.dumps({"source": str(segment / "model.keras")}))
    assert export_target(resolve_model(segment), "int8", shared) == first
    assert "warning" not in capsys.readouterr().err
    assert export_target(resolve_model(detect), "int8", shared) == first
    assert f"replacing {first}, exported from {segment / 'model.keras'}" in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_written_fails_before_converting(tmp_path):
    from visionsuite.core.export import export_target
    from visionsuite.core.models import resolve_model

    run = _fake_run(tmp_path / "runs" / "exp")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(VisionsuiteError,
                       match=f"{blocker}: cannot write the export there .{blocker} is not a folder"):
        export_target(resolve_model(run), "int8", blocker)


def test_a_file_exported_into_its_run_is_evaluated_without_naming_the_data(tiny_run):
    """The run around RUN/exported/ gives the dataset; a copy outside it still needs --data."""
    import shutil

    from visionsuite.core.evaluate import evaluate
    from visionsuite.core.export import export

    report = export(tiny_run, "float16")
    assert Path(report["file"]) == tiny_run / "exported" / "tiny-float16.tflite"
    result = evaluate(report["file"])
    assert result["format"] == "tflite" and result["accuracy"] == report["tflite"]["accuracy"]
    copied = shutil.copy(report["file"], tiny_run.parent / "copied.tflite")
    with pytest.raises(VisionsuiteError, match="not inside a run folder; pass --data"):
        evaluate(copied)


def test_export_of_several_quantizations_prints_one_table_and_the_files_last(
        tiny_run, tmp_path, monkeypatch):
    """Also: the graph is written once for both conversions (writing it is most of a
    conversion's time)."""
    from click.testing import CliRunner

    import visionsuite.core.export as export_module
    from visionsuite.cli import cli

    written = []
    real_serving_graph = export_module.serving_graph

    def counted_serving_graph(*args, **kwargs):
        written.append(args)
        return real_serving_graph(*args, **kwargs)

    monkeypatch.setattr(export_module, "serving_graph", counted_serving_graph)
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--quantize", "none,dynamic",
                                      "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(written) == 1 and result.stderr.count("writing the graph to convert") == 1
    lines = result.stdout.strip().splitlines()
    assert lines[-2:] == [str(tmp_path / "tiny-none.tflite"), str(tmp_path / "tiny-dynamic.tflite")]
    header = lines[0].split()
    assert header[:3] == ["model", "size_mb", "ms_1t"] and "agreement" in header
    rows = {line.split()[0] + " " + line.split()[1]: line.split() for line in lines[2:5]}
    assert set(rows) == {"keras -", "tflite none", "tflite dynamic"}
    none = json.loads((tmp_path / "tiny-none.json").read_text())
    assert rows["tflite none"][2] == f"{none['size_bytes'] / 2**20:.2f}"


def test_a_failed_conversion_does_not_stop_the_others(tiny_run, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import visionsuite.core.export as export_module
    from visionsuite.cli import cli

    real_convert = export_module.convert

    def convert_failing_float16(model, quantize, *args, **kwargs):
        if quantize == "float16":
            raise VisionsuiteError("TFLite conversion (float16) failed: an op without a kernel")
        return real_convert(model, quantize, *args, **kwargs)

    monkeypatch.setattr(export_module, "convert", convert_failing_float16)
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--quantize", "float16,none",
                                      "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: TFLite conversion (float16) failed: an op without a kernel")
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "tiny-none.tflite")
    assert "tflite none" in result.stdout and "float16" not in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny-none.json",
                                                                 "tiny-none.tflite"]
    with pytest.raises(export_module.ExportFailed) as failed:  # the Python API: the same
        export_module.export_all(tiny_run, ["float16"], tmp_path)
    assert failed.value.reports == [] and list(failed.value.failures) == ["float16"]
    (tmp_path / "tiny-float16.tflite").write_bytes(b"an earlier export")
    with pytest.raises(export_module.ExportFailed) as failed:  # an older file is named
        export_module.export_all(tiny_run, ["float16"], tmp_path)
    assert failed.value.failures["float16"].endswith(
        f"({tmp_path / 'tiny-float16.tflite'} is left from an earlier export)")
    assert (tmp_path / "tiny-float16.tflite").read_bytes() == b"an earlier export"
