"""What the benchmarks share: epoch timers, and plain Keras epochs interleaved with ours."""

from __future__ import annotations

import time

import keras
import numpy as np


class EpochTimer(keras.callbacks.Callback):
    """Wall and CPU time of each epoch, measured after every other callback of that epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)
        self.cpu_seconds.append(time.process_time() - self.cpu_started)


class InterleavedPlainEpoch(keras.callbacks.Callback):
    """After each visionsuite epoch, one epoch of the plain model.fit: the two alternate, so
    that the slow and fast spells of this shared machine fall on both alike."""

    def __init__(self, model, train, val, batch_size, timer):
        super().__init__()
        self.plain, self.train, self.val = model, train, val
        self.batch_size, self.timer = batch_size, timer

    def on_epoch_end(self, epoch, logs=None):
        self.plain.fit(*self.train, batch_size=self.batch_size, epochs=1, verbose=0,
                       validation_data=self.val, callbacks=[self.timer])


def rates(timer: EpochTimer, images_per_epoch: int) -> tuple[float, float]:
    """Images per wall second and per CPU second, from the median epoch after the first
    (which traces and compiles); medians are not dragged by the machine's slow spells."""
    return (images_per_epoch / float(np.median(timer.seconds[1:])),
            images_per_epoch / float(np.median(timer.cpu_seconds[1:])))
