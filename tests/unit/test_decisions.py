from __future__ import annotations

from dataclasses import replace

import pytest

from detectors.budget import Persistence
from monitor.config import DecisionSettings
from monitor.decisions import DecisionEngine
from monitor.events import DriftEvent, Level, Position


def event(effect: float, n: int, segment: str = "region=eu,cohort=a") -> DriftEvent:
    return DriftEvent(
        segment,
        "segment",
        {"region": "eu", "cohort": "a"},
        "feature:x",
        "adwin",
        effect,
        0.0,
        effect,
        1.0,
        1000,
        1000 + n,
        Position("t", 0, n),
    )


def test_large_shift_halts_at_once_and_stays_halted() -> None:
    eng = DecisionEngine(DecisionSettings())
    s = eng.decide(event(2.5, 1))
    assert s is not None
    assert s.level is Level.HALT
    assert s.evidence == (event(2.5, 1).id,)
    assert eng.decide(event(5.0, 2)) is None


def test_moderate_shifts_warn_then_escalate() -> None:
    eng = DecisionEngine(DecisionSettings(warn_effect=0.5, halt_effect=1.0, halt_after=3))
    first = eng.decide(event(0.6, 1))
    assert first is not None
    assert first.level is Level.WARN
    assert eng.decide(event(0.7, 2)) is None
    third = eng.decide(event(-0.8, 3))
    assert third is not None
    assert third.level is Level.HALT
    assert len(third.evidence) == 3


def test_small_shifts_raise_nothing() -> None:
    eng = DecisionEngine(DecisionSettings(warn_effect=0.5))
    assert all(eng.decide(event(0.3, i)) is None for i in range(10))


def test_scopes_are_independent_and_ids_deterministic() -> None:
    a = DecisionEngine(DecisionSettings()).decide(event(3.0, 1, "region=eu,cohort=a"))
    b = DecisionEngine(DecisionSettings()).decide(event(3.0, 1, "region=eu,cohort=a"))
    c = DecisionEngine(DecisionSettings()).decide(event(3.0, 1, "region=us,cohort=a"))
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.id == b.id != c.id


def test_engine_rebuilt_from_stored_signals_keeps_halts() -> None:
    eng = DecisionEngine(DecisionSettings())
    halt = eng.decide(event(3.0, 1))
    assert halt is not None
    again = DecisionEngine.from_signals(DecisionSettings(), [halt])
    assert again.decide(event(3.0, 2)) is None


def timed(effect: float, n: int, ts_ms: int, observations: int = 1000) -> DriftEvent:
    return DriftEvent(
        "region=eu,cohort=a",
        "segment",
        {"region": "eu", "cohort": "a"},
        "feature:x",
        "cusum",
        effect,
        0.0,
        effect,
        1.0,
        observations,
        ts_ms,
        Position("t", 0, n),
    )


def test_warn_escalates_only_within_halt_within_s() -> None:
    eng = DecisionEngine(DecisionSettings(halt_after=3, halt_within_s=60))
    hour = 3_600_000
    assert eng.decide(timed(0.6, 1, 0)) is not None  # WARN
    assert eng.decide(timed(0.6, 2, hour)) is None  # an hour later: the first one is stale
    assert eng.decide(timed(0.6, 3, hour + 10_000)) is None  # 2 within the minute
    third = eng.decide(timed(0.6, 4, hour + 20_000))
    assert third is not None
    assert third.level is Level.HALT


def test_confirmation_rule_turns_an_unconfirmed_halt_into_a_warn() -> None:
    """confirm_alarms=2 within 500 observations: the budget assumes it, the engine applies it."""
    eng = DecisionEngine(DecisionSettings(halt_after=10), confirm=Persistence(2, 500))
    first = eng.decide(timed(3.0, 1, 0, observations=1000))
    assert first is not None
    assert first.level is Level.WARN
    assert "HALT once confirmed" in first.reason
    assert eng.decide(timed(3.0, 2, 1, observations=2000)) is None  # too far apart: still WARN
    second = eng.decide(timed(3.0, 3, 2, observations=2300))  # 300 after the previous one
    assert second is not None
    assert second.level is Level.HALT


def test_without_a_rule_every_halt_size_alarm_halts() -> None:
    eng = DecisionEngine(DecisionSettings(), confirm=Persistence(1, 0))
    s = eng.decide(timed(3.0, 1, 0))
    assert s is not None
    assert s.level is Level.HALT


