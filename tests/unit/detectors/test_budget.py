"""Fleet budget: the per-detector ARL0 keeps a simulated fleet within its false-HALT budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors import FleetBudget, Persistence, calibrate, cusum_first_alarms
from detectors.budget import SECONDS_PER_WEEK, _poisson_tail


def all_alarms(z: np.ndarray, h: float) -> list[int]:
    """Alarm indices of one stream, the CUSUM restarting from 0 after each alarm."""
    out: list[int] = []
    start = 0
    while start < z.size:
        first = int(cusum_first_alarms(z[None, start:], 0.5, h)[0])
        if first < 0:
            break
        out.append(start + first)
        start += first + 1
    return out


def test_every_alarm_halts_fleet_stays_within_budget() -> None:
    per_stream_week = 20_000  # observations of one stream in a week
    budget = FleetBudget(
        false_halts_per_week=40,
        events_per_second=per_stream_week / SECONDS_PER_WEEK,
        streams=200,
    )
    assert math.isclose(budget.target_arl0, 200 * per_stream_week / 40)
    h = calibrate(budget.target_arl0).threshold
    weeks = 2
    rng = np.random.default_rng(17)
    alarms = 0
    for _ in range(budget.streams):
        alarms += len(all_alarms(rng.standard_normal(weeks * per_stream_week), h))
    allowed = budget.false_halts_per_week * weeks  # 80 expected
    assert 0.6 * allowed < alarms <= 1.25 * allowed  # Poisson sd ~ 9


def test_persistence_rule_buys_a_lower_arl0_and_still_meets_the_budget() -> None:
    per_stream_week, streams, halts_per_week = 50_000, 100, 10
    rule = Persistence(alarms=2, within=2000)
    budget = FleetBudget(halts_per_week, per_stream_week / SECONDS_PER_WEEK, streams, rule)
    single = FleetBudget(halts_per_week, per_stream_week / SECONDS_PER_WEEK, streams)
    assert budget.target_arl0 < single.target_arl0 / 10
    h = calibrate(budget.target_arl0).threshold
    weeks = 8
    rng = np.random.default_rng(23)
    halts = 0
    for _ in range(streams):
        halts += len(rule.halts(all_alarms(rng.standard_normal(weeks * per_stream_week), h)))
    allowed = halts_per_week * weeks  # 80 expected
    assert 0.6 * allowed < halts <= 1.3 * allowed  # Poisson sd ~ 9


def test_streams_per_event_sets_the_fleet_rate() -> None:
    loose = FleetBudget(1.0, 100.0, 10_000)
    tight = FleetBudget(1.0, 100.0, 10_000, streams_per_event=30)
    assert math.isclose(loose.target_arl0 / tight.target_arl0, 10_000 / 30)
    assert math.isclose(tight.observations_per_week, 100 * 30 * SECONDS_PER_WEEK)
    d = tight.describe()
    assert d["target_arl0"] == tight.target_arl0
    assert d["confirmation"] == {"alarms": 1, "within": 0}
    assert d["p_any_false_halt_per_week_at_most"] == 1.0
    assert math.isclose(d["expected_false_alarms_per_week"], 1.0)


def test_persistence_rule_and_its_rate() -> None:
    rule = Persistence(alarms=3, within=100)
    assert rule.halts([0, 50, 90, 300, 350, 460, 470]) == [90]
    assert rule.halts([0, 50, 90, 300, 390, 400, 470]) == [90, 400, 470]
    assert Persistence().halts([5, 9]) == [5, 9]
    lam = 1e-3
    # rate of "an alarm with >= 2 others in the previous 100 observations", Poisson alarms
    mu = lam * 100
    expected = lam * (1 - math.exp(-mu) * (1 + mu))
    assert math.isclose(rule.halt_rate(lam), expected, rel_tol=1e-9)
    assert math.isclose(_poisson_tail(1e-4, 3), 1e-12 / 6, rel_tol=1e-3)
    assert math.isclose(_poisson_tail(30.0, 0), 1.0)


def test_bad_budgets_are_rejected() -> None:
    with pytest.raises(ValueError, match="false_halts_per_week"):
        FleetBudget(0, 1.0, 1)
    with pytest.raises(ValueError, match="events_per_second"):
        FleetBudget(1, 0.0, 1)
    with pytest.raises(ValueError, match="streams"):
        FleetBudget(1, 1.0, 0)
    with pytest.raises(ValueError, match="streams_per_event"):
        FleetBudget(1, 1.0, 10, streams_per_event=11)
    with pytest.raises(ValueError, match="alarms"):
        Persistence(alarms=0)
    with pytest.raises(ValueError, match="within"):
        Persistence(alarms=2)
