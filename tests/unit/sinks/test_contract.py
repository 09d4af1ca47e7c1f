"""One contract over every HTTP notifier, each pointed at a loopback receiver.

Each notifier delivers a firing then a resolved notification; 500 → retryable; 400 → not
retryable; 429 + Retry-After (seconds or HTTP date) → retryable with ``retry_after_s``;
timeouts and refused connections → retryable; errors are one line and hide secrets.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from monitor.events import Level
from monitor.router.model import DeliveryError
from monitor.sinks import (
    AlertmanagerNotifier,
    HttpNotifier,
    MemoryNotifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
)
from tests.http_receiver import Received, ReceiverFactory, Reply, free_port
from tests.unit.sinks.builders import ROUTING_KEY, T0, alert, note

NOW_S = (T0 + 7_200_000) / 1000  # the notifiers' wall clock: two hours after the signal
TIMEOUT_S = 0.3


@dataclass(frozen=True)
class Kind:
    """How to build one notifier, what success looks like, and how to read its requests."""

    cls: type[HttpNotifier]
    make: Callable[[str], HttpNotifier]  # base url of the receiver → notifier
    ok: Reply
    path: str
    firing: Callable[[Received], bool]
    resolved: Callable[[Received], bool]
    secret: str  # must never appear in errors or repr


def _clock() -> float:
    return NOW_S


def _am_state(r: Received) -> str:
    """Alertmanager's reading: resolved once ``endsAt`` is in the past (now = 02:00)."""
    [a] = r.json()
    ends = a.get("endsAt")
    return "resolved" if ends is not None and ends <= "2026-11-23T02:00:00.000Z" else "firing"


KINDS: dict[str, Kind] = {
    "webhook": Kind(
        WebhookNotifier,
        lambda url: WebhookNotifier(
            "hook", url + "/hook", secret="hook-secret", timeout_s=TIMEOUT_S, clock=_clock
        ),
        Reply(204),
        "/hook",
        lambda r: r.json()["status"] == "firing",
        lambda r: r.json()["status"] == "resolved",
        "hook-secret",
    ),
    "alertmanager": Kind(
        AlertmanagerNotifier,
        lambda url: AlertmanagerNotifier("am", url, timeout_s=TIMEOUT_S, clock=_clock),
        Reply(200),
        "/api/v2/alerts",
        lambda r: _am_state(r) == "firing",
        lambda r: _am_state(r) == "resolved",
        "no-secret-here",
    ),
    "pagerduty": Kind(
        PagerDutyNotifier,
        lambda url: PagerDutyNotifier(
            "pager",
            routing_key=ROUTING_KEY,
            url=url + "/v2/enqueue",
            timeout_s=TIMEOUT_S,
            clock=_clock,
        ),
        Reply.json(202, {"status": "success", "message": "Event processed", "dedup_key": "x"}),
        "/v2/enqueue",
        lambda r: r.json()["event_action"] == "trigger",
        lambda r: r.json()["event_action"] == "resolve",
        ROUTING_KEY,
    ),
    "slack": Kind(
        SlackNotifier,
        lambda url: SlackNotifier(
            "chat",
            url + "/services/T000/B000/slack-secret-path",
            timeout_s=TIMEOUT_S,
            min_interval_s=0,
            clock=_clock,
        ),
        Reply(200, b"ok"),
        "/services/T000/B000/slack-secret-path",
        lambda r: r.json()["text"].startswith(":rotating_light: Firing"),
        lambda r: r.json()["text"].startswith(":white_check_mark: Resolved"),
        "slack-secret-path",
    ),
}

FIRING = note(alert(Level.HALT))
RESOLVED = note(alert(Level.HALT, state="resolved", ended_at=T0 + 3_600_000))


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


def _fail(kind: Kind, receiver: ReceiverFactory, reply: Reply) -> DeliveryError:
    server = receiver(reply)
    notifier = kind.make(server.url)
    try:
        with pytest.raises(DeliveryError) as info:
            notifier.notify(FIRING)
    finally:
        notifier.close()
    err = info.value
    assert "\n" not in str(err), "errors are one line"
    assert kind.secret not in str(err)
    assert kind.secret not in repr(notifier)
    assert str(err).startswith(f"receiver {notifier.name!r}:")
    return err


