"""YOLO datasets as Ultralytics lays them out (data.yaml naming the train and val images and
the classes; a labels/ folder beside each images/ folder), for detect's boxes and segment's
polygons."""

from __future__ import annotations

import sys
from pathlib import Path

from visionsuite.core.files import inside
from visionsuite.core.images import is_image_file
from visionsuite.errors import VisionsuiteError

YAML_NAMES = ("data.yaml", "dataset.yaml")
YOLO_TEST = "a 'test' entry in its YAML"


def yolo_yaml(root: Path) -> Path | None:
    """The YAML that makes `root` a YOLO dataset (data.yaml, dataset.yaml), if any."""
    return next((root / name for name in YAML_NAMES if (root / name).is_file()), None)


def yolo_splits(root: Path, held_out: str = "val") -> tuple[list[str], dict[str, list[Path]]]:
    """The class names of a YOLO dataset's YAML (yolo_yaml), and the images of its train and
    val splits (their labels: yolo_label_path); `held_out` "test": its test images as val."""
    from visionsuite.config import read_yaml

    yaml_path = yolo_yaml(root)
    spec = read_yaml(yaml_path) or {}
    if not isinstance(spec, dict) or "train" not in spec:
        raise VisionsuiteError(f"{yaml_path}: needs 'train' (and 'val') image folders and "
                               "'names'")
    base = _yolo_base(root, spec.get("path"), yaml_path)
    labels = _yolo_names(spec.get("names"), spec.get("nc"), yaml_path)
    splits = {}
    for split, key in (("train", "train"), ("val", held_out)):
        entries = spec.get(key) or []
        entries = entries if isinstance(entries, list) else [entries]
        splits[split] = [image for entry in entries
                         for image in _yolo_images(root, base, str(entry), yaml_path)]
    return labels, splits


def _yolo_base(root: Path, path, yaml_path: Path) -> Path:
    """The folder that the YAML's train and val are relative to: its `path` when that is a
    folder inside the dataset, else the YAML's own folder. A `path` elsewhere says where the set
    was made (Ultralytics' `../datasets/coco128`, Colab's `/content/...`), not where it is now."""
    if not path:
        return root.resolve()
    try:
        base = inside(root, str(path))
    except VisionsuiteError:
        base = None
    if base is None or not base.is_dir():
        print(f"warning: {yaml_path}: path '{path}' is no folder inside the dataset; reading "
              f"train and val beside {yaml_path.name}", file=sys.stderr)
        return root.resolve()
    return base


def _yolo_names(names, count, path: Path) -> list[str]:
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except ValueError:
            raise VisionsuiteError(f"{path}: 'names' keys must be class ids 0, 1, ...") from None
        if keys != list(range(len(keys))):
            raise VisionsuiteError(f"{path}: 'names' must number the classes 0..{len(keys) - 1}")
        return [str(names.get(k, names.get(str(k)))) for k in keys]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    if isinstance(count, int) and count > 0:
        return [f"class{i}" for i in range(count)]
    raise VisionsuiteError(f"{path}: 'names' (the class names) is missing")


def _yolo_images(root: Path, base: Path, entry: str, yaml_path: Path) -> list[Path]:
    if entry.startswith("../") and (base / entry[3:]).exists():
        # Roboflow's exports name the folders beside data.yaml `../train/images`; Ultralytics
        # reads that as `train/images` when it exists, and so do we.
        entry = entry[3:]
    target = inside(root, base.relative_to(root.resolve()) / entry)
    if target.is_dir():
        return sorted(p for p in target.rglob("*") if p.is_file() and is_image_file(p))
    if target.is_file() and target.suffix == ".txt":
        listed = [line.strip() for line in target.read_text().splitlines() if line.strip()]
        return [inside(root, (target.parent.relative_to(root.resolve()) / item)
                       if not item.startswith("./") else base.relative_to(root.resolve()) / item)
                for item in listed]
    raise VisionsuiteError(f"{yaml_path}: '{entry}' is neither an image folder nor a list "
                           "of images")


def yolo_label_path(image: Path) -> Path:
    """Ultralytics' convention: the last 'images' folder of the path becomes 'labels'."""
    parts = list(image.parts)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] == "images":
            parts[index] = "labels"
            break
    return Path(*parts).with_suffix(".txt")
