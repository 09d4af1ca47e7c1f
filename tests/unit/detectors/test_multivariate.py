"""Multivariate detector: a joint shift the marginal CUSUMs cannot see, and no false alarms."""

from __future__ import annotations

import math
import pickle
import random
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from detectors import CUSUMDetector
from detectors.multivariate import MultivariateDetector, block_threshold, grid_levels


def pairs(rng: random.Random, n: int, rho: float) -> list[dict[str, float]]:
    """(x, y) standard normal marginals with correlation ``rho``, plus an unrelated z."""
    out = []
    c = math.sqrt(1.0 - rho * rho)
    for _ in range(n):
        a = rng.gauss(0.0, 1.0)
        out.append({"x": a, "y": rho * a + c * rng.gauss(0.0, 1.0), "z": rng.gauss(0.0, 1.0)})
    return out


def test_a_correlation_flip_is_caught_while_marginal_cusums_stay_quiet() -> None:
    rng = random.Random(7)
    data = pairs(rng, 4000, 0.8) + pairs(rng, 2000, -0.8)
    det = MultivariateDetector(target_arl0=1e6, warmup=1000, seed=3)
    hits = [(i, c) for i, v in enumerate(data) if (c := det.update(v, i))]
    assert hits, "the correlation flip at 4000 should be detected"
    fired_at = hits[0][1].tag
    assert isinstance(fired_at, int)
    assert 4000 <= fired_at < 4300
    assert hits[0][1].effect > 1.0  # a HALT-sized shift of the joint distribution
    # The marginals did not move: calibrated CUSUMs on x and y (same ARL0) stay quiet.
    for name in ("x", "y"):
        marginal = CUSUMDetector(target_arl0=1e6, warmup=1000, seed=1)
        changes = [marginal.update(v[name]) for v in data]
        assert changes == [None] * len(data), name


def test_a_mean_shift_along_the_diagonal_is_caught() -> None:
    """x and y both move by 0.5 sigma (each marginal a little, together a lot)."""
    rng = random.Random(9)
    data = pairs(rng, 3000, 0.5)
    for v in pairs(rng, 3000, 0.5):
        data.append({"x": v["x"] + 0.5, "y": v["y"] + 0.5, "z": v["z"]})
    det = MultivariateDetector(target_arl0=1e6, warmup=1000, seed=4)
    hits = [c.tag for i, v in enumerate(data) if (c := det.update(v, i))]
    assert len(hits) == 1
    assert isinstance(hits[0], int)
    assert 3000 <= hits[0] < 4500


def test_stationary_stream_raises_no_alarm() -> None:
    rng = random.Random(11)
    det = MultivariateDetector(target_arl0=1e6, warmup=1000, seed=5)
    data = pairs(rng, 30_000, 0.8)
    assert [i for i, v in enumerate(data) if det.update(v, i)] == []
    assert det.statistic < det.threshold
    assert det.features == ["x", "y", "z"]
    # every other tested vector joins the pool: 500 from the warm-up, then half of 29,000
    assert det.pooled == 500 + 29_000 // 2


def test_false_alarm_rate_is_near_the_target() -> None:
    """At a low target (one false alarm per 3,000 observations) a 60k stationary stream
    (about 55k observations under test, the rest warm-ups and confirmations) should raise
    about 18 (Poisson 95 % range 10-27)."""
    rng = random.Random(2)
    det = MultivariateDetector(target_arl0=3000, warmup=500, seed=2)
    alarms = sum(det.update(v) is not None for v in pairs(rng, 60_000, 0.5))
    assert 10 <= alarms <= 27


