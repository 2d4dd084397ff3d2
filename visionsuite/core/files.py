"""Files that are never half-written, and paths that never leave their root."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from visionsuite.errors import VisionsuiteError


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it: done once, at import
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    `suffix` keeps the extension for writers that insist on one (Keras wants `.keras`).
    The file gets the permissions of the file it replaces, or those of any new file (mkstemp
    makes its files private, 0600: a colleague could not read the exported model).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~UMASK
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Holds an exclusive lock on `path`.lock (created beside it) for a read-modify-write of
    `path`, so that two processes updating the same file do not lose each other's change.
    POSIX only (fcntl); elsewhere the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock_path = Path(str(path) + ".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: str | Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def inside(root: Path, relative: str | Path) -> Path:
    """`root / relative`, refusing any path that resolves outside `root` (`..`, absolute, links)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise VisionsuiteError(f"{root / relative}: path leaves the dataset folder {root}")
    return candidate


RUNS = "runs"  # where training and prediction write by default, beside the user's shell


def writable_folder(folder: Path, what: str, option: str = "--output") -> Path:
    """`folder`, if it is or can be made a folder we may write in: checked before the work
    (minutes of decoding, training or converting), created only when something is written."""
    _refuse_unwritable(folder, folder, what, option)
    return folder


def writable_file(path: str | Path, what: str, option: str) -> Path:
    """`path`, if a file can be written there, checked as writable_folder checks a folder."""
    path = Path(path)
    if path.is_dir():
        raise VisionsuiteError(f"{path}: is a folder; {option} takes the name of {what}")
    _refuse_unwritable(path.parent, path, what, option)
    return path


def _refuse_unwritable(folder: Path, named: Path, what: str, option: str) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        problem = "not a folder" if not existing.is_dir() else "not writable"
        raise VisionsuiteError(f"{named}: cannot write {what} there ({existing} is {problem});"
                               f" choose another with {option}")


def check_new_run(base: Path, name: str | None) -> None:
    """The errors new_run_dir would raise, named before the data is decoded."""
    writable_folder(base, "run folders")
    if name and (base / name).exists():
        raise VisionsuiteError(_RUN_EXISTS.format(run=base / name))


_RUN_EXISTS = "{run}: run folder already exists; choose another --name or --resume it"


def new_run_dir(base: Path, name: str | None, stem: str = "exp") -> Path:
    """A fresh run folder: `base/NAME`, or `base/exp`, `base/exp2`, ... when no name is given."""
    base.mkdir(parents=True, exist_ok=True)
    if name:
        run = base / name
        if run.exists():
            raise VisionsuiteError(_RUN_EXISTS.format(run=run))
        run.mkdir()
        return run
    for index in range(1, 100000):
        run = base / (stem if index == 1 else f"{stem}{index}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            continue
    raise VisionsuiteError(f"{base}: too many runs")


# A dataset's split folders by the names they come with (Kaggle's Training/ and Testing/
# included); test/ is the val split only where there is no val/, as Ultralytics takes it.
TRAIN_FOLDER_NAMES = ("train", "training")
VAL_FOLDER_NAMES = ("val", "valid", "validation", "test", "testing")


def unique_stem(stem: str, used: set[str]) -> str:
    """`stem`, or `stem_2`, `stem_3`, ... when an earlier output took it (a/x.png and b/x.jpg
    both predicted into one folder), recorded in `used`."""
    candidate, number = stem, 2
    while candidate in used:
        candidate, number = f"{stem}_{number}", number + 1
    used.add(candidate)
    return candidate


def holds_data(name: str) -> bool:
    """False for folders no dataset is in: hidden ones (.git, .ipynb_checkpoints) and the
    __MACOSX metadata that zips made on a Mac unpack beside the data."""
    return not name.startswith(".") and name != "__MACOSX"


# Files beside a wrapper folder that make it no dataset folder of its own (wrapper_content).
DOCUMENT_SUFFIXES = (".txt", ".md", ".rst", ".pdf", ".html", ".htm", ".docx", ".doc", ".odt",
                     ".xlsx", ".xls", ".ods", ".zip", ".gz", ".tgz", ".tar", ".7z", ".rar")


def wrapper_content(root: Path, beside: tuple[str, ...] = ()) -> Path | None:
    """The one folder inside `root` where `root` holds nothing else but documents (a readme,
    a licence, the archive) or files ending in `beside` (that the task does not read there),
    as archives unpack into a folder around the set (Kaggle's archive/, LFW's
    lfw-deepfunneled/lfw-deepfunneled/, BTCV's RawData/); None where `root` is the set
    itself, or its one folder is a split of it (train/, val/, test/)."""
    folders = sub_folders(root)
    if len(folders) != 1:
        return None
    files = [path for path in Path(root).iterdir() if path.is_file() and holds_data(path.name)]
    inner = folders[0]
    if any(path.suffix.lower() not in DOCUMENT_SUFFIXES + beside for path in files) \
            or inner.name.lower() in TRAIN_FOLDER_NAMES + VAL_FOLDER_NAMES:
        return None
    return inner


def data_files(root: Path, pattern: str) -> list[Path]:
    """The files below `root` whose names match `pattern`, in path order, those in folders
    no dataset is in (holds_data) left out."""
    return sorted(path for path in Path(root).rglob(pattern) if path.is_file()
                  and all(holds_data(part) for part in path.relative_to(root).parts))


def sub_folders(root: Path) -> list[Path]:
    """The sub-folders of `root` that can hold data (`holds_data`), sorted."""
    return sorted(path for path in Path(root).iterdir()
                  if path.is_dir() and holds_data(path.name))


def named_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    """The sub-folder of `root` whose name, in any case, comes first in `names`; None if none."""
    found = {path.name.lower(): path for path in sub_folders(root)}
    return next((found[name] for name in names if name in found), None)


def held_out_only(root: str | Path) -> bool:
    """True for a set that ships its val/ or test/ folder alone: a test set, which `evaluate
    --data` scores whole and `data check` checks as one (training needs a train/ folder)."""
    root = Path(root)
    return root.is_dir() and named_folder(root, VAL_FOLDER_NAMES) is not None \
        and named_folder(root, TRAIN_FOLDER_NAMES) is None
