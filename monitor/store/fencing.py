"""Partition ownership of a fleet sharing one history store, and the fence of a checkpoint.

Several driftgate processes (members of one Kafka consumer group) write one database, each
the partitions the group assigned it. After a rebalance a member that has not yet noticed
(a *zombie*: paused, partitioned from the broker) must not write the partitions it lost.
Each member therefore records what it owns in ``partition_owners`` with the group
*generation* of the assignment (Kafka generations only increase), and checkpoints with a
:class:`Fence`: inside the checkpoint's transaction, before any write, every partition of
the fence and of the batch's offsets must be owned by exactly (member, generation) — else
:class:`~monitor.errors.Fenced` and a rollback.

Race-free on PostgreSQL: the check reads the owner rows ``FOR UPDATE`` (in a fixed order),
and :func:`claim` upserts the same rows, so a claim by a newer generation waits for a
checkpoint in flight, and every checkpoint after it sees the new owner. On SQLite the
write transaction holds the database's write lock.

These functions work on a connection inside a transaction; ``HistoryStore.claim``,
``release`` and ``checkpoint(..., fence=)`` call them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, or_, select, tuple_

from monitor.errors import Fenced
from monitor.store import tables as t
from monitor.store.database import upsert

__all__ = ["Fence", "check", "claim", "owners", "release"]


@dataclass(frozen=True, slots=True)
class Fence:
    """Who writes a checkpoint: a group ``member``, its ``generation``, and the
    ``partitions`` (source, partition) it holds in that generation."""

    member: str
    generation: int
    partitions: frozenset[tuple[str, int]]


def claim(
    conn: Connection,
    member: str,
    generation: int,
    partitions: Iterable[tuple[str, int]],
    now_ms: int,
) -> None:
    """Take the owner row of each partition whose stored generation is older than
    ``generation``, or that is already ``member``'s (its generation then moves up to
    ``generation``; never down). A row held by a newer generation is left alone: the
    checkpoint of this member then fails with ``Fenced``."""
    rows = [
        {
            "source": s,
            "partition": p,
            "member": member,
            "generation": generation,
            "claimed_ms": now_ms,
        }
        for s, p in sorted(set(partitions))
    ]
    if not rows:
        return
    o = t.partition_owners
    stmt = upsert(conn, o)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source", "partition"],
            set_={
                "member": stmt.excluded.member,
                "generation": stmt.excluded.generation,
                "claimed_ms": stmt.excluded.claimed_ms,
            },
            where=or_(
                o.c.generation < stmt.excluded.generation,
                and_(
                    o.c.member == stmt.excluded.member, o.c.generation <= stmt.excluded.generation
                ),
            ),
        ),
        rows,
    )


def release(
    conn: Connection, member: str, generation: int, partitions: Iterable[tuple[str, int]]
) -> None:
    """Delete the owner rows of ``partitions`` still held by (``member``, ``generation``)."""
    keys = sorted(set(partitions))
    if not keys:
        return
    o = t.partition_owners
    conn.execute(
        delete(o).where(
            tuple_(o.c.source, o.c.partition).in_(keys),
            o.c.member == member,
            o.c.generation == generation,
        )
    )


def check(conn: Connection, fence: Fence, partitions: Iterable[tuple[str, int]]) -> None:
    """Raise ``Fenced`` unless ``fence`` owns every partition of ``fence.partitions`` and of
    ``partitions``; lock those owner rows until the transaction ends (PostgreSQL)."""
    keys = sorted(set(fence.partitions) | set(partitions))
    if not keys:
        return
    o = t.partition_owners
    found = {
        (r.source, r.partition): (r.member, int(r.generation))
        for r in conn.execute(
            select(o.c.source, o.c.partition, o.c.member, o.c.generation)
            .where(tuple_(o.c.source, o.c.partition).in_(keys))
            .order_by(o.c.source, o.c.partition)
            .with_for_update()
        )
    }
    writer = (fence.member, fence.generation)
    for key in keys:
        owner = found.get(key)
        if owner != writer:
            raise Fenced(key, owner, writer)


def owners(conn: Connection, source: str | None = None) -> dict[tuple[str, int], tuple[str, int]]:
    """(source, partition) -> (member, generation) of every owned partition."""
    o = t.partition_owners
    q = select(o)
    if source is not None:
        q = q.where(o.c.source == source)
    return {(r.source, r.partition): (r.member, int(r.generation)) for r in conn.execute(q)}
