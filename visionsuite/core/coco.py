"""COCO annotation files, as detect reads their boxes and segment their polygons: where a
dataset keeps them, reading one, and its categories."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath, PureWindowsPath

from visionsuite.core.files import inside
from visionsuite.errors import VisionsuiteError

ROBOFLOW_COCO = "_annotations.coco.json"
COCO_TEST = f"test.json, or test/{ROBOFLOW_COCO}, or annotations/instances_test*.json"
# Label Studio's COCO export: result.json beside images/.
SINGLE_COCO_NAMES = ("result.json", "annotations.json", "coco.json", ROBOFLOW_COCO)
ANNOTATIONS_FOLDER = "annotations"


def coco_files(root: Path, held_out: str = "val") -> dict[str, Path | None]:
    """The train and val COCO files, in the layouts tools export them:
    - `train.json`/`val.json` beside the images' folders;
    - Roboflow's `train/_annotations.coco.json` and `valid/_annotations.coco.json`;
    - COCO's own `annotations/instances_train2017.json` and `instances_val2017.json`
      (images in `train2017/` and `val2017/`), and CVAT's one `annotations/instances_default
      .json` (images in `images/`), taken as train;
    - Label Studio's one `result.json` beside `images/`, taken as train.
    A file alone is train (training splits it by data.val_fraction). `held_out` "test": the
    test file (test.json, test/_annotations.coco.json, instances_test*.json) as the val file."""
    files = {"train": root / "train.json", "val": root / f"{held_out}.json"}
    if not any((root / f"{split}.json").is_file() for split in ("train", "val", held_out)):
        held_names = ("valid", "val") if held_out == "val" else ("test",)
        files = {"train": root / "train" / ROBOFLOW_COCO}
        files["val"] = next((root / name / ROBOFLOW_COCO for name in held_names
                             if (root / name / ROBOFLOW_COCO).is_file()),
                            root / held_names[0] / ROBOFLOW_COCO)
        if not any(path.is_file() for path in files.values()):
            files = _annotation_folder_files(root, held_out) or _single_file(root)
    return {split: path if path.is_file() else None for split, path in files.items()}


def _annotation_folder_files(root: Path, held_out: str) -> dict[str, Path] | None:
    """The train and held-out files of an annotations/ folder, by the split named in each
    file's name (instances_val2017.json; trainval counts as train); a single file of no
    split's name is train (CVAT's instances_default.json). Only the `instances` files where
    there are some (COCO's folder holds captions and keypoints beside them)."""
    folder = root / ANNOTATIONS_FOLDER
    if not folder.is_dir():
        return None
    found = sorted(path for path in folder.glob("*.json") if _looks_like_coco(path))
    instances = [path for path in found if "instances" in path.stem.lower()]
    found = instances or found
    by_split: dict[str, Path] = {}
    for path in found:
        stem = path.stem.lower()
        split = "test" if "test" in stem else "train" if "train" in stem \
            else "val" if "val" in stem else None
        if split is not None:
            by_split.setdefault(split, path)
    if not by_split and len(found) == 1:
        by_split["train"] = found[0]
    if not by_split:
        return None
    return {"train": by_split.get("train", folder / "train.json"),
            "val": by_split.get(held_out, folder / f"{held_out}.json")}


def _single_file(root: Path) -> dict[str, Path]:
    """A COCO file alone at the root (Label Studio's result.json), as train."""
    path = next((root / name for name in SINGLE_COCO_NAMES if _looks_like_coco(root / name)),
                root / "train.json")
    return {"train": path, "val": root / "val.json"}


def _looks_like_coco(path: Path) -> bool:
    """Whether a JSON file found by a looser name (annotations/*.json, result.json) is a COCO
    file, not a mask set's metadata beside its annotations/ folder of PNGs: its first MiB
    names "images" (every exporter writes that list before the annotations; COCO's own
    instances file is hundreds of MB, so it is not read whole here)."""
    if not path.is_file():
        return False
    with open(path, "rb") as file:
        return b'"images"' in file.read(1 << 20)


def coco_file_name(item: dict) -> str:
    """An image's file_name, its Windows backslashes as slashes (Label Studio on Windows writes
    images\\x.jpg, which elsewhere would be one odd file name)."""
    return str(item["file_name"]).replace("\\", "/")


def coco_image_folder(root: Path, path: Path, spec: dict) -> Path:
    """The folder (relative to `root`) a COCO file's `file_name`s are relative to: the file's
    own folder (Roboflow; train.json beside images/), the dataset's, its images/ folder
    (CVAT), or the folder named as the file's split (COCO's val2017/ for
    instances_val2017.json, also inside images/): the one that holds most of its first
    images (as coco_image finds them), the file's own on a tie."""
    own = path.parent.resolve().relative_to(root.resolve())
    split = path.stem.split("instances_")[-1]
    candidates = list(dict.fromkeys([own, Path("."), Path("images"), Path(split),
                                     Path("images") / split]))
    names = [coco_file_name(item) for item in spec["images"][:20]
             if isinstance(item, dict) and "file_name" in item]

    def held(folder: Path) -> int:
        return sum(_found_in(root / folder, name) is not None for name in names if name)

    return max(candidates, key=lambda folder: (held(folder), folder == own))


def coco_image(root: Path, folder: Path, name: str) -> Path:
    """The image a `file_name` names in `folder` (coco_image_folder): that path, else the file
    of its base name there. Tools write where the image was on the machine that exported it:
    Label Studio 1.16 its server's upload folder (`../../label-studio/media/upload/4/x.png`)
    beside the images/ folder of its export that holds x.png, others absolute paths or
    `/data/local-files/?d=...`. Nothing outside the dataset is read: a path that leaves it,
    without a file of its base name in the folder, is an error; a missing one is returned
    for the caller to report."""
    found = _found_in(root / folder, name)
    if found is not None:
        return inside(root, found.relative_to(root))  # a link out of the dataset is refused
    if _leaves(name):
        inside(root, folder / name)  # raises: the path leaves the dataset folder
    return root / folder / name


def _found_in(folder: Path, name: str) -> Path | None:
    """`folder / name` where that is a file inside `folder`, else `folder /` its base name."""
    if not _leaves(name) and (folder / name).is_file():
        return folder / name
    base = PurePosixPath(name.split("?d=")[-1]).name  # Label Studio's /data/local-files/?d=x
    return folder / base if base and (folder / base).is_file() else None


def _leaves(name: str) -> bool:
    path = PurePosixPath(name)
    return path.is_absolute() or ".." in path.parts or bool(PureWindowsPath(name).drive)


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
