"""The whole loop on in-memory sources and sinks (fast); real Kafka is in tests/integration."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings, load_settings
from monitor.events import DriftEvent, Level
from monitor.pipeline import Monitor
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryStore
from tests.factories import COHORTS, REGIONS, grid_stream, to_bytes

SHIFTED = ("eu-west", "pro")


def settings(**over: Any) -> Settings:
    base: dict[str, Any] = {"source": {"batch_size": 300}, "detection": {"warmup": 400}}
    base.update(over)
    return load_settings(overrides=base, search_cwd=False)


def make(
    tmp_path: Path, values: list[bytes], name: str = "h.db", **over: Any
) -> tuple[Monitor, HistoryStore, MemorySink, MemoryDeadLetters]:
    store = HistoryStore(tmp_path / name)
    sink, dead = MemorySink("memory"), MemoryDeadLetters()
    mon = Monitor(settings(**over), ListSource(values, name="logs"), store, dead, [sink])
    return mon, store, sink, dead


@pytest.fixture(scope="module")
def shifted_stream() -> list[bytes]:
    return to_bytes(grid_stream(1200, shift_segment=SHIFTED, shift_at=700, shift=2.0))


def test_shift_in_one_segment_halts_that_segment_only(
    tmp_path: Path, shifted_stream: list[bytes]
) -> None:
    mon, store, sink, _ = make(tmp_path, shifted_stream)
    summary = mon.run()
    assert summary.status == "ok"
    assert summary.records == len(shifted_stream)
    halts = {s.segment for s in sink.signals if s.level is Level.HALT}
    assert "region=eu-west,cohort=pro" in halts
    untouched = {f"region={r},cohort={c}" for r in REGIONS for c in COHORTS if (r, c) != SHIFTED}
    assert not halts & untouched
    # every HALT is for the shifted segment or a roll-up that contains it
    assert halts <= {"region=eu-west,cohort=pro", "region=eu-west", "cohort=pro", "*"}
    # the triggering record is after the change (segment record 700 is stream index 700*9+)
    leaf = next(s for s in sink.signals if s.segment == "region=eu-west,cohort=pro")
    assert leaf.position.offset > 700 * 9
    assert store.segment_counts()["region=eu-west,cohort=pro"] == 1200


def test_no_signals_on_a_stationary_stream(tmp_path: Path) -> None:
    mon, _, sink, _ = make(tmp_path, to_bytes(grid_stream(1500, seed=4)))
    mon.run()
    assert sink.signals == []


def test_bad_records_go_to_dead_letters_and_good_ones_are_all_processed(tmp_path: Path) -> None:
    good = to_bytes(grid_stream(50))
    bad = [b"{oops", b'"just a string"', b'{"schema_version": 1}', b"\xff\xfe"]
    values = []
    for i, g in enumerate(good):
        values.append(g)
        if i % 100 == 0 and i // 100 < len(bad):
            values.append(bad[i // 100])
    mon, store, _, dead = make(tmp_path, values)
    summary = mon.run()
    assert summary.records == len(good)
    assert summary.dead_letters == len(bad)
    assert [d.raw for d in dead.letters] == bad
    assert all(d.reason for d in dead.letters)
    assert dead.flushed == len(bad)
    positions = [d.position.offset for d in dead.letters]
    assert [values[p - 1] for p in positions] == bad
    assert sum(v for k, v in store.segment_counts().items() if k == "*") == len(good)


def test_stop_and_resume_processes_every_record_exactly_once(
    tmp_path: Path, shifted_stream: list[bytes]
) -> None:
    """Stop after a few batches, start a new monitor on the same store: the history ends up
    identical to one uninterrupted run (same counts, same drift events, same signals)."""
    ref, ref_store, _, _ = make(tmp_path, shifted_stream, name="ref.db")
    ref.run()

    stop = threading.Event()
    first, store, _, _ = make(tmp_path, shifted_stream, name="split.db")
    calls = 0

    def progress(_: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 13:
            stop.set()

    s1 = first.run(stop, progress)
    assert s1.status == "interrupted"
    assert 0 < s1.records < len(shifted_stream)
    second = Monitor(
        first.settings,
        ListSource(shifted_stream, name="logs"),
        store,
        MemoryDeadLetters(),
        [MemorySink("memory")],
    )
    s2 = second.run()
    assert s1.records + s2.records == len(shifted_stream)
    assert store.segment_counts() == ref_store.segment_counts()
    assert [r.id for r in store.history()] == [r.id for r in ref_store.history()]


def test_failed_sink_keeps_signals_pending_until_it_recovers(
    tmp_path: Path, shifted_stream: list[bytes]
) -> None:
    mon, store, sink, _ = make(tmp_path, shifted_stream)
    sink.fail = True
    summary = mon.run()
    assert summary.signals
    assert sink.signals == []
    pending = store.pending("memory")
    assert [s.id for s in pending] == [s.id for s in summary.signals]
    sink.fail = False
    again = Monitor(mon.settings, ListSource([], name="logs"), store, MemoryDeadLetters(), [sink])
    again.run()
    assert [s.id for s in sink.signals] == [s.id for s in summary.signals]
    assert store.pending("memory") == []


def test_basic_mode_with_a_river_rate_detector_catches_a_rising_error_rate(tmp_path: Path) -> None:
    """detection.rate_detector: HDDM_A watches the 0/1 signals, ADWIN the numeric ones."""
    recs = grid_stream(1500, seed=9)
    rng = random.Random(5)
    for i, r in enumerate(recs):
        k = i // 9
        p = 0.30 if (r["region"], r["cohort"]) == SHIFTED and k >= 900 else 0.02
        r["error"] = "upstream_timeout" if rng.random() < p else None
    over = {"detection": {"mode": "basic", "warmup": 300, "rate_detector": "hddm_a"}}
    mon, store, _, _ = make(tmp_path, to_bytes(recs), **over)
    assert mon.detection["rate_detector"] == "hddm_a"
    mon.run()
    events = [e for e in store.history() if isinstance(e, DriftEvent) and e.signal == "error_rate"]
    leaf = [e for e in events if e.segment == "region=eu-west,cohort=pro"]
    assert leaf, "the error-rate rise in the shifted segment is caught"
    assert all(e.detector == "hddm_a" for e in events)
    assert all(e.effect > 0 for e in leaf)
    assert leaf[0].position.offset > 900 * 9


def test_calibrated_mode_signals_a_doubled_error_rate(tmp_path: Path) -> None:
    """The default path for a 0/1 rate: the own-past Bernoulli CUSUM catches 4 % -> 10 %
    errors in one segment (0.3 sigma of a Bernoulli: no sigma threshold would act on it),
    and the decision engine acts on the relative rise it reads (x2.5 true). That read is
    noisy: x2.3 (HALT) at the fleet target of 3.9e9, x1.7 (WARN, >= rate_warn_ratio) at
    7.8e9, the target since the spread CUSUMs count in the budget; either is a signal."""
    recs = grid_stream(3000, seed=11)
    rng = random.Random(6)
    for i, r in enumerate(recs):
        k = i // 9
        p = 0.10 if (r["region"], r["cohort"]) == SHIFTED and k >= 1500 else 0.04
        r["error"] = "upstream_timeout" if rng.random() < p else None
    mon, store, sink, _ = make(tmp_path, to_bytes(recs), detection={"warmup": 1000})
    mon.run()
    events = [e for e in store.history() if isinstance(e, DriftEvent) and e.signal == "error_rate"]
    leaf = [e for e in events if e.segment == "region=eu-west,cohort=pro"]
    assert leaf, "the error-rate rise in the shifted segment is caught"
    assert leaf[0].detector == "bernoulli"
    assert leaf[0].position.offset > 1500 * 9
    raised = [s for s in sink.signals if "error_rate" in s.reason]
    assert any(s.segment == "region=eu-west,cohort=pro" for s in raised)
    assert all("×" in s.reason and "%" in s.reason for s in raised)
    untouched = {f"region={r},cohort={c}" for r in REGIONS for c in COHORTS if (r, c) != SHIFTED}
    assert not {e.segment for e in events} & untouched
