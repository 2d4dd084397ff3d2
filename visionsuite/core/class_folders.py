"""Datasets of one folder per class (classify) or per person (face)."""

from __future__ import annotations

from pathlib import Path

from visionsuite.core.files import sub_folders
from visionsuite.core.images import folder_image_files, other_files_note
from visionsuite.errors import VisionsuiteError


def scan_class_folders(root: Path, folder: Path, classes: list[str] | None, odd: list[Path],
                       skip_others: bool = False, kind: str = "class"):
    """(file, class index) of every image in `folder/<class>/` (recursively), and the classes:
    `classes` if given (another folder's name is an error, or with `skip_others` left out),
    else the sub-folders found. `kind` names a folder in errors (face: person)."""
    class_dirs = sub_folders(folder)
    _refuse_other_task_layout(folder, {d.name.lower() for d in class_dirs}, kind)
    if skip_others:
        class_dirs = [d for d in class_dirs if d.name in classes]
    if classes is None:
        classes = [d.name for d in class_dirs]
        if len(classes) < 2:
            # classify also reads a CSV table of labels (core/image_tables.py)
            table = "; or a CSV labelling the images (labels.csv, train.csv)" \
                if kind == "class" else ""
            raise VisionsuiteError(f"{folder}: expected one sub-folder per {kind} (at least 2), "
                                   f"found {len(classes)}{table}")
    index = {name: i for i, name in enumerate(classes)}
    items = []
    for class_dir in class_dirs:
        if class_dir.name not in index:
            raise VisionsuiteError(
                f"{class_dir}: class '{class_dir.name}' is not in the train split")
        others: list[Path] = []
        images = list(folder_image_files(root, class_dir, others, recursive=True))
        if not images:
            raise VisionsuiteError(f"{class_dir}: {kind} folder holds no images"
                                   f"{other_files_note(others)}")
        odd += others
        items += [(path, index[class_dir.name]) for path in images]
    return items, classes


def _refuse_other_task_layout(folder: Path, names: set[str], kind: str) -> None:
    """A one-line error naming the task whose dataset `folder` is, rather than "class folder
    holds no images" about its annotations/ or masks/ folder."""
    if {"images", "masks"} <= names:
        raise VisionsuiteError(f"{folder}: holds images/ and masks/, a segmentation dataset "
                               f"(visionsuite train segment); expected one folder per {kind}")
    if ({"images", "labels"} <= names or "annotations" in names
            or (folder / "data.yaml").is_file()):
        found = "data.yaml" if (folder / "data.yaml").is_file() else \
            "annotations/" if "annotations" in names else "images/ and labels/"
        raise VisionsuiteError(f"{folder}: holds {found}, a detection dataset "
                               f"(visionsuite train detect); expected one folder per {kind}")
