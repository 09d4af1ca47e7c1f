"""Claimed delivery: a lease on outbox rows, so two fleet members never deliver one row at once.

A member claims rows for ``lease_ms``: it may deliver them until the lease ends; another
member may take a row once it is unclaimed or its lease has expired, and the holder may
claim it again (renewing the lease). Delivery stays at least once (a member that dies after
sending and before recording lets the row be sent again after the lease, with the same
id); what the lease rules out is two members sending one row at the same time.

- Signal outbox (:func:`claim_signals`): per row (signal × sink), oldest signal first.
- Notification outbox (:func:`claim_notifications`): per queue — every pending row of one
  (receiver, group key) — because the delivery engine sends a queue's rows oldest first
  and a row waits behind an older pending one; a queue with a row under another member's
  live lease is not taken (nor counted against the limit).

On PostgreSQL the candidate rows are locked ``FOR UPDATE SKIP LOCKED``: a row another
member is claiming right now is skipped, not waited for (and a notification queue with any
such row is left whole to that member). On SQLite the write transaction holds the
database's write lock, so claims are serialized.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, tuple_, update

from monitor.store import tables as t

__all__ = ["claim_notifications", "claim_signals"]


def claim_signals(
    conn: Connection, sink: str, member: str, lease_ms: int, now_ms: int, limit: int
) -> list[str]:
    """Claim up to ``limit`` undelivered outbox rows of ``sink``; their signal ids, oldest
    signal first."""
    o, s = t.outbox, t.signals
    free = or_(o.c.claimed_by.is_(None), o.c.claimed_by == member, o.c.claimed_until_ms <= now_ms)
    ids = list(
        conn.execute(
            select(o.c.signal_id)
            .join(s, s.c.id == o.c.signal_id)
            .where(o.c.sink == sink, o.c.delivered_at.is_(None), free)
            .order_by(s.c.ts_ms, s.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=o)
        ).scalars()
    )
    if ids:
        conn.execute(
            update(o)
            .where(o.c.sink == sink, o.c.signal_id.in_(ids))
            .values(claimed_by=member, claimed_until_ms=now_ms + lease_ms)
        )
    return ids


def claim_notifications(
    conn: Connection, member: str, lease_ms: int, now_ms: int, limit: int
) -> list[dict[str, Any]]:
    """Claim every pending row of up to ``limit`` queues (receiver, group key) that have a
    row due at ``now_ms``; the claimed rows, oldest first, as
    ``HistoryStore.pending_notifications`` returns them."""
    n = t.notifications
    queue = tuple_(n.c.receiver, n.c.group_key)
    held = select(n.c.receiver, n.c.group_key).where(  # queues under another member's lease
        n.c.state == "pending",
        n.c.claimed_by.is_not(None),
        n.c.claimed_by != member,
        n.c.claimed_until_ms > now_ms,
    )
    queues: Sequence[tuple[str, str]] = [
        (r.receiver, r.group_key)
        for r in conn.execute(
            select(n.c.receiver, n.c.group_key)
            .where(n.c.state == "pending", n.c.next_attempt_ms <= now_ms, queue.not_in(held))
            .group_by(n.c.receiver, n.c.group_key)
            .order_by(func.min(n.c.created_ms), n.c.receiver, n.c.group_key)
            .limit(limit)
        )
    ]
    if not queues:
        return []
    pending = and_(n.c.state == "pending", queue.in_(queues))
    # every pending row of those queues first, then the ones we could lock: a queue with a
    # row we could not lock is being claimed by another member right now
    everyone = conn.execute(select(n.c.notification_id, n.c.receiver, n.c.group_key).where(pending))
    listed = {(r.notification_id, r.receiver): (r.receiver, r.group_key) for r in everyone}
    locked = conn.execute(
        select(n)
        .where(pending)
        .order_by(n.c.receiver, n.c.group_key, n.c.created_ms, n.c.notification_id)
        .with_for_update(skip_locked=True)
    ).all()
    got = {(r.notification_id, r.receiver) for r in locked}
    busy = {queue for key, queue in listed.items() if key not in got}
    busy |= {
        (r.receiver, r.group_key)
        for r in locked
        if r.claimed_by not in (None, member) and (r.claimed_until_ms or 0) > now_ms
    }
    mine = [r for r in locked if (r.receiver, r.group_key) not in busy]
    if not mine:
        return []
    until = now_ms + lease_ms
    conn.execute(
        update(n)
        .where(
            tuple_(n.c.notification_id, n.c.receiver).in_(
                [(r.notification_id, r.receiver) for r in mine]
            )
        )
        .values(claimed_by=member, claimed_until_ms=until)
    )
    rows = [dict(r._mapping) | {"claimed_by": member, "claimed_until_ms": until} for r in mine]
    rows.sort(key=lambda r: (r["created_ms"], r["notification_id"], r["receiver"]))
    return rows
