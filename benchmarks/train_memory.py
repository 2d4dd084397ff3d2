"""RAM that training's input pipeline holds beside the decoded dataset, and its speed.

Training keeps the decoded images in RAM (core/data.py) and gathers each batch from them
inside tf.data. Three ways to hand those arrays to tf.data, each in a fresh process (RSS
only grows within one), on random segmentation-like data (N images and masks, uint8):

- visionsuite: make_dataset as it ships: a tensor that shares the arrays' memory
  (core.data.shared_tensor) and tf.data's default graph rewrites off;
- tf.constant: the same pipeline with tf.constant's copies and the default rewrites, as
  visionsuite had it before;
- from_tensor_slices: the textbook tf.data input (Dataset.from_tensor_slices, shuffle,
  batch, the same augmentation).

For each: RSS above the arrays while the dataset is made and a tiny model fits 2 epochs of
--steps batches (peak and after), and the seconds to draw --steps batches (crop, flips,
quarter turns) without a model, median of 3.

    python benchmarks/train_memory.py [--images 2000] [--size 256] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("visionsuite", "tf.constant", "from_tensor_slices")
GIB = 2**30


def rss() -> float:
    """Resident memory now, GiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / GIB


def peak_rss() -> float:
    """The process's largest resident memory so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def dataset(variant: str, images, masks, config):
    """The training dataset of `variant` over the arrays."""
    import tensorflow as tf

    from visionsuite.core import data
    from visionsuite.core.augment import make_augment

    augment = make_augment(config.augment, crop_size=config.data.image_size)
    batch = config.train.batch_size
    if variant == "from_tensor_slices":
        plain = tf.data.Dataset.from_tensor_slices((images, masks)).shuffle(len(images))
        plain = plain.batch(batch, drop_remainder=True)
        seed = tf.constant([0, 1], tf.int64)  # one for all batches: the same work, timed
        plain = plain.map(lambda x, y: augment(x, y, seed=seed), num_parallel_calls=2)
        return plain.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32))).prefetch(2)
    if variant == "tf.constant":  # the pipeline before shared tensors, rewrites on
        data.shared_tensor = tf.constant
        with_options = tf.data.Dataset.with_options

        def with_rewrites(self, options, name=None):
            options.experimental_optimization.apply_default_optimizations = True
            return with_options(self, options, name)

        tf.data.Dataset.with_options = with_rewrites
    return data.make_dataset(images, masks, batch, training=True, augment_fn=augment,
                             spatial_targets=True)


def measure(variant: str, count: int, size: int, steps: int) -> dict:
    """RSS and batch times of `variant`, in this process."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from visionsuite.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import numpy as np

    from visionsuite.config import load_config
    from visionsuite.core.data import aligned_empty

    config = load_config("segment", overrides={"data.path": "unused"})
    rng = np.random.default_rng(0)
    # as pad_stack writes them (aligned); a plain np.stack elsewhere
    make = aligned_empty if variant == "visionsuite" else np.empty
    images, masks = make((count, size, size, 3), np.uint8), make((count, size, size), np.uint8)
    images[...] = rng.integers(0, 256, images.shape, np.uint8)
    masks[...] = rng.integers(0, 2, masks.shape, np.uint8)
    base = rss()
    train = dataset(variant, images, masks, config)
    made = rss() - base
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in train.take(steps):
            pass
        seconds.append(time.perf_counter() - started)
    crop = config.data.image_size
    inputs = keras.Input((crop, crop, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same",
                                                    activation="softmax")(inputs))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(train.repeat(), epochs=2, steps_per_epoch=steps, verbose=0)
    return {"variant": variant, "arrays_gib": round((images.nbytes + masks.nbytes) / GIB, 3),
            "made_gib": round(made, 3), "peak_gib": round(peak_rss() - base, 3),
            "after_fit_gib": round(rss() - base, 3),
            "batches_s": round(statistics.median(seconds), 3)}


def in_process(variant: str, args) -> dict:
    """measure() in a fresh Python."""
    done = subprocess.run([sys.executable, __file__, "--worker", variant, "--images",
                           str(args.images), "--size", str(args.size), "--steps",
                           str(args.steps)], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--output", default="benchmarks/results/train_memory.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.images, args.size, args.steps)))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from visionsuite.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # common imports it: its start-up notices off the table
    from common import machine_facts
    from visionsuite.core.files import write_json
    from visionsuite.core.report import table

    rows = [in_process(variant, args) for variant in VARIANTS]
    print(f"\nRAM above the arrays, GiB ({args.images} images and masks of {args.size}x"
          f"{args.size}), and seconds for {args.steps} augmented batches\n" + table(rows))
    write_json(args.output, {**machine_facts(), "images": args.images, "size": args.size,
                             "steps": args.steps, "rows": rows})
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
