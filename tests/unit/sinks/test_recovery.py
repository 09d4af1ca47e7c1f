"""A failing-then-recovering receiver over real HTTP, driven through the Deliverer.

The loopback receiver answers 5xx three times, then hangs past the client timeout twice,
then 429 with Retry-After, then 200. With a fake clock the engine must deliver every
notification exactly once, in order per group, with one request per failure (no storm),
honour Retry-After, and move the breaker closed → open → half-open → … → closed. A second
scenario checks that the fallback receiver gets what a dead primary gives up on, and that
the primary takes over again once it answers.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random

from monitor.events import Level
from monitor.router.model import Notification
from monitor.sinks import (
    Deliverer,
    DeliveryAttempt,
    DeliveryState,
    RetryPolicy,
    WebhookNotifier,
)
from tests.http_receiver import LocalReceiver, ReceiverFactory, Reply
from tests.unit.sinks.builders import T0, Clock, alert, note, run

TIMEOUT_S = 0.2
SECRET = "recovery-secret"


def group_notes(receiver: str, groups: int, first: int = 0) -> list[Notification]:
    out = []
    for g in range(first, first + groups):
        out.append(note(alert(Level.HALT, region=f"r{g}"), receiver=receiver))
        resolved = alert(Level.HALT, region=f"r{g}", state="resolved", ended_at=T0 + 60_000)
        out.append(note(resolved, receiver=receiver))
    return out


def hook(name: str, server: LocalReceiver) -> WebhookNotifier:
    return WebhookNotifier(name, server.url + "/hook", secret=SECRET, timeout_s=TIMEOUT_S)


def accepted_ids(server: LocalReceiver) -> list[str]:
    """Notification ids the receiver accepted (answered 2xx), checking each signature."""
    out = []
    for r in server.answered():
        mac = hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-driftgate-signature"] == f"sha256={mac}"
        assert r.json()["id"] == r.headers["idempotency-key"]
        out.append(r.headers["idempotency-key"])
    return out


def test_failing_then_recovering_receiver(receiver: ReceiverFactory) -> None:
    server = receiver(Reply(200))
    server.script.extend(
        [Reply(500, b"boom")] * 3
        + [Reply(hang=True, delay_s=TIMEOUT_S + 0.3)] * 2
        + [Reply(429, b"slow down", {"Retry-After": "120"})]
    )
    clock = Clock(T0)
    log: list[DeliveryAttempt] = []
    policy = RetryPolicy(
        base_s=1, cap_s=8, max_attempts=10, breaker_failures=3, breaker_cooldown_s=30
    )
    notifier = hook("hook", server)
    d = Deliverer({"hook": notifier}, policy, clock=clock, rng=random.Random(4), record=log.append)
    ns = group_notes("hook", groups=3)
    rows = {(n.id, "hook"): DeliveryState.new(n, now_ms=T0 + i) for i, n in enumerate(ns)}
    try:
        run(d, clock, rows, ns)
    finally:
        notifier.close()

    # every notification delivered exactly once, in order per group
    assert all(s.state == "delivered" for s in rows.values())
    got = accepted_ids(server)
    assert sorted(got) == sorted(n.id for n in ns)
    assert len(got) == len(set(got))
    for g in range(3):
        firing, resolved = ns[2 * g].id, ns[2 * g + 1].id
        assert got.index(firing) < got.index(resolved)

    # one request per failure although six notifications waited the whole time
    assert len(server.requests) == 3 + 2 + 1 + len(ns)
    assert [a.outcome for a in log] == ["retry"] * 6 + ["delivered"] * len(ns)
    assert rows[(ns[0].id, "hook")].attempts == 7
    assert "429" in (rows[(ns[0].id, "hook")].last_error or "")

    # the breaker opened after three 5xx, each probe that failed re-opened it, then closed
    states = [s for _, s in d.breaker("hook").transitions]
    assert states == ["open", "half_open"] * 4 + ["closed"]
    at = [a.at_ms for a in log]
    assert all(b - a >= 30_000 for a, b in itertools.pairwise(at[2:6]))  # cool-downs
    assert at[6] - at[5] >= 120_000, "Retry-After: 120 honoured"
    assert "timed out" in (log[3].error or "")
    assert "timed out" in (log[4].error or "")


def test_fallback_takes_over_from_a_dead_primary_until_it_recovers(
    receiver: ReceiverFactory,
) -> None:
    primary_server = receiver(Reply(503, b"down"))
    fallback_server = receiver(Reply(204))
    clock = Clock(T0)
    policy = RetryPolicy(base_s=1, cap_s=4, breaker_failures=2, breaker_cooldown_s=60)
    primary, backup = hook("pager", primary_server), hook("chat", fallback_server)
    d = Deliverer(
        {"pager": primary, "chat": backup},
        policy,
        fallback={"pager": "chat"},
        clock=clock,
        rng=random.Random(5),
    )
    try:
        early = group_notes("pager", groups=2)
        rows = {(n.id, "pager"): DeliveryState.new(n, now_ms=T0 + i) for i, n in enumerate(early)}
        run(d, clock, rows, early)
        assert len(primary_server.requests) == 2, "two failures open the breaker; then no storm"
        assert accepted_ids(fallback_server) == [n.id for n in early]  # all of them, in order
        assert {s.state for (_, r), s in rows.items() if r == "pager"} == {"fallback"}
        assert d.breaker("pager").state == "open"

        primary_server.default = Reply(200)  # the primary comes back
        clock.now += 60_000
        late = group_notes("pager", groups=1, first=7)
        rows2 = {
            (n.id, "pager"): DeliveryState.new(n, now_ms=clock.now + i) for i, n in enumerate(late)
        }
        run(d, clock, rows2, late)
        assert accepted_ids(primary_server) == [n.id for n in late]
        assert d.breaker("pager").state == "closed"
        assert accepted_ids(fallback_server) == [n.id for n in early]  # nothing more there
    finally:
        primary.close()
        backup.close()
