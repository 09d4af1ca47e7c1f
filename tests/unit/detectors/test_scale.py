"""ScaleCUSUMDetector: exact ARL0 for any signal, spread rises and falls, the mean left to the
location CUSUM, update_many == update, state, and the whole monitor on a noisy feature."""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors import CUSUMDetector, ScaleCUSUMDetector, make_detector
from detectors.base import Change
from detectors.calibration import SCALE, lindley, threshold_fixed
from detectors.scale import SCALE_CALIBRATIONS, calibrate_scale, reference_values, scale_arl
from monitor.config import load_settings
from monitor.detection import (
    calibration_cache_path,
    fleet_budget,
    load_calibrations,
    save_calibrations,
)
from monitor.events import DriftEvent, Level
from monitor.pipeline import Monitor
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryFilter, HistoryStore
from tests.factories import COHORTS, REGIONS, record, to_bytes


def changes(det: ScaleCUSUMDetector | CUSUMDetector, xs: np.ndarray) -> list[Change]:
    return det.update_many(xs, tags=list(range(xs.size)))


# -- calibration -------------------------------------------------------------------------


def test_reference_values_are_the_likelihood_ratio_ones() -> None:
    """log f_r(z) / f_1(z) = (z^2 / 2)(1 - 1/r^2) - ln r: zero at z^2 = k+ (and for the fall
    to 1/r at k-)."""
    for r in (1.2, 1.5, 3.0):
        k_up, k_down = reference_values(r)
        assert 0.5 * k_up * (1 - r**-2) - math.log(r) == pytest.approx(0.0, abs=1e-12)
        assert 0.5 * k_down * (1 - r**2) + math.log(r) == pytest.approx(0.0, abs=1e-12)
        assert k_down < 1.0 < k_up  # both sides drift down with no change (E z^2 = 1)
    with pytest.raises(ValueError, match="ratio"):
        reference_values(1.0)


@pytest.mark.parametrize("target", [1e3, 1e6, 1e9])
def test_each_side_gets_half_the_false_alarm_rate_and_simulation_agrees(target: float) -> None:
    cal = calibrate_scale(target)
    both, up, down = scale_arl(cal.h_up, cal.h_down)  # (the grid follows h here)
    assert up == pytest.approx(2 * target, rel=5e-3)
    assert down == pytest.approx(2 * target, rel=5e-3)
    assert both == pytest.approx(target, rel=5e-3)
    # regenerative importance sampling, 50k cycles a side: +-1.5 % (95 %); the chain on the
    # chi-squared increments (density singular at 0) is good to ~1-2 %
    assert cal.ci95[0] < cal.achieved_arl0 < cal.ci95[1]
    assert abs(cal.achieved_arl0 / target - 1) < 0.04
    assert cal.ci95[1] / cal.ci95[0] < 1.08
    assert calibrate_scale(target) is cal  # cached


def _one_sided_first_alarms(q: np.ndarray, k: float, h: float, sign: float) -> np.ndarray:
    """First alarm of ``S = max(0, S + sign (q - k))`` in each row (fixed point), else -1."""
    inc = np.floor(sign * (q - k) * SCALE + 0.5).astype(np.int64)
    hit = lindley(np.zeros(q.shape[0], dtype=np.int64), inc) >= threshold_fixed(h)
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def test_the_chain_arl_of_each_side_matches_direct_simulation() -> None:
    """The thresholds are only as good as the chain: run each side on exact N(0, 1) scores
    (4,000 streams, long enough that every stream alarms) and compare mean run lengths."""
    target = 100.0
    cal = calibrate_scale(target)
    rng = np.random.default_rng(11)
    q = rng.standard_normal((4000, 4000)) ** 2
    for k, h, sign in ((cal.k_up, cal.h_up, 1.0), (cal.k_down, cal.h_down, -1.0)):
        first = _one_sided_first_alarms(q, k, h, sign)
        assert (first >= 0).all()
        runs = first + 1.0
        se = runs.std() / math.sqrt(runs.size)
        assert abs(runs.mean() - 2 * target) < 4 * se, (runs.mean(), se)


