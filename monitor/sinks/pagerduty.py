"""PagerDuty Events API v2: one event per alert to ``POST /v2/enqueue``.

For each alert of a notification (https://developer.pagerduty.com/docs/events-api-v2/):

- ``event_action``: firing → ``trigger``, acknowledged → ``acknowledge``, resolved →
  ``resolve``.
- ``dedup_key``: ``driftgate/<fingerprint>/<alert id>`` — stable for one episode of one
  scope, so a re-sent trigger (a retry after a timeout, a second replica) updates the open
  incident instead of paging again, and the resolve closes exactly that incident.
- ``payload`` (trigger only; PagerDuty ignores it for acknowledge and resolve):
  ``summary`` (≤ 1024 characters, cut with "…"), ``source`` (config, default
  ``driftgate``), ``severity`` (HALT → critical, WARN → warning), ``timestamp`` (signal
  time), ``component`` (the scope key), ``group`` (region), ``class`` (signal) and
  ``custom_details`` (evidence, reason, labels, annotations, notification id).
- ``client`` = ``driftgate``.

A notification with several alerts posts several events, in order; if one fails the engine
retries the whole notification, which is safe because every event is idempotent by its
``dedup_key``. PagerDuty answers 202 on success; 400 (invalid event) is not retryable; 429
and 5xx are retried. Events over 512 KB lose their ``custom_details``.

>>> import json
>>> from monitor.sinks.notifier import example_notification
>>> sent = []
>>> def pd(request):
...     sent.append(json.loads(request.content))
...     return httpx.Response(202, json={"status": "success", "message": "Event processed"})
>>> pager = PagerDutyNotifier("pager", routing_key="0123456789abcdef0123456789abcdef",
...                           transport=httpx.MockTransport(pd))
>>> pager.notify(example_notification())
>>> event = sent[0]
>>> event["event_action"], event["payload"]["severity"], event["payload"]["source"]
('trigger', 'critical', 'driftgate')
>>> event["dedup_key"] == dedup_key(example_notification().alerts[0])
True
>>> pager.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from monitor.router.model import Alert, AlertState, Notification
from monitor.sinks.alertmanager import rfc3339
from monitor.sinks.notifier import HttpNotifier

__all__ = ["EVENTS_URL", "PagerDutyNotifier", "dedup_key"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
MAX_EVENT_BYTES = 512 * 1024
SEVERITY = {"HALT": "critical", "WARN": "warning"}
ACTION = {
    AlertState.FIRING: "trigger",
    AlertState.ACKNOWLEDGED: "acknowledge",
    AlertState.RESOLVED: "resolve",
}


def dedup_key(a: Alert) -> str:
    """Stable PagerDuty ``dedup_key`` of one alert episode (scope fingerprint + alert id).

    >>> from monitor.sinks.notifier import example_notification
    >>> key = dedup_key(example_notification().alerts[0])
    >>> key.startswith("driftgate/"), len(key), key == dedup_key(example_notification().alerts[0])
    (True, 43, True)
    """
    return f"driftgate/{a.fingerprint}/{a.id}"[:MAX_DEDUP_KEY]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PagerDutyNotifier(HttpNotifier):
    """Sends trigger / acknowledge / resolve events with one integration's ``routing_key``."""

    def __init__(
        self,
        name: str,
        *,
        routing_key: str,
        url: str = EVENTS_URL,
        source: str = "driftgate",
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, url, timeout_s=timeout_s, transport=transport, clock=clock)
        if len(routing_key) != 32:
            raise ValueError(
                f"receiver {name!r}: routing_key must be the 32-character integration key of "
                f"a PagerDuty 'Events API v2' integration, got {len(routing_key)} characters"
            )
        if not source:
            raise ValueError(f"receiver {name!r}: source must not be empty")
        self.routing_key = routing_key
        self.source = source

    def __repr__(self) -> str:  # never show the routing key
        return f"PagerDutyNotifier(name={self.name!r}, where={self.where!r})"

    def event(self, a: Alert, n: Notification) -> dict[str, Any]:
        """The Events API v2 body for one alert of ``n``."""
        action = ACTION[a.state]
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": dedup_key(a),
            "client": "driftgate",
        }
        if action != "trigger":
            return body
        summary = a.annotations.get("summary") or f"{a.level} {a.labels.get('segment', '')}"
        body["payload"] = {
            "summary": _cut(summary, MAX_SUMMARY),
            "source": self.source,
            "severity": SEVERITY.get(a.level, "warning"),
            "timestamp": rfc3339(a.starts_at_ms),
            "component": a.labels.get("segment", ""),
            "group": a.labels.get("region", ""),
            "class": a.labels.get("signal", ""),
            "custom_details": {
                "evidence": a.annotations.get("evidence", ""),
                "reason": a.annotations.get("reason", ""),
                "labels": a.labels,
                "annotations": a.annotations,
                "alert_id": a.id,
                "notification_id": n.id,
                "group_key": n.group_key,
            },
        }
        if len(orjson.dumps(body)) > MAX_EVENT_BYTES:
            body["payload"]["custom_details"] = {"truncated": True, "alert_id": a.id}
        return body

    def notify(self, n: Notification) -> None:
        for a in n.alerts:
            self.post(orjson.dumps(self.event(a, n)), {})
