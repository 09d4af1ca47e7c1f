"""Slack incoming webhook: one message per notification (``{"text": ..., "blocks": [...]}``).

Slack cannot de-duplicate or resolve a message, so each notification — one transition of
a group — is one message: firing (🚨 HALT, ⚠️ WARN), acknowledged (👀) or resolved (✅).
The router plans a transition once; but on a timeout Slack may have posted the message
anyway, and the retry posts it again, and so does the restart after a crash between Slack's
``ok`` and the outbox write (Slack has no idempotency key).

Message: ``text`` is the one-line summary (notifications and clients without blocks show
it); ``blocks`` are a header, one section per alert (at most ``MAX_ALERTS``; then "…and N
more") and a context line with the notification id and group key. Text is escaped for
Slack mrkdwn (``&``, ``<``, ``>``).

Success is HTTP 200 with body ``ok``; any other 2xx body is not retryable (the url is not
an incoming webhook). Slack posts about one message per second per webhook: the notifier's
``min_interval_s`` (default 1 s) tells the delivery engine to space its messages that far
apart (without sleeping), and a 429 carries ``Retry-After``, which the engine honours for
the whole receiver. The webhook url is a secret: error messages show only its host.

>>> import json
>>> from monitor.router.model import AlertState
>>> from monitor.sinks.notifier import example_notification
>>> posted = []
>>> def slack_api(request):
...     posted.append(json.loads(request.content))
...     return httpx.Response(200, text="ok")
>>> slack = SlackNotifier("chat", "https://hooks.slack.com/services/T0/B0/XYZ",
...                       transport=httpx.MockTransport(slack_api), min_interval_s=0)
>>> slack.notify(example_notification(AlertState.RESOLVED))
>>> posted[0]["text"]
':white_check_mark: Resolved: HALT region=eu-west: latency_ms rose 2.3σ'
>>> [b["type"] for b in posted[0]["blocks"]]
['header', 'section', 'context']
>>> slack.where
'https://hooks.slack.com/…'
>>> slack.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from monitor.router.model import Alert, AlertState, Notification
from monitor.sinks.notifier import HttpNotifier

__all__ = ["MAX_ALERTS", "SlackNotifier"]

MAX_ALERTS = 20  # sections per message (Slack allows 50 blocks)
MAX_SECTION = 3000  # characters of one section's text
MAX_HEADER = 150  # characters of a header block's plain text
MAX_TEXT = 3000


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _emoji(a: Alert) -> str:
    if a.state is AlertState.RESOLVED:
        return ":white_check_mark:"
    if a.state is AlertState.ACKNOWLEDGED:
        return ":eyes:"
    return ":rotating_light:" if a.level == "HALT" else ":warning:"


def _summary(a: Alert) -> str:
    return a.annotations.get("summary") or f"{a.level} {a.labels.get('segment', '')}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


class SlackNotifier(HttpNotifier):
    """Posts one message per notification to a Slack incoming webhook ``url``."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout_s: float = 5.0,
        min_interval_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, url, timeout_s=timeout_s, transport=transport, clock=clock)
        if min_interval_s < 0:
            raise ValueError(
                f"receiver {name!r}: min_interval_s must be >= 0, got {min_interval_s}"
            )
        parsed = httpx.URL(url)
        self.where = f"{parsed.scheme}://{parsed.netloc.decode()}/…"  # the path is the secret
        self.min_interval_s = min_interval_s  # read by the delivery engine

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r}, where={self.where!r})"

    def message(self, n: Notification) -> dict[str, Any]:
        """The JSON body posted for ``n``."""
        alerts = list(n.alerts)
        resolved = n.status == "resolved"
        head = "Resolved" if resolved else "Firing"
        if len(alerts) == 1:
            a = alerts[0]
            if a.state is AlertState.ACKNOWLEDGED:
                head = "Acknowledged"
            title = f"{head}: {_summary(a)}"
            emoji = _emoji(a)
        else:
            scope = ", ".join(f"{k}={v}" for k, v in n.group_labels.items()) or n.group_key
            title = f"{head}: {len(alerts)} alerts for {scope}"
            emoji = ":white_check_mark:" if resolved else _emoji(alerts[0])
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(title, MAX_HEADER), "emoji": True},
            }
        ]
        for a in alerts[:MAX_ALERTS]:
            lines = [
                f"{_emoji(a)} *{a.level}* `{_escape(a.labels.get('segment', ''))}` — "
                f"{_escape(a.annotations.get('reason') or _summary(a))}",
                f"state: {a.state.value} · since {_when(a.starts_at_ms)}"
                + (f" · ended {_when(a.ends_at_ms)}" if a.ends_at_ms is not None else ""),
            ]
            if a.annotations.get("evidence"):
                lines.append(f"evidence: {_escape(a.annotations['evidence'])}")
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), MAX_SECTION)},
                }
            )
        if len(alerts) > MAX_ALERTS:
            more = f"…and {len(alerts) - MAX_ALERTS} more alerts"
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
        context = f"driftgate · notification `{n.id}` · group `{_escape(n.group_key)}`"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        return {"text": _cut(f"{emoji} {_escape(title)}", MAX_TEXT), "blocks": blocks}

    def notify(self, n: Notification) -> None:
        self.post(orjson.dumps(self.message(n)), {}, accepted=lambda r: r.text.strip() == "ok")
