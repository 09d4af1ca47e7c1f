"""The receiver (notifier) contract, its in-memory version, and the one HTTP result mapping.

**Notifier** — hands one :class:`~monitor.router.model.Notification` to one receiver.
``notify(n)`` is called by the delivery engine (:mod:`monitor.sinks.delivery`) for each
notification due for this receiver, oldest first per group; it makes exactly one attempt and
returns only when the receiver accepted the notification. Otherwise it raises
:class:`~monitor.router.model.DeliveryError` with ``retryable`` (may a later attempt help?)
and ``retry_after_s`` (the receiver's ``Retry-After``, when it sent one). A notifier never
retries, sleeps, paces or falls back by itself: the engine owns that. ``close()`` is
called once at shutdown. ``n.id`` is the idempotency key: a notifier sends it along where
the receiver understands one (header, ``dedup_key``), since delivery is at least once: after
a timeout, or after a crash between the receiver's success and the outbox write, the same
notification is sent again with the same id.

HTTP results are mapped in one place, :func:`delivery_error` (used by every HTTP notifier
through :class:`HttpNotifier`):

==========================================  =============================================
result                                      outcome
==========================================  =============================================
2xx (what the receiver calls success)       delivered
429, 5xx                                    ``retryable``, ``retry_after_s`` from header
timeout, connection refused/reset           ``retryable``
other 4xx, 3xx, unexpected 2xx body         not retryable (fix the config or payload)
==========================================  =============================================

>>> NOTE = example_notification()
>>> m = MemoryNotifier("pager")
>>> m.fail_next(DeliveryError("down", retryable=True, retry_after_s=2.0))
>>> try:
...     m.notify(NOTE)
... except DeliveryError as exc:
...     print(exc.retryable, exc.retry_after_s)
True 2.0
>>> m.notify(NOTE); [n.id for n in m.received] == [NOTE.id]
True
>>> parse_retry_after("120", now_s=0.0), parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 0.0)
(120.0, 60.0)
"""

from __future__ import annotations

import email.utils
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

import httpx

from monitor.router.model import Alert, AlertState, DeliveryError, Notification, fingerprint

__all__ = [
    "HttpNotifier",
    "MemoryNotifier",
    "Notifier",
    "delivery_error",
    "example_notification",
    "parse_retry_after",
]

_BODY_SNIPPET = 200


class Notifier(Protocol):
    """One receiver. ``name`` is the receiver's name in the config (``router.receivers``).

    A notifier may also have ``min_interval_s`` (float): the delivery engine then leaves at
    least that long between two requests to it (Slack: 1 s), without sleeping.
    """

    name: str

    def notify(self, n: Notification) -> None: ...

    def close(self) -> None: ...


