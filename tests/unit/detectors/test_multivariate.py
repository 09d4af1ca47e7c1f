"""Multivariate detector: a joint shift the marginal CUSUMs cannot see, and no false alarms."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from detectors import CUSUMDetector
from detectors.multivariate import MultivariateDetector, block_auc_threshold


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


def test_stationary_stream_raises_no_alarm() -> None:
    rng = random.Random(11)
    det = MultivariateDetector(target_arl0=1e6, warmup=1000, seed=5)
    data = pairs(rng, 30_000, 0.8)
    assert [i for i, v in enumerate(data) if det.update(v, i)] == []
    assert det.statistic < det.threshold
    assert det.features == ["x", "y", "z"]


def test_false_alarm_rate_is_near_the_target() -> None:
    """At a low target (one false alarm per 3,000 observations) a 60k stationary stream
    (51,700 observations under test, the rest warm-ups and confirmations) should raise
    about 17; measured 13 with this seed (Poisson 95 % range for 17: 9-26)."""
    rng = random.Random(2)
    det = MultivariateDetector(target_arl0=3000, warmup=500, seed=2)
    alarms = sum(det.update(v) is not None for v in pairs(rng, 60_000, 0.5))
    assert 9 <= alarms <= 26


class Recording(MultivariateDetector):
    """Keeps every rank ``u`` the detector computes."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[float] = []

    def _rank(self, now: dict[str, float]) -> float:
        u = super()._rank(now)
        self.seen.append(u)
        return u


def test_ranks_are_uniform_and_block_means_have_the_calibrated_spread() -> None:
    """The calibration assumes i.i.d. uniform ranks u (given the model) plus a reference
    term of variance 1 / (12 n) per block. A model scored twice per pair (the former
    unpaired AUC) gave block statistics with variance 0.90 instead of 1."""
    block, n_ref = 50, 500
    ranks: list[list[float]] = []
    for seed in range(4):
        rng = random.Random(100 + seed)
        det = Recording(target_arl0=1e6, warmup=2 * n_ref, block=block, seed=seed)
        for v in pairs(rng, 2 * n_ref, 0.8):
            det.update(v)
        for v in pairs(rng, 5000, 0.8):
            det.update(v)
        ranks.append(det.seen)
    u = np.asarray(ranks)
    assert u.shape == (4, 5000)
    assert abs(u.mean() - 0.5) < 0.01
    assert abs(u.var() * 12.0 - 1.0) < 0.06  # uniform ranks: variance 1/12
    # deciles of a uniform: 10 % each (2,000 per bin, binomial sd 0.2 %, plus the reference)
    counts = np.histogram(u, bins=10, range=(0.0, 1.0))[0] / u.size
    assert np.all(np.abs(counts - 0.1) < 0.012)
    means = u.reshape(4, -1, block).mean(axis=2)
    iid = (n_ref + 2) / (12.0 * n_ref * block)
    ratio = means.var() / iid  # measured ~1.05: the held-out sample's error (<= 1.1)
    assert 0.85 < ratio < 1.3
    z = (means - 0.5) / det._sd
    assert 0.75 < z.var() < 1.15
    # the ranks in a block are not tied to each other: lag-1 autocorrelation ~ 0
    c = u - u.mean(axis=1, keepdims=True)
    assert abs((c[:, 1:] * c[:, :-1]).mean() / c.var()) < 0.03


def test_threshold_gives_the_target_on_the_calibration_null() -> None:
    """A CUSUM fed the simulated null (block-mean ranks plus the reference term) has mean
    run length ``target`` (2,000 runs, fresh draws, so the Markov-chain solve is checked)."""
    block, n_ref, target, k = 50, 500, 2500.0, 0.5
    h = block_auc_threshold(block, target, k, n_ref)
    sd = math.sqrt((n_ref + 2) / (12.0 * n_ref * block) + 1.0 / (12.0 * n_ref))
    rng = np.random.default_rng(12)
    runs, horizon = 2000, 40 * int(target / block)
    s = np.zeros(runs)
    length = np.full(runs, horizon)
    alive = np.ones(runs, dtype=bool)
    for t in range(horizon):
        u = rng.integers(0, n_ref + 1, size=(runs, block)).mean(axis=1) / n_ref
        z = (u + rng.standard_normal(runs) / math.sqrt(12 * n_ref) - 0.5) / sd
        s = np.maximum(0.0, s + z - k)
        hit = alive & (s >= h)
        length[hit] = t + 1
        alive &= ~hit
        if not alive.any():
            break
    assert not alive.any()
    arl = float(length.mean()) * block
    assert 0.9 * target < arl < 1.1 * target  # se of the mean ~2.2 %


def test_state_round_trip_gives_identical_decisions() -> None:
    rng = random.Random(4)
    data = pairs(rng, 2500, 0.8) + pairs(rng, 1500, -0.8)
    a = MultivariateDetector(target_arl0=1e5, warmup=1000, seed=8)
    for v in data[:2222]:
        a.update(v)
    b = MultivariateDetector.from_state(a.state())
    out_a = [(a.update(v, i), a.statistic) for i, v in enumerate(data[2222:])]
    out_b = [(b.update(v, i), b.statistic) for i, v in enumerate(data[2222:])]
    assert out_a == out_b
    assert any(c is not None for c, _ in out_a)
    with pytest.raises(TypeError):
        MultivariateDetector.from_state(b"\x80\x05N.")


def test_threshold_is_cached_and_parameters_validated() -> None:
    assert block_auc_threshold(50, 1e6) is block_auc_threshold(50, 1e6)
    assert block_auc_threshold(50, 1e8) > block_auc_threshold(50, 1e6)
    for params, named in [
        ({"block": 5}, "block"),
        ({"target_arl0": 100.0}, "target_arl0"),
        ({"warmup": 10}, "warmup"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"confirm": 1}, "confirm"),
    ]:
        with pytest.raises(ValueError, match=named):
            MultivariateDetector(**params)  # type: ignore[arg-type]


def test_a_state_stored_by_the_former_version_still_loads() -> None:
    """Former states held the raw held-out vectors as ``_eval`` and score pairs."""
    rng = random.Random(6)
    data = pairs(rng, 2500, 0.8) + pairs(rng, 1500, -0.8)
    new = MultivariateDetector(target_arl0=1e5, warmup=1000, seed=8)
    for v in data[:2222]:
        new.update(v)
    state = dict(new.__dict__)
    state["_eval"] = state.pop("_held_out")
    state["_ref"] = [0.5] * len(state["_now"])
    for derived in ("_n_ref", "_h", "_sd"):
        del state[derived]
    old = MultivariateDetector.__new__(MultivariateDetector)
    old.__setstate__(state)
    assert np.array_equal(old._eval, new._eval)
    assert (old.threshold, old._sd, old._now) == (new.threshold, new._sd, [])
    hits = [c.tag for i, v in enumerate(data[2222:], 2222) if (c := old.update(v, i))]
    assert len(hits) == 1
    assert isinstance(hits[0], int)
    assert 2500 <= hits[0] < 2700
