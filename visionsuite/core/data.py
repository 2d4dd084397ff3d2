"""Task-agnostic data pipeline: parallel decoding into a RAM cache, then tf.data batches.

Images are decoded once, by a thread pool (Pillow releases the GIL while it decodes), resized and
kept in memory as uint8; each epoch then costs only shuffling, augmentation and batching inside
tf.data, which runs in parallel with training. Unreadable files are warned about, skipped and
counted rather than stopping the run.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.core.images import (UnreadableImage, bit_depth_window, deep_maximum,
                                     inspect_image, read_image)
from visionsuite.core.progress import parts_shown, progress
from visionsuite.errors import VisionsuiteError


@dataclass
class DecodedImages:
    images: np.ndarray  # (N, S, S, C) uint8
    kept: np.ndarray  # indices into the input path list that decoded
    skipped: list[str] = field(default_factory=list)  # one message per unreadable file


def load_in_parallel(load, items: list, workers: int = 0, desc: str = "decoding",
                     warn: str | None = None) -> tuple[list, list[str]]:
    """`load(item)` for every item on a thread pool (Pillow releases the GIL while it decodes),
    with a progress bar. Returns the results in order, None where the item raised
    UnreadableImage, and those messages; with `warn`, each is also printed as
    "warning: MESSAGE; WARN"."""
    bar = progress(None, total=len(items), desc=desc)

    def attempt(item):
        with parts_shown(bar):  # an item of many slices shows how far it has got
            try:
                return load(item), None
            except UnreadableImage as err:
                return None, str(err)

    with bar, ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        outcomes = []
        for outcome in pool.map(attempt, items):
            outcomes.append(outcome)
            bar.update()
    messages = [message for _, message in outcomes if message]
    if warn:
        for message in messages:
            print(f"warning: {message}; {warn}", file=sys.stderr)
    return [result for result, _ in outcomes], messages


# The uint8 cache, which training's tensors share (shared_tensor), and as much again as room
# for TensorFlow (0.6 GiB once imported), the model and the batches in flight.
CACHE_COPIES = 2

# TensorFlow's kernels abort the process (a failed check, not an exception) on a tensor whose
# memory does not start on this boundary (EIGEN_MAX_ALIGN_BYTES).
TF_ALIGNMENT = 64


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose memory starts on a TF_ALIGNMENT boundary, so
    that a tensor can share it (shared_tensor) rather than copy it."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(size + TF_ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % TF_ALIGNMENT
    return buffer[start:start + size].view(dtype).reshape(shape)


def shared_tensor(array: np.ndarray):
    """A tensor over `array`'s own memory (through DLPack, no copy), `array` made read-only
    so that it cannot change under the tensor (tf.constant would copy a dataset's images).
    An array that is not C-contiguous, aligned (aligned_empty) and writeable is first copied
    once into one that is."""
    import tensorflow as tf

    array = np.asarray(array)
    if not (array.flags.c_contiguous and array.flags.writeable
            and array.ctypes.data % TF_ALIGNMENT == 0):
        copy = aligned_empty(array.shape, array.dtype)
        copy[...] = array
        array = copy
    tensor = tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    array.flags.writeable = False
    return tensor


def available_memory() -> int | None:
    """Bytes of RAM a new allocation can have (Linux: MemAvailable, less where a container's
    cgroup limit leaves less), None where unknown."""
    found = []
    try:
        with open("/proc/meminfo") as meminfo:
            found += [int(line.split()[1]) * 1024 for line in meminfo
                      if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    for limit, used in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            found.append(int(Path(limit).read_text()) - int(Path(used).read_text()))
        except (OSError, ValueError):  # absent, or "max": no limit
            continue
    return min(found) if found else None


def check_cache_fits(root, count: int, size: int, channels: int) -> None:
    """A one-line error before decoding when `count` images of size x size x channels would
    not fit in RAM: decoding would otherwise run for minutes and end in the kernel's OOM kill."""
    check_fits_in_memory(root, CACHE_COPIES * count * size * size * channels,
                         f"{count} images at {size}x{size}x{channels}",
                         "lower data.image_size or train on a subset")


def check_fits_in_memory(root, needed: int, what: str, advice: str) -> None:
    """The error of check_cache_fits for `needed` bytes of `what`, with `advice`."""
    available = available_memory()
    if available is not None and needed > available:
        raise VisionsuiteError(
            f"{root}: {what} need about {needed / 2**30:.1f} GiB of RAM (decoded once, kept "
            f"in memory), and {available / 2**30:.1f} GiB are available; {advice}")


def decode_images(
    paths: list[Path], size: int, channels: int, workers: int = 0, desc: str = "decoding",
    window: list[float] | None = None,
) -> DecodedImages:
    """Decode and resize `paths` in parallel; unreadable files are warned about and left out.
    `window` ([center, width], data.window): the intensities of deep images read to 0..255."""
    images = aligned_empty((len(paths), size, size, channels), np.uint8)  # see make_dataset

    def load(index: int) -> bool:
        images[index] = read_image(paths[index], size, channels, window)
        return True

    results, skipped = load_in_parallel(load, list(range(len(paths))), workers, desc, "skipped")
    kept = np.array([i for i, ok in enumerate(results) if ok], np.int64)
    for slot, index in enumerate(kept):  # the decoded ones moved up, in place: still aligned
        if slot != index:
            images[slot] = images[index]
    return DecodedImages(images[:len(kept)], kept, skipped)


def measured_window(files: list[Path], workers: int = 0) -> tuple[list[float], str] | None:
    """data.window for a new run on 16-bit images: the bit_depth_window of the largest value
    in `files`, and a line saying how they are read; None where they hold no 16-bit image or
    any is DICOM or NIfTI (whose files carry windows of their own). Files that cannot be read
    are left to decoding to report."""
    from visionsuite.core.medical import is_medical_file

    if any(path.is_dir() or is_medical_file(path) for path in files):
        return None
    found, _ = load_in_parallel(deep_maximum, files, workers, "measuring bit depth")
    found = [value for value in found if value is not None]
    if not found:
        return None
    window = bit_depth_window(max(found))
    top = int(window[1])
    return window, (f"16-bit images with values up to {max(found)}: read as "
                    f"{top.bit_length()}-bit, 0..{top} to 0..255 (data.window={window})")


def window_of_bit_depth(files: list[Path], config) -> None:
    """A new run on 16-bit images reads them from the range of its dataset's bit depth (a
    12-bit camera's 0..4095 read from 0..65535 would keep 16 grey levels): data.window, kept
    in config.yaml and inference.json for evaluate, export and prediction (measured_window).
    Measured on every split, so that the folds of a cross-validation read alike."""
    measured = measured_window(files, config.data.workers)
    if measured is not None:
        config.data.window, note = measured
        print(f"data: {note}, kept in config.yaml", file=sys.stderr)


def bit_depth_check(files: list[Path], modes=None) -> tuple[list[float] | None, list[str]]:
    """How a new run reads the 16-bit images among `files`, for data check: the window
    (measured_window; None for none) and the line that says so. `modes`: the image modes data
    check counted, where it did; none of them 16-bit, nothing is measured."""
    from visionsuite.core.images import DEEP_COLOUR_MODES, DEEP_INTEGER_MODES

    if modes is not None and not any(mode in DEEP_INTEGER_MODES + DEEP_COLOUR_MODES
                                     for mode in modes):
        return None, []
    measured = measured_window(files)
    if measured is None:
        return None, []
    return measured[0], [measured[1] + " by a new run; set data.window to read another range"]


def inspect_images(paths: list[Path], workers: int = 0):
    """[((width, height), mode) or None per path], and the messages of the unreadable ones."""
    return load_in_parallel(inspect_image, paths, workers, desc="checking")


def make_dataset(
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    augment_fn=None,
    target_fn=None,
    repeat: int = 1,
    spatial_targets: bool = False,
    index_batches=None,
    labelled_flags: bool = False,
):
    """A tf.data pipeline over in-memory arrays: shuffle, batch, augment in parallel, prefetch.

    Indices are shuffled and batched, and each batch is gathered from the arrays in one op (as
    Keras does for NumPy input): per-image work in tf.data costs more than the gather. The
    arrays are not copied: tensors share their memory, and they are read-only from then on
    (shared_tensor). With `repeat`, each image appears that many times an epoch
    (segmentation: several random crops of each image); with `spatial_targets` (masks),
    augment_fn transforms images and targets together. augment_fn gets each batch's seed
    (`seed=`) from a seeded sequence, and batches come out in order, so that the same `seed`
    gives the same epochs. `index_batches` (a task's sampler: face's identity_batches)
    replaces shuffling and batching: a generator of one epoch's batches of indices, called
    once an epoch. With `labelled_flags` (segment's labelled_crop_batches), an index -(i + 1)
    is image i, its crop to be centred on its labels (augment_fn's `on_labels`).
    """
    import tensorflow as tf

    images_t, targets_t = shared_tensor(images), shared_tensor(targets)
    count = len(images) * repeat
    if index_batches is not None:
        dataset = tf.data.Dataset.from_generator(
            index_batches, output_signature=tf.TensorSpec([None], tf.int64))
    else:
        dataset = tf.data.Dataset.range(count)
        if training:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=training and count >= batch_size)
    augmenting = training and augment_fn is not None
    if augmenting:  # one seed per batch, the same sequence in every run with this seed
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds)

    def prepare(indices, augment_seed=None):
        marks = {}  # the crops to be centred on labels, where the indices mark them
        if labelled_flags:
            marks["on_labels"] = indices < 0
            indices = tf.where(indices < 0, -indices - 1, indices)
        indices = indices % len(images)
        x, y = tf.gather(images_t, indices), tf.gather(targets_t, indices)
        if augmenting:  # on the stored values: crops cast fewer pixels than whole images
            if spatial_targets:  # masks cast after the crop too: 0.6 ms less a segment batch
                x, y = augment_fn(x, y, seed=augment_seed, **marks)
                y = tf.cast(y, tf.int32)
            else:
                x = augment_fn(x, seed=augment_seed)
        x = tf.cast(x, tf.float32)
        return x, (target_fn(y) if target_fn is not None else y)

    dataset = dataset.map(prepare, num_parallel_calls=2, deterministic=True)
    options = tf.data.Options()
    # tf.data's default graph rewrites write the tensors its functions capture (the whole
    # dataset) into a graph of constants: one more copy of it in RAM, for no speed here.
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    options.threading.max_intra_op_parallelism = 1
    options.threading.private_threadpool_size = 2
    return dataset.with_options(options).prefetch(2)
