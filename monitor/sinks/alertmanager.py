"""Prometheus Alertmanager (API v2): ``POST <url>/api/v2/alerts`` with a JSON array of alerts.

Each driftgate alert becomes one Alertmanager alert
(https://prometheus.io/docs/alerting/latest/clients/):

- ``labels`` (they identify the alert): ``alertname``, ``severity`` (HALT → critical,
  WARN → warning), ``level``, ``scope``, ``segment``, ``region``, ``cohort``, ``signal`` and
  the scope's other dimensions. Empty values are left out (to Alertmanager an empty label
  is an absent one, which is what inhibition ``equal`` compares); names that are not
  Prometheus label names get ``_`` for each bad character.
- ``annotations``: ``summary``, ``description``, ``evidence`` (drift event ids), plus
  ``driftgate_alert_id``, ``driftgate_state`` and the alert's other annotations.
- ``startsAt``: when the signal was raised.
- ``endsAt``: for a resolved alert its resolution time (in the past: Alertmanager resolves
  it at once); for a firing one now + ``resolve_window_s`` (default 300 s), or absent when
  ``resolve_window_s`` is None (then Alertmanager's ``resolve_timeout`` applies).

Alertmanager keeps alerts in memory only and resolves a firing alert once its ``endsAt``
passes, so **firing alerts must be re-sent regularly**: call :meth:`refresh` with the alerts
currently routed to this receiver every :attr:`AlertmanagerNotifier.refresh_interval_s`
(a third of the window: two refreshes may fail before an alert lapses). ``refresh`` also
re-sends alerts resolved within the last ``RESOLVED_RESEND_S`` so a restarted Alertmanager
learns of the resolution. Re-sending is idempotent: Alertmanager merges by labels.

Success is any 2xx (Alertmanager answers 200); 400 (invalid alert) is not retryable.

>>> from monitor.router.model import AlertState
>>> from monitor.sinks.notifier import example_notification
>>> am = AlertmanagerNotifier("am", "http://am.local:9093", transport=httpx.MockTransport(
...     lambda request: httpx.Response(200)), clock=lambda: 1_795_395_600.0)
>>> [firing] = am.payload(example_notification().alerts)
>>> firing["labels"]["severity"], "cohort" in firing["labels"]
('critical', False)
>>> firing["startsAt"], firing["endsAt"]
('2026-11-23T00:00:00.000Z', '2026-11-23T01:05:00.000Z')
>>> [resolved] = am.payload(example_notification(AlertState.RESOLVED).alerts)
>>> resolved["endsAt"], resolved["annotations"]["driftgate_state"]
('2026-11-23T01:00:00.000Z', 'resolved')
>>> am.notify(example_notification()); am.refresh_interval_s
100.0
>>> am.close()
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from monitor.router.alerts import ALERTNAME
from monitor.router.model import Alert, AlertState, Notification
from monitor.sinks.notifier import HttpNotifier

__all__ = ["ALERTS_PATH", "RESOLVED_RESEND_S", "AlertmanagerNotifier", "rfc3339"]

ALERTS_PATH = "/api/v2/alerts"
#: Resolved alerts are re-sent by ``refresh`` for this long after they ended.
RESOLVED_RESEND_S = 300.0
SEVERITY = {"HALT": "critical", "WARN": "warning"}
_BAD_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with milliseconds.

    >>> rfc3339(0)
    '1970-01-01T00:00:00.000Z'
    """
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _label_name(name: str) -> str:
    clean = _BAD_LABEL_CHARS.sub("_", name)
    return "_" + clean if clean[:1].isdigit() else clean


class AlertmanagerNotifier(HttpNotifier):
    """Posts alerts to one Alertmanager; ``url`` is its base address (``http://host:9093``)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout_s: float = 5.0,
        resolve_window_s: float | None = 300.0,
        generator_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = url.rstrip("/")
        if not base.endswith(ALERTS_PATH):
            base += ALERTS_PATH
        super().__init__(name, base, timeout_s=timeout_s, transport=transport, clock=clock)
        if resolve_window_s is not None and resolve_window_s <= 0:
            raise ValueError(
                f"receiver {name!r}: resolve_window_s must be > 0 (or unset), "
                f"got {resolve_window_s}"
            )
        self.resolve_window_s = resolve_window_s
        self.generator_url = generator_url

    @property
    def refresh_interval_s(self) -> float:
        """How often :meth:`refresh` should run: a third of the resolve window (else 60 s)."""
        return self.resolve_window_s / 3 if self.resolve_window_s is not None else 60.0

    def labels(self, a: Alert) -> dict[str, str]:
        labels = {_label_name(k): v for k, v in a.labels.items() if v != ""}
        labels.setdefault("alertname", ALERTNAME)
        labels["severity"] = SEVERITY.get(a.level, labels.get("severity", "warning"))
        return labels

    def annotations(self, a: Alert) -> dict[str, str]:
        ann = {k: v for k, v in a.annotations.items() if v != ""}
        summary = a.annotations.get("summary") or f"{a.level} {a.labels.get('segment', '')}"
        ann["summary"] = summary
        ann["description"] = a.annotations.get("description") or ann.get("reason") or summary
        ann["evidence"] = a.annotations.get("evidence", "")
        ann["driftgate_alert_id"] = a.id
        ann["driftgate_state"] = a.state.value
        return ann

    def payload(self, alerts: Iterable[Alert]) -> list[dict[str, Any]]:
        """The JSON array posted for ``alerts``."""
        now_ms = int(self._clock() * 1000)
        out: list[dict[str, Any]] = []
        for a in alerts:
            doc: dict[str, Any] = {
                "labels": self.labels(a),
                "annotations": self.annotations(a),
                "startsAt": rfc3339(a.starts_at_ms),
            }
            if a.state is AlertState.RESOLVED:
                ended = a.ends_at_ms if a.ends_at_ms is not None else now_ms
                doc["endsAt"] = rfc3339(max(min(ended, now_ms), a.starts_at_ms))
            elif self.resolve_window_s is not None:
                ends = now_ms + int(self.resolve_window_s * 1000)
                doc["endsAt"] = rfc3339(max(ends, a.starts_at_ms))
            if self.generator_url:
                doc["generatorURL"] = self.generator_url
            out.append(doc)
        return out

    def _send(self, alerts: list[Alert]) -> None:
        if alerts:
            self.post(orjson.dumps(self.payload(alerts)), {})

    def notify(self, n: Notification) -> None:
        self._send(list(n.alerts))

    def refresh(self, alerts: Iterable[Alert]) -> int:
        """Re-send the firing alerts, and those resolved in the last ``RESOLVED_RESEND_S``.

        Call it every :attr:`refresh_interval_s` with the alerts routed to this receiver
        (not muted). Returns how many were sent; raises ``DeliveryError`` like ``notify``.
        """
        now_ms = int(self._clock() * 1000)
        horizon = now_ms - int(RESOLVED_RESEND_S * 1000)
        chosen = [
            a
            for a in alerts
            if a.state is not AlertState.RESOLVED or (a.ends_at_ms or now_ms) >= horizon
        ]
        self._send(chosen)
        return len(chosen)
