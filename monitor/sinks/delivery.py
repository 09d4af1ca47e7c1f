"""Delivery engine: retries with back-off, a circuit breaker and a fallback per receiver.

Pure logic: no threads, no sleeping, no I/O of its own (it calls the notifiers). The
clock (epoch ms) and the RNG are injected, so tests drive it with a fake clock.

**Rows.** One :class:`DeliveryState` per (notification id, receiver) — a row of the durable
outbox (``notifications`` table). ``state`` is ``pending`` until it ends as
``delivered``, ``failed`` (given up, no fallback) or ``fallback`` (given up and handed to the
receiver's fallback: a new pending row for the same notification id and the fallback
receiver, from :meth:`Deliverer.handoff`). Terminal rows are never sent again, so the
notification id is the idempotency key per receiver. A fallback row does not fall back
again (one hop; no cycles).

**Order.** Rows of one receiver and group key are delivered oldest first (``created_ms``,
then input order): a row waits while an older one of its group is pending.

**Back-off, per receiver.** A retryable failure pauses the *whole receiver* for a delay
drawn with full jitter, ``uniform(0, min(cap_s, base_s · 2^(k-1)))`` for its k-th failure in
a row, or for the receiver's ``Retry-After`` when that is longer. While paused, no request
goes to it: one failure costs one request, not one per pending notification (no retry
storm).

**Pacing.** A notifier with a ``min_interval_s`` attribute (Slack: 1 s) gets at least that
long between two requests: the receiver is paused that long after each one.

**Circuit breaker, per receiver.** ``closed`` → ``open`` after ``breaker_failures``
retryable failures in a row; while open nothing is sent; after ``breaker_cooldown_s`` it is
``half_open`` and the next attempt is a probe: success closes it, a retryable failure opens
it again. Non-retryable failures (a 400: the receiver is up, the payload is refused) neither
count nor reset. Breaker and pause live in memory: after a restart a receiver starts closed.

**Giving up.** A row is given up on a non-retryable error, after ``max_attempts`` attempts,
or when its next attempt would come later than ``max_age_s`` after it was created (so
``max_age_s`` is how long a receiver may be down before a notification to it is given up).
Both come from the row's receiver's :class:`RetryPolicy` (``policies``, else ``policy``).
Given up, or pending while its receiver's breaker is open, a row goes to the receiver's
fallback when one is configured (state ``fallback``); else a given-up row is ``failed``.
Giving up is never silent: it logs one ERROR line naming the notification, the receiver,
what happens to it and why, and is reported to ``record`` with outcome ``failed`` or
``fallback``.

Every call of a notifier, and every hand-off, is reported to ``record`` as a
:class:`DeliveryAttempt` (for logs and metrics; the row holds the durable state). A
``delivered`` attempt is reported as soon as the notifier returned, *before* the caller
stores the row: a crash in between leaves the row pending, and it is sent again (at least
once, with the same notification id).

>>> from monitor.router.model import DeliveryError
>>> from monitor.sinks.notifier import MemoryNotifier, example_notification
>>> n = example_notification()
>>> pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
>>> now = [0]
>>> d = Deliverer({"pager": pager, "chat": chat}, RetryPolicy(breaker_failures=2),
...               fallback={"pager": "chat"}, clock=lambda: now[0], rng=random.Random(7))
>>> pager.fail_next(DeliveryError("HTTP 503", retryable=True, retry_after_s=5.0))
>>> row = d.attempt(DeliveryState.new(n, now_ms=0), n)
>>> row.state, row.attempts, row.next_attempt_ms
('pending', 1, 5000)
>>> d.due([row], now_ms=4_999), d.due([row], now_ms=5_000) == [row]
([], True)
>>> now[0] = 5_000
>>> d.attempt(row, n).state, [x.id for x in pager.received] == [n.id]
('delivered', True)
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from monitor.router.model import DeliveryError, Notification
from monitor.sinks.notifier import Notifier

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "Deliverer",
    "DeliveryAttempt",
    "DeliveryState",
    "RetryPolicy",
    "RowState",
]

log = logging.getLogger(__name__)

RowState = Literal["pending", "delivered", "failed", "fallback"]
BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["delivered", "retry", "failed", "fallback"]
TERMINAL: frozenset[str] = frozenset({"delivered", "failed", "fallback"})


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one receiver. Times in seconds.

    >>> p = RetryPolicy(base_s=2, cap_s=10)
    >>> p.max_delay_s(1), p.max_delay_s(2), p.max_delay_s(5)
    (2.0, 4.0, 10.0)
    """

    base_s: float = 1.0  # back-off scale: the k-th failure in a row waits up to base·2^(k-1)
    cap_s: float = 300.0  # back-off ceiling
    max_attempts: int = 12  # per row; then give up
    max_age_s: float = 3600.0  # per row, from its creation; then give up
    breaker_failures: int = 5  # retryable failures in a row that open the breaker
    breaker_cooldown_s: float = 60.0  # open → half-open after this

    def __post_init__(self) -> None:
        for name in ("base_s", "cap_s", "max_age_s", "breaker_cooldown_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RetryPolicy.{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_attempts", "breaker_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"RetryPolicy.{name} must be >= 1, got {getattr(self, name)}")
        if self.cap_s < self.base_s:
            raise ValueError(f"RetryPolicy.cap_s ({self.cap_s}) must be >= base_s ({self.base_s})")

    def max_delay_s(self, failures: int) -> float:
        """Upper bound of the jittered delay after ``failures`` failures in a row."""
        return float(min(self.cap_s, self.base_s * 2.0 ** min(max(failures - 1, 0), 62)))

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, max_delay_s(failures)]."""
        return rng.uniform(0.0, self.max_delay_s(failures))


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """One outbox row: the delivery of one notification to one receiver.

    Fields map one to one to the columns of the ``notifications`` table (its ``payload``
    column holds the notification itself).
    """

    notification_id: str
    receiver: str
    group_key: str
    created_ms: int  # when enqueued: max_age_s counts from here
    state: RowState = "pending"
    attempts: int = 0
    next_attempt_ms: int = 0
    last_error: str | None = None
    delivered_ms: int | None = None

    @classmethod
    def new(cls, n: Notification, now_ms: int, receiver: str | None = None) -> DeliveryState:
        """A fresh pending row for ``n`` (to ``n.receiver`` unless ``receiver`` is given)."""
        return cls(n.id, receiver or n.receiver, n.group_key, now_ms, "pending", 0, now_ms)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeliveryState:
        """From an outbox row (extra columns such as ``payload`` are ignored)."""
        state = str(row["state"])
        if state not in ("pending", "delivered", "failed", "fallback"):
            raise ValueError(f"outbox row has unknown state {state!r}")
        return cls(
            notification_id=str(row["notification_id"]),
            receiver=str(row["receiver"]),
            group_key=str(row.get("group_key") or ""),
            created_ms=int(row.get("created_ms") or 0),
            state=state,  # type: ignore[arg-type]  # checked above
            attempts=int(row.get("attempts") or 0),
            next_attempt_ms=int(row.get("next_attempt_ms") or 0),
            last_error=row.get("last_error"),
            delivered_ms=row.get("delivered_ms"),
        )

    def as_row(self) -> dict[str, Any]:
        """The outbox columns (without ``payload``)."""
        return {
            "notification_id": self.notification_id,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "created_ms": self.created_ms,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_ms": self.next_attempt_ms,
            "last_error": self.last_error,
            "delivered_ms": self.delivered_ms,
        }

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One call of a notifier (``attempt`` ≥ 1), or one hand-off to the fallback."""

    notification_id: str
    receiver: str
    attempt: int
    at_ms: int
    outcome: Outcome
    error: str | None
    next_attempt_ms: int | None  # when the row is tried again (retry only)
    breaker: BreakerState  # the receiver's breaker after this attempt


