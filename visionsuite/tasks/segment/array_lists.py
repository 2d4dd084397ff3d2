"""Sets of array files whose splits are lists of names, as SSL4MIS ships ACDC's cardiac MRI:

    ACDC/
      train.list, train_slices.list       each split's files, a name (without extension) a
      val.list, test.list                 line; a split's first list (by name) that names
                                          only files of the set is read
      data/patient001_frame01.h5          volumes holding an image and its label arrays
      data/slices/patient001_frame01_slice_1.h5   their slices, likewise (core/arrays.py)

Without the lists, the volumes and their slices would be read as one folder of pairs: each
image twice, and a volume's slices on both sides of the split. A list names a file by its
stem, or by the folder it is alone in: SSL4MIS' left atrium set lists case folders
(`2018LA_Seg_Training Set/<case>/mri_norm2.h5`). Its BraTS 2019 lists are train.txt, val.txt
and test.txt: lists end in .list or .txt.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from visionsuite.core.files import TRAIN_FOLDER_NAMES
from visionsuite.core.medical import file_stem
from visionsuite.core.splits import held_out_names
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.folders import array_pairs, holds_array_pairs, name_words
from visionsuite.tasks.segment.pairs import Pair, PairIndex, labelled_splits

LIST_SUFFIXES = (".list", ".txt")


def split_lists(root: Path, held_out: str) -> dict[str, list[Path]] | None:
    """The list files at the top of `root` of each split (a name holding its word: train,
    val, test; `held_out` "test": test's in val's place), where the set's files are arrays
    holding an image and its mask; None otherwise."""
    lists = split_list_files(root)
    if not lists or not holds_array_pairs(root, root):
        return None
    found = {}
    for split, words in (("train", TRAIN_FOLDER_NAMES), ("val", held_out_names(held_out))):
        for word in words:
            named = [path for path in lists if word in name_words(path.stem)]
            if named:
                found[split] = named
                break
    return found or None


def split_list_files(root: Path) -> list[Path]:
    """The files at the top of `root` that may be split lists: ending in .list or .txt, and
    named with a split's word (train.list, train_slices.list, val.txt, test.list)."""
    words = TRAIN_FOLDER_NAMES + held_out_names("val") + held_out_names("test")
    return sorted(path for path in root.iterdir()
                  if path.is_file() and path.suffix.lower() in LIST_SUFFIXES
                  and set(words) & set(name_words(path.stem)))


def listed_array_index(root: Path, lists: dict[str, list[Path]], val_fraction: float,
                       seed: int, held_out: str, train: bool) -> PairIndex:
    """The pairs each split's list names; the train ones split by val_fraction where no list
    names a held-out split; the held-out list alone for evaluate and export (not `train`)."""
    odd: list[Path] = []
    pairs = array_pairs(root, root, odd)
    if pairs is None:
        raise VisionsuiteError(f"{root}: beside {lists[next(iter(lists))][0].name}, every image "
                               "file should be an array holding an image and its mask")
    by_name = _listed_names(pairs)
    listed, folders = {}, []
    for split, files in lists.items():
        chosen, listed[split] = _first_whole_list(files, by_name)
        count = len(listed[split])
        folders.append(f"{held_out if split == 'val' else split}: {chosen.name} "
                       f"({count} file{'s' * (count != 1)})")
    odd = [path for path in odd if path not in split_list_files(root)]  # read, not ignored
    if held_out == "test" or not train and listed.get("val"):
        if not listed.get("val"):
            named = ", ".join(path.name for files in lists.values() for path in files)
            raise VisionsuiteError(f"{root}: no test list (test.list) beside {named}")
        return PairIndex(root, {"train": [], "val": listed["val"]}, odd, False, folders[-1:])
    splits, by_fraction = labelled_splits(root, {"train": [], "val": [], **listed},
                                          val_fraction, seed)
    return PairIndex(root, splits, odd, by_fraction, folders)


def _listed_names(pairs: list[Pair]) -> dict[str, Pair | None]:
    """Each pair by the names a list may give it: its file's stem, and the name of a folder
    that holds it alone (SSL4MIS' LA: <case>/mri_norm2.h5); None for a name several share."""
    alone = Counter(pair.image.parent for pair in pairs)
    found: dict[str, Pair | None] = {}
    for pair in pairs:
        names = {file_stem(pair.image)}
        if alone[pair.image.parent] == 1:
            names.add(pair.image.parent.name)
        for name in names:
            found[name] = None if name in found and found[name] is not pair else pair
    return found


def _first_whole_list(files: list[Path],
                      by_name: dict[str, Pair | None]) -> tuple[Path, list[Pair]]:
    """The first of a split's lists whose every name is one file of the set, and its pairs;
    an error naming the names missing from the first list where none is whole."""
    first = None
    for path in files:
        try:
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as err:
            raise VisionsuiteError(f"{path}: unreadable list ({err})") from None
        stems = [file_stem(Path(name)) for name in names]  # names, never opened as paths
        missing = [name for name, stem in zip(names, stems) if by_name.get(stem) is None]
        if names and not missing:
            return path, [by_name[stem] for stem in stems]
        first = first or (path, names, missing)
    path, names, missing = first
    if not names:
        raise VisionsuiteError(f"{path}: the list names no files")
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    raise VisionsuiteError(f"{path}: {len(missing)} of its {len(names)} names are no file of "
                           f"the set, or name several ({shown})")
