"""Face datasets: one folder per identity, train and held-out identities.

    root/train/<person>/*.jpg      identities the embedder learns
    root/val/<person>/*.jpg        other people: verification, identification, the threshold
                                   (`valid`, `validation`, `test` or `testing` also name
                                   this folder, and `training` the train one, in any case)

Without a held-out folder, a seeded `data.val_fraction` of the identities (never of one
person's images) is held out: verification must be measured on people the model never saw.

A folder of everyone's photos, without person folders, names each person in its file names,
before the last separator: the Yale faces as they come (`yalefaces/subject01.happy`), or
LFW-style `Aaron_Eckhart_0001.jpg`.

InsightFace's packs of face crops (`train.rec`, MXNet RecordIO: CASIA-WebFace, MS1M) are
unpacked, a folder per label, to a temporary folder that is removed when the process ends.

A list of each image's person, as CelebA ships its identities (`Anno/identity_CelebA.txt`,
lines `000001.jpg 2880`; at the dataset's top or one folder below, named identity...), names
the people instead: every image it lists, found below the root by its path or file name.

identity_batches deals the "PK" batches (people x photos each) that batch-hard triplet
training needs.
"""

from __future__ import annotations

import atexit
import functools
import random
import re
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.core.class_folders import scan_class_folders
from visionsuite.core.files import TRAIN_FOLDER_NAMES, named_folder, sub_folders, wrapper_content
from visionsuite.core.image_tables import find_image, image_lookup, natural_order, row_image
from visionsuite.core.images import IMAGE_EXTENSIONS, folder_image_files
from visionsuite.core.splits import Fold, held_out_names, no_test_split
from visionsuite.errors import VisionsuiteError

# A person's name, then a separator and the rest of a file's name (Yale's 'subject01.happy').
PERSON_IN_NAME = re.compile(r"(?P<person>.+)[._\- ][^._\- ]+")
# Single-image identities named in a warning or a report: LFW holds 4069 of its 5749 people.
SINGLES_SHOWN = 10
IDENTITY_LIST = re.compile(r"identit(y|ies)\w*\.(txt|csv)", re.IGNORECASE)
PACKED_FACES = "train.rec"  # InsightFace's RecordIO pack of face crops


@dataclass
class IdentityIndex:
    root: Path
    splits: dict[str, list[tuple[Path, int]]]  # split -> (file, identity index in that split)
    names: dict[str, list[str]]  # split -> identity names
    folders: dict[str, Path]  # split -> the folder its identity folders are in
    odd_files: list[Path] = field(default_factory=list)
    held_out_by_fraction: bool = False
    named_by_file: bool = False  # people named in the file names of one folder, not folders
    listed_in: Path | None = None  # the list naming each image's person (CelebA's), if any
    packed_in: Path | None = None  # the RecordIO pack the images came out of, if any

    def single_image_identities(self, split: str) -> list[str]:
        counts: dict[int, int] = {}
        for _, identity in self.splits[split]:
            counts[identity] = counts.get(identity, 0) + 1
        return [self.names[split][i] for i, n in sorted(counts.items()) if n == 1]


def named_few(people: list[str], shown: int = SINGLES_SHOWN) -> str:
    """The first `shown` of `people`, and how many more there are."""
    more = f" and {len(people) - shown} more" if len(people) > shown else ""
    return ", ".join(people[:shown]) + more


