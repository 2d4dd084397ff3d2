"""The Cell Tracking Challenge's layout (celltrackingchallenge.net: Fluo-N2DH-GOWT1,
PhC-C2DH-U373, DIC-C2DH-HeLa, ...), as its training archives unpack:

    Fluo-N2DH-GOWT1/01/t000.tif ...      a time-lapse sequence's frames (t0000.tif in longer)
    Fluo-N2DH-GOWT1/01_GT/SEG/man_seg000.tif   the gold segmentation of some of its frames
    Fluo-N2DH-GOWT1/01_GT/TRA/           tracking markers: no segmentation, not read
    Fluo-N2DH-GOWT1/01_ST/SEG/           silver truth (computed, every frame): read only for a
                                         sequence without gold segmentation
    Fluo-N2DH-GOWT1/02/ ...

A segmentation is an instance mask: each cell its own number, 0 the background; the frames
without one are left out and counted. 3D sets' annotations of single slices of a frame
(man_seg_000_012.tif: frame 0, slice 12) are left out and counted; a whole frame's
(man_seg000.tif, a stack) pairs with the frame's stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from visionsuite.core.files import inside, sub_folders
from visionsuite.errors import VisionsuiteError

SEQUENCE = re.compile(r"\d{2,}")
FRAME = re.compile(r"t(\d+)", re.IGNORECASE)
FRAME_MASK = re.compile(r"man_seg(\d+)", re.IGNORECASE)
SLICE_MASK = re.compile(r"man_seg_\d+_\d+", re.IGNORECASE)
TIFF = (".tif", ".tiff")


@dataclass
class CtcSet:
    pairs: list[tuple[Path, Path]]  # (frame, its segmentation), sequence after sequence
    truth: dict[str, str] = field(default_factory=dict)  # sequence -> "GT" or "ST"
    unlabelled: int = 0  # frames without a segmentation
    slice_masks: int = 0  # annotations of one slice of a 3D frame, not read


def ctc_sequences(root: Path) -> list[Path]:
    """The sequence folders of a Cell Tracking Challenge set: numbered folders (01, 02) with
    a segmentation folder beside them (01_GT/SEG/ or 01_ST/SEG/); [] where there are none."""
    return [folder for folder in sub_folders(root) if SEQUENCE.fullmatch(folder.name)
            and any((root / f"{folder.name}_{kind}" / "SEG").is_dir() for kind in ("GT", "ST"))]


def read_ctc(root: Path, sequences: list[Path]) -> CtcSet:
    """Each sequence's frames with their segmentation (gold, else silver): a segmentation of
    no frame of its sequence is an error naming it."""
    found = CtcSet([])
    for sequence in sequences:
        kind = "GT" if (root / f"{sequence.name}_GT" / "SEG").is_dir() else "ST"
        folder = inside(root, f"{sequence.name}_{kind}/SEG")
        frames = {int(match[1]): path for path in sorted(sequence.iterdir())
                  if path.suffix.lower() in TIFF and (match := FRAME.fullmatch(path.stem))}
        masks = 0
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in TIFF:
                continue
            if SLICE_MASK.fullmatch(path.stem):
                found.slice_masks += 1
                continue
            match = FRAME_MASK.fullmatch(path.stem)
            if match is None:
                continue
            if int(match[1]) not in frames:
                raise VisionsuiteError(f"{path}: segments frame {match[1]}, which is not in "
                                       f"{sequence}")
            found.pairs.append((frames[int(match[1])], path))
            masks += 1
        found.truth[sequence.name] = kind
        found.unlabelled += len(frames) - masks
    if not found.pairs:
        raise VisionsuiteError(f"{root}: its SEG folders hold no man_seg*.tif of a whole "
                               "frame")
    return found
