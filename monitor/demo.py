"""What ``driftgate demo`` adds around the pipeline: a local on-call webhook and a router.

The demo fans its signals out the way a deployment would, without any server to set up:

* ``oncall`` — a signed webhook (HMAC-SHA256) to :class:`LocalWebhook`, a loopback HTTP
  receiver started by the demo that checks every signature, standing in for the on-call
  tool; it gets the HALTs (``severity=critical``), grouped by region;
* ``file`` — every notification (WARN and HALT) appended to a JSON Lines file.

Inhibition is on: a region-wide HALT mutes the alerts of that region's cohorts, so on-call
gets one page for the region, not one per cohort.

>>> with LocalWebhook("k") as hook:
...     cfg = demo_router(hook.url, "notes.jsonl", "k")
>>> [r["name"] for r in cfg["receivers"]], cfg["route"]["routes"][0]["matchers"]
(['oncall', 'file'], ['severity=critical'])
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson

from monitor.sinks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

__all__ = ["LocalWebhook", "demo_router"]

DEMO_SECRET = "driftgate-demo"  # the demo's own loopback receiver: not a secret anywhere else


def demo_router(webhook_url: str, jsonl_path: str, secret: str = DEMO_SECRET) -> dict[str, Any]:
    """The ``router`` settings of the demo (a dict for ``load_settings`` overrides)."""
    return {
        "receivers": [
            {"name": "oncall", "kind": "webhook", "url": webhook_url, "secret": secret},
            {"name": "file", "kind": "jsonl", "path": jsonl_path},
        ],
        "route": {
            "receiver": "file",
            "group_by": ["region"],
            # roll-ups decide once their event-time window closes, after the first leaf
            # HALTs of a regional incident: wait for them, so the region HALT mutes its cohorts
            "group_wait_s": 1,
            "routes": [
                {"matchers": ["severity=critical"], "receiver": "oncall", "continue": True},
                {"receiver": "file", "group_by": ["segment"]},
            ],
        },
        "inhibit": True,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalWebhook


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = verify(
            self.server.owner.secret,
            body,
            self.headers.get(SIGNATURE_HEADER, ""),
            self.headers.get(TIMESTAMP_HEADER, ""),
        )
        if ok:
            self.server.owner.add(orjson.loads(body))
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()


class LocalWebhook:
    """A loopback webhook receiver that accepts only correctly signed deliveries."""

    def __init__(self, secret: str = DEMO_SECRET) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/driftgate"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(doc)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalWebhook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
