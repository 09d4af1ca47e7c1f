"""The router pass: decide → group → inhibit → silence → dedup → rate-limit → route.

``Router.plan`` is pure (no I/O): given the signals with their lifecycle state and the
silences, it returns the notifications each receiver should get now, and what was muted
and why. The caller enqueues them in the durable outbox, which de-duplicates by
notification id per receiver (ids are deterministic: the same state gives the same
notification, so nothing is sent twice), and delivers them.

>>> from monitor.config import RouterSettings
>>> from monitor.events import Level, Position, Signal
>>> def row(seg, labels, level=Level.HALT):
...     s = Signal(level, seg, "segment" if "," in seg else "region", labels, "x rose",
...                (seg,), 0, Position("demo", 0, 1), signal="x")
...     return {"signal": s, "state": "active", "acked_by": None, "ended_at": None}
>>> router = Router(RouterSettings.model_validate(
...     {"receivers": [{"name": "hook", "kind": "stdout"}], "route": {"receiver": "hook"}}))
>>> plan = router.plan([row("region=eu", {"region": "eu"}),
...                     row("region=eu,cohort=a", {"region": "eu", "cohort": "a"})], [], 0)
>>> [n.group_key for n in plan.notifications], plan.muted
(['hook:{segment=region=eu}'], {'region=eu,cohort=a': 'inhibited by region=eu'})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.config import RouterSettings
from monitor.events import stable_id
from monitor.router.alerts import to_alert
from monitor.router.group import group_key, group_labels
from monitor.router.inhibit import explained, inhibited
from monitor.router.model import Alert, AlertState, Notification
from monitor.router.ratelimit import RateLimiter
from monitor.router.route import Route
from monitor.router.silence import silenced

__all__ = ["Plan", "Router"]


@dataclass(slots=True)
class Plan:
    notifications: list[Notification] = field(default_factory=list)
    muted: dict[str, str] = field(default_factory=dict)  # alert segment -> why
    waiting: list[str] = field(default_factory=list)  # group keys still in group_wait
    routes: dict[str, list[str]] = field(default_factory=dict)  # alert segment -> receivers
    alerts: dict[str, list[Alert]] = field(default_factory=dict)  # receiver -> alerts it holds


class Router:
    """Plans notifications; remembers only when each group was first seen (group_wait)."""

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self.tree = Route.from_settings(settings.route)
        self.limiter = RateLimiter(settings.rate_limit_per_min)
        self._first_seen: dict[str, int] = {}

    def plan(self, rows: list[dict[str, Any]], silences: list[dict[str, Any]], now_ms: int) -> Plan:
        plan = Plan()
        alerts = [to_alert(r) for r in rows]
        by_id = {a.id: a for a in alerts}
        muted: dict[str, str] = {}
        if self.settings.inhibit:
            echoes = explained(alerts)
            for aid, src in inhibited(alerts, exclude=echoes).items():
                muted[aid] = f"inhibited by {by_id[src].labels['segment']}"
            for aid, src in echoes.items():
                muted.setdefault(aid, f"explained by {by_id[src].labels['segment']}")
        for aid, sid in silenced(alerts, silences, now_ms).items():
            if by_id[aid].state is not AlertState.RESOLVED:
                muted.setdefault(aid, f"silenced by {sid}")
        groups: dict[str, tuple[Route, dict[str, str], list[Alert]]] = {}
        for a in alerts:
            if a.id in muted:
                plan.muted[a.labels["segment"]] = muted[a.id]
                continue
            for route in self.tree.match(a.labels):
                assert route.receiver is not None
                plan.routes.setdefault(a.labels["segment"], []).append(route.receiver)
                key = group_key(route.receiver, route.group_by, a.labels)
                if key not in groups:
                    groups[key] = (route, group_labels(route.group_by, a.labels), [])
                groups[key][2].append(a)
        for key, (route, labels, members) in groups.items():
            first = self._first_seen.setdefault(key, now_ms)
            if now_ms - first < route.group_wait_s * 1000:
                plan.waiting.append(key)
                continue
            assert route.receiver is not None
            plan.alerts.setdefault(route.receiver, []).extend(members)
            n = Notification.build(route.receiver, key, labels, members)
            if n.status == "firing":  # re-notify a firing group every repeat_interval
                bucket = now_ms // int(route.repeat_interval_s * 1000)
                n = Notification(
                    stable_id(n.id, bucket),
                    n.receiver,
                    n.group_key,
                    n.group_labels,
                    n.alerts,
                    {"repeat_bucket": bucket},
                )
            plan.notifications.append(n)
        return plan

    def admit(self, receiver: str, now_ms: int) -> bool:
        """Rate-limit: may one more new notification go to ``receiver`` now?"""
        return self.limiter.allow(receiver, now_ms)