class Recording(MultivariateDetector):
    """Keeps every rank ``u`` the detector computes, and whether that vector was pooled."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[float] = []

    def _rank(self, cell: int) -> float:
        u = super()._rank(cell)
        self.seen.append(u)
        return u


def ranks(data: Any, seeds: int, n: int, warmup: int = 1000) -> np.ndarray:
    out: list[list[float]] = []
    for seed in range(seeds):
        rng = random.Random(100 + seed)
        det = Recording(target_arl0=1e12, warmup=warmup, seed=seed)
        for _ in range(warmup + n):
            det.update(data(rng))
        out.append(det.seen)
    return np.asarray(out)


def check_uniform_and_independent(u: np.ndarray, block: int = 50) -> None:
    assert abs(u.mean() - 0.5) < 0.01
    assert abs(u.var() * 12.0 - 1.0) < 0.05  # uniform: variance 1/12
    counts = np.histogram(u, bins=10, range=(0.0, 1.0))[0] / u.size
    assert np.all(np.abs(counts - 0.1) < 0.01)  # deciles: binomial sd ~0.2 %
    c = u - u.mean(axis=1, keepdims=True)
    assert abs((c[:, 1:] * c[:, :-1]).mean() / c.var()) < 0.03  # lag-1 autocorrelation ~ 0
    # the block statistics the CUSUM sums: N(0, 1)
    z = np.vectorize(NormalDist().inv_cdf)(u).reshape(u.shape[0], -1, block).sum(axis=2)
    z /= math.sqrt(block)
    assert abs(z.mean()) < 3.5 / math.sqrt(z.size)  # 3.5 standard errors
    assert 0.85 < z.var() < 1.15


def test_ranks_are_uniform_and_block_statistics_standard_normal() -> None:
    u = ranks(lambda rng: pairs(rng, 1, 0.8)[0], seeds=8, n=6000)
    assert u.shape == (8, 6000)
    check_uniform_and_independent(u)


def test_ranks_stay_uniform_for_discrete_and_skewed_features() -> None:
    """Ties (counts with atoms) are broken at random, so the ranks stay exactly uniform."""

    def skewed(rng: random.Random) -> dict[str, float]:
        a = rng.lognormvariate(0.0, 1.0)
        return {
            "latency": a,
            "tokens": float(int(rng.expovariate(0.5))),
            "flag": rng.random() < 0.1,
        }

    u = ranks(skewed, seeds=8, n=6000)
    check_uniform_and_independent(u)


def test_threshold_gives_the_target_on_standard_normal_blocks() -> None:
    """A one-sided CUSUM fed N(0, 1) blocks has mean run length ``target`` (2,000 runs)."""
    block, target, k = 50, 2500.0, 0.5
    h = block_threshold(block, target, k)
    rng = np.random.default_rng(12)
    runs, horizon = 2000, 40 * int(target / block)
    s = np.zeros(runs)
    length = np.full(runs, horizon)
    alive = np.ones(runs, dtype=bool)
    for t in range(horizon):
        s = np.maximum(0.0, s + rng.standard_normal(runs) - k)
        hit = alive & (s >= h)
        length[hit] = t + 1
        alive &= ~hit
        if not alive.any():
            break
    assert not alive.any()
    arl = float(length.mean()) * block
    assert 0.9 * target < arl < 1.1 * target  # se of the mean ~2.2 %


def test_state_round_trip_gives_identical_decisions_and_stays_small() -> None:
    rng = random.Random(4)
    data = pairs(rng, 2500, 0.8) + pairs(rng, 1500, -0.8)
    a = MultivariateDetector(target_arl0=1e5, warmup=1000, seed=8)
    for v in data[:2222]:
        a.update(v)
    blob = a.state()
    assert len(blob) <= 2048  # 3 features: 216 cells, the model's 9 weights
    b = MultivariateDetector.from_state(blob)
    out_a = [(a.update(v, i), a.statistic) for i, v in enumerate(data[2222:])]
    out_b = [(b.update(v, i), b.statistic) for i, v in enumerate(data[2222:])]
    assert out_a == out_b
    assert any(c is not None for c, _ in out_a)
    with pytest.raises(TypeError):
        MultivariateDetector.from_state(b"\x80\x05N.")


def test_state_does_not_grow_with_the_stream() -> None:
    rng = random.Random(5)
    det = MultivariateDetector(target_arl0=1e9, warmup=1000, seed=1)
    sizes = []
    for n in (2000, 60_000):
        for v in pairs(rng, n, 0.3):
            det.update(v)
        sizes.append(len(det.state()))
    assert int(det._ref.max()) >= 256  # the reference table is stored in 16 bits now ...
    assert sizes[1] - sizes[0] < 16 + det._ref.size  # ... still counters, not vectors
    restored = MultivariateDetector.from_state(det.state())
    assert np.array_equal(restored._ref, det._ref)
    assert np.array_equal(restored._counts, det._counts)
    tail = pairs(rng, 3000, 0.3)
    assert [det.update(v) for v in tail] == [restored.update(v) for v in tail]
    assert det.statistic == restored.statistic


def test_grid_fits_the_cell_budget_and_extra_features_are_ignored() -> None:
    for d in range(1, 12):
        levels, watched = grid_levels(d, 256)
        assert levels**watched <= 256
        assert (levels + 1) ** watched > 256 or levels == 16
        assert watched == min(d, 8)
    rng = random.Random(3)
    det = MultivariateDetector(target_arl0=1e5, warmup=200, seed=1)
    for _ in range(400):
        det.update({f"f{i:02d}": rng.gauss(0, 1) for i in range(10)})
    assert det.features == [f"f{i:02d}" for i in range(8)]
    det.update({"f00": 1.0})  # missing features count as the reference median: no error
    with pytest.raises(ValueError, match="finite"):
        det.update({"f00": math.inf})


def test_threshold_is_cached_and_parameters_validated() -> None:
    assert block_threshold(50, 1e6) == block_threshold(50, 1e6)
    assert block_threshold(50, 1e8) > block_threshold(50, 1e6)
    for params, named in [
        ({"block": 5}, "block"),
        ({"target_arl0": 100.0}, "target_arl0"),
        ({"warmup": 10}, "warmup"),
        ({"warmup": 200_000}, "warmup"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"cells": 8}, "cells"),
        ({"confirm": 1}, "confirm"),
    ]:
        with pytest.raises(ValueError, match=named):
            MultivariateDetector(**params)  # type: ignore[arg-type]


def test_a_state_stored_by_a_former_version_restarts_its_reference() -> None:
    """Former states held raw reference vectors (``_held_out``) and no cut points: they
    load with the same parameters and collect a new reference from the next vector."""
    former = {
        "target_arl0": 1e5,
        "block": 50,
        "warmup": 1000,
        "interactions": True,
        "learning_rate": 0.05,
        "k": 0.5,
        "seed": 8,
        "confirm": 100,
        "_n_total": 2222,
        "_held_out": [[0.0, 0.0, 0.0]] * 500,
        "_train": [[0.0, 0.0, 0.0]] * 500,
    }
    blob = pickle.dumps(former)
    restored = MultivariateDetector.__new__(MultivariateDetector)
    restored.__setstate__(pickle.loads(blob))
    assert (restored.target_arl0, restored.seed, restored.pooled) == (1e5, 8, 0)
    assert restored.features is None
    rng = random.Random(6)
    data = pairs(rng, 2500, 0.8) + pairs(rng, 1500, -0.8)
    hits = [c.tag for i, v in enumerate(data) if (c := restored.update(v, i))]
    assert len(hits) == 1
    assert isinstance(hits[0], int)
    assert 2500 <= hits[0] < 2800
