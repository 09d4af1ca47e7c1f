"""Alerts and notifications as the router makes them (real Signals through ``to_alert``),
a fake clock, and a loop that drives a Deliverer until nothing is pending."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.events import Level, Position, Signal
from monitor.router.alerts import to_alert
from monitor.router.group import group_key, group_labels
from monitor.router.model import Alert, Notification
from monitor.sinks import Deliverer, DeliveryState

T0 = 1_795_392_000_000  # 2026-11-23T00:00:00Z
ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def signal(
    level: Level = Level.HALT,
    *,
    ts_ms: int = T0,
    reason: str = "latency_ms rose 2.3σ",
    evidence: tuple[str, ...] = ("e1", "e2"),
    name: str = "latency_ms",
    **labels: str,
) -> Signal:
    labels = labels or {"region": "eu-west"}
    segment = ",".join(f"{k}={v}" for k, v in labels.items())
    scope = "segment" if len(labels) > 1 else next(iter(labels))
    return Signal(
        level, segment, scope, labels, reason, evidence, ts_ms, Position("demo", 0, 1), signal=name
    )


def alert(
    level: Level = Level.HALT,
    *,
    state: str = "active",
    ended_at: int | None = None,
    acked_by: str | None = None,
    **kw: object,
) -> Alert:
    """``state``: the store's lifecycle state (active, acknowledged, resolved…)."""
    sig = signal(level, **kw)  # type: ignore[arg-type]
    return to_alert({"signal": sig, "state": state, "acked_by": acked_by, "ended_at": ended_at})


def note(
    *alerts: Alert, receiver: str = "pager", by: tuple[str, ...] = ("segment",)
) -> Notification:
    """The notification of ``alerts`` (one group, keyed by the first alert) for ``receiver``."""
    first = alerts[0].labels
    return Notification.build(
        receiver, group_key(receiver, by, first), group_labels(by, first), list(alerts)
    )


class Clock:
    def __init__(self, now_ms: int = 0) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


def run(
    d: Deliverer,
    clock: Clock,
    rows: dict[tuple[str, str], DeliveryState],
    ns: Iterable[Notification],
    passes: int = 200,
) -> None:
    """Advance the fake clock to each wake-up and deliver until nothing is pending."""
    by_id = {n.id: n for n in ns}
    for _ in range(passes):
        pending = [s for s in rows.values() if s.state == "pending"]
        if not pending:
            return
        wake = d.next_wakeup_ms(pending)
        assert wake is not None
        clock.now = max(clock.now, wake)
        for s in d.deliver_due(pending, by_id):
            rows[(s.notification_id, s.receiver)] = s
    raise AssertionError("still pending after all passes")