def test_arl0_of_the_detector_holds_for_a_skewed_signal() -> None:
    """Self-starting scores are exactly N(0, 1) whatever the stream's law: 200 fresh
    detectors on lognormal streams, mean run length after the learning window within 4
    standard errors of the target (run lengths are close to geometric: sd ~ mean)."""
    target, warmup, runs = 300, 100, []
    for r in range(200):
        x = np.random.default_rng([5, r]).lognormal(0.0, 1.0, size=warmup + 30 * target)
        det = ScaleCUSUMDetector(target, seed=r, warmup=warmup, confirm=2)
        found = changes(det, x)
        runs.append(found[0].tag - (warmup - 1) if found else x.size - warmup)  # type: ignore[operator]
    arr = np.asarray(runs, dtype=float)
    se = arr.std() / math.sqrt(arr.size)
    assert abs(arr.mean() - target) < 4 * se, (arr.mean(), se)


# -- detection ---------------------------------------------------------------------------


def _spread_streams(mult: float, seed: int, n: int = 20) -> list[np.ndarray]:
    out = []
    for s in range(n):
        x = np.random.default_rng([seed, s]).normal(10.0, 2.0, size=4000)
        x[3000:] = 10.0 + (x[3000:] - 10.0) * mult  # the mean is unchanged
        out.append(x)
    return out


@pytest.mark.parametrize(
    ("mult", "within"),
    [(3.0, 60), (1 / 3, 60), (1.5, 400)],
)
def test_a_spread_change_is_detected_fast_with_the_mean_unchanged(mult: float, within: int) -> None:
    """At ARL0 1e6: x3 and x1/3 within 60 observations, x1.5 within 400 (chain ARL1 of
    exact scores: 5.1 / 23 / 33 at 1e4); the report reads the new spread."""
    delays, ratios = [], []
    for s, x in enumerate(_spread_streams(mult, seed=4)):
        found = changes(ScaleCUSUMDetector(1e6, seed=s), x)
        assert found, f"stream {s}: the x{mult:.2f} spread change was missed"
        c = found[0]
        assert c.measure == "spread"
        assert c.tag >= 3000, f"stream {s}: false alarm at {c.tag}"  # type: ignore[operator]
        assert c.before == pytest.approx(2.0, rel=0.1)
        delays.append(c.tag - 3000)  # type: ignore[operator]
        ratios.append(c.after / c.before)
    assert max(delays) < within, delays
    assert float(np.median(ratios)) == pytest.approx(mult, rel=0.15)
    if mult > 1:
        assert min(ratios) > 1.0
    else:
        assert max(ratios) < 1.0
    # the sign of the effect says which way the spread went
    c = found[0]
    assert (c.effect > 0) is (mult > 1)


def test_the_location_cusum_alone_misses_a_tripled_spread() -> None:
    """Why this detector exists: at a realistic fleet ARL0 the location CUSUM on the same
    scores rarely sees a x3 spread with the mean unchanged, within 1,000 observations."""
    seen = 0
    for s, x in enumerate(_spread_streams(3.0, seed=4)):
        seen += any(3000 <= c.tag < 4000 for c in changes(CUSUMDetector(1e9, seed=s), x))  # type: ignore[operator]
    assert seen <= 5


def test_a_mean_shift_is_the_location_detectors_job() -> None:
    """A 1-sigma mean shift raises z^2 too (E z^2 = 2). The location CUSUM fires first, and
    when the spread detector fires as well its report shows an unchanged spread."""
    ratios = []
    for s in range(20):
        x = np.random.default_rng([3, s]).normal(size=6000)
        x[3000:] += 1.0
        loc = changes(CUSUMDetector(1e6, seed=s), x)
        spread = changes(ScaleCUSUMDetector(1e6, seed=s + 99), x)
        assert loc, f"stream {s}: the mean shift was missed"
        assert loc[0].measure == "mean"
        assert loc[0].effect > 0.5  # (30 values after the firing: +-0.2)
        first_spread = [c.tag for c in spread if c.tag >= 3000]  # type: ignore[operator]
        assert not first_spread or loc[0].tag < first_spread[0]
        ratios += [c.after / c.before for c in spread if c.tag >= 3000]  # type: ignore[operator]
    assert ratios  # z^2 does see a 1-sigma shift, later ...
    assert 0.85 < float(np.median(ratios)) < 1.15  # ... and reads no change of spread


