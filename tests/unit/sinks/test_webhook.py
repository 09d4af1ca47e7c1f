"""Webhook payload: documented schema v1, HMAC over the exact body, idempotency key."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from monitor.events import Level
from monitor.router.model import DeliveryError, Notification
from monitor.sinks import WebhookNotifier
from monitor.sinks.webhook import WEBHOOK_SCHEMA_VERSION, verify
from tests.http_receiver import ReceiverFactory, Reply
from tests.unit.sinks.builders import T0, alert, note

NOW_S = T0 // 1000 + 60
N = note(
    alert(Level.HALT),
    alert(Level.WARN, region="eu-west", cohort="free"),
    receiver="hook",
    by=("region",),
)


def _send(receiver: ReceiverFactory, secret: str | None, *ns: Notification) -> list[bytes]:
    server = receiver(Reply(200))
    hook = WebhookNotifier("hook", server.url + "/in", secret=secret, clock=lambda: NOW_S)
    try:
        for n in ns:
            hook.notify(n)
    finally:
        hook.close()
    assert all(
        r.headers["idempotency-key"] == n.id for r, n in zip(server.requests, ns, strict=True)
    )
    return [r.body for r in server.requests]


def test_signature_is_hmac_sha256_of_the_exact_body(receiver: ReceiverFactory) -> None:
    server = receiver(Reply(200))
    hook = WebhookNotifier("hook", server.url + "/in", secret="k3y", clock=lambda: NOW_S)
    try:
        hook.notify(N)
    finally:
        hook.close()
    [r] = server.requests
    expected = hmac.new(b"k3y", r.body, hashlib.sha256).hexdigest()
    assert r.headers["x-driftgate-signature"] == f"sha256={expected}"
    assert r.headers["x-driftgate-timestamp"] == str(NOW_S)
    assert r.headers["idempotency-key"] == N.id
    assert verify("k3y", r.body, r.headers["x-driftgate-signature"], str(NOW_S), now_s=NOW_S)


def test_verify_rejects_tampering_wrong_key_and_replays(receiver: ReceiverFactory) -> None:
    [body] = _send(receiver, "k3y", N)
    sig = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert not verify("k3y", body.replace(b"eu-west", b"us-east"), sig, str(NOW_S), now_s=NOW_S)
    assert not verify("other", body, sig, str(NOW_S), now_s=NOW_S)
    assert not verify("k3y", body, sig, str(NOW_S), now_s=NOW_S + 3600)  # too old
    assert not verify("k3y", body, sig, str(NOW_S + 1), now_s=NOW_S)  # header ≠ signed sent_at


def test_schema_v1(receiver: ReceiverFactory) -> None:
    [body] = _send(receiver, None, N)
    raw = orjson.loads(body)
    assert Notification.from_dict(raw) == N
    assert raw["schema_version"] == WEBHOOK_SCHEMA_VERSION == 1
    assert raw["sent_at"] == NOW_S
    assert set(raw) == {
        "schema_version",
        "sent_at",
        "id",
        "receiver",
        "group_key",
        "group_labels",
        "status",
        "alerts",
        "meta",
    }
    assert raw["status"] == "firing"
    assert raw["group_labels"] == {"region": "eu-west"}
    halt, warn = raw["alerts"]
    assert set(halt) == {
        "id",
        "fingerprint",
        "level",
        "state",
        "labels",
        "annotations",
        "starts_at_ms",
        "ends_at_ms",
        "transition_id",
        "transition",
    }
    assert (halt["level"], halt["state"], warn["labels"]["cohort"]) == ("HALT", "firing", "free")
    assert halt["annotations"]["evidence"] == "e1,e2"


def test_without_secret_no_signature_and_same_key_on_retry(receiver: ReceiverFactory) -> None:
    server = receiver(Reply(200))
    server.script.append(Reply(503))
    hook = WebhookNotifier("hook", server.url, clock=lambda: NOW_S)
    try:
        with pytest.raises(DeliveryError, match="HTTP 503"):
            hook.notify(N)
        hook.notify(N)
    finally:
        hook.close()
    first, again = server.requests
    assert "x-driftgate-signature" not in first.headers
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"] == N.id
    assert first.body == again.body


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        WebhookNotifier("hook", "http://127.0.0.1:9", secret="")
