"""HistoryStore: the one place driftgate reads and writes its durable state.

One SQLite file (the default) or one PostgreSQL database shared by a fleet of driftgate
processes (``history.url``); the same queries for both (``monitor/store/database.py``). The
store migrates its database to this driftgate's schema when it opens and refuses one
written by a newer driftgate (``monitor/store/schema.py``).

The checkpoint is one transaction. In order:

0. with a :class:`~monitor.store.fencing.Fence`, before any write: check that the fence's
   member owns every partition of the fence and of the batch's offsets in its generation
   (owner rows locked on PostgreSQL); else raise ``Fenced`` and write nothing;
1. insert the batch's drift events and signals (ids are deterministic: a replayed batch
   inserts nothing twice);
2. add one outbox row per new signal and configured signal sink (pending delivery);
3. add the batch's record counts to every segment it touched (an atomic increment: two
   processes adding to one segment add up);
4. delete the detector states the batch drops, then write the serialized states it carries;
5. write the batch's roll-up window parts and delete the parts it consumed (a judged
   window's, see ``monitor/engine/windows.py``);
6. move the source offsets past the batch, with each partition's watermark;
7. add the batch's counters to the run.

Because offsets and everything derived from the records move together, a monitor that is
stopped or killed at any point resumes from the last checkpoint and processes every record
exactly once in the history. Delivery from the outbox happens after the commit; with
several processes, each claims what it delivers (:meth:`HistoryStore.claim_pending`,
:meth:`HistoryStore.claim_due_notifications`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, tuple_, update

from monitor.errors import StoreError
from monitor.events import DriftEvent, Level, Position, Signal, stable_id
from monitor.store import claims, fencing, schema
from monitor.store import tables as t
from monitor.store.database import Database, upsert
from monitor.store.fencing import Fence

if TYPE_CHECKING:
    from monitor.config import HistorySettings

__all__ = ["Batch", "HistoryFilter", "HistoryStore", "WindowPart"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _by_id(x: DriftEvent | Signal) -> str:
    return x.id


@dataclass(frozen=True, slots=True)
class WindowPart:
    """The summaries (an opaque blob) of one batch's ``records`` of one input partition in
    one (roll-up scope, event-time window); ``key`` is its identity in the store."""

    scope: str
    start_ms: int
    source: str
    partition: int
    first_offset: int
    records: int
    blob: bytes

    @property
    def key(self) -> tuple[str, int, str, int, int]:
        return (self.scope, self.start_ms, self.source, self.partition, self.first_offset)


@dataclass(slots=True)
class Batch:
    """Everything one batch of records produced, committed together by :meth:`checkpoint`."""

    events: list[DriftEvent] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (segment, scope) -> n
    states: dict[str, bytes] = field(default_factory=dict)  # state key -> detector state blob
    drop_states: list[str] = field(default_factory=list)  # state keys to delete (before states)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # -> next offset
    records: int = 0
    labels: int = 0
    dead_letters: int = 0
    late: int = 0  # records whose roll-up window had closed (used by their leaf only)
    window_parts: list[WindowPart] = field(default_factory=list)  # roll-up summaries to add
    consumed_parts: list[tuple[str, int, str, int, int]] = field(default_factory=list)
    # (source, partition) -> (watermark, wall ms heard): written with the partition's offset
    marks: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Filters of ``driftgate history`` (all optional; times in epoch ms, inclusive)."""

    region: str | None = None
    cohort: str | None = None
    signal: str | None = None
    kind: str | None = None  # drift | WARN | HALT
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int | None = None


def _position(row: Any) -> Position:
    return Position(row.source, row.partition, row.offset)


def _signal_from_row(row: Any) -> Signal:
    return Signal(
        level=Level(row.level),
        segment=row.segment,
        scope=row.scope,
        labels=dict(row.labels),
        reason=row.reason,
        evidence=tuple(row.evidence),
        ts_ms=row.ts_ms,
        position=_position(row),
        id=row.id,
        signal=row.signal,
    )


def _event_from_row(row: Any) -> DriftEvent:
    return DriftEvent(
        segment=row.segment,
        scope=row.scope,
        labels=dict(row.labels),
        signal=row.signal,
        detector=row.detector,
        effect=row.effect,
        before=row.before,
        after=row.after,
        scale=row.scale,
        observations=row.observations,
        ts_ms=row.ts_ms,
        position=_position(row),
        id=row.id,
    )


