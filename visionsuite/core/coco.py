"""COCO annotation files, as detect reads their boxes and segment their polygons: where a
dataset keeps them, reading one, and its categories."""

from __future__ import annotations

import json
from pathlib import Path

from visionsuite.errors import VisionsuiteError

ROBOFLOW_COCO = "_annotations.coco.json"
COCO_TEST = f"test.json, or test/{ROBOFLOW_COCO}"


def coco_files(root: Path, held_out: str = "val") -> dict[str, Path | None]:
    """The train and val COCO files: `train.json`/`val.json`, or Roboflow's
    `train/_annotations.coco.json` and `valid/_annotations.coco.json`. `held_out` "test":
    `test.json` or `test/_annotations.coco.json` as the val file."""
    held_names = ("valid", "val") if held_out == "val" else ("test",)
    files = {"train": root / "train.json", "val": root / f"{held_out}.json"}
    if not any((root / f"{split}.json").is_file() for split in ("train", "val", held_out)):
        files = {"train": root / "train" / ROBOFLOW_COCO}
        files["val"] = next((root / name / ROBOFLOW_COCO for name in held_names
                             if (root / name / ROBOFLOW_COCO).is_file()),
                            root / held_names[0] / ROBOFLOW_COCO)
    return {split: path if path.is_file() else None for split, path in files.items()}


def load_coco(path: Path) -> dict:
    """A COCO file's JSON, with its images, annotations and categories lists."""
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VisionsuiteError(f"{path}: malformed JSON ({err})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(spec, dict) or not isinstance(spec.get(key), list):
            raise VisionsuiteError(f"{path}: a COCO file needs '{key}' (a list)")
    return spec


def category_names(spec: dict, path: Path) -> dict[int, str]:
    """Category id to name, in id order, of the categories that hold annotations or group
    none (Roboflow's exports add their project as category 0, the supercategory of every
    real class, holding none)."""
    for number, category in enumerate(spec["categories"]):
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            raise VisionsuiteError(f"{path}: category {number} needs an id and a name")
    used = {item.get("category_id") for item in spec["annotations"] if isinstance(item, dict)}
    groups = {c.get("supercategory") for c in spec["categories"]}
    kept = [c for c in spec["categories"] if c["id"] in used or c["name"] not in groups]
    return {int(c["id"]): str(c["name"]) for c in sorted(kept, key=lambda c: int(c["id"]))}
