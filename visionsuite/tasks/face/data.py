"""Face datasets: one folder per identity, train and held-out identities.

    root/train/<person>/*.jpg      identities the embedder learns
    root/val/<person>/*.jpg        other people: verification, identification, the threshold
                                   (`valid`, `validation`, `test` or `testing` also name
                                   this folder, and `training` the train one, in any case)

Without a held-out folder, a seeded `data.val_fraction` of the identities (never of one
person's images) is held out: verification must be measured on people the model never saw.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from visionsuite.core.files import TRAIN_FOLDER_NAMES, VAL_FOLDER_NAMES, named_folder
from visionsuite.errors import VisionsuiteError

@dataclass
class IdentityIndex:
    root: Path
    splits: dict[str, list[tuple[Path, int]]]  # split -> (file, identity index in that split)
    names: dict[str, list[str]]  # split -> identity names
    folders: dict[str, Path]  # split -> the folder its identity folders are in
    odd_files: list[Path] = field(default_factory=list)
    held_out_by_fraction: bool = False

    def single_image_identities(self, split: str) -> list[str]:
        counts: dict[int, int] = {}
        for _, identity in self.splits[split]:
            counts[identity] = counts.get(identity, 0) + 1
        return [self.names[split][i] for i, n in sorted(counts.items()) if n == 1]


def index_identities(root: str | Path, val_fraction: float = 0.2, seed: int = 0,
                     train: bool = True) -> IdentityIndex:
    from visionsuite.tasks.classify import scan_class_folders

    root = Path(root)
    if not root.is_dir():
        raise VisionsuiteError(f"{root}: dataset folder not found" if not root.exists()
                               else f"{root}: expected a folder of identity folders, got a file")
    held_dir = named_folder(root, VAL_FOLDER_NAMES)
    train_dir = named_folder(root, TRAIN_FOLDER_NAMES)
    odd: list[Path] = []
    if held_dir is not None and (train_dir is not None or not train):
        held, held_names = scan_class_folders(root, held_dir, None, odd, kind="person")
        splits, names = {"val": held}, {"val": held_names}
        if train_dir is not None and train:
            splits["train"], names["train"] = scan_class_folders(root, train_dir, None, odd,
                                                                   kind="person")
            shared = sorted(set(names["train"]) & set(held_names))
            if shared:
                print(f"warning: {root}: identities in both train and {held_dir.name}: "
                      f"{', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''}; "
                      "verification on them is not on unseen people", file=sys.stderr)
        return IdentityIndex(root, splits, names, {"train": train_dir, "val": held_dir}, odd)
    folder = train_dir or root
    items, identities = scan_class_folders(root, folder, None, odd, kind="person")
    return _hold_out_identities(root, folder, items, identities, val_fraction, seed, odd)


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
    count = max(2, round(len(identities) * fraction))
    if len(identities) - count < 2:
        raise VisionsuiteError(f"{root}: {len(identities)} identities are too few to hold "
                               f"{count} out for verification and train on the rest")
    held = sorted(order[:count])
    splits, names = {}, {}
    for split, chosen in (("train", sorted(order[count:])), ("val", held)):
        remap = {old: new for new, old in enumerate(chosen)}
        splits[split] = [(path, remap[i]) for path, i in items if i in remap]
        names[split] = [identities[i] for i in chosen]
    return IdentityIndex(Path(root), splits, names, {"train": folder, "val": folder}, odd,
                         held_out_by_fraction=True)
