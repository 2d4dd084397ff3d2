"""Classes named inside array files (core/arrays.py): a dataset whose images are NumPy, HDF5
or MATLAB files that each hold a one-value array naming their class, as Figshare's brain
tumour MRI ships (cjdata/label: 1 meningioma, 2 glioma, 3 pituitary tumour), in part folders
that are no classes (brainTumorDataPublic_1-766/, ...). Files in folders of one class each
are read by their class folders, as image files are. Where the files name their patient
too (cjdata/PID), the val split takes whole patients: a patient's slices on both sides would
let val score slices the model has nearly seen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from visionsuite.core.arrays import case_of, class_of, is_array_file
from visionsuite.core.files import TRAIN_FOLDER_NAMES, named_folder
from visionsuite.core.image_tables import natural_order
from visionsuite.core.images import folder_image_files
from visionsuite.core.splits import held_out_cases, held_out_names, no_test_split
from visionsuite.errors import VisionsuiteError


@dataclass
class NamedClasses:
    """The images of a dataset whose files name their classes, by split: train and val (or
    test, as val), or train alone where the set has no held-out folder (split_by_cases or the
    caller splits it)."""

    classes: list[str]
    splits: dict[str, list[tuple[Path, int]]]  # split name -> (file, class index)
    folders: dict[str, str]  # split -> the folder it was read from
    left_out: list[str]  # classes not in data.classes
    odd_files: list[Path]  # files that are no images
    notes: list[str]


def classes_in_files(root: Path, chosen: list[str] | None, held_out: str) -> NamedClasses | None:
    """The images by split where every image below `root` is an array file that names its
    class: train/ and val/ (test/ for `held_out` "test") where the set has them, else all of
    them as train. `chosen` (data.classes): the classes to read, in this order. None for any
    other dataset (class folders, tables)."""
    train_dir = named_folder(root, TRAIN_FOLDER_NAMES)
    val_dir = named_folder(root, held_out_names(held_out))
    folders = {"val": val_dir or root} if held_out == "test" else \
        {"train": train_dir, "val": val_dir} if train_dir or val_dir else {"train": root}
    odd: list[Path] = []
    named = {split: _files_naming_classes(root, folder, odd)
             for split, folder in folders.items() if folder is not None}
    if None in named.values() or _class_folders(named):
        return None
    if held_out == "test" and val_dir is None:
        raise no_test_split(root, "a test/ folder")
    array = next(iter(named.values()))[0][1][0]
    found = natural_order({name for files in named.values() for _, (_, name) in files})
    classes = chosen or found
    missing = [name for name in classes if name not in found]
    if missing:
        raise VisionsuiteError(f"{root}: no image of class(es) {', '.join(missing)} named in "
                               f"data.classes (the files' classes, {array}: "
                               f"{', '.join(found)})")
    if len(classes) < 2 and held_out == "val":
        raise VisionsuiteError(f"{root}: one class ({', '.join(classes)}) named in the files "
                               f"({array}); a classifier needs at least 2")
    number = {name: index for index, name in enumerate(classes)}
    splits = {split: [(path, number[name]) for path, (_, name) in files if name in number]
              for split, files in named.items()}
    return NamedClasses(classes, splits, {split: folder.name for split, folder in folders.items()
                                          if folder is not None and folder != root},
                        [name for name in found if name not in number], odd,
                        [f"classes named in the files ({array}): {', '.join(found)}"])


def _class_folders(named: dict[str, list[tuple[Path, tuple[str, str]]]]) -> bool:
    """Whether the files are in folders of one class each, several: class folders, whose
    names name the classes better (glioma/ rather than 2)."""
    by_folder: dict[Path, set[str]] = {}
    for files in named.values():
        for path, (_, name) in files:
            by_folder.setdefault(path.parent, set()).add(name)
    return len(by_folder) > 1 and all(len(names) == 1 for names in by_folder.values())


def _files_naming_classes(root: Path, folder: Path,
                          odd: list[Path]) -> list[tuple[Path, tuple[str, str]]] | None:
    """Every image below `folder`, with the (array, class) it names; the other files are
    added to `odd`. None where an image is no array file or names no class (at the first:
    datasets of image files are told at one look)."""
    found = []
    for path in folder_image_files(root, folder, odd, recursive=True):
        named = class_of(path) if is_array_file(path) else None
        if named is None:
            return None
        found.append((path, named))
    return found or None


def split_by_cases(items: list[tuple[Path, int]], fraction: float, seed: int):
    """(train, val, data check's note) of whole cases, where every file names its case and
    there are several: core.splits.held_out_cases.
    None otherwise, and for a fraction that splits nothing (the split of single images
    deals with it)."""
    if not 0 < fraction < 1:
        return None
    named = [case_of(path) for path, _ in items]
    if any(case is None for case in named) or len({case[1] for case in named}) < 2:
        return None
    cases: dict[str, list[tuple[Path, int]]] = {}
    for item, case in zip(items, named):
        cases.setdefault(case[1], []).append(item)
    held = held_out_cases(cases, fraction, seed)
    taken = set(held)
    train = [item for case in sorted(cases) if case not in taken for item in cases[case]]
    val = [item for case in held for item in cases[case]]
    return train, val, (f"cases named in the files ({named[0][0]}): the val split takes whole "
                        f"cases ({len(cases)} in all)")
