from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.events import DriftEvent, Level, Position, Signal
from monitor.store import Batch, HistoryFilter, HistoryStore


def ev(n: int, region: str = "eu", signal: str = "feature:x") -> DriftEvent:
    return DriftEvent(
        f"region={region},cohort=a",
        "segment",
        {"region": region, "cohort": "a"},
        signal,
        "adwin",
        2.0,
        0.0,
        2.0,
        1.0,
        500,
        1000 * n,
        Position("logs", 0, n),
    )


def sig(e: DriftEvent, level: Level = Level.HALT) -> Signal:
    return Signal(level, e.segment, e.scope, e.labels, "x rose", (e.id,), e.ts_ms, e.position)


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "h.db")


def test_checkpoint_is_idempotent_for_events_and_signals(store: HistoryStore) -> None:
    run = store.start_run("logs")
    e = ev(1)
    b = Batch(events=[e], signals=[sig(e)], offsets={("logs", 0): 2}, records=1)
    store.checkpoint(run, b, sinks=["jsonl"])
    store.checkpoint(run, b, sinks=["jsonl"])  # a replayed batch
    rows = store.history()
    assert [r.id for r in rows] == [e.id, sig(e).id]
    assert len(store.pending("jsonl")) == 1


def test_counts_add_up_and_offsets_move(store: HistoryStore) -> None:
    run = store.start_run("logs")
    store.checkpoint(run, Batch(counts={("s", "segment"): 3}, offsets={("logs", 0): 3}), [])
    store.checkpoint(run, Batch(counts={("s", "segment"): 4}, offsets={("logs", 0): 7}), [])
    assert store.segment_counts() == {"s": 7}
    assert store.offsets() == {("logs", 0): 7}
    assert store.offsets("other") == {}


def test_outbox_marks_delivery_per_sink(store: HistoryStore) -> None:
    run = store.start_run("logs")
    e = ev(1)
    store.checkpoint(run, Batch(events=[e], signals=[sig(e)]), sinks=["a", "b"])
    store.mark_delivered("a", [sig(e).id])
    assert store.pending("a") == []
    assert [s.id for s in store.pending("b")] == [sig(e).id]


def test_new_signal_supersedes_the_active_one_of_its_scope(store: HistoryStore) -> None:
    run = store.start_run("logs")
    e1, e2 = ev(1), ev(2)
    warn, halt = sig(e1, Level.WARN), sig(e2, Level.HALT)
    store.checkpoint(run, Batch(events=[e1], signals=[warn]), [])
    store.checkpoint(run, Batch(events=[e2], signals=[halt]), [])
    assert [s.id for s in store.active_signals()] == [halt.id]


def test_a_warn_and_the_halt_after_it_in_one_batch_leave_the_halt_in_force(
    store: HistoryStore,
) -> None:
    """Each signal supersedes the one in force before it, in the batch's decision order: a
    WARN and the HALT that follows it for the same scope in one batch end as WARN
    superseded, HALT in force (both used to end superseded, and the router then resolved a
    HALT nobody had lifted). Replaying the batch changes nothing."""
    run = store.start_run("logs")
    e1, e2 = ev(1), ev(2, signal="feature:y")
    warn, halt = sig(e1, Level.WARN), sig(e2, Level.HALT)
    batch = Batch(events=[e1, e2], signals=[warn, halt])
    store.checkpoint(run, batch, [])
    assert [s.id for s in store.active_signals()] == [halt.id]
    store.checkpoint(run, batch, [])  # a replayed batch
    assert [s.id for s in store.active_signals()] == [halt.id]


def test_history_filters(store: HistoryStore) -> None:
    run = store.start_run("logs")
    a, b = ev(1, "eu"), ev(2, "us", signal="latency_ms")
    store.checkpoint(run, Batch(events=[a, b], signals=[sig(a)]), [])
    assert [r.id for r in store.history(HistoryFilter(region="us"))] == [b.id]
    assert [r.id for r in store.history(HistoryFilter(kind="HALT"))] == [sig(a).id]
    assert [r.id for r in store.history(HistoryFilter(signal="latency_ms"))] == [b.id]
    assert [r.id for r in store.history(HistoryFilter(signal="feature:x"))] == [a.id, sig(a).id]
    assert [r.id for r in store.history(HistoryFilter(since_ms=1500))] == [b.id]
    assert [r.id for r in store.history(HistoryFilter(until_ms=1500))] == [a.id, sig(a).id]


def test_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the history store"):
        HistoryStore(blocker / "sub" / "h.db")
