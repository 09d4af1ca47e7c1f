"""Slack incoming webhook: text and blocks per transition, ``ok`` body, pacing."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.events import Level
from monitor.router.model import DeliveryError, Notification
from monitor.sinks import Deliverer, DeliveryState, SlackNotifier
from monitor.sinks.slack import MAX_ALERTS
from tests.http_receiver import ReceiverFactory, Reply
from tests.unit.sinks.builders import T0, Clock, alert, note

PATH = "/services/T000/B000/secret-token"


def _messages(receiver: ReceiverFactory, *ns: Notification) -> list[dict[str, Any]]:
    server = receiver(Reply(200, b"ok"))
    slack = SlackNotifier("chat", server.url + PATH, min_interval_s=0)
    try:
        for n in ns:
            slack.notify(n)
    finally:
        slack.close()
    assert {r.path for r in server.requests} == {PATH}
    return [r.json() for r in server.requests]


def test_one_message_per_transition(receiver: ReceiverFactory) -> None:
    firing = note(alert(Level.HALT))
    acked = note(alert(Level.HALT, state="acknowledged", acked_by="ana"))
    resolved = note(alert(Level.HALT, state="resolved", ended_at=T0 + 3_600_000))
    warn = note(alert(Level.WARN))
    f, a, r, w = _messages(receiver, firing, acked, resolved, warn)
    assert f["text"] == ":rotating_light: Firing: HALT region=eu-west: latency_ms rose 2.3σ"
    assert a["text"].startswith(":eyes: Acknowledged: HALT region=eu-west")
    assert r["text"] == ":white_check_mark: Resolved: HALT region=eu-west: latency_ms rose 2.3σ"
    assert w["text"].startswith(":warning: Firing: WARN")
    header, section, context = f["blocks"]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert header["text"]["text"] == "Firing: HALT region=eu-west: latency_ms rose 2.3σ"
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert "*HALT* `region=eu-west`" in section["text"]["text"]
    assert "evidence: e1,e2" in section["text"]["text"]
    assert "since 2026-11-23 00:00 UTC" in section["text"]["text"]
    assert "ended 2026-11-23 01:00 UTC" in r["blocks"][1]["text"]["text"]
    assert firing.id in context["elements"][0]["text"]


def test_many_alerts_are_capped_and_text_is_escaped(receiver: ReceiverFactory) -> None:
    alerts = [alert(Level.WARN, region=f"r{i}", reason="p<0.01 & rising") for i in range(25)]
    n = Notification.build("chat", "chat:{}", {"severity": "warning"}, alerts)
    [m] = _messages(receiver, n)
    assert m["text"] == ":warning: Firing: 25 alerts for severity=warning"
    sections = [b for b in m["blocks"] if b["type"] == "section"]
    assert len(sections) == MAX_ALERTS
    assert len(m["blocks"]) <= 50
    assert m["blocks"][-2]["elements"][0]["text"] == "…and 5 more alerts"
    assert "p&lt;0.01 &amp; rising" in sections[0]["text"]["text"]


def test_200_without_ok_is_not_retryable_and_hides_the_url_path(receiver: ReceiverFactory) -> None:
    server = receiver(Reply(200, b"<html>login</html>"))
    slack = SlackNotifier("chat", server.url + PATH, min_interval_s=0)
    try:
        with pytest.raises(DeliveryError) as info:
            slack.notify(note(alert()))
    finally:
        slack.close()
    assert not info.value.retryable
    assert "unexpected body" in str(info.value)
    assert "secret-token" not in str(info.value)
    assert str(info.value).count("\n") == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, b"invalid_payload"), (403, b"invalid_token"), (404, b"no_service"), (410, b"gone")],
)
def test_slack_client_errors_are_not_retryable(
    receiver: ReceiverFactory, status: int, body: bytes
) -> None:
    server = receiver(Reply(status, body))
    slack = SlackNotifier("chat", server.url + PATH, min_interval_s=0)
    try:
        with pytest.raises(DeliveryError) as info:
            slack.notify(note(alert()))
    finally:
        slack.close()
    assert not info.value.retryable
    assert body.decode() in str(info.value)


def test_the_engine_paces_slack_to_one_message_per_second(receiver: ReceiverFactory) -> None:
    server = receiver(Reply(200, b"ok"))
    slack = SlackNotifier("chat", server.url + PATH)  # min_interval_s = 1.0
    clock = Clock(T0)
    d = Deliverer({"chat": slack}, clock=clock)
    ns = [note(alert(region=r), receiver="chat") for r in ("eu-west", "us-east", "ap-south")]
    rows = {(n.id, "chat"): DeliveryState.new(n, now_ms=T0 + i) for i, n in enumerate(ns)}
    by_id = {n.id: n for n in ns}
    sent_at = []
    try:
        for _ in range(10):
            pending = [s for s in rows.values() if s.state == "pending"]
            if not pending:
                break
            clock.now = max(clock.now, d.next_wakeup_ms(pending) or 0)
            before = len(server.requests)
            for s in d.deliver_due(pending, by_id):
                rows[(s.notification_id, s.receiver)] = s
            assert len(server.requests) - before == 1, "one message per pass"
            sent_at.append(clock.now)
    finally:
        slack.close()
    assert sent_at == [T0, T0 + 1000, T0 + 2000]  # 1 s apart, no sleeping
    assert [r.json()["blocks"][0]["text"]["text"].split(": ")[1] for r in server.requests] == [
        "HALT region=eu-west",
        "HALT region=us-east",
        "HALT region=ap-south",
    ]