class HistoryStore:
    """The drift history in SQLite or PostgreSQL.

    ``target`` is a database URL (``postgresql://user@host:5432/db``, ``sqlite:///file``)
    or the path of a SQLite file; :meth:`from_settings` opens ``history.url`` /
    ``history.path``. Opening migrates the database to this driftgate's schema.

    >>> import tempfile, os
    >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
    >>> run = store.start_run("demo")
    >>> store.checkpoint(run, Batch(offsets={("demo", 0): 10}, records=10), sinks=[])
    >>> store.offsets()
    {('demo', 0): 10}
    >>> store.close()
    """

    def __init__(self, target: str | Path, *, connect_timeout_s: float = 10.0) -> None:
        self._db = Database(target, connect_timeout_s=connect_timeout_s)
        #: where the history is, as people name it: the SQLite file or the masked URL
        self.location = self._db.location
        self.path = self.location  # the name older callers use in messages
        self.dialect = self._db.dialect
        try:
            self._db.ping()
            self.revision = schema.upgrade(self._db)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def from_settings(cls, settings: HistorySettings) -> HistoryStore:
        """The store ``history.url`` (or ``history.path``) names.

        >>> import tempfile, os
        >>> from monitor.config import HistorySettings
        >>> path = os.path.join(tempfile.mkdtemp(), "h.db")
        >>> store = HistoryStore.from_settings(HistorySettings(path=path))
        >>> store.location == path, store.dialect, store.revision
        (True, 'sqlite', '0004')
        >>> store.close()
        """
        return cls(settings.database_url(), connect_timeout_s=settings.connect_timeout_s)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for read-only query modules (API, dashboards)."""
        return self._db.engine

    def ping(self) -> None:
        """Connect once; the one-line ``StoreError`` of a store that cannot be reached."""
        self._db.ping()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Connection]:
        with self._db.tx(write=write) as conn:
            yield conn

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, source: str, config: dict[str, Any] | None = None) -> str:
        run_id = uuid.uuid4().hex
        with self._tx(write=True) as conn:
            conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    source=source,
                    started_at=_now_ms(),
                    status="running",
                    records=0,
                    dead_letters=0,
                    late=0,
                    drift_events=0,
                    signals=0,
                    config=config,
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(status=status, ended_at=_now_ms())
            )

    def run(self, run_id: str) -> dict[str, Any]:
        with self._tx() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).one()
        return dict(row._mapping)

    # -- checkpoint ---------------------------------------------------------------------------

    def checkpoint(
        self, run_id: str, batch: Batch, sinks: Iterable[str], fence: Fence | None = None
    ) -> None:
        """Commit one batch atomically (see the module docstring for the steps).

        With ``fence``, the batch is written only if ``fence.member`` owns, in
        ``fence.generation``, every partition of ``fence.partitions`` and of
        ``batch.offsets`` (:meth:`claim`); otherwise ``Fenced`` is raised and nothing of the
        batch is written. Rows are written in key order, so concurrent checkpoints of one
        PostgreSQL database lock shared rows (roll-up counts) in the same order.

        >>> import tempfile, os
        >>> from monitor.errors import Fenced
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> run = store.start_run("logs")
        >>> store.claim("member-a", 1, [("logs", 0)])
        >>> store.claim("member-b", 2, [("logs", 0)])  # a rebalance: b owns it now
        >>> zombie = Fence("member-a", 1, frozenset({("logs", 0)}))
        >>> try:
        ...     store.checkpoint(run, Batch(offsets={("logs", 0): 5}), [], fence=zombie)
        ... except Fenced as exc:
        ...     print(exc.partition, exc.owner, exc.writer)
        ('logs', 0) ('member-b', 2) ('member-a', 1)
        >>> store.offsets()
        {}
        >>> owner = Fence("member-b", 2, frozenset({("logs", 0)}))
        >>> store.checkpoint(run, Batch(offsets={("logs", 0): 5}), [], fence=owner)
        >>> store.offsets()
        {('logs', 0): 5}
        >>> store.close()
        """
        sinks = list(sinks)
        with self._tx(write=True) as conn:
            if fence is not None:
                fencing.check(conn, fence, batch.offsets)
            if batch.events:
                conn.execute(
                    upsert(conn, t.drift_events).on_conflict_do_nothing(),
                    [self._event_row(run_id, e) for e in sorted(batch.events, key=_by_id)],
                )
            if batch.signals:
                # In decision order, each new signal supersedes the one in force for its scope
                # (a WARN and the HALT that follows it in one batch: the HALT stays in force).
                # A signal already stored (a replayed batch) supersedes nothing again.
                for s in batch.signals:
                    inserted = conn.execute(  # RETURNING: an INSERT's rowcount is -1 on PG
                        upsert(conn, t.signals)
                        .values(self._signal_row(run_id, s))
                        .on_conflict_do_nothing()
                        .returning(t.signals.c.id)
                    ).first()
                    if inserted is None:
                        continue
                    conn.execute(
                        update(t.signals)
                        .where(
                            and_(
                                t.signals.c.segment == s.segment,
                                t.signals.c.id != s.id,
                                t.signals.c.active == 1,
                            )
                        )
                        .values(
                            active=0, state="superseded", ended_at=_now_ms(), ended_by="driftgate"
                        )
                    )
                if sinks:
                    conn.execute(
                        upsert(conn, t.outbox).on_conflict_do_nothing(),
                        [
                            {"signal_id": s.id, "sink": k, "delivered_at": None}
                            for s in sorted(batch.signals, key=_by_id)
                            for k in sorted(sinks)
                        ],
                    )
            if batch.counts:
                stmt = upsert(conn, t.segment_counts)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["segment"],
                        set_={"records": t.segment_counts.c.records + stmt.excluded.records},
                    ),
                    [
                        {"segment": seg, "scope": scope, "records": n}
                        for (seg, scope), n in sorted(batch.counts.items())
                    ],
                )
            if batch.drop_states:
                conn.execute(
                    delete(t.detector_state).where(
                        t.detector_state.c.segment.in_(sorted(set(batch.drop_states)))
                    )
                )
            if batch.states:
                stmt = upsert(conn, t.detector_state)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["segment"], set_={"blob": stmt.excluded.blob}
                    ),
                    [{"segment": key, "blob": blob} for key, blob in sorted(batch.states.items())],
                )
            if batch.consumed_parts:
                wp = t.window_parts
                for key in sorted(batch.consumed_parts):
                    conn.execute(
                        delete(wp).where(
                            tuple_(
                                wp.c.scope,
                                wp.c.start_ms,
                                wp.c.source,
                                wp.c.partition,
                                wp.c.first_offset,
                            )
                            == tuple_(*key)
                        )
                    )
            if batch.window_parts:
                stmt = upsert(conn, t.window_parts)
                conn.execute(
                    stmt.on_conflict_do_nothing(),  # a replayed batch adds nothing twice
                    [
                        {
                            "scope": w.scope,
                            "start_ms": w.start_ms,
                            "source": w.source,
                            "partition": w.partition,
                            "first_offset": w.first_offset,
                            "records": w.records,
                            "blob": w.blob,
                        }
                        for w in sorted(batch.window_parts, key=lambda w: w.key)
                    ],
                )
            if batch.offsets:
                stmt = upsert(conn, t.offsets)
                marks = batch.marks
                plain = [k for k in sorted(batch.offsets) if k not in marks]
                marked = [k for k in sorted(batch.offsets) if k in marks]
                if plain:
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["source", "partition"],
                            set_={"next_offset": stmt.excluded.next_offset},
                        ),
                        [
                            {"source": s, "partition": p, "next_offset": batch.offsets[(s, p)]}
                            for s, p in plain
                        ],
                    )
                if marked:
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["source", "partition"],
                            set_={
                                "next_offset": stmt.excluded.next_offset,
                                "mark_ms": stmt.excluded.mark_ms,
                                "heard_ms": stmt.excluded.heard_ms,
                            },
                        ),
                        [
                            {
                                "source": s,
                                "partition": p,
                                "next_offset": batch.offsets[(s, p)],
                                "mark_ms": marks[(s, p)][0],
                                "heard_ms": marks[(s, p)][1],
                            }
                            for s, p in marked
                        ],
                    )
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(
                    records=t.runs.c.records + batch.records,
                    dead_letters=t.runs.c.dead_letters + batch.dead_letters,
                    late=t.runs.c.late + batch.late,
                    drift_events=t.runs.c.drift_events + len(batch.events),
                    signals=t.runs.c.signals + len(batch.signals),
                )
            )

    # -- partition ownership (a fleet on one database; see monitor/store/fencing.py) ------

    def claim(self, member: str, generation: int, partitions: Iterable[tuple[str, int]]) -> None:
        """Record ``member`` as the owner of ``partitions`` in group ``generation``.

        Call it when the consumer group assigns partitions, before the first checkpoint
        with the new :class:`Fence`. A partition is taken if its stored generation is older
        or it is already ``member``'s (then its generation moves up); one held by a newer
        generation is left to it, and this member's fenced checkpoints of it fail.
        """
        with self._tx(write=True) as conn:
            fencing.claim(conn, member, generation, partitions, _now_ms())

    def release(self, member: str, generation: int, partitions: Iterable[tuple[str, int]]) -> None:
        """Give up ``partitions`` on a clean revocation: delete the owner rows still held
        by (``member``, ``generation``), leaving any a newer owner already took."""
        with self._tx(write=True) as conn:
            fencing.release(conn, member, generation, partitions)

    def owners(self, source: str | None = None) -> dict[tuple[str, int], tuple[str, int]]:
        """(source, partition) -> (member, generation) of every owned partition.

        >>> import tempfile, os
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> store.claim("a", 3, [("logs", 0), ("logs", 1)])
        >>> store.claim("b", 2, [("logs", 1)])  # an older generation takes nothing
        >>> store.release("a", 3, [("logs", 0)])
        >>> store.owners()
        {('logs', 1): ('a', 3)}
        >>> store.close()
        """
        with self._tx() as conn:
            return fencing.owners(conn, source)

    @staticmethod
    def _event_row(run_id: str, e: DriftEvent) -> dict[str, Any]:
        return {
            "id": e.id,
            "run_id": run_id,
            "segment": e.segment,
            "scope": e.scope,
            "region": e.labels.get("region"),
            "cohort": e.labels.get("cohort"),
            "labels": e.labels,
            "signal": e.signal,
            "detector": e.detector,
            "effect": e.effect,
            "before": e.before,
            "after": e.after,
            "scale": e.scale,
            "observations": e.observations,
            "ts_ms": e.ts_ms,
            "source": e.position.source,
            "partition": e.position.partition,
            "offset": e.position.offset,
        }

    @staticmethod
    def _signal_row(run_id: str, s: Signal) -> dict[str, Any]:
        return {
            "id": s.id,
            "run_id": run_id,
            "level": s.level.value,
            "segment": s.segment,
            "scope": s.scope,
            "region": s.labels.get("region"),
            "cohort": s.labels.get("cohort"),
            "labels": s.labels,
            "reason": s.reason,
            "signal": s.signal,
            "evidence": list(s.evidence),
            "ts_ms": s.ts_ms,
            "source": s.position.source,
            "partition": s.position.partition,
            "offset": s.position.offset,
            "active": 1,
            "state": "active",
        }

    # -- restore ------------------------------------------------------------------------------

    def offsets(self, source: str | None = None) -> dict[tuple[str, int], int]:
        """Next offset to read per (source, partition), optionally for one source."""
        q = select(t.offsets)
        if source is not None:
            q = q.where(t.offsets.c.source == source)
        with self._tx() as conn:
            return {(r.source, r.partition): r.next_offset for r in conn.execute(q)}

    def window_marks(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(source, partition) -> (watermark, wall ms its owner last checkpointed records of
        it), for every partition with a checkpointed watermark."""
        o = t.offsets
        q = select(o.c.source, o.c.partition, o.c.mark_ms, o.c.heard_ms).where(
            o.c.mark_ms.is_not(None)
        )
        with self._tx() as conn:
            return {
                (r.source, r.partition): (int(r.mark_ms), int(r.heard_ms or 0))
                for r in conn.execute(q)
            }

    def window_parts(self, start_below_ms: int) -> list[WindowPart]:
        """The stored roll-up window parts of windows starting before ``start_below_ms``, in
        key order.

        >>> import tempfile, os
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> run = store.start_run("logs")
        >>> parts = [WindowPart("*", start, "logs", 0, off, 3, b"") for start, off in
        ...          [(0, 0), (0, 3), (30_000, 6)]]
        >>> store.checkpoint(run, Batch(window_parts=parts, offsets={("logs", 0): 9},
        ...                             marks={("logs", 0): (31_000, 5)}), [])
        >>> [(p.start_ms, p.first_offset) for p in store.window_parts(30_000)]
        [(0, 0), (0, 3)]
        >>> store.checkpoint(run, Batch(consumed_parts=[parts[0].key]), [])
        >>> [p.first_offset for p in store.window_parts(60_000)], store.window_marks()
        ([3, 6], {('logs', 0): (31000, 5)})
        >>> store.close()
        """
        wp = t.window_parts
        q = (
            select(wp)
            .where(wp.c.start_ms < start_below_ms)
            .order_by(wp.c.scope, wp.c.start_ms, wp.c.source, wp.c.partition, wp.c.first_offset)
        )
        with self._tx() as conn:
            return [
                WindowPart(
                    r.scope,
                    int(r.start_ms),
                    r.source,
                    int(r.partition),
                    int(r.first_offset),
                    int(r.records),
                    bytes(r.blob),
                )
                for r in conn.execute(q)
            ]

    def detector_states(self, prefix: str | None = None) -> dict[str, bytes]:
        """Stored detector states by key; with ``prefix``, only the keys starting with it
        (exactly: case and ``%``/``_`` count as written).

        >>> import tempfile, os
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> run = store.start_run("logs")
        >>> store.checkpoint(run, Batch(states={"p/logs/0": b"a", "p/logs/1": b"b",
        ...                                     "rollup/global": b"c"}), [])
        >>> sorted(store.detector_states("p/logs/"))
        ['p/logs/0', 'p/logs/1']
        >>> store.checkpoint(run, Batch(drop_states=["p/logs/0"], states={"p/logs/2": b"d"}), [])
        >>> sorted(store.detector_states())
        ['p/logs/1', 'p/logs/2', 'rollup/global']
        >>> store.close()
        """
        d = t.detector_state
        q = select(d)
        if prefix is not None:
            q = q.where(func.substr(d.c.segment, 1, len(prefix)) == prefix)
        with self._tx() as conn:
            return {r.segment: bytes(r.blob) for r in conn.execute(q)}

    def active_signals(self) -> list[Signal]:
        q = select(t.signals).where(t.signals.c.active == 1).order_by(t.signals.c.ts_ms)
        with self._tx() as conn:
            return [_signal_from_row(r) for r in conn.execute(q)]

    # -- outbox -------------------------------------------------------------------------------

    def pending(self, sink: str) -> list[Signal]:
        """Signals not yet delivered to ``sink``, oldest first."""
        q = (
            select(t.signals)
            .join(t.outbox, t.outbox.c.signal_id == t.signals.c.id)
            .where(and_(t.outbox.c.sink == sink, t.outbox.c.delivered_at.is_(None)))
            .order_by(t.signals.c.ts_ms, t.signals.c.id)
        )
        with self._tx() as conn:
            return [_signal_from_row(r) for r in conn.execute(q)]

    def claim_pending(
        self, sink: str, member: str, lease_ms: int, now_ms: int, *, limit: int = 500
    ) -> list[Signal]:
        """Claim up to ``limit`` signals not yet delivered to ``sink`` for ``member`` until
        ``now_ms + lease_ms``, oldest first: those unclaimed, already ``member``'s (the lease
        is renewed) or whose lease has expired. Two members never hold one row at once (see
        ``monitor/store/claims.py``); deliver them, then :meth:`mark_delivered`.

        >>> import tempfile, os
        >>> from monitor.events import Level, Position, Signal
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> run = store.start_run("logs")
        >>> halt = Signal(Level.HALT, "region=eu", "region", {"region": "eu"}, "x rose",
        ...               ("event-1",), 1000, Position("logs", 0, 7))
        >>> store.checkpoint(run, Batch(signals=[halt]), sinks=["jsonl"])
        >>> [s.id == halt.id for s in store.claim_pending("jsonl", "a", 30_000, now_ms=0)]
        [True]
        >>> store.claim_pending("jsonl", "b", 30_000, now_ms=10_000)  # a's lease holds
        []
        >>> len(store.claim_pending("jsonl", "b", 30_000, now_ms=30_000))  # expired: b's now
        1
        >>> store.close()
        """
        with self._tx(write=True) as conn:
            ids = claims.claim_signals(conn, sink, member, lease_ms, now_ms, limit)
            if not ids:
                return []
            q = select(t.signals).where(t.signals.c.id.in_(ids))
            rows = conn.execute(q.order_by(t.signals.c.ts_ms, t.signals.c.id))
            return [_signal_from_row(r) for r in rows]

    def mark_delivered(self, sink: str, signal_ids: Iterable[str]) -> None:
        ids = list(signal_ids)
        if not ids:
            return
        with self._tx(write=True) as conn:
            conn.execute(
                update(t.outbox)
                .where(and_(t.outbox.c.sink == sink, t.outbox.c.signal_id.in_(ids)))
                .values(delivered_at=_now_ms())
            )

    # -- notifications outbox (router) --------------------------------------------------------

    def enqueue(self, rows: list[dict[str, Any]], now_ms: int | None = None) -> list[str]:
        """Insert planned notifications (``notification_id``, ``receiver``, ``group_key``,
        ``payload``), created and due at ``now_ms`` (default: the wall clock); those already
        known are ignored. Returns the ids that were new."""
        if not rows:
            return []
        now = _now_ms() if now_ms is None else now_ms
        new: list[str] = []
        with self._tx(write=True) as conn:
            for r in rows:
                res = conn.execute(
                    upsert(conn, t.notifications)
                    .values(**r, created_ms=now, state="pending", attempts=0, next_attempt_ms=now)
                    .on_conflict_do_nothing()
                    .returning(t.notifications.c.notification_id)
                ).first()
                if res is not None:
                    new.append(r["notification_id"])
        return new

    def known_notifications(self, ids: Iterable[str], receiver: str) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        q = select(t.notifications.c.notification_id).where(
            and_(t.notifications.c.receiver == receiver, t.notifications.c.notification_id.in_(ids))
        )
        with self._tx() as conn:
            return {r.notification_id for r in conn.execute(q)}

    def notified_groups(self, group_keys: Iterable[str], receiver: str) -> set[str]:
        """The groups among ``group_keys`` that ``receiver`` already has a notification of."""
        keys = list(group_keys)
        if not keys:
            return set()
        q = (
            select(t.notifications.c.group_key)
            .where(
                and_(t.notifications.c.receiver == receiver, t.notifications.c.group_key.in_(keys))
            )
            .distinct()
        )
        with self._tx() as conn:
            return {r.group_key for r in conn.execute(q)}

    def due_notifications(self, now_ms: int) -> list[dict[str, Any]]:
        """Pending notifications whose next attempt is due, oldest first."""
        q = (
            select(t.notifications)
            .where(
                and_(
                    t.notifications.c.state == "pending",
                    t.notifications.c.next_attempt_ms <= now_ms,
                )
            )
            .order_by(
                t.notifications.c.created_ms,
                t.notifications.c.group_key,
                t.notifications.c.notification_id,
            )
        )
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def claim_due_notifications(
        self, member: str, lease_ms: int, now_ms: int, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Claim for ``member`` until ``now_ms + lease_ms`` every pending row of up to
        ``limit`` delivery queues (receiver, group key) with a row due at ``now_ms`` and no
        row under another member's live lease; return the claimed rows, oldest first, in the
        shape of :meth:`pending_notifications` (what the delivery engine takes). A whole
        queue is claimed because its rows go out oldest first. Write the outcome back with
        :meth:`save_deliveries`.

        >>> import tempfile, os
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> _ = store.enqueue([{"notification_id": n, "receiver": "pager", "group_key": "g",
        ...                     "payload": {}} for n in ("n1", "n2")], now_ms=0)
        >>> [r["notification_id"] for r in store.claim_due_notifications("a", 60_000, 0)]
        ['n1', 'n2']
        >>> store.claim_due_notifications("b", 60_000, 1_000)  # a holds the queue
        []
        >>> store.close()
        """
        with self._tx(write=True) as conn:
            return claims.claim_notifications(conn, member, lease_ms, now_ms, limit)

    def record_delivery(
        self,
        notification_id: str,
        receiver: str,
        *,
        state: str,
        attempts: int,
        next_attempt_ms: int,
        last_error: str | None,
    ) -> None:
        values: dict[str, Any] = {
            "state": state,
            "attempts": attempts,
            "next_attempt_ms": next_attempt_ms,
            "last_error": last_error,
        }
        if state == "delivered":
            values["delivered_ms"] = _now_ms()
        with self._tx(write=True) as conn:
            conn.execute(
                update(t.notifications)
                .where(
                    and_(
                        t.notifications.c.notification_id == notification_id,
                        t.notifications.c.receiver == receiver,
                    )
                )
                .values(**values)
            )

    def last_event_ms(self) -> dict[str, int]:
        """Record time of the latest drift event of every segment that had one."""
        e = t.drift_events
        q = select(e.c.segment, func.max(e.c.ts_ms)).group_by(e.c.segment)
        with self._tx() as conn:
            return {seg: int(ts) for seg, ts in conn.execute(q)}

    def pending_notifications(self) -> list[dict[str, Any]]:
        """Every pending outbox row (due or not, with its payload), oldest first.

        The delivery engine needs all of them, not only the due ones: a row waits behind an
        older pending row of its group even when its own time has come."""
        q = (
            select(t.notifications)
            .where(t.notifications.c.state == "pending")
            .order_by(t.notifications.c.created_ms, t.notifications.c.notification_id)
        )
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def save_deliveries(self, rows: list[dict[str, Any]]) -> None:
        """Persist outbox rows the delivery engine changed or created, in one transaction.

        A row for a (notification, receiver) pair not yet stored (a fallback hand-off) is
        inserted with the payload of the same notification's existing row."""
        if not rows:
            return
        n = t.notifications
        with self._tx(write=True) as conn:
            for r in rows:
                key = and_(
                    n.c.notification_id == r["notification_id"], n.c.receiver == r["receiver"]
                )
                values = {k: v for k, v in r.items() if k not in ("notification_id", "receiver")}
                if conn.execute(update(n).where(key).values(**values)).rowcount:
                    continue
                payload = conn.execute(
                    select(n.c.payload).where(n.c.notification_id == r["notification_id"]).limit(1)
                ).scalar_one()
                conn.execute(upsert(conn, n).values(**r, payload=payload).on_conflict_do_nothing())

    def notifications(self, receiver: str | None = None) -> list[dict[str, Any]]:
        q = select(t.notifications).order_by(t.notifications.c.created_ms)
        if receiver is not None:
            q = q.where(t.notifications.c.receiver == receiver)
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- lifecycle: acknowledge, resume, resolve ----------------------------------------------

    def signal_states(
        self, include_ended: bool = False, ended_since_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Signals with their lifecycle columns (state, acked_by…), oldest first.

        By default only those in force (active or acknowledged); ``include_ended`` adds the
        ended ones — with ``ended_since_ms``, only those that ended at or after it.
        """
        s = t.signals
        q = select(s).order_by(s.c.ts_ms, s.c.id)
        if not include_ended:
            q = q.where(s.c.active == 1)
        elif ended_since_ms is not None:
            q = q.where(or_(s.c.active == 1, s.c.ended_at >= ended_since_ms))
        with self._tx() as conn:
            rows = conn.execute(q).all()
        out = []
        for r in rows:
            m = dict(r._mapping)
            m["signal"] = _signal_from_row(r)
            out.append(m)
        return out

    def _in_force(self, conn: Connection, target: str) -> Any:
        """The signal in force for a scope key or with this signal id, or None."""
        q = select(t.signals).where(
            and_(
                t.signals.c.active == 1,
                (t.signals.c.segment == target) | (t.signals.c.id == target),
            )
        )
        return conn.execute(q).first()

    def transition(self, target: str, kind: str, actor: str, comment: str) -> dict[str, Any]:
        """Record a lifecycle step for the signal in force for ``target`` (scope or signal id).

        ``ACK``: a person owns it (it stays in force). ``RESUMED``: a person lifts it.
        ``RESOLVED``: lifted automatically (auto-resolve). Raises StoreError when no signal
        is in force for ``target``.
        """
        if kind not in ("ACK", "RESUMED", "RESOLVED"):
            raise ValueError(f"unknown transition {kind!r}")
        now = _now_ms()
        with self._tx(write=True) as conn:
            row = self._in_force(conn, target)
            if row is None:
                raise StoreError(
                    f"no signal in force for {target!r} (see `driftgate status` for scopes)"
                )
            tid = stable_id("transition", row.id, kind, actor, now)
            conn.execute(
                t.transitions.insert().values(
                    id=tid,
                    signal_id=row.id,
                    segment=row.segment,
                    kind=kind,
                    actor=actor,
                    comment=comment,
                    at_ms=now,
                )
            )
            if kind == "ACK":
                values: dict[str, Any] = {
                    "state": "acknowledged",
                    "acked_by": actor,
                    "acked_at": now,
                    "ack_comment": comment,
                }
            else:
                values = {
                    "state": kind.lower(),
                    "active": 0,
                    "ended_by": actor,
                    "ended_at": now,
                    "end_comment": comment,
                }
            conn.execute(update(t.signals).where(t.signals.c.id == row.id).values(**values))
        return {
            "id": tid,
            "signal_id": row.id,
            "segment": row.segment,
            "kind": kind,
            "actor": actor,
            "comment": comment,
            "at_ms": now,
        }

    def transitions(self, signal_id: str | None = None) -> list[dict[str, Any]]:
        q = select(t.transitions).order_by(t.transitions.c.at_ms, t.transitions.c.id)
        if signal_id is not None:
            q = q.where(t.transitions.c.signal_id == signal_id)
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- silences ---------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: list[dict[str, str]],
        starts_ms: int,
        ends_ms: int,
        author: str,
        comment: str,
    ) -> str:
        if ends_ms <= starts_ms:
            raise StoreError("a silence must end after it starts")
        sid = uuid.uuid4().hex
        with self._tx(write=True) as conn:
            conn.execute(
                t.silences.insert().values(
                    id=sid,
                    matchers=matchers,
                    starts_ms=starts_ms,
                    ends_ms=ends_ms,
                    author=author,
                    comment=comment,
                    created_ms=_now_ms(),
                )
            )
        return sid

    def expire_silence(self, silence_id: str) -> None:
        now = _now_ms()
        with self._tx(write=True) as conn:
            res = conn.execute(
                update(t.silences)
                .where(and_(t.silences.c.id == silence_id, t.silences.c.ends_ms > now))
                .values(ends_ms=now)
            )
            if res.rowcount == 0:
                raise StoreError(f"no active silence {silence_id!r}")

    def silences(self, active_at_ms: int | None = None) -> list[dict[str, Any]]:
        """Silences, newest first; only those active at ``active_at_ms`` when given."""
        q = select(t.silences).order_by(t.silences.c.created_ms.desc())
        if active_at_ms is not None:
            q = q.where(
                and_(t.silences.c.starts_ms <= active_at_ms, t.silences.c.ends_ms > active_at_ms)
            )
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- reference profiles ---------------------------------------------------------------

    def save_profile(self, name: str, records: int, profile: dict[str, Any]) -> None:
        """Store (or replace) the named reference profile."""
        with self._tx(write=True) as conn:
            stmt = upsert(conn, t.reference_profiles).values(
                name=name, created_at=_now_ms(), records=records, profile=profile
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"],
                    set_={
                        "created_at": stmt.excluded.created_at,
                        "records": stmt.excluded.records,
                        "profile": stmt.excluded.profile,
                    },
                )
            )

    def load_profile(self, name: str) -> dict[str, Any] | None:
        q = select(t.reference_profiles.c.profile).where(t.reference_profiles.c.name == name)
        with self._tx() as conn:
            row = conn.execute(q).one_or_none()
        return dict(row.profile) if row is not None else None

    def profiles(self) -> list[dict[str, Any]]:
        """Name, creation time and record count of every stored profile."""
        q = select(
            t.reference_profiles.c.name,
            t.reference_profiles.c.created_at,
            t.reference_profiles.c.records,
        ).order_by(t.reference_profiles.c.name)
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- queries ------------------------------------------------------------------------------

    def history(self, f: HistoryFilter = HistoryFilter()) -> list[DriftEvent | Signal]:
        """Drift events and signals matching ``f``, oldest first."""
        out: list[DriftEvent | Signal] = []
        with self._tx() as conn:
            if f.kind in (None, "drift"):
                q = select(t.drift_events)
                q = q.where(*self._where(t.drift_events, f))
                if f.signal:
                    q = q.where(t.drift_events.c.signal == f.signal)
                out.extend(_event_from_row(r) for r in conn.execute(q))
            if f.kind in (None, "WARN", "HALT"):
                q = select(t.signals).where(*self._where(t.signals, f))
                if f.kind:
                    q = q.where(t.signals.c.level == f.kind)
                rows = [_signal_from_row(r) for r in conn.execute(q)]
                if f.signal:  # a signal matches when one of its evidence events is on that signal
                    ev_ids = {
                        r.id
                        for r in conn.execute(
                            select(t.drift_events.c.id).where(t.drift_events.c.signal == f.signal)
                        )
                    }
                    rows = [s for s in rows if ev_ids.intersection(s.evidence)]
                out.extend(rows)
        out.sort(key=lambda x: (x.ts_ms, isinstance(x, Signal), x.id))
        return out[: f.limit] if f.limit else out

    @staticmethod
    def _where(table: Any, f: HistoryFilter) -> list[Any]:
        conds = []
        if f.region is not None:
            conds.append(table.c.region == f.region)
        if f.cohort is not None:
            conds.append(table.c.cohort == f.cohort)
        if f.since_ms is not None:
            conds.append(table.c.ts_ms >= f.since_ms)
        if f.until_ms is not None:
            conds.append(table.c.ts_ms <= f.until_ms)
        return conds

    def segment_counts(self) -> dict[str, int]:
        with self._tx() as conn:
            return {r.segment: r.records for r in conn.execute(select(t.segment_counts))}

    def totals(self) -> dict[str, int]:
        """Totals over every run: records, dead letters, late records, drift events,
        signals."""
        with self._tx() as conn:
            row = conn.execute(
                select(
                    func.coalesce(func.sum(t.runs.c.records), 0).label("records"),
                    func.coalesce(func.sum(t.runs.c.dead_letters), 0).label("dead_letters"),
                    func.coalesce(func.sum(t.runs.c.late), 0).label("late"),
                    func.count(t.runs.c.id).label("runs"),
                )
            ).one()
            n_events = conn.execute(select(func.count()).select_from(t.drift_events)).scalar_one()
            n_signals = conn.execute(select(func.count()).select_from(t.signals)).scalar_one()
        return {
            "runs": int(row.runs),
            "records": int(row.records),
            "dead_letters": int(row.dead_letters),
            "late": int(row.late),
            "drift_events": int(n_events),
            "signals": int(n_signals),
        }

    # -- queries for the HTTP API and operations (monitor/operations.py, monitor/api/) -------

    def signal_state(self, signal_id: str) -> dict[str, Any] | None:
        """One signal with its lifecycle columns (as in :meth:`signal_states`), or None."""
        with self._tx() as conn:
            row = conn.execute(select(t.signals).where(t.signals.c.id == signal_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["signal"] = _signal_from_row(row)
        return out

    def drift_effects(self, event_ids: Iterable[str]) -> dict[str, float]:
        """Effect (signed shift in sigmas) of each of these drift events that is stored."""
        ids = list(set(event_ids))
        if not ids:
            return {}
        q = select(t.drift_events.c.id, t.drift_events.c.effect).where(t.drift_events.c.id.in_(ids))
        with self._tx() as conn:
            return {r.id: float(r.effect) for r in conn.execute(q)}

    def segments(self) -> list[dict[str, Any]]:
        """Every segment that has seen records: ``segment``, ``scope``, ``records``."""
        q = select(t.segment_counts).order_by(t.segment_counts.c.segment)
        with self._tx() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def signal_counts(self) -> dict[str, int]:
        """Signals ever raised, per level (``WARN``, ``HALT``)."""
        q = select(t.signals.c.level, func.count().label("n")).group_by(t.signals.c.level)
        with self._tx() as conn:
            return {r.level: int(r.n) for r in conn.execute(q)}

    def given_up_notifications(self, limit: int | None = 50) -> list[dict[str, Any]]:
        """Outbox rows a receiver gave up on, newest first: ``notification_id``,
        ``receiver``, ``group_key``, ``state`` (``fallback``: handed to the receiver's
        fallback, which has its own row; ``failed``: delivered nowhere by this receiver),
        ``attempts``, ``reason`` (the last error) and ``given_up_ms``.

        >>> import tempfile, os
        >>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
        >>> _ = store.enqueue([{"notification_id": "n1", "receiver": "pager", "group_key": "g",
        ...                     "payload": {}}], now_ms=0)
        >>> store.save_deliveries([{"notification_id": "n1", "receiver": "pager",
        ...     "state": "failed", "attempts": 1, "next_attempt_ms": 5, "last_error": "HTTP 400"}])
        >>> [(r["receiver"], r["state"], r["reason"], r["given_up_ms"])
        ...  for r in store.given_up_notifications()]
        [('pager', 'failed', 'HTTP 400', 5)]
        """
        n = t.notifications
        q = (
            select(n)
            .where(n.c.state.in_(("failed", "fallback")))
            .order_by(n.c.next_attempt_ms.desc(), n.c.notification_id)
        )
        if limit is not None:
            q = q.limit(limit)
        with self._tx() as conn:
            rows = conn.execute(q).all()
        # a terminal row's next_attempt_ms is when it ended (monitor.sinks.delivery)
        return [
            {
                "notification_id": r.notification_id,
                "receiver": r.receiver,
                "group_key": r.group_key,
                "state": r.state,
                "attempts": r.attempts,
                "reason": r.last_error,
                "given_up_ms": r.next_attempt_ms,
            }
            for r in rows
        ]

    def notification_counts(self) -> dict[tuple[str, str], int]:
        """Notifications per (receiver, state): pending, delivered, failed, fallback."""
        q = select(
            t.notifications.c.receiver, t.notifications.c.state, func.count().label("n")
        ).group_by(t.notifications.c.receiver, t.notifications.c.state)
        with self._tx() as conn:
            return {(r.receiver, r.state): int(r.n) for r in conn.execute(q)}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes (kill -9)
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
