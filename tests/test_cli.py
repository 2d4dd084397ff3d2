"""The command line: fast help, the run-folder contract, and clear one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from conftest import TINY_SETS, make_shapes_folder, snapshot, twelve_bit_copies
from visionsuite.cli import cli

SUBCOMMANDS = [[], ["train"], ["evaluate"], ["classify"], ["export"], ["benchmark"], ["data"],
               ["data", "check"], ["models"], ["segment"], ["detect"], ["embed"], ["verify"],
               ["enroll"], ["identify"], ["compare"], ["ensemble"], ["gallery"],
               ["cross-validate"]]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert str(fragment) in errors[0], errors[0]


@pytest.mark.parametrize("args", SUBCOMMANDS)
def test_help_of_every_subcommand(args):
    result = invoke(*args, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_models_lists_the_zoo_and_each_tasks_default_and_own_networks():
    from visionsuite.core.backbones import BACKBONES

    result = invoke("models")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:len(BACKBONES)] == sorted(BACKBONES)
    rows = {line.split()[0]: line.split()[1:] for line in lines[-4:]}
    assert rows == {"classify": ["resnet18", "-"], "segment": ["unet", "unet"],
                    "detect": ["yolo", "yolo,", "csp"], "face": ["mobilefacenet", "-"]}


def test_help_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from visionsuite.cli import cli; "
            "r = CliRunner().invoke(cli, ['train', '--help']); assert r.exit_code == 0; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "False False"


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and "visionsuite, version" in result.output


def test_a_task_not_built_yet_says_so(monkeypatch):
    import visionsuite.tasks as tasks

    monkeypatch.setitem(tasks.TASK_MODULES, "face", None)  # how a planned task is listed
    assert_one_line_error(invoke("train", "face"), "not available yet")


def test_train_writes_the_run_folder_contract(shapes_dir, tmp_path):
    before = snapshot(shapes_dir)
    sets = [arg for s in TINY_SETS for arg in ("--set", s)]
    result = invoke("train", "classify", "--data", shapes_dir, "--epochs", 1, "--output",
                    tmp_path, "--name", "first", *sets)
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    assert run == tmp_path / "classify" / "first"
    for name in ("config.yaml", "model.keras", "labels.txt", "metrics.json", "history.csv",
                 "curves.png", "confusion_matrix.png"):
        assert (run / name).is_file(), name
    assert (run / "labels.txt").read_text().split() == ["circle", "square", "triangle"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and len(metrics["confusion_matrix"]) == 3
    assert "model:\n  backbone: resnet18" in (run / "config.yaml").read_text()
    assert snapshot(shapes_dir) == before  # nothing is written into the dataset
    again = invoke("train", "classify", "--data", shapes_dir, "--output", tmp_path, "--name",
                   "first", *sets)
    assert_one_line_error(again, "already exists")
    assert "data:" not in again.output  # said before the images are decoded


def test_an_output_that_is_a_file_fails_before_decoding(shapes_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke("train", "classify", "--data", shapes_dir, "--output", blocker)
    assert_one_line_error(result, f"{blocker / 'classify'}: cannot write run folders there "
                                  f"({blocker} is not a folder); choose another with --output")
    assert "data:" not in result.output


def test_a_json_file_under_a_file_fails_before_the_work(tiny_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for command in ("evaluate", "benchmark"):
        result = invoke(command, tiny_run, "--json", blocker / "m.json")
        assert_one_line_error(result, f"{blocker / 'm.json'}: cannot write",
                              f"({blocker} is not a folder); choose another with --json")
        assert len(result.output.strip().splitlines()) == 1  # nothing decoded or timed first


def test_resume_continues_a_run(shapes_dir, tmp_path):
    sets = [arg for s in TINY_SETS for arg in ("--set", s)]
    first = invoke("train", "classify", "--data", shapes_dir, "--epochs", 1, "--output", tmp_path,
                   *sets)
    run = Path(first.stdout.strip().splitlines()[-1])
    resumed = invoke("train", "classify", "--resume", run, "--epochs", 2)
    assert resumed.exit_code == 0, resumed.output
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert "epochs: 2" in (run / "config.yaml").read_text()
    missing = invoke("train", "classify", "--resume", tmp_path / "no-run")
    assert_one_line_error(missing, "no-run")


def test_missing_data_path(tmp_path):
    missing = tmp_path / "nowhere"
    assert_one_line_error(invoke("train", "classify", "--data", missing), missing, "not found")
    assert not (Path("runs") / "classify" / "nowhere").exists()


def test_empty_class_folder(tmp_path):
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "train" / "hexagon").mkdir()
    result = invoke("train", "classify", "--data", root, "--output", tmp_path / "runs")
    assert_one_line_error(result, root / "train" / "hexagon", "no images")
    assert not (tmp_path / "runs").exists()  # nothing half-written
    check = invoke("data", "check", "classify", root)
    assert_one_line_error(check, "no images")


def test_a_segmentation_dataset_given_to_classify_or_face_is_named_as_one(tmp_path):
    from test_segment import make_segment_folder

    root = make_segment_folder(tmp_path / "seg")
    for task in ("classify", "face"):
        result = invoke("train", task, "--data", root, "--output", tmp_path / "runs")
        assert_one_line_error(result, "images/ and masks/", "visionsuite train segment")
    assert not (tmp_path / "runs").exists()


def test_yaml_typo_in_config(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  backbon: resnet18\n")
    result = invoke("train", "classify", "--config", config)
    assert_one_line_error(result, config, "model.backbon", "model.backbone")


def test_corrupt_and_fake_jpegs_are_warned_skipped_and_counted(tmp_path):
    root = make_shapes_folder(tmp_path / "d", per_class=6, val_per_class=2)
    good = next((root / "train" / "circle").iterdir())
    Image.open(good).convert("RGB").save(root / "train" / "circle" / "real.jpg")
    corrupt = root / "train" / "circle" / "corrupt.jpg"
    corrupt.write_bytes((root / "train" / "circle" / "real.jpg").read_bytes()[:200])
    fake = root / "train" / "square" / "notes.jpg"
    fake.write_text("not an image at all")
    before = snapshot(root)

    check = invoke("data", "check", "classify", root)
    assert check.exit_code == 0, check.output
    assert "unreadable images: 2" in check.output
    assert str(corrupt) in check.output and str(fake) in check.output

    sets = [arg for s in TINY_SETS for arg in ("--set", s)]
    result = invoke("train", "classify", "--data", root, "--epochs", 1, "--output",
                    tmp_path / "runs", *sets)
    assert result.exit_code == 0, result.output
    assert f"warning: {corrupt}: unreadable image" in result.output
    assert f"warning: {fake}: unreadable image (not an image file)" in result.output
    assert "2 unreadable skipped" in result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    assert json.loads((run / "metrics.json").read_text())["skipped_images"] == 2
    assert snapshot(root) == before


def test_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    for args in (["evaluate", path, "--data", tmp_path], ["export", path, "--output", tmp_path / "out"],
                 ["classify", path, path]):
        result = invoke(*args)
        assert_one_line_error(result, path, "Lambda")
    assert not (tmp_path / "out").exists()


def test_a_model_of_another_task_is_a_one_line_error_before_anything_is_written(tmp_path):
    import zipfile

    image = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(image)
    run = tmp_path / "runs" / "face" / "exp"  # never loaded: the task is read first
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"")
    (run / "config.yaml").write_text("task: face\n")
    exported = tmp_path / "unet.tflite"  # an exported file names its task in its settings
    with zipfile.ZipFile(exported, "w") as archive:
        archive.writestr("inference.json", json.dumps({"task": "segment"}))
    for args, trained_for, wanted in (
            (["classify", run, image], "face", "classify"),
            (["segment", run, image, "--output", tmp_path / "masks"], "face", "segment"),
            (["detect", exported, image, "--output", tmp_path / "boxes"], "segment", "detect"),
            (["verify", exported, image, image], "segment", "face")):
        result = invoke(*args)
        assert_one_line_error(result, args[1], f"a {trained_for} model, not a {wanted} model")
    assert not (tmp_path / "masks").exists() and not (tmp_path / "boxes").exists()
    # A bare .keras does not say its task: a per-pixel output is no classifier's either.
    inputs = keras.Input((16, 16, 3))
    bare = tmp_path / "bare.keras"
    keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)).save(bare)
    assert_one_line_error(invoke("classify", bare, image), bare, "not class scores")


def test_evaluate_classify_and_benchmark_a_run(tiny_run, shapes_dir, tmp_path):
    report = tmp_path / "metrics.json"
    result = invoke("evaluate", tiny_run, "--json", report, "--plots", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    assert "circle" in result.output.split("per class:")[1]  # the task's detail table
    metrics = json.loads(report.read_text())
    assert metrics["format"] == "keras" and metrics["task"] == "classify"
    assert metrics["images"] == 12
    drawn = tmp_path / "plots" / "val_confusion_matrix.png"
    assert metrics["plots"] == [str(drawn)] and drawn.read_bytes().startswith(b"\x89PNG")

    image = next((shapes_dir / "val" / "square").iterdir())
    result = invoke("classify", tiny_run, image, shapes_dir / "val" / "circle", "--top-k", 2,
                    "--json")
    predictions = json.loads(result.stdout)
    assert len(predictions) == 5 and predictions[0]["image"] == str(image)
    assert len(predictions[0]["predictions"]) == 2
    assert {p["label"] for p in predictions[0]["predictions"]} <= {"circle", "square", "triangle"}

    result = invoke("benchmark", tiny_run / "model.keras", "--threads", "1", "--runs", 5)
    assert result.exit_code == 0, result.output
    assert "p50_ms" in result.output and "keras" in result.output
    for threads in ("0", "1,0", ","):
        assert_one_line_error(invoke("benchmark", tiny_run, "--threads", threads),
                              f"--threads {threads}: thread counts of 1 or more")
    assert_one_line_error(invoke("benchmark", tiny_run, "--threads", "one"),
                          "expected numbers like 1,2")


def test_a_run_whose_dataset_moved_asks_for_data(tiny_run, shapes_dir, tmp_path):
    import shutil

    moved = tmp_path / "tiny"
    shutil.copytree(tiny_run, moved)
    config = moved / "config.yaml"
    config.write_text(config.read_text().replace(str(shapes_dir), str(tmp_path / "gone")))
    for command in ("evaluate", "export"):
        assert_one_line_error(invoke(command, moved), tmp_path / "gone",
                              "the run's dataset is not there any more; pass --data DIR")
    result = invoke("evaluate", moved, "--data", shapes_dir)
    assert result.exit_code == 0 and "accuracy" in result.output, result.output


def test_evaluate_on_another_folder_without_a_val_split_takes_all_of_it(tiny_run, shapes_dir,
                                                                        tmp_path):
    # The val folder alone: class folders, no val/ of their own. Not split: all 12 images.
    report = tmp_path / "metrics.json"
    result = invoke("evaluate", tiny_run, "--data", shapes_dir / "val", "--json", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["images"] == 12
    assert "is not the dataset the model was trained on" in result.output
    # Training keeps images to train on.
    result = invoke("train", "classify", "--data", shapes_dir / "val", "--output", tmp_path,
                    "--set", "data.val_fraction=1")
    assert_one_line_error(result, "data.val_fraction=1.0: must be below 1")


def test_data_check_counts_per_split_and_class(shapes_dir):
    result = invoke("data", "check", "classify", shapes_dir)
    assert result.exit_code == 0, result.output
    assert "classes: 3" in result.output and "32x32 (48)" in result.output
    assert "unreadable images: 0" in result.output
    assert_one_line_error(invoke("data", "check", "classify", shapes_dir / "missing"), "not found")


def test_a_new_classify_run_reads_16_bit_images_from_their_bit_depth(shapes_dir, tmp_path):
    """A 12-bit camera's 16-bit PNGs (0..4095), read from 0..65535, kept 16 grey levels;
    data check says how a new run reads them, the run keeps data.window, and it classifies
    them as it does the same pictures in 8 bits."""
    deep, eight_bit = twelve_bit_copies(shapes_dir, tmp_path)
    result = invoke("data", "check", "classify", deep)
    assert result.exit_code == 0, result.output
    assert "read as 12-bit, 0..4095 to 0..255 (data.window=[2047.5, 4095.0]) by a new run" \
        in result.output

    sets = [arg for s in TINY_SETS + ("data.channels=1",) for arg in ("--set", s)]
    result = invoke("train", "classify", "--data", deep, "--epochs", 1, "--output", tmp_path,
                    *sets)
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["window"] == [2047.5, 4095.0]
    assert json.loads((run / "inference.json").read_text())["window"] == [2047.5, 4095.0]
    scores = [[image["predictions"] for image in json.loads(invoke(
        "classify", run, copy / "val", "--json").stdout)] for copy in (deep, eight_bit)]
    assert scores[0] == scores[1]


def test_data_check_reads_a_home_relative_path_as_training_does(shapes_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(shapes_dir.parent))
    result = invoke("data", "check", "classify", f"~/{shapes_dir.name}")
    assert result.exit_code == 0, result.output
    assert "classes: 3" in result.output


@pytest.mark.parametrize("layout, named", [
    (["images/a.png", "masks/a.png"], "a segmentation dataset (visionsuite train segment)"),
    (["images/a.png", "labels/a.txt"], "a detection dataset (visionsuite train detect)"),
    (["images/a.png", "annotations/a.xml"], "a detection dataset (visionsuite train detect)"),
])
def test_data_check_names_the_task_a_dataset_is_for(tmp_path, layout, named):
    for relative in layout:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".png"):
            Image.new("L", (8, 8)).save(tmp_path / relative)
        else:
            (tmp_path / relative).write_text("0 0.5 0.5 0.2 0.2\n")
    for task, folder_per in (("classify", "class"), ("face", "person")):
        result = invoke("data", "check", task, tmp_path)
        assert_one_line_error(result, f"{named}; expected one folder per {folder_per}")
        error = next(line for line in result.output.splitlines() if line.startswith("error:"))
        assert error.count(str(tmp_path)) == 1, error  # the folder is named once


def test_detail_text_titles_each_table_and_prints_nothing_without_rows():
    from visionsuite.core.report import detail_text

    assert detail_text([]) == "" and detail_text([("per class:", [])]) == ""
    text = detail_text([("per class:", [{"class": "cat", "f1": 0.5}])])
    assert text.startswith("\nper class:\nclass") and "0.5000" in text


def test_tables_align_class_names_of_double_width_characters():
    """A CJK character takes two terminal columns: counted as one, 日本's row ran a column
    short of the others."""
    from visionsuite.core.report import display_width, table

    assert display_width("日本") == 4 and display_width("café") == 4
    assert display_width("cafe\u0301") == 4  # e and a combining accent: one column
    lines = table([{"class": "café crème", "f1": 0.5}, {"class": "日本", "f1": 0.25}]).splitlines()
    assert [display_width(line) for line in lines] == [len(lines[0])] * 4, lines
    assert lines[3] == "日本" + " " * 6 + "  0.2500"


@pytest.mark.slow
def test_a_run_with_balanced_class_weights_resumes_in_a_new_process(shapes_dir, tmp_path):
    """`balanced` is resolved into the run's config.yaml (the weights it trained with), and its
    weighted loss, a class Keras knows only once it is made, loads again for --resume in a
    process that has not made one."""
    from conftest import resume_in_new_process

    sets = [arg for item in TINY_SETS + ("train.class_weights=balanced",)
            for arg in ("--set", item)]
    first = invoke("train", "classify", "--data", shapes_dir, "--epochs", 1, "--output",
                   tmp_path, "--name", "r", *sets)
    assert first.exit_code == 0, first.output
    run = tmp_path / "classify" / "r"
    weights = yaml.safe_load((run / "config.yaml").read_text())["train"]["class_weights"]
    assert weights == [1.0] * 3  # shapes_dir: 3 classes of 12 train images each
    resume_in_new_process("classify", run, epochs=2)


def test_export_says_why_when_int8_is_no_faster_than_float32():
    from visionsuite.cli import int8_speed_note

    def reports(**latency):
        return [{"quantize": name, "latency_ms_1_thread": ms} for name, ms in latency.items()]

    slower = reports(none=1.31, int8=1.36)
    assert "no int8 dot products" in int8_speed_note(slower, [])
    assert int8_speed_note(slower, None).startswith(  # a CPU Linux does not name
        "note: int8 ran no faster than float32 here; time the files")
    assert "though this CPU has AVX512-VNNI" in int8_speed_note(slower, ["AVX512-VNNI"])
    assert int8_speed_note(reports(none=0.41, int8=0.26), []) is None
    assert int8_speed_note(reports(int8=1.36), []) is None  # nothing to compare with
    assert int8_speed_note(reports(none=1.31, float16=1.4), []) is None


def test_int8_dot_products_are_read_from_x86_flags_and_arm_features(tmp_path):
    from visionsuite.core.benchmark import int8_dot_products

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma\n")
    assert int8_dot_products(cpuinfo) == []
    cpuinfo.write_text("flags\t\t: avx2 avx512f avx512_vnni avx512_bf16\n")
    assert int8_dot_products(cpuinfo) == ["AVX512-VNNI"]
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp sve\n")
    assert int8_dot_products(cpuinfo) == ["ARM dot product"]
    assert int8_dot_products(tmp_path / "missing") is None  # macOS, Windows: unknown
