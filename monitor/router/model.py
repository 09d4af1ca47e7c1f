"""What the router hands to receivers: alerts (one per scope episode) and notifications.

An **Alert** is the receiver-facing view of one scope's signal: firing while a WARN or HALT
is in force for the scope, resolved once a person resumes it (or auto-resolve does).
Its ``fingerprint`` is stable for the scope, its ``id`` for the episode (the signal id),
and its ``transition_id`` for this exact state (firing WARN, firing HALT, acknowledged,
resolved), so every transition can be delivered once and only once per receiver.

A **Notification** is what one receiver gets at once: the alerts of one group.
``id`` is derived from the receiver, the group key and the alerts' transition ids, so the
same notification re-sent after a crash carries the same idempotency key.

>>> a = Alert(id="s1", fingerprint=fingerprint({"scope": "region=eu"}), level="HALT",
...           state=AlertState.FIRING, labels={"alertname": "DriftgateHalt", "scope": "region=eu"},
...           annotations={"summary": "x"}, starts_at_ms=0)
>>> n = Notification.build("pager", "region=eu", {"scope": "region=eu"}, [a])
>>> n.id == Notification.build("pager", "region=eu", {"scope": "region=eu"}, [a]).id
True
>>> Notification.from_dict(n.as_dict()) == n
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.events import stable_id

__all__ = ["Alert", "AlertState", "DeliveryError", "Notification", "fingerprint"]


class AlertState(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"  # still firing; a person owns it
    RESOLVED = "resolved"


def fingerprint(labels: dict[str, str]) -> str:
    """Stable id of an alert's identity (its labels), like Alertmanager's fingerprint."""
    return stable_id(*(f"{k}={v}" for k, v in sorted(labels.items())))


@dataclass(frozen=True, slots=True)
class Alert:
    """One scope's signal as receivers see it."""

    id: str
    fingerprint: str
    level: str  # "WARN" | "HALT"
    state: AlertState
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at_ms: int
    ends_at_ms: int | None = None
    transition: str = ""  # e.g. "firing:HALT", "acknowledged", "resolved"

    @property
    def transition_id(self) -> str:
        return stable_id(self.id, self.state.value, self.level, self.transition)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "level": self.level,
            "state": self.state.value,
            "labels": self.labels,
            "annotations": self.annotations,
            "starts_at_ms": self.starts_at_ms,
            "ends_at_ms": self.ends_at_ms,
            "transition_id": self.transition_id,
            "transition": self.transition,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(
            id=d["id"],
            fingerprint=d["fingerprint"],
            level=d["level"],
            state=AlertState(d["state"]),
            labels=dict(d["labels"]),
            annotations=dict(d["annotations"]),
            starts_at_ms=int(d["starts_at_ms"]),
            ends_at_ms=d.get("ends_at_ms"),
            transition=d.get("transition", ""),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """The alerts of one group, for one receiver."""

    id: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    alerts: tuple[Alert, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        receiver: str,
        group_key: str,
        group_labels: dict[str, str],
        alerts: list[Alert],
    ) -> Notification:
        nid = stable_id(receiver, group_key, *sorted(a.transition_id for a in alerts))
        return cls(nid, receiver, group_key, dict(group_labels), tuple(alerts))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "group_labels": self.group_labels,
            "status": self.status,
            "alerts": [a.as_dict() for a in self.alerts],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Notification:
        return cls(
            d["id"],
            d["receiver"],
            d["group_key"],
            dict(d["group_labels"]),
            tuple(Alert.from_dict(a) for a in d["alerts"]),
            dict(d.get("meta") or {}),
        )

    @property
    def status(self) -> str:
        """ "firing" when any alert fires, else "resolved" (Alertmanager's convention)."""
        return "resolved" if all(a.state is AlertState.RESOLVED for a in self.alerts) else "firing"


class DeliveryError(Exception):
    """A receiver did not take a notification.

    ``retryable`` says whether trying again can help (5xx, 429, timeouts: yes; 400: no);
    ``retry_after_s`` carries the receiver's ``Retry-After`` when it sent one.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
