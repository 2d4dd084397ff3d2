import re
from pathlib import Path

import pytest

from visionsuite.config import PACKAGE_CONFIGS, Config, load_config, read_yaml
from visionsuite.errors import VisionsuiteError


def test_shipped_config_matches_the_declared_keys():
    config = load_config("classify", overrides={"data.path": "/data"})
    assert isinstance(config, Config)
    assert config.task == "classify"
    assert config.model.backbone == "resnet18"
    assert read_yaml(PACKAGE_CONFIGS / "classify.yaml")["train"]["epochs"] == config.train.epochs


def test_embedded_dataset_settings_apply_only_without_data_and_yield_to_the_command_line(
        tmp_path: Path):
    from visionsuite.config import EMBEDDED_SETTINGS

    embedded = load_config("classify")
    assert embedded.train.epochs == EMBEDDED_SETTINGS["classify"]["train.epochs"]
    assert embedded.data.image_size == EMBEDDED_SETTINGS["classify"]["data.image_size"]
    chosen = load_config("classify", overrides={"train.epochs": 3}, sets=["data.image_size=32"])
    assert (chosen.train.epochs, chosen.data.image_size) == (3, 32)
    own_file = tmp_path / "own.yaml"
    own_file.write_text("train:\n  epochs: 5\n")
    assert load_config("classify", own_file).train.epochs == 5  # a user's file is kept as is


def test_command_line_beats_yaml_and_set_beats_both():
    config = load_config("classify", overrides={"train.epochs": 7, "data.path": None},
                         sets=["train.lr=0.5", "model.backbone=vgg11", "data.path=/x"])
    assert config.train.epochs == 7
    assert config.train.lr == 0.5
    assert config.model.backbone == "vgg11"
    assert config.data.path == "/x"


