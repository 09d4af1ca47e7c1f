"""Behaviour drift, end to end: a change in how the model behaves in one segment — its class
mix, confidence, refusals, safety flags, latency or errors — raises a signal for that scope
on that signal, and nothing elsewhere.

The stream is 3 regions x 3 cohorts whose baselines differ (each segment has its own latency,
confidence, class mix and base rates, as real segments do), interleaved record by record;
the default calibrated configuration watches it. Each case changes one behaviour in one leaf
segment half-way through.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_settings
from monitor.events import DriftEvent, Level
from monitor.pipeline import Monitor
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryStore
from tests.factories import COHORTS, REGIONS, record, to_bytes

SHIFTED = ("ap-south", "pro")
LEAF = "region=ap-south,cohort=pro"
#: the scopes a change in the shifted leaf may show in: the leaf and the roll-ups holding it
CONTAINING = {LEAF, "region=ap-south", "cohort=pro", "*"}
PER_SEGMENT = 8000
CHANGE_AT = 5500  # past the categorical detector's 5,000-observation warm-up
CLASSES = ("answer", "clarify", "escalate")

Change = Callable[[dict[str, Any], random.Random], None]


def _baseline(seg: int, rng: random.Random, i: int, region: str, cohort: str) -> dict[str, Any]:
    """One record of segment ``seg``: every segment a little different from the others."""
    mix = (0.70 - 0.02 * seg, 0.20 + 0.01 * seg, 0.10 + 0.01 * seg)
    flagged = rng.random() < 0.010 + 0.001 * seg
    return record(
        i,
        region=region,
        cohort=cohort,
        features={"prompt_tokens": round(rng.lognormvariate(5.0 + 0.05 * seg, 0.4))},
        prediction=rng.choices(CLASSES, weights=mix)[0],
        confidence=min(1.0, max(0.0, rng.gauss(0.82 - 0.01 * seg, 0.06))),
        latency_ms=rng.lognormvariate(math.log(120.0 + 8.0 * seg), 0.25),
        refused=rng.random() < 0.02 + 0.002 * seg,
        safety_flags=["toxicity"] if flagged else [],
        error="upstream_timeout" if rng.random() < 0.02 + 0.001 * seg else None,
    )


def _class_mix(r: dict[str, Any], rng: random.Random) -> None:
    r["prediction"] = rng.choices(CLASSES, weights=(0.45, 0.20, 0.35))[0]


def _confidence(r: dict[str, Any], rng: random.Random) -> None:
    r["confidence"] = min(1.0, max(0.0, r["confidence"] - 0.12))


def _refusals(r: dict[str, Any], rng: random.Random) -> None:
    r["refused"] = r["refused"] or rng.random() < 0.06


def _safety_flags(r: dict[str, Any], rng: random.Random) -> None:
    if rng.random() < 0.04:
        r["safety_flags"] = ["toxicity"]


def _latency(r: dict[str, Any], rng: random.Random) -> None:
    r["latency_ms"] *= 1.6


def _errors(r: dict[str, Any], rng: random.Random) -> None:
    if rng.random() < 0.05:
        r["error"] = "upstream_timeout"


#: case -> (the change, the signal it must raise, the signals allowed to show it)
CASES: dict[str, tuple[Change, str, set[str]]] = {
    "prediction class mix": (_class_mix, "prediction", {"prediction"}),
    "confidence": (_confidence, "confidence", {"confidence"}),
    "refusal rate": (_refusals, "refusal_rate", {"refusal_rate"}),
    # the per-flag signal of the one flag raised sees the same change
    "safety-flag rate": (
        _safety_flags,
        "safety_flag_rate",
        {"safety_flag_rate", "safety_flag:toxicity"},
    ),
    "latency": (_latency, "latency_ms", {"latency_ms"}),
    "error rate": (_errors, "error_rate", {"error_rate"}),
}


def stream(change: Change | None, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for k in range(PER_SEGMENT):
        for seg, (region, cohort) in enumerate((r, c) for r in REGIONS for c in COHORTS):
            rec = _baseline(seg, rng, len(out), region, cohort)
            if change is not None and (region, cohort) == SHIFTED and k >= CHANGE_AT:
                change(rec, rng)
            out.append(rec)
    return to_bytes(out)


def run(tmp_path: Path, values: list[bytes]) -> tuple[list[DriftEvent], MemorySink]:
    settings = load_settings(overrides={"source": {"batch_size": 500}}, search_cwd=False)
    store = HistoryStore(tmp_path / "h.db")
    sink = MemorySink("memory")
    mon = Monitor(settings, ListSource(values, name="logs"), store, MemoryDeadLetters(), [sink])
    summary = mon.run()
    assert summary.status == "ok"
    assert summary.records == len(values)
    events = [e for e in store.history() if isinstance(e, DriftEvent)]
    return events, sink


def test_the_baseline_stream_raises_nothing(tmp_path: Path) -> None:
    """The control: segments that differ from each other but do not change are not drift."""
    events, sink = run(tmp_path, stream(None, seed=3))
    assert sink.signals == []
    assert events == []


@pytest.mark.parametrize("case", list(CASES))
def test_a_behaviour_change_in_one_segment_signals_that_scope_on_that_signal(
    tmp_path: Path, case: str
) -> None:
    change, signal, allowed = CASES[case]
    events, sink = run(tmp_path, stream(change, seed=3))
    leaf_signals = [s for s in sink.signals if s.segment == LEAF]
    assert leaf_signals, f"no signal for {LEAF}: {[s.reason for s in sink.signals]}"
    assert leaf_signals[0].level in (Level.WARN, Level.HALT)
    assert leaf_signals[0].signal in allowed
    assert leaf_signals[0].signal in leaf_signals[0].reason
    assert any(s.signal == signal for s in leaf_signals)
    # raised after the change, by a record of the shifted segment
    assert leaf_signals[0].position.offset >= CHANGE_AT * 9
    # nothing elsewhere: no signal or drift event outside the scopes holding the leaf, and
    # none on another signal
    assert {s.segment for s in sink.signals} <= CONTAINING
    assert {s.signal for s in sink.signals} <= allowed
    assert {e.segment for e in events} <= CONTAINING
    assert {e.signal for e in events} <= allowed
    assert all(e.position.offset >= CHANGE_AT * 9 for e in events)
