"""Images of their own channels: a file per channel (nnU-Net's case_0000, BraTS' _flair, ...),
4-D NIfTI volumes and multi-channel TIFFs, for training and for `segment`'s inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.arrays import is_array_file
from visionsuite.core.images import UnreadableImage, read_image_slices, tiff_channels
from visionsuite.core.medical import file_stem, is_volume, read_header
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.folders import CASE_LABEL_ENDINGS, CHANNEL_FILE, case_before
from visionsuite.tasks.segment.pairs import Pair, PairIndex


def image_channels(pairs: list[Pair]) -> int | None:
    """The channels of images that carry their own (a file per channel as nnU-Net stores
    them, the volumes of 4-D NIfTI files, the channels of multi-channel TIFFs and of arrays),
    else None: data.channels decides (grey or RGB). Images of different channel counts are an
    error naming two of them."""
    first: dict[int, Path] = {}
    for pair in pairs:
        count = 1 + len(pair.channels) if pair.channels else _own_channels(pair.image)
        if count is None:
            continue  # decoding reports it
        first.setdefault(count, pair.image)
        if len(first) > 1:
            (one, a), (other, b) = sorted(first.items())[:2]
            raise VisionsuiteError(f"{b}: {other} channels, but {a} has {one}; every image of "
                                   "a dataset needs as many")
    count = next(iter(first), 1)
    return count if count > 1 else None


def channel_names(index: PairIndex, count: int) -> list[str]:
    """The names of `count` image channels: dataset.json's, else 'channel 0', ..."""
    names = index.channel_names
    return names if names and len(names) == count else [f"channel {i}" for i in range(count)]


def read_channel_files(image: Path, others: tuple[Path, ...], channels: int,
                       window: list[float] | None) -> list[np.ndarray]:
    """The slices of `image`; of an image stored a channel per file (`image` its first,
    `others` the rest, nnU-Net's case_0000, case_0001, ...), each file's slices side by
    side, each file windowed on its own (MRI modalities share no intensity scale)."""
    if not others:
        return read_image_slices(image, channels, window)
    files = (image,) + tuple(others)
    if len(files) != channels:
        raise VisionsuiteError(f"{image}: {len(files)} channel files, but the model takes "
                               f"{channels} channels")
    parts = [read_image_slices(path, 1, window) for path in files]
    for path, part in zip(files[1:], parts[1:]):
        if [p.shape for p in part] != [p.shape for p in parts[0]]:
            raise VisionsuiteError(f"{path}: its size or slices differ from {image.name}, the "
                                   "same image's first channel")
    return [np.concatenate(slices, axis=-1) for slices in zip(*parts)]


@dataclass(frozen=True)
class ChannelFiles:
    """One image stored a channel per file (multi-modal MRI), in channel order."""
    case: str  # masks are named after it
    paths: tuple[Path, ...]


def channel_groups(inputs: list, names: list[str]) -> tuple[list, list[Path]]:
    """The inputs of a model of multi-channel images (`names`, one a channel) and the label
    files left out: the channel files of one case in one folder (nnU-Net's case_0000.nii.gz,
    case_0001.nii.gz; BraTS's <case>_flair.nii.gz, <case>_t1.nii.gz, ...) as ChannelFiles;
    a 4-D NIfTI of as many volumes, or an array file of as many channels, as it is. A
    case's label file (<case>_seg.nii.gz) is left out. Anything else would show the model
    one channel for all: a one-line error naming the file."""
    count, cases, found, labels = len(names), {}, [], []
    wanted = f"{count} channels ({', '.join(names)})"
    for item in inputs:
        case = _channel_of(item, names) if isinstance(item, Path) else None
        if case:
            cases.setdefault((item.parent, case[0]), {})[case[1]] = item
        elif isinstance(item, Path) and _label_of(item):
            labels.append(item)
        elif (own := _own_channels(item)) in (count, None):
            found.append(item)  # a 4-D NIfTI, an array (BraTS 2020's .h5) or a TIFF of them
        else:
            shown = item.paths[0].parent if hasattr(item, "paths") else item
            raise VisionsuiteError(f"{shown}: {_channels(own)}, but the model takes {wanted}: "
                                   "give each case's files of every channel, 4-D NIfTI "
                                   f"volumes, arrays or multi-channel TIFFs of {count}")
    for (folder, case), files in sorted(cases.items()):
        if sorted(files) != list(range(count)):
            raise VisionsuiteError(f"{folder}: case {case} has the channel files of "
                                   f"{', '.join(names[i] for i in sorted(files))}; the model "
                                   f"takes {wanted}")
        found.append(ChannelFiles(case, tuple(files[index] for index in range(count))))
    left_out = [path for path in labels if (path.parent, _label_of(path)) in cases]
    if len(left_out) < len(labels):
        raise VisionsuiteError(f"{sorted(set(labels) - set(left_out))[0]}: labels without the "
                               "channel files of their case")
    return found, left_out


def _tiff_channels_or_none(path: Path) -> int | None:
    """tiff_channels, None for a file that cannot be read (reading it reports it)."""
    try:
        return tiff_channels(path)
    except UnreadableImage:
        return None


def _channel_of(path: Path, names: list[str]) -> tuple[str, int] | None:
    """(case, channel index) of a file of one channel: nnU-Net's case_0001 (1), or
    <case>_<name> or <case>-<name> for the channel `names` (BraTS's _flair, -t1c)."""
    stem = file_stem(path)
    match = CHANNEL_FILE.fullmatch(stem)
    if match:
        return (match["case"], int(match["channel"])) if int(match["channel"]) < len(names) \
            else None
    return next(((case, index) for index, name in enumerate(names)
                 if (case := case_before(stem, name))), None)


def _label_of(path: Path) -> str | None:
    """The case of a case folder's label file (<case>_seg.nii.gz), else None."""
    stem = file_stem(path)
    return next((case for ending in CASE_LABEL_ENDINGS if (case := case_before(stem, ending))),
                None)


def _own_channels(item) -> int | None:
    """The channels an input holds by itself: a volume's or an array's from its header, a
    TIFF's, 1 for other files and for series folders; None where it cannot be read (reading
    it reports it)."""
    if not isinstance(item, Path):
        return 1
    if is_volume(item) or is_array_file(item):
        return _header_channels(item)
    return _tiff_channels_or_none(item)


def _channels(count: int) -> str:
    return "one channel" if count == 1 else f"{count} channels"


def _header_channels(path: Path) -> int | None:
    try:
        return read_header(path).channels
    except UnreadableImage:
        return None  # reading it reports it
