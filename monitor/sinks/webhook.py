"""Generic JSON webhook: POST each notification, signed with HMAC-SHA256.

Body (``schema_version`` 1), UTF-8 JSON::

    {"schema_version": 1, "sent_at": <unix seconds, = X-Driftgate-Timestamp>,
     "id": <notification id>, "receiver": ..., "group_key": ..., "group_labels": {...},
     "status": "firing" | "resolved", "meta": {...},
     "alerts": [{"id", "fingerprint", "level", "state", "labels", "annotations",
                 "starts_at_ms", "ends_at_ms", "transition", "transition_id"}, ...]}

Headers:

- ``Idempotency-Key: <notification id>`` — the same on every retry of one notification;
  a receiver that stores it can drop repeats (a retry follows a timeout even when the first
  request got through).
- ``X-Driftgate-Timestamp: <unix seconds>`` — also in the body as ``sent_at``.
- ``X-Driftgate-Signature: sha256=<hex HMAC-SHA256 of the exact body, key = secret>`` —
  only when a ``secret`` is configured. Verify it on the raw bytes before parsing, then
  check that ``sent_at`` equals the timestamp header and is recent (this rejects replays:
  the timestamp is covered by the signature through the body). :func:`verify` does both.

Any 2xx is success; see :mod:`monitor.sinks.notifier` for the retry mapping.

>>> from monitor.sinks.notifier import example_notification
>>> seen = []
>>> def receiver(request):
...     seen.append(request)
...     return httpx.Response(204)
>>> hook = WebhookNotifier("hook", "http://hooks.local/driftgate", secret="s3cret",
...                        transport=httpx.MockTransport(receiver), clock=lambda: 1_795_392_000)
>>> hook.notify(example_notification())
>>> req = seen[0]
>>> req.headers["Idempotency-Key"] == example_notification().id
True
>>> req.headers["X-Driftgate-Signature"] == "sha256=" + sign("s3cret", req.content)
True
>>> verify("s3cret", req.content, req.headers["X-Driftgate-Signature"],
...        req.headers["X-Driftgate-Timestamp"], now_s=1_795_392_030)
True
>>> body = json.loads(req.content)
>>> body["schema_version"], body["status"], body["alerts"][0]["labels"]["region"]
(1, 'firing', 'eu-west')
>>> hook.close()
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import orjson

from monitor.router.model import Notification
from monitor.sinks.notifier import HttpNotifier

__all__ = ["WEBHOOK_SCHEMA_VERSION", "WebhookNotifier", "sign", "verify"]

WEBHOOK_SCHEMA_VERSION = 1
SIGNATURE_HEADER = "X-Driftgate-Signature"
TIMESTAMP_HEADER = "X-Driftgate-Timestamp"


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body`` with ``secret`` (the part after ``sha256=``)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    body: bytes,
    signature: str,
    timestamp: str,
    *,
    now_s: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Receiver side: is ``body`` signed with ``secret``, and sent within ``tolerance_s``?"""
    if not hmac.compare_digest(signature, "sha256=" + sign(secret, body)):
        return False
    try:
        sent_at = int(timestamp)
        in_body = json.loads(body).get("sent_at")
    except (ValueError, AttributeError):
        return False
    now = time.time() if now_s is None else now_s
    return in_body == sent_at and abs(now - sent_at) <= tolerance_s


class WebhookNotifier(HttpNotifier):
    """POSTs the notification as JSON to ``url``; signs it when ``secret`` is set."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, url, timeout_s=timeout_s, transport=transport, clock=clock)
        if secret is not None and not secret:
            raise ValueError(f"receiver {name!r}: secret is empty; set one or leave it out")
        self.secret = secret

    def body(self, n: Notification, sent_at: int) -> bytes:
        """The exact bytes sent (and signed) for ``n``."""
        doc = {"schema_version": WEBHOOK_SCHEMA_VERSION, "sent_at": sent_at, **n.as_dict()}
        return orjson.dumps(doc)

    def notify(self, n: Notification) -> None:
        sent_at = int(self._clock())
        content = self.body(n, sent_at)
        headers = {"Idempotency-Key": n.id, TIMESTAMP_HEADER: str(sent_at)}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = "sha256=" + sign(self.secret, content)
        self.post(content, headers)