def test_a_stuck_feature_is_a_fall_to_zero() -> None:
    rng = random.Random(8)
    det = ScaleCUSUMDetector(1e6, seed=2)
    data = [rng.gauss(3.0, 0.5) for _ in range(2000)] + [3.25] * 300
    found = [c for i, x in enumerate(data) if (c := det.update(x, i)) is not None]
    assert found
    assert 2000 <= found[0].tag < 2100  # type: ignore[operator]
    assert found[0].after < 1e-5
    assert found[0].effect < -1e4


# -- the detector contract, exactly ------------------------------------------------------


def _scenario() -> np.ndarray:
    rng = np.random.default_rng(7)
    xs = rng.lognormal(1.0, 0.5, size=30_000)
    xs[9000:] = np.exp(1.0 + 2.0 * (np.log(xs[9000:]) - 1.0))
    xs[20_000:] = np.round(xs[20_000:], 0)  # quantised: ties and a smaller spread
    return xs


def test_update_many_is_update_one_by_one_even_in_pieces() -> None:
    xs = _scenario()
    params: dict[str, Any] = {"target_arl0": 5_000, "warmup": 500, "seed": 3}
    a, b, c = (ScaleCUSUMDetector(**params) for _ in range(3))
    one = [ch for i, x in enumerate(xs.tolist()) if (ch := a.update(x, i)) is not None]
    many = changes(b, xs)
    pieces: list[Change] = []
    rng = np.random.default_rng(2)
    i = 0
    while i < xs.size:  # chunk boundaries anywhere, even mid-confirmation
        j = min(xs.size, i + int(rng.integers(1, 3000)))
        pieces += c.update_many(xs[i:j], tags=list(range(i, j)))
        i = j
    assert len(one) >= 2, "the scenario has detections"
    assert one == many == pieces  # every field, exactly
    assert a.state() == b.state() == c.state()
    assert a.statistic == b.statistic


def test_state_round_trip_mid_stream_makes_the_same_decisions() -> None:
    xs = _scenario()
    det = ScaleCUSUMDetector(5_000, warmup=500, seed=1)
    changes(det, xs[:9050])  # inside the learning window after the first detection, or not
    clone = ScaleCUSUMDetector.from_state(det.state())
    assert repr(clone) == repr(det)
    rest = xs[9050:]
    assert changes(det, rest) == changes(clone, rest)
    assert det.state() == clone.state()
    assert len(pickle.dumps(ScaleCUSUMDetector(1e9))) < 2048
    with pytest.raises(TypeError):
        ScaleCUSUMDetector.from_state(pickle.dumps([1, 2]))


