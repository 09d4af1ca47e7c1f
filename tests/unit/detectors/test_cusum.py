"""CUSUMDetector: calibrated ARL0 for any signal, polarity, delay, and update_many == update."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detectors import CUSUMDetector, Reference, make_detector
from detectors.base import Change
from detectors.calibration import arl, calibrate


def feed_one_by_one(det: CUSUMDetector, xs: np.ndarray) -> list[Change]:
    return [c for i, x in enumerate(xs.tolist()) if (c := det.update(x, i)) is not None]


def feed_in_pieces(det: CUSUMDetector, xs: np.ndarray, seed: int) -> list[Change]:
    """update_many on random-length pieces (chunk boundaries anywhere, even mid-confirm)."""
    rng = np.random.default_rng(seed)
    out: list[Change] = []
    i = 0
    while i < xs.size:
        j = min(xs.size, i + int(rng.integers(1, 3000)))
        out += det.update_many(xs[i:j], tags=list(range(i, j)))
        i = j
    return out


def scenario(name: str) -> tuple[dict[str, object], np.ndarray]:
    rng = np.random.default_rng(7)
    if name == "learned_shifts":
        xs = rng.standard_normal(30_000)
        xs[9000:] += 1.0
        xs[20_000:] -= 2.0
        return {"target_arl0": 2_000, "warmup": 500}, xs
    if name == "anchored_persistent_drift":
        ref = Reference.from_sample(rng.lognormal(size=4000))
        xs = rng.lognormal(size=12_000)
        xs[3000:] *= 2.0
        return {"reference": ref, "warmup": 40, "confirm": 10}, xs
    if name == "anchored_off_from_the_start":
        ref = Reference.from_sample(rng.standard_normal(2000))
        return {"reference": ref, "warmup": 300}, rng.standard_normal(3000) + 1.5
    if name == "binary_rate":
        xs = (rng.random(20_000) < np.where(np.arange(20_000) < 10_000, 0.05, 0.3)).astype(float)
        return {"target_arl0": 5_000, "warmup": 1000, "binary": True, "seed": 3}, xs
    if name == "short_warmup_long_confirm":
        xs = rng.standard_normal(6000)
        xs[2000:] += 3.0
        return {"target_arl0": 500, "warmup": 20, "confirm": 50, "cells": 8}, xs
    raise AssertionError(name)


SCENARIOS = [
    "learned_shifts",
    "anchored_persistent_drift",
    "anchored_off_from_the_start",
    "binary_rate",
    "short_warmup_long_confirm",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_update_many_is_update_one_by_one(name: str) -> None:
    params, xs = scenario(name)
    a = CUSUMDetector(**params)  # type: ignore[arg-type]
    b = CUSUMDetector(**params)  # type: ignore[arg-type]
    c = CUSUMDetector(**params)  # type: ignore[arg-type]
    one = feed_one_by_one(a, xs)
    many = b.update_many(xs, tags=list(range(xs.size)))
    pieces = feed_in_pieces(c, xs, seed=len(name))
    assert one, "every scenario has detections"
    assert one == many == pieces  # Change is a dataclass: every field compared exactly
    assert a.state() == b.state() == c.state()
    assert a.statistic == b.statistic
    assert a.drift_detected == b.drift_detected
    tail = np.random.default_rng(1).standard_normal(500) + 2.0
    assert feed_one_by_one(a, tail) == b.update_many(tail, tags=list(range(500)))


def test_update_many_without_tags_and_on_empty_input() -> None:
    det = CUSUMDetector(warmup=100)
    assert det.update_many(np.array([])) == []
    xs = np.random.default_rng(0).standard_normal(3000)
    xs[1000:] += 3
    changes = det.update_many(xs)
    assert changes
    assert changes[0].tag is None
    assert det.drift_detected is False


SIGNALS = {
    "lognormal": lambda rng, n: rng.lognormal(3.0, 0.8, n),
    "poisson": lambda rng, n: rng.poisson(2.0, n).astype(float),
    "bernoulli": lambda rng, n: (rng.random(n) < 0.1).astype(float),
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_anchored_arl0_is_on_target_for_any_distribution(signal: str) -> None:
    """The same threshold gives the same ARL0 for skewed, integer and 0/1 signals."""
    draw = SIGNALS[signal]
    rng = np.random.default_rng(31)
    ref = Reference.from_sample(draw(rng, 100_000))
    target, trials = 400, 300
    lengths = []
    for seed in range(trials):
        det = CUSUMDetector(target_arl0=target, reference=ref, warmup=0, seed=seed)
        xs = draw(rng, 10 * target)
        changes = det.update_many(xs, tags=list(range(xs.size)))
        tag = changes[0].tag if changes else xs.size
        assert isinstance(tag, int)
        lengths.append(tag + 1)
    assert abs(np.mean(lengths) / target - 1) < 0.15  # standard error about 6 %


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_self_learned_arl0_is_on_target_even_from_a_short_learning_window(signal: str) -> None:
    """Self-starting scores are exactly N(0, 1) whatever was learned: detectors that learned
    from only 20 values (10 cut points, 10 counted) still meet the target, for skewed,
    integer and 0/1 signals alike. (A reference frozen after 20 values would not: its
    ARL0 would scatter over orders of magnitude around the target.)"""
    draw = SIGNALS[signal]
    rng = np.random.default_rng(32)
    target, trials, warmup = 400, 300, 20
    lengths = []
    for seed in range(trials):
        det = CUSUMDetector(target_arl0=target, warmup=warmup, seed=seed, confirm=1)
        xs = draw(rng, warmup + 10 * target)
        changes = det.update_many(xs, tags=list(range(xs.size)))
        tag = changes[0].tag if changes else xs.size
        assert isinstance(tag, int)
        lengths.append(tag - warmup + 1)
    assert abs(np.mean(lengths) / target - 1) < 0.15  # standard error about 6 %


def test_delay_is_close_to_an_oracle_cusum() -> None:
    """1-sigma shift at ARL0 10,000: within 1.25x of a CUSUM told the true mean and sigma."""
    rng = np.random.default_rng(8)
    ref = Reference.from_sample(rng.standard_normal(50_000))
    delays = []
    for seed in range(200):
        det = CUSUMDetector(target_arl0=10_000, reference=ref, warmup=0, confirm=1, seed=seed)
        xs = rng.standard_normal(300) + 1.0
        changes = det.update_many(xs, tags=list(range(xs.size)))
        tag = changes[0].tag if changes else xs.size
        assert isinstance(tag, int)
        delays.append(tag + 1)
    oracle = arl(calibrate(10_000).threshold, shift=1.0)
    assert np.mean(delays) < 1.25 * oracle


def test_a_rising_error_rate_is_detected_as_a_rise() -> None:
    rng = np.random.default_rng(4)
    rate = np.where(np.arange(12_000) < 8000, 0.05, 0.25)
    xs = (rng.random(12_000) < rate).astype(float)
    # 5 % -> 25 % is a 0.43-sigma shift of the normal scores: k = 0.25 is tuned for it
    det = CUSUMDetector(target_arl0=100_000, k=0.25, warmup=2000, binary=True)
    changes = det.update_many(xs, tags=list(range(xs.size)))
    assert changes
    first = changes[0]
    assert isinstance(first.tag, int)
    assert 8000 <= first.tag < 8600
    assert first.effect > 0.2  # measured on the 30 confirmation observations: noisy
    assert first.after > first.before


def test_a_falling_mean_is_detected_as_a_fall() -> None:
    rng = np.random.default_rng(5)
    xs = rng.lognormal(2.0, 0.5, 8000)
    xs[5000:] *= 0.5
    changes = CUSUMDetector(1e5, warmup=2000).update_many(xs, tags=list(range(xs.size)))
    assert changes
    assert changes[0].effect < -0.5


def test_self_learned_relearns_the_new_regime_anchored_does_not() -> None:
    rng = np.random.default_rng(6)
    xs = rng.standard_normal(40_000)
    xs[10_000:] += 2.0
    learned = CUSUMDetector(target_arl0=1e6, warmup=1000).update_many(xs, list(range(40_000)))
    assert len(learned) == 1  # then the new regime is the norm
    assert isinstance(learned[0].tag, int)
    assert 10_000 <= learned[0].tag < 10_030
    ref = Reference.from_sample(rng.standard_normal(5000))
    anchored = CUSUMDetector(target_arl0=1e6, reference=ref, warmup=100).update_many(xs)
    assert len(anchored) > 100  # still off the validated baseline: it keeps saying so
    det = CUSUMDetector(target_arl0=1e6, warmup=1000)
    det.update_many(xs)
    learned_ref = det.reference_in_force
    assert learned_ref is not None
    assert abs(learned_ref.mean - 2.0) < 0.1


def test_warning_statistic_and_threshold() -> None:
    det = CUSUMDetector(target_arl0=10_000, warmup=10)
    assert det.threshold == det.calibration.threshold
    assert det.statistic == 0.0
    assert det.reference_in_force is None
    seen_warning_before_alarm = False
    for i, x in enumerate(np.r_[np.zeros(10), np.full(40, 0.9)]):
        det.update(float(x), i)
        if det.warning_detected and det._pending is None:
            assert det.statistic >= det.threshold / 2
            seen_warning_before_alarm = True
    assert seen_warning_before_alarm


def test_state_is_small_and_restores_exactly_in_every_phase() -> None:
    rng = np.random.default_rng(9)
    xs = rng.standard_normal(6000)
    xs[3000:] += 2
    ref = Reference.from_sample(rng.standard_normal(20_000))
    for det in (CUSUMDetector(warmup=1000), CUSUMDetector(reference=ref)):
        for stop in (10, 500, 2000, 3010, 5000):  # learning, monitoring, confirming, ...
            a = pickle.loads(pickle.dumps(det))
            a.update_many(xs[:stop])
            blob = a.state()
            assert len(blob) <= 2048, (stop, len(blob))
            b = CUSUMDetector.from_state(blob)
            assert repr(a) == repr(b)
            assert a.update_many(xs[stop:]) == b.update_many(xs[stop:])


def test_seeds_decorrelate_discrete_streams() -> None:
    xs = (np.random.default_rng(1).random(20_000) < 0.1).astype(float)
    a, b = CUSUMDetector(seed=1, warmup=100), CUSUMDetector(seed=2, warmup=100)
    a.update_many(xs[:5000])
    b.update_many(xs[:5000])
    assert a.statistic != b.statistic
    c = CUSUMDetector(seed=1, warmup=100)
    c.update_many(xs[:5000])
    assert c.statistic == a.statistic


def test_registry_builds_it_and_hyper_parameters_are_validated() -> None:
    det = make_detector("cusum", target_arl0=5000, k=0.4, warmup=200)
    assert isinstance(det, CUSUMDetector)
    assert det.k == 0.4
    assert det.target_arl0 == 5000
    assert CUSUMDetector().warmup == 1000
    assert CUSUMDetector(reference=Reference.from_sample([1.0, 2.0, 3.0])).warmup == 100
    bad: list[tuple[dict[str, object], str]] = [
        ({"target_arl0": 1}, "target_arl0"),
        ({"k": 0}, "k must"),
        ({"k": 5}, "k must"),
        ({"cells": 1}, "cells"),
        ({"seed": 1.5}, "seed"),
        ({"reference": "canary"}, "reference"),
        ({"warmup": 5}, "warmup"),
        ({"warmup": -1}, "warmup"),
    ]
    for params, match in bad:
        with pytest.raises(ValueError, match=match):
            CUSUMDetector(**params)  # type: ignore[arg-type]
    det = CUSUMDetector(warmup=10)
    with pytest.raises(ValueError, match="finite"):
        det.update(float("nan"))
    with pytest.raises(ValueError, match="finite"):
        det.update_many(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="1-D"):
        det.update_many(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="tags"):
        det.update_many(np.zeros(3), tags=[1, 2])
    assert det.n == 0  # rejected input leaves no trace
