"""Several writers on one PostgreSQL history store at the same time, and the command line
on a ``history.url``.

Writers are threads with a HistoryStore each (own engine, own connections): their
transactions really interleave in the server. Every loop is bounded; nothing sleeps to
synchronise — threads start together at a barrier and the tests check invariants after
joining them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import Fenced, StoreError
from monitor.events import DriftEvent, Level, Position, Signal
from monitor.store import Batch, Fence, HistoryStore
from tests.factories import grid_stream, to_bytes
from tests.unit.test_cli import driftgate, write_jsonl

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def together(n: int, work: Callable[[int], None]) -> None:
    """Run ``work(0..n-1)`` in n threads released at once; re-raise the first failure."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=150)
    assert not any(th.is_alive() for th in threads), "a writer did not finish"
    if errors:
        raise errors[0]


def open_stores(url: str, n: int) -> list[HistoryStore]:
    return [HistoryStore(url) for _ in range(n)]


def signals(n: int) -> list[Signal]:
    out = []
    for i in range(n):
        e = DriftEvent(
            f"region=r{i % 7},cohort=c",
            "segment",
            {"region": f"r{i % 7}"},
            "feature:x",
            "cusum",
            2.0,
            0.0,
            2.0,
            1.0,
            100,
            1000 + i,
            Position("logs", i % 3, i),
        )
        out.append(
            Signal(Level.WARN, e.segment, e.scope, e.labels, "x", (e.id,), e.ts_ms, e.position)
        )
    return out


def test_segment_counts_from_concurrent_writers_add_up_exactly(postgres_url: str) -> None:
    writers, batches = 4, 40
    stores = open_stores(postgres_url, writers)
    try:
        runs = [s.start_run(f"member-{i}") for i, s in enumerate(stores)]

        def write(i: int) -> None:
            for b in range(batches):
                counts = {
                    ("global", "global"): 1,  # every writer, every batch: one hot row
                    ("region=eu", "region"): 2,
                    (f"region=eu,cohort={i}", "segment"): 3,  # this writer's own segment
                    (f"new-{b}", "segment"): 1,  # a row every writer creates at once
                }
                stores[i].checkpoint(
                    runs[i],
                    Batch(counts=counts, offsets={("logs", i): b + 1}, records=6),
                    [],
                )

        together(writers, write)
        got = stores[0].segment_counts()
        assert got["global"] == writers * batches
        assert got["region=eu"] == 2 * writers * batches
        for i in range(writers):
            assert got[f"region=eu,cohort={i}"] == 3 * batches
        for b in range(batches):
            assert got[f"new-{b}"] == writers
        assert stores[0].offsets() == {("logs", i): batches for i in range(writers)}
        assert stores[0].totals()["records"] == 6 * writers * batches
        assert stores[0].totals()["runs"] == writers
    finally:
        for s in stores:
            s.close()


def test_concurrent_claims_never_hand_one_outbox_row_to_two_members(postgres_url: str) -> None:
    members = 4
    stores = open_stores(postgres_url, members)
    try:
        sigs = signals(300)
        stores[0].checkpoint(stores[0].start_run("logs"), Batch(signals=sigs), ["jsonl"])
        claimed: list[list[str]] = [[] for _ in range(members)]

        def drain(i: int) -> None:
            for _ in range(500):  # bounded: 300 rows, at least one per round while any left
                got = stores[i].claim_pending("jsonl", f"m{i}", 600_000, now_ms=0, limit=7)
                if not got:
                    if not stores[i].pending("jsonl"):
                        return
                    continue  # the rest are being claimed by others right now
                claimed[i].extend(s.id for s in got)
                stores[i].mark_delivered("jsonl", [s.id for s in got])

        together(members, drain)
        flat = [sid for ids in claimed for sid in ids]
        assert len(flat) == len(set(flat)), "a row was handed to two members"
        assert set(flat) == {s.id for s in sigs}
        assert sum(1 for ids in claimed if ids) >= 2  # they really competed
    finally:
        for s in stores:
            s.close()


def test_concurrent_claims_never_hand_one_notification_queue_to_two_members(
    postgres_url: str,
) -> None:
    members, queues, per_queue = 4, 60, 3
    stores = open_stores(postgres_url, members)
    try:
        stores[0].enqueue(
            [
                {
                    "notification_id": f"n{q}-{k}",
                    "receiver": "pager" if q % 2 else "chat",
                    "group_key": f"g{q}",
                    "payload": {"q": q},
                }
                for q in range(queues)
                for k in range(per_queue)
            ],
            now_ms=0,
        )
        claimed: list[list[dict[str, Any]]] = [[] for _ in range(members)]

        def deliver(i: int) -> None:  # as a courier would: claim, send, record
            for _ in range(500):
                rows = stores[i].claim_due_notifications(f"m{i}", 600_000, now_ms=0, limit=5)
                if not rows:
                    if not stores[i].due_notifications(0):
                        return
                    continue  # the rest are being claimed by others right now
                claimed[i].extend(rows)
                stores[i].save_deliveries(
                    [
                        {
                            "notification_id": r["notification_id"],
                            "receiver": r["receiver"],
                            "state": "delivered",
                            "attempts": 1,
                            "next_attempt_ms": 0,
                        }
                        for r in rows
                    ]
                )

        together(members, deliver)
        owner: dict[tuple[str, str], int] = {}
        seen: set[tuple[str, str]] = set()
        for i, rows in enumerate(claimed):
            for r in rows:
                key = (r["notification_id"], r["receiver"])
                assert key not in seen, f"{key} was handed to two members"
                seen.add(key)
                queue = (r["receiver"], r["group_key"])
                assert owner.setdefault(queue, i) == i, f"queue {queue} split between members"
        assert len(seen) == queues * per_queue
        assert sum(1 for rows in claimed if rows) >= 2  # they really competed
        assert stores[0].pending_notifications() == []
    finally:
        for s in stores:
            s.close()


