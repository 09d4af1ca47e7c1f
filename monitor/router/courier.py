"""The courier: one router pass plus one delivery pass over the durable outbox.

The monitor calls :meth:`Courier.tick` after every checkpoint, once at start (what a crash
left pending goes out first) and every ``router.tick_s`` while no records arrive (so
retries and back-off progress on a quiet stream):

1. :class:`~monitor.router.dispatch.Dispatcher` plans (group → inhibit → silence → route)
   and enqueues the notifications the outbox lacks (dedup by notification id per receiver,
   rate-limited);
2. the :class:`~monitor.sinks.delivery.Deliverer` attempts every due outbox row, oldest
   first per (receiver, group), with back-off, ``Retry-After``, a circuit breaker and the
   fallback receiver; every changed row is written back in one transaction;
3. receivers that expect firing alerts to be re-sent (Alertmanager) get them every
   ``refresh_interval_s``.

**At least once.** A row's new state is written after its notifier returned, in the one
transaction at the end of the pass. ``on_delivered`` (fault injection: the crash point
``notification-sent-unrecorded``) runs in between. A crash there leaves the row pending,
so the next start sends that notification again with the *same* notification id — the
idempotency key receivers de-duplicate on (webhook ``Idempotency-Key``, Kafka header
``driftgate-notification-id``; Alertmanager merges the repeat by labels, PagerDuty by
``dedup_key``; Slack and stdout show it twice). A row whose state was written is never
sent again, and nothing pending is lost.

**Giving up is never silent.** Every row given up (``failed``, or ``fallback``: handed to
the receiver's fallback) is logged as an ERROR by the delivery engine, listed in
:attr:`TickReport.given_up` (the monitor counts it in ``driftgate.notifications.given_up``)
and kept in the outbox with its reason (``driftgate status``, ``/v1/status``).

>>> import tempfile
>>> from pathlib import Path
>>> from monitor.config import RouterSettings
>>> from monitor.events import Level, Position, Signal
>>> from monitor.sinks.notifier import MemoryNotifier
>>> from monitor.store import Batch, HistoryStore
>>> store = HistoryStore(Path(tempfile.mkdtemp()) / "h.db")
>>> run = store.start_run("demo")
>>> halt = Signal(Level.HALT, "region=eu", "region", {"region": "eu"}, "latency rose",
...               ("e1",), 0, Position("demo", 0, 1), signal="latency_ms")
>>> store.checkpoint(run, Batch(signals=[halt]), [])
>>> pager = MemoryNotifier("pager")
>>> settings = RouterSettings.model_validate(
...     {"receivers": [{"name": "pager", "kind": "stdout"}], "route": {"receiver": "pager"}})
>>> courier = Courier(store, settings, {"pager": pager})
>>> r = courier.tick()
>>> r.enqueued, r.delivered, [a.labels["segment"] for a in pager.received[0].alerts]
(1, 1, ['region=eu'])
>>> courier.tick().enqueued, len(pager.received)  # same state: nothing new, nothing twice
(0, 1)
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from monitor.config import RouterSettings
from monitor.router.dispatch import Dispatcher
from monitor.router.model import Alert, DeliveryError, Notification
from monitor.router.pipeline import Router
from monitor.sinks.delivery import Deliverer, DeliveryAttempt, DeliveryState, RetryPolicy
from monitor.sinks.notifier import Notifier
from monitor.store import HistoryStore

__all__ = ["Courier", "TickReport", "retry_policies"]

log = logging.getLogger(__name__)


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class TickReport:
    """What one pass did; ``given_up``: the attempts that gave a notification up."""

    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    handed_off: int = 0
    pending: int = 0
    muted: dict[str, str] = field(default_factory=dict)
    refreshed: int = 0
    given_up: list[DeliveryAttempt] = field(default_factory=list)


def retry_policies(settings: RouterSettings) -> dict[str, RetryPolicy]:
    """Each receiver's retry policy: ``router.retry``, with the receiver's own give-up
    horizon (``max_attempts``, ``max_age_s``) where it sets one.

    >>> rs = RouterSettings.model_validate({"receivers": [
    ...     {"name": "pager", "kind": "stdout", "max_age_s": 600},
    ...     {"name": "chat", "kind": "stdout"}]})
    >>> {name: (p.max_age_s, p.max_attempts) for name, p in retry_policies(rs).items()}
    {'pager': (600.0, 12), 'chat': (3600.0, 12)}
    """
    base = settings.retry.model_dump()
    out = {}
    for r in settings.receivers:
        own = {"max_attempts": r.max_attempts, "max_age_s": r.max_age_s}
        out[r.name] = RetryPolicy(**(base | {k: v for k, v in own.items() if v is not None}))
    return out


class Courier:
    """Plans, enqueues and delivers notifications for one store (single-threaded).

    Rows are claimed before they are delivered (``member``, for ``lease_ms``): couriers of
    several fleet members on one store never deliver one notification at the same time.
    ``on_delivered`` (optional) is called with each ``delivered`` attempt right after the
    receiver accepted it and before the row's new state is written (crash tests use it).
    """

    def __init__(
        self,
        store: HistoryStore,
        settings: RouterSettings,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], int] = _wall_ms,
        rng: random.Random | None = None,
        member: str = "driftgate",
        lease_ms: int = 60_000,
    ) -> None:
        missing = sorted({r.name for r in settings.receivers} - set(notifiers))
        if missing:
            raise ValueError(f"no notifier for receivers: {', '.join(missing)}")
        self.store = store
        self.settings = settings
        self.notifiers = dict(notifiers)
        self.member = member  # whose claim on an outbox queue this courier holds
        self.lease_ms = lease_ms
        self.router = Router(settings)
        self.dispatcher = Dispatcher(store, self.router)
        self._clock = clock
        self.attempts: list[DeliveryAttempt] = []  # the last pass's attempts (logs, tests)
        self.on_delivered: Callable[[DeliveryAttempt], None] | None = None
        self.deliverer = Deliverer(
            self.notifiers,
            RetryPolicy(**settings.retry.model_dump()),
            fallback={r.name: r.fallback for r in settings.receivers if r.fallback},
            clock=clock,
            rng=rng,
            record=self._record,
            policies=retry_policies(settings),
        )
        self._refreshed_ms: dict[str, int] = {}
        self.last_tick_ms = 0

    def _record(self, a: DeliveryAttempt) -> None:
        self.attempts.append(a)
        if a.outcome == "delivered" and self.on_delivered is not None:
            self.on_delivered(a)

    def tick(self, now_ms: int | None = None) -> TickReport:
        """One router pass, one delivery pass, and any due Alertmanager refresh."""
        now = self._clock() if now_ms is None else now_ms
        self.last_tick_ms = now
        self.attempts.clear()
        plan = self.dispatcher.plan_and_enqueue(now)
        report = TickReport(enqueued=len(plan.enqueued), muted=plan.muted)
        rows = self.store.claim_due_notifications(self.member, self.lease_ms, now)
        if rows:
            states = [DeliveryState.from_row(r) for r in rows]
            payloads = {r["notification_id"]: Notification.from_dict(r["payload"]) for r in rows}
            changed = self.deliverer.deliver_due(states, payloads)
            self.store.save_deliveries([c.as_row() for c in changed])
            final = {(s.notification_id, s.receiver): s.state for s in states}
            final.update({(c.notification_id, c.receiver): c.state for c in changed})
            report.pending = sum(1 for st in final.values() if st == "pending")
        for a in self.attempts:
            if a.outcome == "delivered":
                report.delivered += 1
            elif a.outcome == "retry":
                report.retried += 1
                log.warning("delivery to %r will be retried: %s", a.receiver, a.error)
            elif a.outcome == "failed":
                report.failed += 1
                report.given_up.append(a)
            else:
                report.handed_off += 1
                report.given_up.append(a)
        report.refreshed = self._refresh(plan.alerts, now)
        return report

    def _refresh(self, alerts: Mapping[str, list[Alert]], now: int) -> int:
        sent = 0
        for name, notifier in self.notifiers.items():
            refresh = getattr(notifier, "refresh", None)
            interval_s = getattr(notifier, "refresh_interval_s", None)
            if refresh is None or interval_s is None or not alerts.get(name):
                continue
            if now - self._refreshed_ms.get(name, 0) < float(interval_s) * 1000:
                continue
            self._refreshed_ms[name] = now
            try:
                sent += int(refresh(alerts[name]))
            except DeliveryError as exc:
                log.warning("refresh of %r failed (retried next interval): %s", name, exc)
        return sent

    def close(self) -> None:
        for n in self.notifiers.values():
            n.close()