class CircuitBreaker:
    """closed → open after ``failures`` failures in a row → half-open after ``cooldown_ms``.

    >>> b = CircuitBreaker(failures=2, cooldown_ms=1000)
    >>> b.failure(0); b.allows(1), b.state
    (True, 'closed')
    >>> b.failure(1); b.allows(500), b.state
    (False, 'open')
    >>> b.allows(1001), b.state
    (True, 'half_open')
    >>> b.success(1002); b.state, [s for _, s in b.transitions]
    ('closed', ['open', 'half_open', 'closed'])
    """

    def __init__(self, failures: int, cooldown_ms: int) -> None:
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        if cooldown_ms < 0:
            raise ValueError(f"cooldown_ms must be >= 0, got {cooldown_ms}")
        self.failures_to_open = failures
        self.cooldown_ms = cooldown_ms
        self.state: BreakerState = "closed"
        self.failures = 0  # retryable failures in a row
        self.opened_ms = 0
        self.transitions: deque[tuple[int, BreakerState]] = deque(maxlen=256)

    @property
    def open_until_ms(self) -> int:
        return self.opened_ms + self.cooldown_ms if self.state == "open" else 0

    def _move(self, to: BreakerState, now_ms: int) -> None:
        if to != self.state:
            self.state = to
            self.transitions.append((now_ms, to))

    def allows(self, now_ms: int) -> bool:
        """May a request go out now? (Moves open → half-open once the cool-down is over.)"""
        if self.state == "open" and now_ms >= self.open_until_ms:
            self._move("half_open", now_ms)
        return self.state != "open"

    def success(self, now_ms: int) -> None:
        self.failures = 0
        self._move("closed", now_ms)

    def failure(self, now_ms: int) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.failures_to_open:
            self.opened_ms = now_ms
            self._move("open", now_ms)