def test_state_is_small_after_learning() -> None:
    det = ScaleCUSUMDetector(1e9, seed=1)
    changes(det, np.random.default_rng(1).normal(size=50_000))
    assert len(det.state()) <= 2048


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"ratio": 1.0}, "ratio"),
        ({"ratio": 11.0}, "ratio"),
        ({"target_arl0": 5.0}, "target_arl0"),
        ({"confirm": 1}, "confirm"),
        ({"warmup": 5}, "warmup"),
        ({"cells": 1}, "cells"),
        ({"binary": True}, "bernoulli"),
    ],
)
def test_parameters_are_validated(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ScaleCUSUMDetector(**params)
    with pytest.raises(ValueError, match="finite"):
        ScaleCUSUMDetector().update(math.nan)


def test_registered_as_a_spread_family() -> None:
    det = make_detector("scale", target_arl0=1e5, ratio=2.0)
    assert isinstance(det, ScaleCUSUMDetector)
    assert (det.measure, det.name, det.ratio) == ("spread", "scale", 2.0)
    assert det.calibration.k_up == pytest.approx(reference_values(2.0)[0])


# -- wiring: budget, calibration cache -----------------------------------------------------


def test_the_spread_detector_counts_in_the_fleet_budget() -> None:
    """One more stream per signal: the split stays an upper bound on the false-alarm rate
    (rates and categories get no spread detector, but are counted: on the safe side)."""
    on = fleet_budget(load_settings(search_cwd=False))
    off = fleet_budget(
        load_settings(overrides={"detection": {"spread_ratio": None}}, search_cwd=False)
    )
    assert off.streams_per_event is not None
    assert on.streams_per_event is not None
    joint = 1  # the multivariate stream of the leaf segment
    assert on.streams_per_event - joint == 2 * (off.streams_per_event - joint)
    # twice the leaf streams: a larger share of the weekly budget (split with the roll-ups'
    # window streams by stream count), spread over twice the observations
    assert off.false_halts_per_week < on.false_halts_per_week < 1.0
    assert on.target_arl0 == pytest.approx(
        off.target_arl0
        * (on.streams_per_event / off.streams_per_event)
        * (off.false_halts_per_week / on.false_halts_per_week)
    )


def test_spread_calibrations_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(SCALE_CALIBRATIONS, "_known", {})
    cal = calibrate_scale(12_345, 2.0)
    save_calibrations()
    assert len(json.loads(calibration_cache_path().read_text())["scale"]) == 1
    monkeypatch.setattr(SCALE_CALIBRATIONS, "_known", {})
    load_calibrations()
    again = calibrate_scale(12_345, 2.0)
    assert again == cal
    assert again is not cal  # loaded, not recomputed
    # a cache written before the spread family existed still loads (its other sections)
    doc = json.loads(calibration_cache_path().read_text())
    del doc["scale"]
    calibration_cache_path().write_text(json.dumps(doc))
    monkeypatch.setattr(SCALE_CALIBRATIONS, "_known", {})
    load_calibrations()
    assert SCALE_CALIBRATIONS.known() == {}


# -- the whole monitor -------------------------------------------------------------------

NOISY = ("eu-west", "pro")


def _noisy_grid(n_per_segment: int, rise_at: int, mult: float) -> list[dict[str, Any]]:
    """3 regions x 3 cohorts interleaved; feature x ~ N(5, 1), its spread x ``mult`` (mean
    unchanged) in one leaf segment from that segment's record ``rise_at``."""
    rng = random.Random(6)
    out = []
    i = 0
    for k in range(n_per_segment):
        for region in REGIONS:
            for cohort in COHORTS:
                noise = rng.gauss(0.0, 1.0)
                if (region, cohort) == NOISY and k >= rise_at:
                    noise *= mult
                out.append(
                    record(
                        i,
                        region=region,
                        cohort=cohort,
                        features={"x": 5.0 + noise},
                        confidence=min(1.0, max(0.0, rng.gauss(0.8, 0.05))),
                        latency_ms=max(0.0, rng.gauss(50.0, 5.0)),
                    )
                )
                i += 1
    return out


def test_monitor_raises_a_spread_event_and_a_signal_for_that_scope_only(tmp_path: Path) -> None:
    records = _noisy_grid(1200, rise_at=700, mult=3.0)
    settings = load_settings(
        overrides={"source": {"batch_size": 300}, "detection": {"warmup": 400}},
        search_cwd=False,
    )
    store = HistoryStore(tmp_path / "h.db")
    sink = MemorySink("memory")
    mon = Monitor(
        settings, ListSource(to_bytes(records), name="logs"), store, MemoryDeadLetters(), [sink]
    )
    assert mon.run().status == "ok"
    leaf = "region=eu-west,cohort=pro"
    found = [
        e for e in store.history(HistoryFilter(signal="feature:x")) if isinstance(e, DriftEvent)
    ]
    spread = [e for e in found if e.detector == "scale" and e.segment == leaf]
    assert spread, f"no spread event for {leaf}: {[(e.segment, e.detector) for e in found]}"
    assert spread[0].position.offset > 700 * 9  # after the change (interleaved stream)
    assert spread[0].after / spread[0].before > 2.0
    assert spread[0].effect > 1.0  # stored: +(ratio - 1)
    signals = [s for s in sink.signals if s.segment == leaf]
    assert signals, "the noisy segment raised no signal"
    assert signals[0].signal == "feature:x"
    assert signals[0].level in (Level.WARN, Level.HALT)
    assert "feature:x spread rose ×" in signals[0].reason
    others = {f"region={r},cohort={c}" for r in REGIONS for c in COHORTS if (r, c) != NOISY}
    assert not {s.segment for s in sink.signals} & others
    assert not {e.segment for e in found} & others
