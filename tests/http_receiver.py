"""A loopback HTTP receiver in a thread: records every request, answers from a script.

``LocalReceiver(default)`` listens on ``127.0.0.1:0``. Each request takes the next
:class:`Reply` of ``script`` (a deque the test fills), or ``default`` when the script is
empty (a :class:`Reply` or a function of the request). A reply can ``hang``: sleep
``delay_s`` and close without answering (a client with a shorter timeout sees a timeout).
``close()`` stops the server and joins every handler thread, so no thread outlives a test.

:class:`DedupingPager` is a ``default`` that behaves like a receiver that de-duplicates on
``Idempotency-Key`` (what docs/sinks.md asks webhook receivers to do): the first request
with a key pages, a repeat is acknowledged (200) and dropped.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson

__all__ = ["DedupingPager", "LocalReceiver", "Received", "ReceiverFactory", "Reply", "free_port"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang: bool = False

    @classmethod
    def json(cls, status: int, doc: Any, **headers: str) -> Reply:
        return cls(status, orjson.dumps(doc), {"Content-Type": "application/json", **headers})


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic()
    status: int | None = None  # what was answered (None: hung up)

    def json(self) -> Any:
        return orjson.loads(self.body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True
    owner: LocalReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout) resets the connection: expected here


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Received(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            time.monotonic(),
        )
        reply = owner.next_reply(rec)
        with owner.lock:
            owner.requests.append(rec)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.hang:
            self.close_connection = True
            return
        rec.status = reply.status
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class LocalReceiver:
    def __init__(self, default: Reply | Callable[[Received], Reply] | None = None) -> None:
        self.default = default if default is not None else Reply(200)
        self.script: deque[Reply] = deque()
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def next_reply(self, rec: Received) -> Reply:
        with self.lock:
            if self.script:
                return self.script.popleft()
        return self.default(rec) if callable(self.default) else self.default

    def answered(self, status: int | None = None) -> list[Received]:
        """Requests answered (with ``status``, or with any 2xx)."""
        with self.lock:
            reqs = list(self.requests)
        if status is None:
            return [r for r in reqs if r.status is not None and 200 <= r.status < 300]
        return [r for r in reqs if r.status == status]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LocalReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class DedupingPager:
    """A reply function that pages once per ``Idempotency-Key`` (400 without one).

    ``pages``: the keys that paged, in order; ``repeats``: the keys seen again (dropped).
    """

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.repeats: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, rec: Received) -> Reply:
        key = rec.headers.get("idempotency-key")
        if not key:
            return Reply(400, b"Idempotency-Key header required")
        with self._lock:
            (self.repeats if key in self.pages else self.pages).append(key)
        return Reply(200)


#: The ``receiver`` fixture: ``receiver(default=Reply(200))`` → a started LocalReceiver.
ReceiverFactory = Callable[..., LocalReceiver]