def index_identities(root: str | Path, val_fraction: float = 0.2, seed: int = 0,
                     train: bool = True, held_out: str = "val",
                     everyone_trains: bool = False) -> IdentityIndex:
    """The identities of `root`'s train and held-out splits (`held_out` "test": its test/
    folder, not its val/). `everyone_trains`: something else picks the epoch (data.val_pairs),
    so no people are held out of a set without a held-out folder."""
    root = Path(root)
    if not root.is_dir():
        raise VisionsuiteError(f"{root}: dataset folder not found" if not root.exists()
                               else f"{root}: expected a folder of identity folders, got a file")
    held_dir = named_folder(root, held_out_names(held_out))
    train_dir = named_folder(root, TRAIN_FOLDER_NAMES)
    if held_out == "test" and held_dir is None:
        raise no_test_split(root, "a test/ folder of identity folders")
    odd: list[Path] = []
    listed = identity_list(root)
    packed = root / PACKED_FACES
    # Kaggle's LFW: archive/lfw-deepfunneled/ beside LFW's lists as CSVs (pairs.csv, which
    # `evaluate --pairs` reads; people.csv ...), none of them a list of each image's person
    inner = wrapper_content(root, beside=(".csv",)) if listed is None \
        and not packed.is_file() and held_dir is None and train_dir is None else None
    if inner is not None:  # the folder an archive unpacked around the set
        return index_identities(inner, val_fraction, seed, train, held_out, everyone_trains)
    if (listed is not None or packed.is_file()) and held_dir is None:
        if listed is not None:
            items, people = people_by_list(root, listed)
        else:
            folder = unpacked_faces(packed, packed.stat().st_size, packed.stat().st_mtime_ns)
            items, people = scan_people(folder, folder, odd)
        index = IdentityIndex(root, {"train": items, "val": []}, {"train": people, "val": []},
                              {"train": root, "val": root}, odd) if everyone_trains \
            else _hold_out_identities(root, root, items, people, val_fraction, seed, odd)
        index.listed_in, index.packed_in = listed, None if listed else packed
        return index
    if held_dir is not None and (train_dir is not None or not train):
        held, held_names = scan_people(root, held_dir, odd)
        splits, names = {"val": held}, {"val": held_names}
        if train_dir is not None and train:
            splits["train"], names["train"] = scan_people(root, train_dir, odd)
            shared = sorted(set(names["train"]) & set(held_names))
            if shared:
                print(f"warning: {root}: identities in both train and {held_dir.name}: "
                      f"{', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''}; "
                      "verification on them is not on unseen people", file=sys.stderr)
        index = IdentityIndex(root, splits, names, {"train": train_dir, "val": held_dir}, odd)
    else:
        folder = train_dir or root
        items, identities = scan_people(root, folder, odd)
        index = IdentityIndex(root, {"train": items, "val": []},
                              {"train": list(identities), "val": []},
                              {"train": folder, "val": folder}, odd) if everyone_trains \
            else _hold_out_identities(root, folder, items, identities, val_fraction, seed, odd)
    index.named_by_file = any(_named_by_file(index.folders[split]) for split in index.splits)
    return index


def scan_people(root: Path, folder: Path, odd: list[Path]):
    """(file, identity index) of every image of `folder`, and the identities: its person
    folders, else the people its file names name (see people_by_file_name)."""
    if _named_by_file(folder):
        found = people_by_file_name(root, folder, odd)
        if found is not None:
            return found
    return scan_class_folders(root, folder, None, odd, kind="person")


def identity_list(root: Path) -> Path | None:
    """The file naming each image's person (IDENTITY_LIST) at the top of `root` or one folder
    below (CelebA's Anno/), if any; several are an error."""
    found = [path for folder in (root, *sub_folders(root)) for path in sorted(folder.iterdir())
             if path.is_file() and IDENTITY_LIST.fullmatch(path.name)]
    if len(found) > 1:
        raise VisionsuiteError(f"{root}: several lists of identities "
                               f"({', '.join(str(p.relative_to(root)) for p in found)}); "
                               "keep the one that names the people")
    return found[0] if found else None