def rate_event(before: float, after: float, n: int, segment: str = "region=us") -> DriftEvent:
    scale = (before * (1 - before)) ** 0.5
    return DriftEvent(
        segment,
        "region",
        {"region": segment.split("=")[1]},
        "error_rate",
        "bernoulli",
        (after - before) / scale,
        before,
        after,
        scale,
        5000,
        n * 1000,
        Position("demo", 0, n),
        rate=True,
    )


def test_rates_are_judged_by_their_relative_rise_not_in_sigmas() -> None:
    """5 % -> 10 % errors is 0.23 sigma of a Bernoulli (below warn_effect) but a doubling:
    it must HALT; a 1.3x rise WARNs; a fall raises nothing."""
    engine = DecisionEngine(DecisionSettings())
    doubling = rate_event(0.05, 0.10, 1)
    assert abs(doubling.effect) < DecisionSettings().warn_effect
    sig = engine.decide(doubling)
    assert sig is not None
    assert sig.level is Level.HALT
    assert "×2" in sig.reason
    assert "5.00% → 10.00%" in sig.reason
    mild = engine.decide(rate_event(0.05, 0.065, 2, segment="region=eu"))
    assert mild is not None
    assert mild.level is Level.WARN
    assert engine.decide(rate_event(0.05, 0.055, 3, segment="region=ap")) is None  # ×1.1
    assert engine.decide(rate_event(0.10, 0.02, 4, segment="region=sa")) is None  # a fall


def test_rate_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="rate_halt_ratio"):
        DecisionSettings(rate_warn_ratio=3.0, rate_halt_ratio=2.0)


def spread_event(before: float, after: float, n: int, segment: str = "region=us") -> DriftEvent:
    ratio = after / before
    return DriftEvent(
        segment,
        "region",
        {"region": segment.split("=")[1]},
        "feature:x",
        "scale",
        ratio - 1.0 if ratio >= 1.0 else 1.0 - 1.0 / ratio,
        before,
        after,
        before,
        4000,
        n * 1000,
        Position("demo", 0, n),
        measure="spread",
    )


def test_spread_changes_are_judged_by_the_ratio_of_spreads_up_or_down() -> None:
    """x3 noise and a feature stuck at a third of its spread both HALT; x1.4 WARNs; x1.1 is
    evidence only. The thresholds are spread_*_ratio, not the sigma shift of a mean."""
    s = DecisionSettings()
    engine = DecisionEngine(s)
    noisy = engine.decide(spread_event(1.2, 3.6, 1))
    assert noisy is not None
    assert noisy.level is Level.HALT
    assert noisy.signal == "feature:x"
    assert noisy.reason == "feature:x spread rose ×3.0 (σ 1.2 → 3.6) [scale]"
    stuck = engine.decide(spread_event(3.0, 1.0, 2, segment="region=eu"))
    assert stuck is not None
    assert stuck.level is Level.HALT
    assert stuck.reason.startswith("feature:x spread fell ×3.0 (σ 3 → 1)")
    mild = engine.decide(spread_event(1.0, 1.4, 3, segment="region=ap"))
    assert mild is not None
    assert mild.level is Level.WARN
    small_fall = engine.decide(spread_event(1.0, 1 / 1.4, 4, segment="region=sa"))
    assert small_fall is not None
    assert small_fall.level is Level.WARN
    # x1.1: below spread_warn_ratio, although its effect (0.1) ... and x1.25 (effect 0.25)
    assert engine.decide(spread_event(1.0, 1.1, 5, segment="region=af")) is None
    assert engine.decide(spread_event(1.0, 1.25, 6, segment="region=af")) is None
    # the same 1.4x spread read as a mean shift of 0.4 sigma would raise nothing
    assert abs(spread_event(1.0, 1.4, 7).effect) < s.warn_effect


def test_a_spread_event_and_a_mean_event_on_one_record_are_two_facts() -> None:
    spread = spread_event(1.0, 3.0, 9)
    mean = replace(spread, detector="cusum", effect=0.1, after=0.1, measure="mean", id="")
    assert spread.id != mean.id
    assert mean.id == replace(mean, id="").id  # still deterministic


def test_a_stuck_feature_reads_as_a_fall_to_zero() -> None:
    engine = DecisionEngine(DecisionSettings())
    sig = engine.decide(spread_event(2.0, 1e-9, 1))
    assert sig is not None
    assert sig.level is Level.HALT
    assert "spread fell to ~0 (σ 2 → 1e-09)" in sig.reason


def test_spread_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="spread_halt_ratio"):
        DecisionSettings(spread_warn_ratio=2.5, spread_halt_ratio=2.0)
