"""Wiring of detection: settings (+ a stored reference profile) → the detector plan.

>>> from monitor.config import load_settings
>>> s = load_settings(overrides={"detection": {"budget": {"events_per_second": 50}}},
...                   search_cwd=False)
>>> b = fleet_budget(s)
>>> b.streams_per_event, f"{b.target_arl0:.3g}"  # its leaf x 16 signals x 2 + 1 joint
(33.0, '1.48e+09')
>>> f"{window_target_arl0(s):.3g}"  # roll-ups: windows between false alarms
'9.88e+08'
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from detectors import (
    BasicPlan,
    CalibratedPlan,
    CategoricalWatchers,
    CUSUMDetector,
    DetectorSpec,
    FleetBudget,
    Persistence,
    Plan,
    Reference,
    SignalKind,
    Watcher,
)
from detectors.bernoulli import (
    BERNOULLI_CALIBRATIONS,
    BernoulliCalibration,
    calibrate_bernoulli,
    grid_rate,
)
from detectors.calibration import CALIBRATIONS, Calibration
from detectors.categorical import CATEGORICAL_CALIBRATIONS, CategoricalCalibration
from detectors.memo import Memo
from detectors.multivariate import MultivariateDetector
from detectors.scale import SCALE_CALIBRATIONS, ScaleCalibration, calibrate_scale
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.profiles import Profile
from monitor.store import HistoryStore

__all__ = [
    "build_plan",
    "calibration_cache_path",
    "fleet_budget",
    "load_calibrations",
    "save_calibrations",
    "segments_per_record",
    "window_target_arl0",
]

log = logging.getLogger(__name__)


def calibration_cache_path() -> Path:
    """Where calibrations persist between runs (``$XDG_CACHE_HOME/driftgate``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "driftgate" / "calibrations-v2.json"


#: the persisted memos: section of the cache file -> (memo, record type)
_MEMOS: dict[str, tuple[Memo[Any, Any], type]] = {
    "cusum": (CALIBRATIONS, Calibration),
    "categorical": (CATEGORICAL_CALIBRATIONS, CategoricalCalibration),
    "bernoulli": (BERNOULLI_CALIBRATIONS, BernoulliCalibration),
    "scale": (SCALE_CALIBRATIONS, ScaleCalibration),
}


def _tuples(v: Any) -> Any:
    """JSON lists back to the tuples the keys and records hold (nested ones too)."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def load_calibrations() -> None:
    """Preload the calibrations persisted by earlier runs (unreadable file: ignored, all of
    it: nothing is preloaded from a file that fails half-way; a section the file does not
    have yet, e.g. written before that family existed, is simply computed anew)."""
    path = calibration_cache_path()
    try:
        doc = json.loads(path.read_text())
        loaded = [
            (
                memo,
                {
                    _tuples(k): kind(**{f: _tuples(v) for f, v in rec.items()})
                    for k, rec in doc.get(name, [])
                },
            )
            for name, (memo, kind) in _MEMOS.items()
        ]
    except FileNotFoundError:
        return
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.debug("ignoring unreadable calibration cache %s: %s", path, exc)
        return
    for memo, entries in loaded:
        memo.preload(entries)


def save_calibrations() -> None:
    """Persist every calibration of this process (CUSUM, categorical, Bernoulli, spread)."""
    path = calibration_cache_path()
    try:
        doc = {
            name: [[k, asdict(rec)] for k, rec in memo.known().items()]
            for name, (memo, _) in _MEMOS.items()
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)
    except OSError as exc:
        log.debug("cannot write calibration cache %s: %s", path, exc)


def segments_per_record(settings: Settings) -> int:
    """How many segments one record updates: its leaf, one roll-up per dimension, global."""
    seg = settings.segments
    if not seg.rollups:
        return 1
    return 1 + (len(seg.dimensions) if len(seg.dimensions) > 1 else 0) + 1


def _per_signal(settings: Settings, anchored: bool) -> int:
    """Detectors per leaf signal: own past, spread (``detection.spread_ratio`` not null:
    counted for every signal, although rates and categories do not get one, so the split
    errs on the safe side) and the anchored one with a reference profile."""
    det = settings.detection
    return 1 + (det.spread_ratio is not None) + anchored


def _stream_counts(settings: Settings, anchored: bool) -> tuple[int, int]:
    """(leaf streams, roll-up window streams) the budget is split over, at the cap.

    Leaves: ``max_segments`` x (signals x detectors per signal + the joint detector).
    Roll-ups: at most ``max_segments + dimensions - 1`` dimension values over all
    dimensions (their product is at most ``max_segments``; their sum is largest when one
    dimension takes them all) + the global scope, x signals (one window statistic each)."""
    seg = settings.segments
    b = settings.detection.budget
    mv = settings.detection.multivariate
    joint = 1 if mv.enabled and mv.scopes and settings.detection.mode == "calibrated" else 0
    leaves = seg.max_segments * (b.signals_per_record * _per_signal(settings, anchored) + joint)
    if not seg.rollups:
        return leaves, 0
    dims = len(seg.dimensions)
    scopes = 1 + (seg.max_segments + dims - 1 if dims > 1 else 0)
    return leaves, scopes * b.signals_per_record


def fleet_budget(settings: Settings, anchored: bool = False) -> FleetBudget:
    """The leaves' share of the fleet budget: streams = segments x signals x detectors.

    The weekly false-HALT budget is split between leaf streams (tested on every record) and
    roll-up window streams (tested once per closed window, :func:`window_target_arl0`) in
    proportion to their counts: every stream, leaf or roll-up, may spend the same expected
    number of false HALTs a week, and the two shares add up to the budget exactly."""
    det = settings.detection
    b = det.budget
    leaves, rollups = _stream_counts(settings, anchored)
    joint = 1 if det.multivariate.enabled and det.multivariate.scopes else 0
    joint = joint if det.mode == "calibrated" else 0
    spe = float(b.signals_per_record * _per_signal(settings, anchored) + joint)
    return FleetBudget(
        false_halts_per_week=b.false_halts_per_week * leaves / (leaves + rollups),
        events_per_second=b.events_per_second,
        streams=leaves,
        confirmations=Persistence(b.confirm_alarms, b.confirm_within),
        streams_per_event=spe,
    )


def window_target_arl0(settings: Settings, anchored: bool = False) -> float:
    """ARL0, in windows, of every roll-up window detector: the roll-ups' share of the budget
    (see :func:`fleet_budget`) over ``604,800 / window_s`` windows a week per stream.
    ``detection.target_arl0``, when set, is used as it is (in windows)."""
    det = settings.detection
    if det.target_arl0 is not None:
        return float(f"{min(det.target_arl0, 1e12):.3g}")
    leaves, rollups = _stream_counts(settings, anchored)
    if rollups == 0:
        return 1e6
    windows_per_week = 604_800.0 / settings.segments.window_s
    share = det.budget.false_halts_per_week * rollups / (leaves + rollups)
    target = windows_per_week * rollups / share
    return float(f"{min(target, 1e12):.3g}")


def _references(profile: Profile) -> dict[str, Reference]:
    refs: dict[str, Reference] = {}
    for name, sp in profile.signals.items():
        if sp.kind is not SignalKind.CATEGORY and len(sp.sample) >= 10:
            refs[name] = Reference.from_sample(sp.sample)
    return refs


def _category_references(profile: Profile, window: int) -> dict[str, dict[str, float]]:
    """Category counts of the profile's categorical signals, when there are enough of them
    (a baseline of fewer than 20 windows cannot be calibrated to a high ARL0)."""
    refs: dict[str, dict[str, float]] = {}
    for name, sp in profile.signals.items():
        total = sum(sp.counts.values())
        if sp.kind is SignalKind.CATEGORY and total >= 20 * window:
            refs[name] = {c: float(v) for c, v in sp.counts.items()}
        elif sp.kind is SignalKind.CATEGORY:
            log.info(
                "profile %s: %s has %d values, too few to anchor to", profile.name, name, total
            )
    return refs


def build_plan(settings: Settings, store: HistoryStore) -> tuple[Plan, dict[str, Any]]:
    """The plan the settings ask for, and a description of it (budget, reference)."""
    det = settings.detection
    if det.mode == "basic":
        warmup = 200 if det.warmup is None else det.warmup
        spec = DetectorSpec(det.detector, det.params, warmup, det.confirm)
        spec.build()  # validate the parameters now, not on the first record
        rate_spec = None
        if det.rate_detector is not None:
            rate_spec = DetectorSpec(det.rate_detector, det.rate_params, warmup, det.confirm)
            rate_spec.build(binary=True)
        return BasicPlan(spec, rate_spec), {
            "mode": "basic",
            "detector": det.detector,
            "params": det.params,
            "rate_detector": det.rate_detector,
            "rate_params": det.rate_params,
        }
    profile: Profile | None = None
    if det.reference is not None:
        data = store.load_profile(det.reference)
        if data is None:
            raise ConfigError(
                f"detection.reference {det.reference!r} is not a stored profile "
                "(build it with `driftgate reference build` or fix the name)"
            )
        profile = Profile.from_dict(data)
    budget = fleet_budget(settings, anchored=profile is not None)
    target = det.target_arl0 if det.target_arl0 is not None else budget.target_arl0
    target = float(f"{min(target, 1e12):.3g}")  # 3 significant digits: reusable calibrations
    load_calibrations()
    cat = det.categorical
    cat_refs = _category_references(profile, cat.window) if profile else {}
    categorical = CategoricalWatchers(
        target,
        top_k=cat.top_k,
        window=cat.window,
        warmup=cat.warmup,
        references=cat_refs,
        profile=profile.name if profile else None,
    )
    mv = det.multivariate
    multivariate = None
    if mv.enabled:
        # validate + calibrate now (cached)
        MultivariateDetector(target, mv.block, mv.warmup, cells=mv.cells)

        def multivariate(stream: str, seed: int) -> Watcher:
            return MultivariateDetector(target, mv.block, mv.warmup, seed=seed, cells=mv.cells)

    warmup = 1000 if det.warmup is None else max(det.warmup, 10)
    plan = CalibratedPlan(
        target,
        k=det.k,
        rate_k=det.rate_k,
        rate_ratio=det.rate_ratio,
        spread_ratio=det.spread_ratio,
        warmup=warmup,
        confirm=det.confirm,
        references=_references(profile) if profile else None,
        profile=profile.name if profile else None,
        categorical=categorical,
        multivariate=multivariate,
    )
    for kk in (det.k, det.rate_k):  # calibrate now (cached), not on the first record
        CUSUMDetector(target, kk, warmup=plan.warmup)
    for q in (0.01, 0.05):  # ... and the Bernoulli CUSUM at common rates (others on demand)
        calibrate_bernoulli(target, grid_rate(q, det.rate_ratio), det.rate_ratio)
    if det.spread_ratio is not None:  # ... and the spread CUSUM
        calibrate_scale(target, det.spread_ratio)
    save_calibrations()
    return plan, {
        "mode": "calibrated",
        "target_arl0": target,
        "k": det.k,
        "rate_k": det.rate_k,
        "rate_ratio": det.rate_ratio,
        "spread_ratio": det.spread_ratio,
        "reference": det.reference,
        "categorical": {
            "top_k": categorical.top_k,
            "window": categorical.window,
            "warmup": categorical.warmup,
            "anchored": sorted(cat_refs),
        },
        "multivariate": mv.model_dump() if mv.enabled else None,
        "budget": budget.describe(),
    }