def test_yaml_typo_is_one_line_naming_file_and_closest_key(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epocs: 3\n")
    with pytest.raises(VisionsuiteError) as error:
        load_config("classify", path)
    message = str(error.value)
    assert str(path) in message and "train.epocs" in message and "train.epochs" in message
    assert "\n" not in message


def test_unknown_section_and_wrong_type_are_rejected(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(VisionsuiteError, match="did you mean 'train'"):
        load_config("classify", path)
    path.write_text("train:\n  epochs: many\n")
    with pytest.raises(VisionsuiteError, match="'train.epochs' must be int"):
        load_config("classify", path)


def test_set_values_are_parsed_as_yaml_never_evaluated():
    with pytest.raises(VisionsuiteError, match="must be int"):
        load_config("classify", sets=["train.epochs=__import__('os').getcwd()"])
    with pytest.raises(VisionsuiteError, match="key=value"):
        load_config("classify", sets=["train.epochs"])
    with pytest.raises(VisionsuiteError, match="is a section"):
        load_config("classify", sets=["train=3"])


def test_invalid_yaml_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  epochs: [3\n")
    with pytest.raises(VisionsuiteError, match=r"broken.yaml: not valid YAML \(line"):
        load_config("classify", path)


def test_a_config_file_of_ones_own_changes_only_the_keys_it_sets(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("data:\n  path: /data/cells\ntrain:\n  epochs: 5\nmodel:\n")
    config = load_config("segment", path)
    shipped = load_config("segment", overrides={"data.path": "/data/cells"})
    assert config.train.epochs == 5
    assert config.model.backbone == "unet"  # the shipped recipe's, not a dataclass default
    config.train.epochs = shipped.train.epochs
    assert config == shipped
    # Without a dataset, the embedded default's settings fill the keys the file leaves out.
    path.write_text("train:\n  epochs: 5\n")
    config = load_config("classify", path)
    assert (config.train.epochs, config.data.image_size) == (5, 48)


def test_a_runs_whole_config_is_read_as_saved(tmp_path: Path):
    """--resume reads the run's config.yaml over the dataclass defaults alone: neither the
    shipped file nor the embedded dataset's settings change a run that is continued."""
    from visionsuite.config import save_config

    path = tmp_path / "config.yaml"
    save_config(load_config("segment", sets=["data.image_size=200"]), path)
    # A key newer than the run is missing from its file.
    path.write_text(path.read_text().replace("  backbone: unet\n", ""))
    config = load_config("segment", path, sets=["train.epochs=4"], whole=True)
    assert config.train.epochs == 4 and config.data.image_size == 200
    assert config.model.backbone == Config().model.backbone != "unet"


def test_a_mapping_key_takes_names_to_lists_and_is_saved_and_read_back(tmp_path: Path):
    from visionsuite.config import save_config

    config = load_config("segment", sets=["data.regions={whole_tumour: [1, 2, 4], core: [4]}"])
    assert config.data.regions == {"whole_tumour": ["1", "2", "4"], "core": ["4"]}
    save_config(config, tmp_path / "config.yaml")
    assert load_config("segment", tmp_path / "config.yaml").data.regions == config.data.regions
    for value, message in (("[1, 2]", "'data.regions' must be a mapping of names to lists of "
                                      "str, got [1, 2]"),
                           ("{wt: 1}", "'data.regions.wt' must be a list of str, got 1")):
        with pytest.raises(VisionsuiteError, match=re.escape(message)):
            load_config("segment", sets=[f"data.regions={value}"])


def test_config_for_another_task_is_refused(tmp_path: Path):
    path = tmp_path / "other.yaml"
    path.write_text("task: segment\n")
    with pytest.raises(VisionsuiteError, match="for task 'segment'"):
        load_config("classify", path)


@pytest.mark.parametrize("setting, message", [
    ("train.epochs=-1", "'train.epochs' must be at least 1, got -1"),
    ("data.image_size=0", "'data.image_size' must be at least 16, got 0"),
    ("augment.flip=2", "'augment.flip' must be between 0 and 1, got 2.0"),
    ("data.channels=0", "'data.channels' must be at least 1, got 0"),
    ("data.surface_tolerance=0", "'data.surface_tolerance' must be above 0, got 0.0"),
    ("data.surface_tolerance={kidney: 1, tumour: -2}",
     "'data.surface_tolerance.tumour' must be above 0, got -2.0"),
    ("train.lr=0", "'train.lr' must be above 0, got 0.0"),
    ("train.ema_momentum=1", "'train.ema_momentum' must be at least 0 and below 1, got 1.0"),
])
def test_numbers_out_of_range_are_one_line_errors(tmp_path: Path, setting, message):
    with pytest.raises(VisionsuiteError, match=f"^--set: {re.escape(message)}$"):
        load_config("classify", sets=[setting])
    key, value = setting.split("=")
    section, name = key.split(".")
    own_file = tmp_path / "own.yaml"
    own_file.write_text(f"{section}:\n  {name}: {value}\n")
    with pytest.raises(VisionsuiteError, match=re.escape(message)):
        load_config("classify", own_file)
    for task in ("classify", "segment", "detect", "face"):  # the shipped files are in range
        load_config(task)


@pytest.mark.parametrize("task, setting, message", [
    ("classify", "train.loss=focal",
     "train.loss=focal: classify does not read it (segment and face read it); leave it out"),
    ("detect", "train.class_weights=[1, 3]",
     "train.class_weights=[1.0, 3.0]: detect does not read it (segment and classify read it)"),
    ("detect", "model.dropout=0.3", "model.dropout=0.3: detect does not read it"),
    ("face", "model.levels=5", "model.levels=5: face does not read it (segment reads it)"),
    ("segment", "model.width=2", "model.width=2.0: it scales a backbone encoder"),
    ("classify", "data.channels=2", "data.channels=2: must be 1 (grey) or 3 (RGB)"),
    ("face", "data.channels=4", "data.channels=4: must be 1 (grey) or 3 (RGB)"),
    ("classify", "data.regions={wt: [a]}", "data.regions={'wt': ['a']}: classify does not read"),
    ("face", "data.surface_tolerance=2", "data.surface_tolerance=2.0: face does not read it"),
    ("segment", "data.label_column=dx", "data.label_column=dx: segment does not read it "
                                        "(classify reads it)"),
])
def test_a_setting_that_only_other_tasks_read_is_a_one_line_error(task, setting, message):
    """Before, `--set train.loss=focal` trained classify with its cross-entropy, silently."""
    from visionsuite.tasks import get_task

    with pytest.raises(VisionsuiteError, match=re.escape(message)):
        get_task(task).check_settings(load_config(task, sets=[setting]))


@pytest.mark.parametrize("task", ["classify", "detect", "segment", "face"])
def test_the_shipped_configs_set_only_what_their_task_reads(task):
    from visionsuite.tasks import get_task

    get_task(task).check_settings(load_config(task))  # the embedded dataset's settings
    get_task(task).check_settings(load_config(task, overrides={"data.path": "elsewhere"}))
    if task == "segment":  # a backbone encoder takes model.width
        get_task(task).check_settings(load_config(task, sets=["model.backbone=resnet18",
                                                              "model.width=0.5"]))
