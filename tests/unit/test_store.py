"""The history store's contract. Every test here that takes ``store`` / ``store_target``
runs on SQLite here and on a real PostgreSQL in tests/integration/test_store_postgres.py
(which imports them and overrides ``store_target``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import HistorySettings
from monitor.errors import Fenced, StoreError
from monitor.events import DriftEvent, Level, Position, Signal
from monitor.store import Batch, Fence, HistoryFilter, HistoryStore


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
def store_target(tmp_path: Path) -> str:
    """What HistoryStore opens: a SQLite file here, a PostgreSQL URL in the PG variant."""
    return str(tmp_path / "h.db")


@pytest.fixture
def store(store_target: str) -> Iterator[HistoryStore]:
    s = HistoryStore(store_target)
    yield s
    s.close()


def fence(member: str, generation: int, *partitions: int, source: str = "logs") -> Fence:
    return Fence(member, generation, frozenset((source, p) for p in partitions))


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


# -- detector state keys ------------------------------------------------------------------


def test_states_round_trip_bytes_and_drop_in_the_same_checkpoint(store: HistoryStore) -> None:
    run = store.start_run("logs")
    blob = bytes(range(256)) * 64  # every byte value, NULs included
    store.checkpoint(run, Batch(states={"p/logs/0": blob, "p/logs/1": b"x", "rollup/g": b""}), [])
    assert store.detector_states()["p/logs/0"] == blob
    assert store.detector_states()["rollup/g"] == b""
    store.checkpoint(run, Batch(states={"p/logs/1": b"y"}, drop_states=["p/logs/0", "nope"]), [])
    assert store.detector_states() == {"p/logs/1": b"y", "rollup/g": b""}
    # a key both dropped and written ends written (drops go first)
    store.checkpoint(run, Batch(states={"p/logs/1": b"z"}, drop_states=["p/logs/1"]), [])
    assert store.detector_states("p/") == {"p/logs/1": b"z"}


def test_state_prefix_is_exact(store: HistoryStore) -> None:
    run = store.start_run("logs")
    keys = ["p/a/0", "p/A/0", "p/ab", "p%x", "p_y", "rollup/p/a", "p/a"]
    store.checkpoint(run, Batch(states={k: k.encode() for k in keys}), [])
    assert sorted(store.detector_states("p/a")) == ["p/a", "p/a/0", "p/ab"]
    assert sorted(store.detector_states("p/a/")) == ["p/a/0"]
    assert sorted(store.detector_states("p%")) == ["p%x"]
    assert sorted(store.detector_states("p_")) == ["p_y"]
    assert store.detector_states("zzz") == {}
    assert sorted(store.detector_states("")) == sorted(keys)


# -- fencing ------------------------------------------------------------------------------


def full_batch(n: int, offset: int, partition: int = 0) -> Batch:
    e = ev(n)
    return Batch(
        events=[e],
        signals=[sig(e)],
        counts={("region=eu,cohort=a", "segment"): 5},
        states={f"p/logs/{partition}": b"state"},
        offsets={("logs", partition): offset},
        records=5,
        dead_letters=1,
    )


def test_a_zombie_is_fenced_and_nothing_of_its_batch_lands(store: HistoryStore) -> None:
    run = store.start_run("logs")
    store.claim("a", 1, [("logs", 0)])
    store.checkpoint(run, Batch(offsets={("logs", 0): 3}, records=3), [], fence=fence("a", 1, 0))
    store.claim("b", 2, [("logs", 0)])  # rebalance: b owns partition 0 in generation 2
    with pytest.raises(Fenced) as info:
        store.checkpoint(run, full_batch(1, 10), ["jsonl"], fence=fence("a", 1, 0))
    assert (info.value.partition, info.value.owner, info.value.writer) == (
        ("logs", 0),
        ("b", 2),
        ("a", 1),
    )
    assert "logs[0]" in str(info.value)
    assert "'b'" in str(info.value)
    assert isinstance(info.value, StoreError)
    assert store.offsets() == {("logs", 0): 3}
    assert store.history() == []
    assert store.segment_counts() == {}
    assert store.detector_states() == {}
    assert store.pending("jsonl") == []
    assert store.run(run)["records"] == 3
    assert store.run(run)["dead_letters"] == 0

    store.checkpoint(run, full_batch(1, 10), ["jsonl"], fence=fence("b", 2, 0))
    assert store.offsets() == {("logs", 0): 10}
    assert store.segment_counts() == {"region=eu,cohort=a": 5}
    assert len(store.pending("jsonl")) == 1


def test_the_fence_covers_the_batch_offsets_and_needs_an_owner_row(store: HistoryStore) -> None:
    run = store.start_run("logs")
    store.claim("a", 1, [("logs", 0)])
    with pytest.raises(Fenced, match=r"logs\[1\] is owned by no member") as info:
        # partition 1 is in the batch's offsets but not owned by anyone
        store.checkpoint(
            run, Batch(offsets={("logs", 0): 1, ("logs", 1): 1}), [], fence=fence("a", 1, 0)
        )
    assert info.value.owner is None
    with pytest.raises(Fenced):  # a partition of the fence itself that a is not owner of
        store.checkpoint(run, Batch(), [], fence=fence("a", 1, 0, 2))
    with pytest.raises(Fenced):  # the right member in the wrong generation
        store.checkpoint(run, Batch(offsets={("logs", 0): 1}), [], fence=fence("a", 2, 0))
    assert store.offsets() == {}
    store.checkpoint(run, Batch(offsets={("logs", 0): 1}), [])  # no fence: unchecked (one process)
    assert store.offsets() == {("logs", 0): 1}


def test_claim_takes_older_generations_and_never_goes_back(store: HistoryStore) -> None:
    store.claim("a", 5, [("logs", 0), ("logs", 1)])
    store.claim("b", 4, [("logs", 0)])  # older generation: refused
    store.claim("b", 5, [("logs", 1)])  # same generation, other member: refused
    assert store.owners() == {("logs", 0): ("a", 5), ("logs", 1): ("a", 5)}
    store.claim("a", 7, [("logs", 0)])  # own row: generation moves up
    store.claim("a", 6, [("logs", 0)])  # ... never down
    store.claim("c", 6, [("logs", 1), ("other", 0)])
    assert store.owners() == {("logs", 0): ("a", 7), ("logs", 1): ("c", 6), ("other", 0): ("c", 6)}
    assert store.owners("other") == {("other", 0): ("c", 6)}
    store.release("a", 5, [("logs", 0)])  # a stale generation releases nothing
    store.release("a", 7, [("logs", 0), ("logs", 1)])  # partition 1 is c's: kept
    assert store.owners() == {("logs", 1): ("c", 6), ("other", 0): ("c", 6)}
    store.claim("a", 1, [])  # nothing to claim is fine
    store.release("a", 1, [])


# -- claimed delivery ---------------------------------------------------------------------


def halts(store: HistoryStore, n: int, sinks: list[str]) -> list[Signal]:
    run = store.start_run("logs")
    events = [ev(i) for i in range(1, n + 1)]
    out = [sig(e) for e in events]
    store.checkpoint(run, Batch(events=events, signals=out), sinks)
    return out


def test_claim_pending_hands_each_row_to_one_member_per_lease(store: HistoryStore) -> None:
    signals = halts(store, 5, ["jsonl", "kafka"])
    ids = [s.id for s in signals]
    first = store.claim_pending("jsonl", "a", 1000, now_ms=0, limit=3)
    assert [s.id for s in first] == ids[:3]
    assert first[0] == signals[0]
    second = store.claim_pending("jsonl", "b", 1000, now_ms=10)
    assert [s.id for s in second] == ids[3:]
    assert store.claim_pending("jsonl", "c", 1000, now_ms=999) == []
    assert [s.id for s in store.claim_pending("kafka", "c", 1000, now_ms=0)] == ids  # per sink
    # a's own rows stay a's (renewed); once delivered they are gone for everyone
    assert [s.id for s in store.claim_pending("jsonl", "a", 1000, now_ms=500)] == ids[:3]
    store.mark_delivered("jsonl", ids[:2])
    # b's lease ended at 1010: the expired rows go to whoever claims next, a's (renewed at 500,
    # until 1500) do not
    assert [s.id for s in store.claim_pending("jsonl", "c", 1000, now_ms=1010)] == ids[3:]
    # a's lease ends at 1500: c takes that row too, and renews its own
    assert [s.id for s in store.claim_pending("jsonl", "c", 1000, now_ms=1500)] == ids[2:]
    assert [s.id for s in store.pending("jsonl")] == ids[2:]  # the old API ignores claims


def enqueue(store: HistoryStore, *rows: tuple[str, str, str], now_ms: int = 0) -> None:
    store.enqueue(
        [
            {"notification_id": n, "receiver": r, "group_key": g, "payload": {"n": n}}
            for n, r, g in rows
        ],
        now_ms=now_ms,
    )


def ids_of(rows: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(r["notification_id"], r["receiver"]) for r in rows]


def test_enqueue_returns_only_the_new_notifications(store: HistoryStore) -> None:
    rows = [
        {"notification_id": "n1", "receiver": "pager", "group_key": "g", "payload": {}},
        {"notification_id": "n1", "receiver": "chat", "group_key": "g", "payload": {}},
    ]
    assert store.enqueue(rows[:1], now_ms=0) == ["n1"]
    assert store.enqueue(rows, now_ms=1) == ["n1"]  # only chat's row is new
    assert store.enqueue(rows, now_ms=2) == []
    assert store.known_notifications(["n1", "n9"], "chat") == {"n1"}


def retry_at(store: HistoryStore, notification_id: str, receiver: str, at_ms: int) -> None:
    store.save_deliveries(
        [
            {
                "notification_id": notification_id,
                "receiver": receiver,
                "state": "pending",
                "attempts": 1,
                "next_attempt_ms": at_ms,
            }
        ]
    )


def test_claim_due_notifications_claims_whole_queues(store: HistoryStore) -> None:
    enqueue(store, ("n1", "pager", "g1"), ("n2", "pager", "g2"), ("n1", "chat", "g1"), now_ms=0)
    enqueue(store, ("n3", "pager", "g1"), now_ms=5)
    retry_at(store, "n2", "pager", 100)  # pager/g2 is not due before 100
    retry_at(store, "n3", "pager", 10_000)  # not due, but behind n1 in its queue
    # queues by their oldest row: chat/g1, then pager/g1
    a = store.claim_due_notifications("a", 1000, now_ms=10, limit=1)
    assert ids_of(a) == [("n1", "chat")]
    assert a[0]["claimed_by"] == "a"
    assert a[0]["payload"] == {"n": "n1"}
    b = store.claim_due_notifications("b", 1000, now_ms=10)
    assert ids_of(b) == [("n1", "pager"), ("n3", "pager")]  # the whole queue; g2 not due
    assert store.claim_due_notifications("c", 1000, now_ms=20) == []
    a = store.claim_due_notifications("a", 1000, now_ms=100)
    assert ids_of(a) == [("n1", "chat"), ("n2", "pager")]  # renewed its own; g2 is due now
    # b delivered n1; n3 stays pending under b's lease, which a respects until it expires
    store.save_deliveries(
        [
            {
                "notification_id": "n1",
                "receiver": "pager",
                "state": "delivered",
                "attempts": 1,
                "next_attempt_ms": 10,
            }
        ]
    )
    retry_at(store, "n3", "pager", 500)
    assert ids_of(store.claim_due_notifications("a", 1000, now_ms=1009)) == [
        ("n1", "chat"),
        ("n2", "pager"),
    ]
    got = store.claim_due_notifications("a", 1000, now_ms=1010)  # b's lease is over
    assert ("n3", "pager") in ids_of(got)
    assert [r["notification_id"] for r in store.due_notifications(20_000)] == ["n1", "n2", "n3"]
    assert len(store.pending_notifications()) == 3  # the old API ignores claims


def test_json_and_lifecycle_columns_round_trip(store: HistoryStore) -> None:
    profile = {"signals": {"x": {"sample": [0.5, 1e-9, -3.25]}}, "nested": {"a": [1, "b"]}}
    store.save_profile("canary", 10, profile)
    store.save_profile("canary", 11, profile | {"v": 2})
    assert store.load_profile("canary") == profile | {"v": 2}
    assert [p["records"] for p in store.profiles()] == [11]
    run = store.start_run("logs", {"history": {"url": None}, "list": [1, 2]})
    assert store.run(run)["config"] == {"history": {"url": None}, "list": [1, 2]}
    e = ev(1)
    store.checkpoint(run, Batch(events=[e], signals=[sig(e)]), [])
    store.transition(e.segment, "ACK", "ana", "looking")
    row = store.signal_state(sig(e).id)
    assert row is not None
    assert row["state"] == "acknowledged"
    assert row["signal"] == sig(e)
    sid = store.add_silence([{"label": "region", "op": "=", "value": "eu"}], 0, 10**13, "ana", "x")
    assert [s["id"] for s in store.silences(active_at_ms=1)] == [sid]


def test_two_handles_on_one_store_share_it(store: HistoryStore, store_target: str) -> None:
    other = HistoryStore(store_target)
    try:
        run = store.start_run("logs")
        other.checkpoint(other.start_run("logs"), Batch(counts={("s", "segment"): 2}), [])
        store.checkpoint(run, Batch(counts={("s", "segment"): 3}), [])
        assert other.segment_counts() == {"s": 5} == store.segment_counts()
        assert other.revision == store.revision == "0004"
    finally:
        other.close()


# -- opening ------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_unreachable_postgres_is_one_line_naming_the_url_without_password() -> None:
    port = closed_port()
    with pytest.raises(StoreError) as info:
        HistoryStore(f"postgresql://dg:s3cret@127.0.0.1:{port}/drift", connect_timeout_s=2)
    msg = str(info.value)
    assert msg.startswith(
        f"cannot open the history store postgresql+psycopg://dg:***@127.0.0.1:{port}/drift:"
    )
    assert "s3cret" not in msg
    assert "\n" not in msg
    assert "check history.url" in msg


def test_from_settings_opens_the_url_or_the_path(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    by_path = HistoryStore.from_settings(HistorySettings(path=str(path)))
    by_path.checkpoint(by_path.start_run("x"), Batch(offsets={("x", 0): 4}), [])
    by_path.close()
    by_url = HistoryStore.from_settings(HistorySettings(url=f"sqlite:///{path}"))
    assert by_url.offsets() == {("x", 0): 4}
    assert by_url.location == str(path)
    by_url.close()
    with pytest.raises(StoreError, match="not mysql"):
        HistoryStore("mysql://db/drift")
