"""Multivariate detector: a joint shift the marginal CUSUMs cannot see, and no false alarms."""

from __future__ import annotations

import math
import random

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


def test_false_alarm_rate_is_not_above_the_target() -> None:
    """At a low target (one false alarm per 3,000 observations) a 60k stationary stream
    would raise about 20; the permutation null is conservative (measured: 14 alarms)."""
    rng = random.Random(2)
    det = MultivariateDetector(target_arl0=3000, warmup=500, seed=2)
    alarms = sum(det.update(v) is not None for v in pairs(rng, 60_000, 0.5))
    assert 3 <= alarms <= 30


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
