"""Dispatch: one router pass over the store, then delivery from the durable outbox.

Called after every checkpoint (and on start, so nothing left pending by a crash waits):

1. read the signals in force, and those that ended in the last ``RESOLVED_RETENTION_MS``
   (their resolution must still be told), plus the silences;
2. ``Router.plan`` them (group → inhibit → silence → route, repeat buckets);
3. dedup + rate-limit: enqueue in the outbox only notifications it does not hold yet for
   that receiver, within each receiver's rate; the outbox's primary key (notification id,
   receiver) is the idempotency key, so a re-plan after a crash stores nothing twice; a
   "resolved" notification of a group the receiver was never told about is not sent (as
   Alertmanager's notification log: a WARN superseded by a HALT before it was told, its
   HALT muted, resolves nothing anyone saw);
4. deliver every due outbox row through its receiver with retries, back-off, the
   receiver's circuit breaker and fallback (``monitor.sinks.delivery``), recording each
   attempt in the outbox row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from monitor.router.model import Alert, Notification
from monitor.router.pipeline import Plan, Router
from monitor.store import HistoryStore

__all__ = ["DispatchReport", "Dispatcher", "planned_rows"]

log = logging.getLogger(__name__)

RESOLVED_RETENTION_MS = 24 * 3600 * 1000


@dataclass(slots=True)
class DispatchReport:
    planned: int = 0
    enqueued: list[Notification] = field(default_factory=list)
    deferred: int = 0  # over a receiver's rate limit: planned again next pass
    muted: dict[str, str] = field(default_factory=dict)
    alerts: dict[str, list[Alert]] = field(default_factory=dict)  # receiver -> routed alerts


def planned_rows(
    store: HistoryStore, router: Router, now_ms: int
) -> tuple[Plan, list[Notification], int]:
    """Plan, then keep the notifications the outbox lacks and the rate limit admits."""
    # in force, or ended recently enough that their resolution must still be told
    rows = store.signal_states(include_ended=True, ended_since_ms=now_ms - RESOLVED_RETENTION_MS)
    plan = router.plan(rows, store.silences(active_at_ms=now_ms), now_ms)
    fresh: list[Notification] = []
    deferred = 0
    by_receiver: dict[str, list[Notification]] = {}
    for n in plan.notifications:
        by_receiver.setdefault(n.receiver, []).append(n)
    for receiver, ns in by_receiver.items():
        known = store.known_notifications([n.id for n in ns], receiver)
        resolving = {n.group_key for n in ns if n.status == "resolved"}
        told = store.notified_groups(resolving, receiver)
        for n in ns:
            if n.id in known or (n.status == "resolved" and n.group_key not in told):
                continue
            if router.admit(receiver, now_ms):
                fresh.append(n)
            else:
                deferred += 1
    return plan, fresh, deferred


class Dispatcher:
    """Runs router passes against one store."""

    def __init__(self, store: HistoryStore, router: Router) -> None:
        self.store = store
        self.router = router

    def plan_and_enqueue(self, now_ms: int | None = None) -> DispatchReport:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        plan, fresh, deferred = planned_rows(self.store, self.router, now)
        self.store.enqueue(
            [
                {
                    "notification_id": n.id,
                    "receiver": n.receiver,
                    "group_key": n.group_key,
                    "payload": n.as_dict(),
                }
                for n in fresh
            ],
            now,
        )
        if deferred:
            log.warning("%d notifications over a receiver's rate limit; deferred", deferred)
        return DispatchReport(
            len(plan.notifications), fresh, deferred, dict(plan.muted), dict(plan.alerts)
        )
