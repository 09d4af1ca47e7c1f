"""BernoulliCUSUMDetector: exact ARL0 whatever the rate, fast on a rising rate, one-sided."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import BernoulliCUSUMDetector, CUSUMDetector, make_detector
from detectors.base import Change
from detectors.bernoulli import _arl_lattice, _lattice, calibrate_bernoulli, grid_rate


def run_lengths(p: float, target: float, runs: int, warmup: int = 400) -> np.ndarray:
    out = []
    for r in range(runs):
        det = BernoulliCUSUMDetector(target, seed=r, warmup=warmup, confirm=1)
        xs = (np.random.default_rng(50_000 + r).random(warmup + 30 * int(target)) < p).astype(float)
        changes = det.update_many(xs, tags=list(range(xs.size)))
        tag = changes[0].tag if changes else xs.size
        assert isinstance(tag, int)
        out.append(tag - warmup + 1)
    return np.asarray(out, dtype=np.float64)


@pytest.mark.parametrize("p", [0.001, 0.03, 0.2])
def test_arl0_is_on_target_whatever_the_rate(p: float) -> None:
    """Self-starting scores make the tail event exactly Bernoulli(q): the lattice chain's
    ARL0 holds for a rare rate (below the 0.5 % floor of q), a common one and a frequent one,
    whatever rate each detector happened to learn."""
    target = 500.0
    lengths = run_lengths(p, target, 400)
    assert abs(lengths.mean() / target - 1) < 0.15  # standard error about 5 %


def test_the_lattice_chain_is_the_arl_of_the_lattice_cusum() -> None:
    q = 0.05
    up, down, _ = _lattice(q, 1.5)
    h = 90
    rng = np.random.default_rng(1)
    runs, s = 4000, np.zeros(4000, dtype=np.int64)
    t = np.zeros(4000)
    live = np.ones(4000, dtype=bool)
    step = 0
    while live.any():
        step += 1
        inc = np.where(rng.random(int(live.sum())) < q, up, -down)
        s[live] = np.maximum(0, s[live] + inc)
        t[live] = step
        live[live] = s[live] < h
    chain = _arl_lattice(q, up, down, h)
    assert abs(t.mean() / chain - 1) < 4 * t.std() / np.sqrt(runs) / chain


def test_calibration_reaches_the_target_from_above() -> None:
    for target in (1e3, 1e6, 1e10):
        for q in (0.005, 0.05, 0.3):
            cal = calibrate_bernoulli(target, q)
            assert cal.achieved_arl0 >= target
            assert _arl_lattice(q, cal.up, cal.down, cal.threshold - 1) < target
    with pytest.raises(ValueError, match="q must"):
        calibrate_bernoulli(1e4, 0.9)


def test_a_small_rise_is_caught_several_times_sooner_than_on_normal_scores() -> None:
    """5 % -> 10 %: the likelihood-ratio CUSUM against the normal-score CUSUM (k 0.25),
    both calibrated to the same ARL0."""
    delays: dict[str, list[int]] = {"bernoulli": [], "cusum": []}
    for r in range(40):
        rate = np.where(np.arange(6000) < 2000, 0.05, 0.10)
        xs = (np.random.default_rng(r).random(6000) < rate).astype(float)
        for name, det in (
            ("bernoulli", BernoulliCUSUMDetector(1e4, seed=r, confirm=1)),
            ("cusum", CUSUMDetector(1e4, 0.25, seed=r, confirm=1, binary=True)),
        ):
            after = [c for c in det.update_many(xs, list(range(6000))) if c.tag >= 2000]
            first = after[0].tag if after else 6000
            assert isinstance(first, int)
            delays[name].append(first - 2000)
    assert np.mean(delays["bernoulli"]) < 0.5 * np.mean(delays["cusum"])


def test_one_sided_and_0_1_only() -> None:
    rng = np.random.default_rng(3)
    falling = (rng.random(20_000) < np.where(np.arange(20_000) < 5000, 0.2, 0.02)).astype(float)
    assert BernoulliCUSUMDetector(1e6).update_many(falling) == []
    det = BernoulliCUSUMDetector()
    with pytest.raises(ValueError, match="0/1"):
        det.update(0.5)
    with pytest.raises(ValueError, match="0/1"):
        det.update_many(np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="ratio"):
        make_detector("bernoulli", ratio=1.0)


def test_the_reported_rate_uses_the_change_point_stretch() -> None:
    """The new rate is estimated over the CUSUM's change-point stretch plus the confirmation
    window: a 5 % -> 20 % rise reads close to 20 %, not a 30-value average."""
    afters = []
    for r in range(30):
        rate = np.where(np.arange(8000) < 3000, 0.05, 0.20)
        xs = (np.random.default_rng(100 + r).random(8000) < rate).astype(float)
        changes: list[Change] = BernoulliCUSUMDetector(1e5, seed=r).update_many(xs)
        assert changes
        afters.append(changes[0].after)
    assert abs(float(np.median(afters)) - 0.20) < 0.04


def test_update_many_matches_update_across_restarts() -> None:
    rng = np.random.default_rng(8)
    rate = np.select(
        [np.arange(40_000) < 10_000, np.arange(40_000) < 25_000], [0.02, 0.06], default=0.15
    )
    xs = (rng.random(40_000) < rate).astype(float)
    a, b = BernoulliCUSUMDetector(1e4, seed=5), BernoulliCUSUMDetector(1e4, seed=5)
    one = [c for i, x in enumerate(xs.tolist()) if (c := a.update(x, i)) is not None]
    many: list[Change] = []
    i = 0
    while i < xs.size:  # random-length pieces
        j = min(xs.size, i + int(rng.integers(1, 5000)))
        many += b.update_many(xs[i:j], tags=list(range(i, j)))
        i = j
    assert one == many
    assert len(one) >= 2
    assert a.state() == b.state()
    assert grid_rate(0.0001, 1.5) == grid_rate(0.005, 1.5)  # the floor