def test_after_a_newer_generation_claims_no_zombie_checkpoint_lands(postgres_url: str) -> None:
    """Member a (generation 1) checkpoints partition 0 in a loop while member b takes it over
    in generation 2: a's batches land until b's claim commits, and none after."""
    a, b = open_stores(postgres_url, 2)
    try:
        a.claim("a", 1, [("logs", 0)])
        run_a, run_b = a.start_run("a"), b.start_run("b")
        landed: list[int] = []
        fenced: list[int] = []

        def member(i: int) -> None:
            if i == 0:
                fence = Fence("a", 1, frozenset({("logs", 0)}))
                for n in range(1, 5001):  # until refused a few times (bounded)
                    try:
                        a.checkpoint(
                            run_a,
                            Batch(offsets={("logs", 0): n}, counts={("s", "segment"): 1}),
                            [],
                            fence=fence,
                        )
                        landed.append(n)
                    except Fenced:
                        fenced.append(n)
                        if len(fenced) == 5:
                            return
            else:
                for _ in range(5000):  # let a land some batches first (bounded poll)
                    if len(landed) >= 20:
                        break
                    threading.Event().wait(0.001)
                b.claim("b", 2, [("logs", 0)])

        together(2, member)
        assert fenced, "the zombie was never fenced"
        assert landed == list(range(1, len(landed) + 1))  # a prefix, then only refusals
        assert fenced == list(range(len(landed) + 1, len(landed) + 6))
        assert b.offsets() == {("logs", 0): len(landed)}
        assert b.segment_counts() == {"s": len(landed)}
        b.checkpoint(
            run_b,
            Batch(offsets={("logs", 0): 500}),
            [],
            fence=Fence("b", 2, frozenset({("logs", 0)})),
        )
        assert a.offsets() == {("logs", 0): 500}
    finally:
        a.close()
        b.close()


def test_a_missing_database_is_one_line(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError) as info:
        HistoryStore(url)
    assert 'database "no_such_db" does not exist' in str(info.value)
    assert "\n" not in str(info.value)


def test_run_status_history_and_db_on_a_postgres_url(postgres_url: str, tmp_path: Path) -> None:
    """The same stream into SQLite and into PostgreSQL gives the same history."""
    lines = to_bytes(grid_stream(700, shift_segment=("ap-south", "free"), shift_at=400))
    write_jsonl(tmp_path / "logs.jsonl", lines)
    (tmp_path / "driftgate.yaml").write_text(
        "detection:\n  warmup: 300\nrouter:\n  receivers:\n"
        "    - {name: file, kind: jsonl, path: notes.jsonl}\n"
        "  route: {receiver: file, group_by: [segment]}\n"
    )
    pg_url = postgres_url.replace("postgresql://", "postgres://")  # as people write it
    r = driftgate("db", "current", "--db", pg_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "revision —, no schema yet" in r.stdout
    for db in ("sqlite.db", pg_url):
        r = driftgate(
            "run", "--source", "file:logs.jsonl", "--no-progress", "--db", db, cwd=tmp_path
        )
        assert r.returncode == 0, r.stderr
        assert "HALT" in r.stdout
    histories = []
    for db in ("sqlite.db", pg_url):
        h = driftgate("history", "--json", "--db", db, cwd=tmp_path)
        assert h.returncode == 0, h.stderr
        histories.append([json.loads(line) for line in h.stdout.splitlines()])
    assert histories[0] == histories[1]
    assert any(row["kind"] == "HALT" for row in histories[1])
    statuses = []
    for db in ("sqlite.db", pg_url):
        st = driftgate("status", "--json", "--db", db, cwd=tmp_path)
        assert st.returncode == 0, st.stderr
        statuses.append(sorted(json.loads(line)["id"] for line in st.stdout.splitlines()))
    assert statuses[0] == statuses[1]
    assert statuses[1]  # signals in force
    notes = [json.loads(x) for x in (tmp_path / "notes.jsonl").read_text().splitlines()]
    assert len(notes) >= 2  # one run per store, each notified the file receiver
    r = driftgate("db", "current", "--json", "--db", pg_url, cwd=tmp_path)
    assert json.loads(r.stdout) | {"history": ""} == {
        "history": "",
        "revision": "0004",
        "head": "0004",
        "state": "current",
    }
    # the URL from the environment works the same, and a password never shows
    env = {"DRIFTGATE_HISTORY__URL": postgres_url.replace("postgres@", "postgres:hunter2@")}
    r = driftgate("db", "upgrade", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "hunter2" not in r.stdout + r.stderr
    assert "postgres:***@" in r.stdout