class MemoryNotifier:
    """Keeps notifications in a list; ``fail_next`` queues errors to raise first (tests)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.received: list[Notification] = []
        self.calls = 0
        self._failures: deque[DeliveryError] = deque()
        self.closed = False

    def fail_next(self, *errors: DeliveryError) -> None:
        """Make the next ``len(errors)`` calls raise these errors, in order."""
        self._failures.extend(errors)

    def notify(self, n: Notification) -> None:
        self.calls += 1
        if self._failures:
            raise self._failures.popleft()
        self.received.append(n)

    def close(self) -> None:
        self.closed = True


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None.

    >>> parse_retry_after(None, 0.0), parse_retry_after("soon", 0.0), parse_retry_after("-3", 0.0)
    (None, None, 0.0)
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - now_s)


def _snippet(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) > _BODY_SNIPPET:
        return one_line[:_BODY_SNIPPET] + "…"
    return one_line


def delivery_error(
    receiver: str,
    where: str,
    *,
    response: httpx.Response | None = None,
    exc: httpx.HTTPError | None = None,
    unexpected_body: bool = False,
    now_s: float | None = None,
) -> DeliveryError:
    """The :class:`DeliveryError` for a failed HTTP exchange: the one mapping of HTTP results.

    Pass the ``response`` (a status the receiver does not count as success, or a success
    status with an ``unexpected_body``) or the transport ``exc``. ``where`` names the
    receiver's address without secrets.

    >>> r = httpx.Response(429, headers={"Retry-After": "3"}, text="slow down")
    >>> e = delivery_error("slack", "https://hooks.slack.com", response=r)
    >>> e.retryable, e.retry_after_s
    (True, 3.0)
    >>> print(e)  # doctest: +NORMALIZE_WHITESPACE
    receiver 'slack': HTTP 429 from https://hooks.slack.com: slow down
    (retryable: retried with back-off)
    >>> delivery_error("hook", "http://x", response=httpx.Response(400, text="bad")).retryable
    False
    """
    now = time.time() if now_s is None else now_s
    if exc is not None:
        if isinstance(exc, httpx.TimeoutException):
            return DeliveryError(
                f"receiver {receiver!r}: {where} timed out ({type(exc).__name__}) "
                "(retryable: retried with back-off; raise timeout_s if the receiver is slow)",
                retryable=True,
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return DeliveryError(
                f"receiver {receiver!r}: bad address {where}: {exc} "
                "(not retryable: fix the receiver's url)",
                retryable=False,
            )
        return DeliveryError(
            f"receiver {receiver!r}: cannot reach {where}: "
            f"{type(exc).__name__}: {_snippet(str(exc))} "
            "(retryable: retried with back-off; check the receiver is up and the url)",
            retryable=True,
        )
    assert response is not None, "delivery_error needs a response or an exception"
    status = response.status_code
    body = _snippet(response.text)
    if unexpected_body:
        return DeliveryError(
            f"receiver {receiver!r}: HTTP {status} from {where} with unexpected body {body!r} "
            "(not retryable: check that url points at the right kind of receiver)",
            retryable=False,
        )
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return DeliveryError(
            f"receiver {receiver!r}: HTTP {status} from {where}: {body} "
            "(retryable: retried with back-off)",
            retryable=True,
            retry_after_s=retry_after,
        )
    hint = "fix the receiver's config or the payload"
    if 300 <= status < 400:
        hint = "set url to the final address (redirects are not followed)"
    elif status in (401, 403):
        hint = "check the receiver's secret, key or url"
    return DeliveryError(
        f"receiver {receiver!r}: HTTP {status} from {where}: {body} (not retryable: {hint})",
        retryable=False,
    )


class HttpNotifier:
    """Base of the HTTP notifiers: one ``httpx.Client`` with explicit timeouts, one POST.

    Subclasses build the body and headers and call :meth:`post`; ``success`` tells which
    responses the receiver means as accepted (default: any 2xx). ``transport`` replaces the
    network (``httpx.MockTransport`` in examples); ``clock`` gives wall-clock seconds.
    """

    #: Shown in error messages instead of the url (override when the url holds a secret).
    where: str

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not name:
            raise ValueError("a receiver needs a non-empty name")
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"receiver {name!r}: url must be http(s)://host/..., got {url!r}")
        if timeout_s <= 0:
            raise ValueError(f"receiver {name!r}: timeout_s must be > 0, got {timeout_s}")
        self.name = name
        self.url = url
        self.timeout_s = timeout_s
        self.where = str(parsed.copy_with(query=None, fragment=None, userinfo=b""))
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": "driftgate"},
        )

    def post(
        self,
        content: bytes,
        headers: Mapping[str, str],
        *,
        accepted: Callable[[httpx.Response], bool] | None = None,
    ) -> httpx.Response:
        """POST ``content`` (JSON) once; return the 2xx response or raise ``DeliveryError``.

        ``accepted(response)`` checks the body of a 2xx response when the receiver's
        contract says more than the status (Slack answers ``ok``); False → not retryable.
        """
        try:
            response = self._client.post(
                self.url, content=content, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            raise delivery_error(self.name, self.where, exc=exc) from None
        if not response.is_success:
            raise delivery_error(self.name, self.where, response=response, now_s=self._clock())
        if accepted is not None and not accepted(response):
            raise delivery_error(self.name, self.where, response=response, unexpected_body=True)
        return response

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, where={self.where!r})"


def example_notification(
    state: AlertState = AlertState.FIRING, receiver: str = "pager"
) -> Notification:
    """A HALT for ``region=eu-west`` (firing, or resolved an hour later): for examples and tests."""
    labels = {
        "alertname": "DriftgateScalingHalt",
        "severity": "critical",
        "level": "HALT",
        "scope": "region",
        "segment": "region=eu-west",
        "region": "eu-west",
        "cohort": "",
        "signal": "latency_ms",
    }
    t0 = 1_795_392_000_000  # 2026-11-23T00:00:00Z
    alert = Alert(
        id="5e1f0c2a9b7d3e41",
        fingerprint=fingerprint(labels),
        level="HALT",
        state=state,
        labels=labels,
        annotations={
            "summary": "HALT region=eu-west: latency_ms rose 2.3σ",
            "reason": "latency_ms rose 2.3σ",
            "evidence": "e1,e2",
        },
        starts_at_ms=t0,
        ends_at_ms=t0 + 3_600_000 if state is AlertState.RESOLVED else None,
        transition=f"{state.value}:HALT",
    )
    return Notification.build(
        receiver, f"{receiver}:{{segment=region=eu-west}}", {"segment": "region=eu-west"}, [alert]
    )
