"""Categorical detector: calibrated false-alarm rate, mix shifts, floods, exact state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.categorical import OTHER, CategoricalDetector, calibrate_categorical

CATS = [f"c{i}" for i in range(8)] + ["rare1", "rare2"]
P = np.array([0.35, 0.2, 0.15, 0.1, 0.08, 0.05, 0.03, 0.02, 0.01, 0.01])


def draw(rng: np.random.Generator, n: int, p: np.ndarray = P) -> list[str]:
    return [CATS[i] for i in rng.choice(len(CATS), size=n, p=p / p.sum())]


def test_anchored_false_alarm_rate_meets_the_target() -> None:
    """1M stationary observations: about 100 false alarms expected at ARL0 10,000."""
    target = 10_000
    det = CategoricalDetector(
        target, window=100, reference=dict(zip(CATS, P.tolist(), strict=True))
    )
    rng = np.random.default_rng(11)
    alarms = sum(det.update(x) is not None for x in draw(rng, 1_000_000))
    measured = 1_000_000 / alarms
    # measured 10,101 (99 alarms; Poisson sd of the count ~10 %)
    assert 0.8 * target <= measured <= 1.2 * target


def test_own_past_false_alarm_rate_meets_the_target() -> None:
    """100 detectors, each learning its own baseline: the mean false-alarm rate over
    baselines is what the calibration sets (the fleet's expected count of false alarms)."""
    target, window, learn = 10_000, 100, 2000
    rng = np.random.default_rng(5)
    alarms = tested = 0
    for _ in range(100):
        det = CategoricalDetector(target, window=window, warmup=learn)
        for x in draw(rng, learn + 5000):
            live = det.threshold != math.inf
            alarms += det.update(x) is not None
            tested += live
    measured = tested / alarms
    # Conservative on short runs: each CUSUM starts from 0 (no alarm in its first windows)
    # and a detector re-learns after an alarm, so a bad baseline is replaced; measured
    # 14,400 (31 alarms; sd ~18 %). Long single runs: 18,807 at target 20,000 (106 alarms).
    assert 0.8 * target <= measured <= 1.5 * target


def test_a_mix_shift_is_detected_with_its_effect() -> None:
    rng = np.random.default_rng(2)
    classes = np.array(["cat", "dog", "bird"])
    before = rng.choice(classes, size=6000, p=[0.6, 0.3, 0.1]).tolist()
    after = rng.choice(classes, size=3000, p=[0.3, 0.3, 0.4]).tolist()
    det = CategoricalDetector(1e6, window=100, warmup=5000)
    hits = [(i, c) for i, x in enumerate(before + after) if (c := det.update(x, i))]
    assert hits, "the shift at 6000 should be detected"
    i, change = hits[0]
    assert 6000 <= change.tag < 6200  # type: ignore[operator]
    assert i == change.tag + det.confirm  # reported after the confirmation window
    # sqrt(0.3^2 / 0.6 + 0.3^2 / 0.1) = 1.02 Bernoulli-like sigmas: a HALT
    assert 0.8 < change.effect < 1.3
    assert change.detector == "categorical"
    assert change.before == 0.0
    assert change.scale == 1.0


def test_two_categories_report_the_rate_detectors_effect() -> None:
    """For two categories the effect is |q - p| / sqrt(p (1 - p)), as for a 0/1 rate."""
    rng = np.random.default_rng(4)
    det = CategoricalDetector(1e5, window=100, reference={"yes": 0.5, "no": 0.5})
    flips = ["yes" if u < 0.5 else "no" for u in rng.random(3000)]
    flips += ["yes" if u < 0.75 else "no" for u in rng.random(3000)]
    effects = [c.effect for i, x in enumerate(flips) if (c := det.update(x, i)) and i >= 3000]
    assert effects
    assert 0.35 < np.mean(effects) < 0.65  # 0.25 / 0.5 = 0.5: a WARN


def test_an_unseen_category_flood_is_detected_at_once() -> None:
    rng = np.random.default_rng(8)
    stream = draw(rng, 6000)
    flood = draw(rng, 1000)
    stream += ["brand-new" if u < 0.3 else x for u, x in zip(rng.random(1000), flood, strict=True)]
    det = CategoricalDetector(1e8, window=100, warmup=5000)
    hits = [c for i, x in enumerate(stream) if (c := det.update(x, i))]
    assert len(hits) == 1
    assert 6000 <= hits[0].tag < 6200  # type: ignore[operator]  # within two windows
    # 30 % of the traffic moves to a category the baseline never saw (its "other" cell held
    # the two 1 % categories): sqrt(0.3^2 / 0.02 + ...) ~ 2, a HALT
    assert hits[0].effect > 1.5


def test_a_falling_share_is_reported_with_a_positive_effect_too() -> None:
    """A mix shift has no sign: the effect is a length, so the engine's |effect| is it."""
    rng = np.random.default_rng(3)
    stream = draw(rng, 6000) + draw(rng, 2000, np.array([1, 20, 15, 10, 8, 5, 3, 2, 1, 1.0]))
    det = CategoricalDetector(1e6, window=100, warmup=5000)
    hits = [c for i, x in enumerate(stream) if (c := det.update(x, i))]
    assert hits
    assert all(c.effect > 0 for c in hits)


def test_table_keeps_the_top_k_and_lumps_the_rest_into_other() -> None:
    det = CategoricalDetector(2000, top_k=2, window=10, warmup=200)
    for x in ["a", "b", "b", "c", "c", "c"] * 33 + ["d", "d"]:
        det.update(x)
    assert det.calibration_error is None
    assert list(det.expected) == ["c", "b", OTHER]  # "a" and the late "d" are other
    assert math.isclose(sum(det.expected.values()), 1.0)
    anchored = CategoricalDetector(
        1e5, top_k=2, window=10, reference={"x": 5000, "y": 3000, "z": 1500, OTHER: 500}
    )
    assert anchored.reference_size is None
    exp = anchored.expected
    assert list(exp) == ["x", "y", OTHER]
    assert math.isclose(exp[OTHER], (2000 + 0.5) / (10_000 + 1.5))  # "z" + the profile's rest


def test_state_round_trip_gives_identical_decisions() -> None:
    rng = np.random.default_rng(6)
    stream = draw(rng, 5000) + draw(rng, 3000, np.array([5, 1, 1, 1, 1, 1, 1, 1, 1, 1.0]))
    a = CategoricalDetector(1e6, window=100, warmup=3000)
    for x in stream[:4321]:
        a.update(x)
    blob = a.state()
    assert len(blob) < 1024
    b = CategoricalDetector.from_state(blob)
    out_a = [(a.update(x, i), a.statistic, a.warning_detected) for i, x in enumerate(stream[4321:])]
    out_b = [(b.update(x, i), b.statistic, b.warning_detected) for i, x in enumerate(stream[4321:])]
    assert out_a == out_b
    assert any(c is not None for c, _, _ in out_a), "the shift at 5000 should be detected"
    assert a.state() == b.state()
    with pytest.raises(TypeError):
        CategoricalDetector.from_state(b"\x80\x05N.")  # pickled None


def test_calibration_is_cached() -> None:
    cal = calibrate_categorical(P.tolist(), 100, 1e6, learn=5000, seed=3)
    permuted = calibrate_categorical(P[::-1].tolist(), 100, 1e6, learn=5000, seed=3)
    assert permuted is cal
    exact = calibrate_categorical(P.tolist(), 100, 1e6, seed=3)
    assert cal.mean > exact.mean  # a learned baseline is off: windows fit it worse


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"top_k": 1}, "top_k"),
        ({"window": 5}, "window"),
        ({"target_arl0": 50.0}, "target_arl0"),
        ({"k": 0.0}, "k must"),
        ({"warmup": 1999}, "warmup"),
        ({"confirm": 0}, "confirm"),
        ({"reference": {"a": -1.0}}, "reference"),
        ({"reference": {"a": 1.0}, "reference_size": 0}, "reference_size"),
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        CategoricalDetector(**params)  # type: ignore[arg-type]


def test_only_text_is_accepted() -> None:
    det = CategoricalDetector(1e5, window=10, warmup=200)
    with pytest.raises(ValueError, match="str"):
        det.update(1.0)  # type: ignore[arg-type]