def test_every_http_notifier_is_under_contract() -> None:
    assert set(HttpNotifier.__subclasses__()) == {k.cls for k in KINDS.values()}


def test_delivers_firing_then_resolved(kind: Kind, receiver: ReceiverFactory) -> None:
    server = receiver(kind.ok)
    notifier = kind.make(server.url)
    try:
        notifier.notify(FIRING)
        notifier.notify(RESOLVED)
    finally:
        notifier.close()
    first, second = server.requests
    assert [first.method, first.path, second.path] == ["POST", kind.path, kind.path]
    assert first.headers["content-type"] == "application/json"
    assert kind.firing(first)
    assert not kind.resolved(first)
    assert kind.resolved(second)
    assert not kind.firing(second)


def test_500_is_retryable(kind: Kind, receiver: ReceiverFactory) -> None:
    err = _fail(kind, receiver, Reply(500, b"boom"))
    assert err.retryable
    assert err.retry_after_s is None
    assert "HTTP 500" in str(err)


def test_400_is_not_retryable(kind: Kind, receiver: ReceiverFactory) -> None:
    err = _fail(kind, receiver, Reply.json(400, {"status": "invalid event", "errors": ["x"]}))
    assert not err.retryable
    assert "HTTP 400" in str(err)
    assert "not retryable" in str(err)


def test_429_with_retry_after_seconds(kind: Kind, receiver: ReceiverFactory) -> None:
    err = _fail(kind, receiver, Reply(429, b"rate limited", {"Retry-After": "7"}))
    assert err.retryable
    assert err.retry_after_s == 7.0


def test_503_with_retry_after_http_date(kind: Kind, receiver: ReceiverFactory) -> None:
    date = email.utils.formatdate(NOW_S + 30, usegmt=True)
    err = _fail(kind, receiver, Reply(503, b"maintenance", {"Retry-After": date}))
    assert err.retryable
    assert err.retry_after_s == 30.0


def test_timeout_is_retryable(kind: Kind, receiver: ReceiverFactory) -> None:
    err = _fail(kind, receiver, Reply(hang=True, delay_s=TIMEOUT_S + 0.3))
    assert err.retryable
    assert "timed out" in str(err)


def test_refused_connection_is_retryable(kind: Kind) -> None:
    notifier = kind.make(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(DeliveryError) as info:
            notifier.notify(FIRING)
    finally:
        notifier.close()
    assert info.value.retryable
    assert "cannot reach" in str(info.value)
    assert kind.secret not in str(info.value)


def test_redirect_is_not_followed(kind: Kind, receiver: ReceiverFactory) -> None:
    err = _fail(kind, receiver, Reply(301, b"", {"Location": "http://127.0.0.1:1/elsewhere"}))
    assert not err.retryable
    assert "redirects are not followed" in str(err)


def test_rejects_a_bad_url(kind: Kind) -> None:
    with pytest.raises(ValueError, match=r"url must be http\(s\)://"):
        kind.make("ftp://example.org")


def test_memory_notifier_keeps_the_same_contract() -> None:
    m = MemoryNotifier("mem")
    m.fail_next(DeliveryError("x", retryable=False))
    with pytest.raises(DeliveryError):
        m.notify(FIRING)
    m.notify(FIRING)
    m.notify(RESOLVED)
    m.close()
    assert [n.status for n in m.received] == ["firing", "resolved"]
    assert m.calls == 3
    assert m.closed


def _implements_notifier(obj: Any) -> bool:
    return isinstance(obj.name, str) and callable(obj.notify) and callable(obj.close)


def test_every_notifier_has_the_protocol_members(kind: Kind) -> None:
    n = kind.make("http://127.0.0.1:9")
    try:
        assert _implements_notifier(n)
    finally:
        n.close()