@dataclass(slots=True)
class _Receiver:
    breaker: CircuitBreaker
    paused_until_ms: int = 0
    pause_reason: str = ""


@dataclass(slots=True)
class _Pass:
    """The rows of one ``deliver_due`` pass, queued per (receiver, group key)."""

    queues: dict[tuple[str, str], deque[DeliveryState]] = field(default_factory=dict)

    def add(self, s: DeliveryState) -> tuple[str, str]:
        key = (s.receiver, s.group_key)
        self.queues.setdefault(key, deque()).append(s)
        return key


class Deliverer:
    """Delivers outbox rows through their receivers' notifiers (single-threaded).

    ``notifiers`` by receiver name; ``policy`` is the retry policy of every receiver not in
    ``policies`` (per receiver name: its own give-up horizon); ``fallback`` maps a receiver
    to the receiver that takes what it gives up; ``clock`` returns epoch ms; ``rng`` draws
    the jitter (pass a seeded ``random.Random`` for reproducible runs); ``record`` gets
    every :class:`DeliveryAttempt`.
    """

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        policy: RetryPolicy | None = None,
        fallback: Mapping[str, str] | None = None,
        clock: Callable[[], int] = _wall_ms,
        rng: random.Random | None = None,
        record: Callable[[DeliveryAttempt], None] | None = None,
        *,
        policies: Mapping[str, RetryPolicy] | None = None,
    ) -> None:
        self.notifiers = dict(notifiers)
        self.policy = policy or RetryPolicy()
        self.policies = dict(policies or {})
        unknown = sorted(set(self.policies) - set(self.notifiers))
        if unknown:
            raise ValueError(f"retry policies for unknown receivers: {', '.join(unknown)}")
        self.fallback = dict(fallback or {})
        for src, dst in self.fallback.items():
            if src not in self.notifiers or dst not in self.notifiers:
                missing = src if src not in self.notifiers else dst
                raise ValueError(f"fallback {src!r} → {dst!r}: no notifier named {missing!r}")
            if src == dst:
                raise ValueError(f"receiver {src!r} cannot be its own fallback")
        self._clock = clock
        self._rng = rng or random.Random()
        self._record = record
        self._receivers: dict[str, _Receiver] = {}

    # -- per-receiver health -------------------------------------------------------------

    def policy_for(self, receiver: str) -> RetryPolicy:
        """The retry policy (back-off, breaker, give-up horizon) of ``receiver``."""
        return self.policies.get(receiver, self.policy)

    def _rx(self, receiver: str) -> _Receiver:
        rx = self._receivers.get(receiver)
        if rx is None:
            policy = self.policy_for(receiver)
            cooldown_ms = int(policy.breaker_cooldown_s * 1000)
            rx = _Receiver(CircuitBreaker(policy.breaker_failures, cooldown_ms))
            self._receivers[receiver] = rx
        return rx

    def breaker(self, receiver: str) -> CircuitBreaker:
        """The circuit breaker of ``receiver``."""
        return self._rx(receiver).breaker

    def blocked_until_ms(self, receiver: str, now_ms: int) -> int:
        """Until when no request may go to ``receiver`` (≤ ``now_ms``: it may go now)."""
        rx = self._rx(receiver)
        until = rx.paused_until_ms
        if rx.breaker.state == "open":
            until = max(until, rx.breaker.open_until_ms)
        return until

    # -- one row -------------------------------------------------------------------------

    def attempt(self, state: DeliveryState, n: Notification) -> DeliveryState:
        """Try ``state``'s row once (if its receiver may be called now); return the new row.

        A terminal row is returned unchanged and nothing is sent. When the receiver is
        paused or its breaker is open, nothing is sent and the row's ``next_attempt_ms`` is
        moved to when it may go — or, with a fallback, the row is handed off.
        """
        if state.notification_id != n.id:
            raise ValueError(
                f"row {state.notification_id!r} attempted with notification {n.id!r}: "
                "pass the notification the row was made for"
            )
        if state.terminal:
            return state
        notifier = self.notifiers.get(state.receiver)
        if notifier is None:
            raise ValueError(
                f"no notifier for receiver {state.receiver!r}: add it to router.receivers "
                "or delete its pending outbox rows"
            )
        now = self._clock()
        rx = self._rx(state.receiver)
        fallback = self.fallback.get(state.receiver) if state.receiver == n.receiver else None
        if not rx.breaker.allows(now):
            error = (
                f"receiver {state.receiver!r}: circuit open after {rx.breaker.failures} "
                f"failures in a row (last: {state.last_error or 'none for this notification'})"
            )
            if fallback is not None:
                return self._give_up(state, now, error, fallback, attempt=state.attempts)
            return self._defer(state, rx.breaker.open_until_ms)
        if now < rx.paused_until_ms:
            return self._defer(state, rx.paused_until_ms)
        max_age_s = self.policy_for(state.receiver).max_age_s
        if now - state.created_ms >= max_age_s * 1000:
            error = (
                f"gave up: pending longer than max_age_s={max_age_s:g} "
                f"(last error: {state.last_error or 'none, not sent'})"
            )
            return self._give_up(state, now, error, fallback, attempt=state.attempts)

        number = state.attempts + 1
        pace_ms = math.ceil(float(getattr(notifier, "min_interval_s", 0.0) or 0.0) * 1000)
        try:
            notifier.notify(n)
        except DeliveryError as exc:
            err = exc
        except Exception as exc:  # a notifier bug must not stop delivery to the others
            log.exception("notifier %r raised %s", state.receiver, type(exc).__name__)
            err = DeliveryError(
                f"receiver {state.receiver!r}: notifier raised {type(exc).__name__}: {exc} "
                "(not retryable: a driftgate bug, please report it)",
                retryable=False,
            )
        else:
            rx.breaker.success(now)
            rx.paused_until_ms = now + pace_ms
            done = replace(
                state, state="delivered", attempts=number, next_attempt_ms=now, delivered_ms=now
            )
            self._emit(done, number, now, "delivered", None, None)
            return done
        rx.paused_until_ms = max(rx.paused_until_ms, now + pace_ms)
        return self._failed(state, now, number, err, fallback)

    def _failed(
        self,
        state: DeliveryState,
        now: int,
        number: int,
        err: DeliveryError,
        fallback: str | None,
    ) -> DeliveryState:
        error = str(err)
        tried = replace(state, attempts=number, last_error=error)
        if not err.retryable:
            return self._give_up(tried, now, error, fallback, attempt=number)
        rx = self._rx(state.receiver)
        policy = self.policy_for(state.receiver)
        rx.breaker.failure(now)
        delay_s = policy.delay_s(rx.breaker.failures, self._rng)
        if err.retry_after_s is not None:
            delay_s = max(delay_s, err.retry_after_s)
        next_ms = now + math.ceil(delay_s * 1000)
        if rx.breaker.state == "open":
            next_ms = max(next_ms, rx.breaker.open_until_ms)
        rx.paused_until_ms = max(rx.paused_until_ms, next_ms)
        if number >= policy.max_attempts:
            why = f"gave up after {number} attempts (max_attempts={policy.max_attempts}): {error}"
            return self._give_up(tried, now, why, fallback, attempt=number)
        if next_ms - state.created_ms > policy.max_age_s * 1000:
            why = f"gave up: next attempt beyond max_age_s={policy.max_age_s:g}: {error}"
            return self._give_up(tried, now, why, fallback, attempt=number)
        if rx.breaker.state == "open" and fallback is not None:
            return self._give_up(tried, now, error, fallback, attempt=number)
        retry = replace(tried, next_attempt_ms=next_ms)
        self._emit(retry, number, now, "retry", error, next_ms)
        return retry

    def _give_up(
        self,
        state: DeliveryState,
        now: int,
        error: str,
        fallback: str | None,
        *,
        attempt: int,
    ) -> DeliveryState:
        # next_attempt_ms of a terminal row is when it ended (here: when it was given up)
        if fallback is not None:
            out = replace(state, state="fallback", next_attempt_ms=now, last_error=error)
            log.error(
                "notification %s given up by receiver %r, handed to fallback %r: %s",
                state.notification_id,
                state.receiver,
                fallback,
                error,
            )
            self._emit(out, attempt, now, "fallback", error, None)
            return out
        out = replace(state, state="failed", next_attempt_ms=now, last_error=error)
        log.error(
            "notification %s given up by receiver %r, NOT delivered (no fallback): %s "
            "(see `driftgate status`; configure a fallback receiver to catch these)",
            state.notification_id,
            state.receiver,
            error,
        )
        self._emit(out, attempt, now, "failed", error, None)
        return out

    def _defer(self, state: DeliveryState, until_ms: int) -> DeliveryState:
        if until_ms <= state.next_attempt_ms:
            return state
        return replace(state, next_attempt_ms=until_ms)

    def _emit(
        self,
        state: DeliveryState,
        number: int,
        now: int,
        outcome: Outcome,
        error: str | None,
        next_ms: int | None,
    ) -> None:
        if self._record is not None:
            breaker = self._rx(state.receiver).breaker.state
            self._record(
                DeliveryAttempt(
                    notification_id=state.notification_id,
                    receiver=state.receiver,
                    attempt=number,
                    at_ms=now,
                    outcome=outcome,
                    error=error,
                    next_attempt_ms=next_ms,
                    breaker=breaker,
                )
            )

    def handoff(self, state: DeliveryState) -> DeliveryState:
        """The new pending row, for the fallback receiver, of a row in state ``fallback``."""
        if state.state != "fallback" or state.receiver not in self.fallback:
            raise ValueError(
                f"row {state.notification_id!r} for {state.receiver!r} is not handed to a "
                f"fallback (state {state.state!r})"
            )
        now = self._clock()
        return replace(
            state,
            receiver=self.fallback[state.receiver],
            created_ms=now,
            state="pending",
            attempts=0,
            next_attempt_ms=now,
            last_error=None,
            delivered_ms=None,
        )

    # -- many rows -----------------------------------------------------------------------

    @staticmethod
    def _queues(states: Iterable[DeliveryState]) -> _Pass:
        pending = sorted(
            (s for s in states if s.state == "pending"), key=lambda s: s.created_ms
        )  # stable: ties keep the input order
        p = _Pass()
        for s in pending:
            p.add(s)
        return p

    def _may_try(self, head: DeliveryState, now_ms: int) -> bool:
        if head.next_attempt_ms > now_ms:
            return False
        if head.receiver in self.fallback:  # a hand-off may be due even while blocked
            return True
        return self.blocked_until_ms(head.receiver, now_ms) <= now_ms

    def due(self, states: Iterable[DeliveryState], now_ms: int) -> list[DeliveryState]:
        """The rows to attempt now: per (receiver, group key) the oldest pending row, if due.

        Pass *every* pending row (not only the due ones): a row waits behind an older one
        of its group even when its own time has come.
        """
        heads = [q[0] for q in self._queues(states).queues.values()]
        return [h for h in heads if self._may_try(h, now_ms)]

    def next_wakeup_ms(self, states: Iterable[DeliveryState]) -> int | None:
        """When the next row may become due (None: nothing pending)."""
        now = self._clock()
        times = []
        for q in self._queues(states).queues.values():
            head = q[0]
            t = head.next_attempt_ms
            if head.receiver not in self.fallback:
                t = max(t, self.blocked_until_ms(head.receiver, now))
            times.append(t)
        return min(times, default=None)

    def deliver_due(
        self, states: Iterable[DeliveryState], notifications: Mapping[str, Notification]
    ) -> list[DeliveryState]:
        """Attempt every due row, in order per group; return the rows that changed or are new.

        ``states``: every pending row (see :meth:`due`); ``notifications`` by id. A row
        handed to a fallback comes back in state ``fallback`` together with the fallback's
        new row (already attempted once when possible). Persist every returned row.
        """
        p = self._queues(states)
        changed: dict[tuple[str, str], DeliveryState] = {}
        work = deque(p.queues)
        while work:
            key = work.popleft()
            queue = p.queues[key]
            while queue and self._may_try(queue[0], self._clock()):
                head = queue[0]
                n = notifications.get(head.notification_id)
                if n is None:
                    raise ValueError(
                        f"no notification {head.notification_id!r} for its outbox row: "
                        "pass the payloads of every pending row"
                    )
                new = self.attempt(head, n)
                if new != head:
                    changed[(new.notification_id, new.receiver)] = new
                if not new.terminal:
                    break
                queue.popleft()
                if new.state == "fallback":
                    extra = self.handoff(new)
                    changed[(extra.notification_id, extra.receiver)] = extra
                    fkey = p.add(extra)
                    if fkey not in work:
                        work.append(fkey)
        return list(changed.values())
