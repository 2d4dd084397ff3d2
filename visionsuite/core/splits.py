"""A dataset's held-out splits: val, which training chooses its epoch and thresholds on, and
test, which training never sees (the final figures of a set that ships train, val and test,
as Roboflow's exports and Kaggle's sets do): `visionsuite evaluate RUN --split test`.

Each task's loader reads the test split in the val split's place; where a dataset has none,
that is an error (no_test_split), never a silent fall back to val.
"""

from __future__ import annotations

from pathlib import Path

from visionsuite.core.files import VAL_FOLDER_NAMES, named_folder
from visionsuite.errors import VisionsuiteError

HELD_OUT_SPLITS = ("val", "test")
TEST_FOLDER_NAMES = ("test", "testing")
# data.val_fraction that puts every image of a dataset without a val split into val.
EVERY_IMAGE = 1.0
TEST_SET_NOTE = "no train/ folder: a test set, for `visionsuite evaluate RUN --data PATH`"
TEST_SPLIT_NOTE = "the test split alone, as `visionsuite evaluate RUN --split test` reads it"


def held_out_names(split: str) -> tuple[str, ...]:
    """The folder names of a held-out split (HELD_OUT_SPLITS); val's include test/, which
    serves as val where there is no val/ (as Ultralytics takes it)."""
    return VAL_FOLDER_NAMES if split == "val" else TEST_FOLDER_NAMES


def test_set_note(held_out: str) -> str:
    """data check's line on a split checked alone: the test split (`--split test`), or the
    only one of a set that ships its test/ (or val/) folder alone."""
    return TEST_SPLIT_NOTE if held_out == "test" else TEST_SET_NOTE


def no_test_split(root: Path, expected: str) -> VisionsuiteError:
    """The error for `evaluate --split test` on a dataset without one."""
    return VisionsuiteError(f"{root}: no test split ({expected}); `--split val` evaluates "
                            "its val split")


def unread_test_split(root: str | Path) -> str | None:
    """Where a dataset keeps a test split that training does not read (a test/ folder beside
    a val/ one, a YAML's 'test' entry, a COCO test file), for data check to point at
    `evaluate --split test`; None where it has none. Tasks add their own layouts
    (Task.unread_test_split: classify's test.csv)."""
    from visionsuite.config import read_yaml
    from visionsuite.core.coco import coco_files
    from visionsuite.core.yolo import yolo_yaml

    root = Path(root)
    if not root.is_dir():
        return None
    yaml_path = yolo_yaml(root)
    if yaml_path is not None:
        spec = read_yaml(yaml_path)
        return f"'test' in {yaml_path.name}" if isinstance(spec, dict) and spec.get("test") \
            else None
    if any(coco_files(root).values()):
        test_file = coco_files(root, "test")["val"]
        return str(test_file.relative_to(root)) if test_file is not None else None
    test_dir = named_folder(root, TEST_FOLDER_NAMES)
    read_as_val = named_folder(root, VAL_FOLDER_NAMES)
    return f"{test_dir.name}/" if test_dir is not None and read_as_val != test_dir else None
