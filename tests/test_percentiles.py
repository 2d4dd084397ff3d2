"""core/percentiles.py: np.percentile's window bounds to the bit, from part of the values."""

import numpy as np
import pytest

from visionsuite.core import percentiles as module
from visionsuite.core.percentiles import percentiles


def _volumes(rng):
    """Values as volumes hold them: noise, a CT's air of -1024 (ties at the low percentile),
    whole numbers (ties everywhere), values sorted along the sample's stride, a constant."""
    ct = rng.normal(40, 300, (40, 64, 64)).astype(np.float32)
    ct[:, :20] = -1024
    yield "noise", rng.normal(0, 1, (40, 64, 64)).astype(np.float32)
    yield "ct", ct
    yield "whole numbers", rng.integers(0, 50, (40, 64, 64)).astype(np.float32)
    yield "sorted", np.sort(rng.gamma(2, 100, 163_841)).astype(np.float32)
    yield "skewed", rng.lognormal(0, 3, (17, 97, 101)).astype(np.float32)
    yield "constant", np.full((30, 70, 70), 7.5, np.float32)


@pytest.mark.parametrize("tails", [(0.5, 99.5), (1, 99), (2.5, 97.5), (5, 95)])
def test_percentiles_are_numpys_to_the_bit(monkeypatch, tails):
    monkeypatch.setattr(module, "SMALLEST", 1000)
    monkeypatch.setattr(module, "SAMPLE", 4096)
    rng, real, sizes = np.random.default_rng(3), np.percentile, []
    monkeypatch.setattr(np, "percentile", lambda a, q: sizes.append(a.size) or real(a, q))
    for name, values in _volumes(rng):
        expected = tuple(float(v) for v in real(values, tails))
        sizes.clear()
        assert percentiles(values, tails) == expected, name
        assert max(sizes) < values.size / 10, name  # the sample's, not numpy's of all


def test_a_misleading_sample_and_values_not_finite_fall_back_to_numpy(monkeypatch):
    """The sampled values (every 100th) spread from -1 to 1, the others lie in 5..6: the
    sample's bounds fall inside the tails, and numpy answers; so it does for NaN and
    infinities (its NaN included)."""
    monkeypatch.setattr(module, "SMALLEST", 1000)
    monkeypatch.setattr(module, "SAMPLE", 100)
    values = np.linspace(5, 6, 10_000, dtype=np.float32)
    values[::100] = np.linspace(-1, 1, 100)
    called = []
    real = np.percentile
    monkeypatch.setattr(np, "percentile", lambda *args: called.append(1) or real(*args))
    assert percentiles(values, (0.5, 99.5)) == tuple(real(values, (0.5, 99.5)))
    assert len(called) == 2  # the sample's bounds, then numpy's answer
    values[3] = np.nan
    assert np.isnan(percentiles(values, (0.5, 99.5))).all()
    values[3] = np.inf
    assert percentiles(values, (0.5, 99.5)) == tuple(real(values, (0.5, 99.5)))


def test_a_volume_windowed_from_its_percentiles_is_windowed_as_before(monkeypatch):
    """The window's bounds are numpy's float64 scalars, as np.percentile's were: float32
    values go through it in float64 arithmetic (with Python floats, float32's would round
    some pixels the other way)."""
    from visionsuite.core import medical

    monkeypatch.setattr(module, "SMALLEST", 1000)
    values = np.random.default_rng(5).normal(0, 300, (20, 64, 64)).astype(np.float32)
    low, high = np.percentile(values, medical.PERCENTILES)
    expected = np.clip(np.round((values - low) * (255.0 / (high - low))), 0, 255)
    windowed = medical._windowed(values, medical.Slices(values, None, "NIfTI"), None)
    assert np.array_equal(windowed, expected.astype(np.uint8))
    assert all(type(bound) is np.float64 for bound in percentiles(values, (0.5, 99.5)))