def people_by_list(root: Path, listed: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(file, identity index) of every image a list names (lines `IMAGE PERSON`, or a CSV's
    rows of the two, a header line passed over), and the people in natural order. An image
    that is not there, or is listed as two people, is an error naming the line."""
    images = image_lookup(root)
    person_of: dict[Path, str] = {}
    for number, line in enumerate(listed.read_text(errors="replace").splitlines(), 1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) != 2:
            raise VisionsuiteError(f"{listed}:{number}: expected an image and its person, "
                                   f"got {line.strip()!r}")
        if number == 1 and Path(fields[0]).suffix.lower() not in IMAGE_EXTENSIONS \
                and find_image(root, fields[0], images) is None:
            continue  # a CSV's header: image_id,identity
        image = row_image(root, f"{listed}:{number}", fields[0], images)
        if person_of.setdefault(image, fields[1]) != fields[1]:
            raise VisionsuiteError(f"{listed}:{number}: {fields[0]} is listed as "
                                   f"{person_of[image]} and as {fields[1]}")
    if not person_of:
        raise VisionsuiteError(f"{listed}: lists no images")
    people = natural_order(set(person_of.values()))
    number_of = {person: index for index, person in enumerate(people)}
    return [(image, number_of[person]) for image, person in person_of.items()], people


@functools.lru_cache(maxsize=2)
def unpacked_faces(packed: Path, size: int, modified: int) -> Path:
    """The images of a RecordIO pack (core/recordio.py) written to a temporary folder of a
    folder per label, removed when the process ends; once per process for a file of that
    `size` and `modified` time."""
    from visionsuite.core.progress import progress
    from visionsuite.core.recordio import labelled_images

    # named so that a message about one of its faces points at the pack and the record
    folder = Path(tempfile.mkdtemp(prefix=f"visionsuite-{packed.name}-"))
    atexit.register(shutil.rmtree, folder, True)
    for number, label, image in progress(labelled_images(packed), desc=f"unpacking {packed.name}"):
        person = folder / str(label)
        person.mkdir(exist_ok=True)
        suffix = ".png" if image.startswith(b"\x89PNG") else ".jpg"
        (person / f"record{number}{suffix}").write_bytes(image)
    if not any(folder.iterdir()):
        raise VisionsuiteError(f"{packed}: holds no images")
    return folder


def _named_by_file(folder: Path) -> bool:
    return not sub_folders(folder)


def people_by_file_name(root: Path, folder: Path, odd: list[Path]):
    """The images of a folder without person folders, each the person's its name gives
    before the last separator ('subject01.happy', 'Aaron_Eckhart_0001.jpg'), or the person
    it names whole (Yale's 'subject01.gif' beside 'subject01.happy'); None where the names
    group no two people of two images or more."""
    others: list[Path] = []
    images = list(folder_image_files(root, folder, others))
    names = {path: path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name
             for path in images}
    found = {path: PERSON_IN_NAME.fullmatch(name) for path, name in names.items()}
    candidates = {match["person"] for match in found.values() if match}
    person_of = {path: names[path] if names[path] in candidates else
                 (found[path]["person"] if found[path] else None) for path in images}
    counts = Counter(person for person in person_of.values() if person is not None)
    people = sorted(counts)
    if len(people) < 2 or sum(n >= 2 for n in counts.values()) < 2:
        return None
    nameless = [path for path, person in person_of.items() if person is None]
    if nameless:
        named = next(path for path in images if person_of[path])
        raise VisionsuiteError(f"{nameless[0]}: its name names no person, as the other files' "
                               f"do ({named.name}: {person_of[named]})")
    odd += others
    index = {person: i for i, person in enumerate(people)}
    return [(path, index[person_of[path]]) for path in images], people


def _hold_out_identities(root, folder, items, identities, fraction, seed, odd) -> IdentityIndex:
    if fraction >= 1:  # EVERY_IMAGE: evaluation on another dataset, all of its people
        return IdentityIndex(Path(root), {"train": [], "val": items},
                             {"train": [], "val": list(identities)},
                             {"train": folder, "val": folder}, odd, held_out_by_fraction=True)
    if not 0 < fraction < 1:
        raise VisionsuiteError(f"{root}: no val/ or test/ folder of other people, and "
                               f"data.val_fraction={fraction} cannot hold some out")
    order = list(range(len(identities)))
    random.Random(seed).shuffle(order)
    # a Fold holds out every folds-th person of the seeded order: whole people, as ever
    held = order[fraction.fold::fraction.folds] if isinstance(fraction, Fold) \
        else order[:max(2, round(len(identities) * fraction))]
    if len(held) < 2 or len(identities) - len(held) < 2:
        raise VisionsuiteError(f"{root}: {len(identities)} identities are too few to hold "
                               f"{len(held)} out for verification and train on the rest"
                               + (f" (data.folds={fraction.folds})"
                                  if isinstance(fraction, Fold) else ""))
    splits, names = {}, {}
    for split, chosen in (("train", sorted(set(order) - set(held))), ("val", sorted(held))):
        remap = {old: new for new, old in enumerate(chosen)}
        splits[split] = [(path, remap[i]) for path, i in items if i in remap]
        names[split] = [identities[i] for i in chosen]
    return IdentityIndex(Path(root), splits, names, {"train": folder, "val": folder}, odd,
                         held_out_by_fraction=True)


def identity_batches(targets: np.ndarray, per_identity: int, batch_size: int, seed: int = 0):
    """A generator function of epochs of "PK" batches: batch_size // per_identity identities
    with per_identity images each, as batch-hard metric learning needs (random batches of a
    many-identity dataset hold few same-identity pairs). Each epoch deals every identity's
    images, shuffled, in groups of per_identity (an identity's last group is filled from its own
    images, so single-image identities give two augmented views of one photo), and batches the
    groups in random order; the last, partial batch is dropped. One seeded generator serves all
    epochs, so runs with the same seed see the same batches."""
    if per_identity < 2 or batch_size < per_identity:
        raise VisionsuiteError(f"images per identity must be >= 2 and <= batch_size "
                               f"({batch_size}), got {per_identity}")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(targets == identity) for identity in np.unique(targets)]
    groups_per_batch = batch_size // per_identity

    def epoch():
        groups = []
        for images in members:
            dealt = rng.permutation(images)
            dealt = np.resize(dealt, -(-len(dealt) // per_identity) * per_identity)
            groups += np.split(dealt, len(dealt) // per_identity)
        order = rng.permutation(len(groups))
        for start in range(0, len(order) - groups_per_batch + 1, groups_per_batch):
            yield np.concatenate([groups[i] for i in order[start:start + groups_per_batch]])

    return epoch
