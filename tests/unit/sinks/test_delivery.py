"""The delivery engine on memory notifiers and a fake clock: back-off, breaker, fallback, order."""

from __future__ import annotations

import random

import pytest

from monitor.events import Level
from monitor.router.model import DeliveryError, Notification
from monitor.sinks import Deliverer, DeliveryAttempt, DeliveryState, MemoryNotifier, RetryPolicy
from monitor.store import HistoryStore
from monitor.store.tables import notifications as outbox_table
from tests.unit.sinks.builders import T0, Clock, alert, note, run


def retryable(msg: str = "HTTP 503", after: float | None = None) -> DeliveryError:
    return DeliveryError(msg, retryable=True, retry_after_s=after)


FATAL = DeliveryError("HTTP 400", retryable=False)


def notes(receiver: str = "pager", groups: int = 2) -> list[Notification]:
    """Per group (region r0, r1…): a firing then a resolved notification."""
    out = []
    for g in range(groups):
        out.append(note(alert(Level.HALT, region=f"r{g}"), receiver=receiver))
        out.append(
            note(
                alert(Level.HALT, region=f"r{g}", state="resolved", ended_at=T0), receiver=receiver
            )
        )
    return out


def start(ns: list[Notification], clock: Clock) -> dict[tuple[str, str], DeliveryState]:
    return {
        (n.id, n.receiver): DeliveryState.new(n, now_ms=clock.now + i) for i, n in enumerate(ns)
    }


# -- policy and rows ---------------------------------------------------------------------


def test_full_jitter_is_bounded_capped_and_seeded() -> None:
    p = RetryPolicy(base_s=1, cap_s=8)
    a = [p.delay_s(k, random.Random(3)) for k in range(1, 8)]
    assert a == [p.delay_s(k, random.Random(3)) for k in range(1, 8)]
    assert all(0 <= d <= min(8, 2 ** (k - 1)) for k, d in enumerate(a, start=1))
    rng = random.Random(1)
    draws = [p.delay_s(10, rng) for _ in range(2000)]
    assert max(draws) <= 8
    assert 3.5 < sum(draws) / len(draws) < 4.5


@pytest.mark.parametrize(
    ("field", "value"),
    [("base_s", 0), ("cap_s", -1), ("max_attempts", 0), ("breaker_failures", 0), ("max_age_s", 0)],
)
def test_policy_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


def test_state_maps_to_an_outbox_row() -> None:
    s = DeliveryState("n1", "pager", "g", 5, "failed", 3, 9, "HTTP 400", None)
    row = s.as_row()
    assert set(row) <= set(outbox_table.c.keys())
    assert DeliveryState.from_row({**row, "payload": {}}) == s
    with pytest.raises(ValueError, match="unknown state 'lost'"):
        DeliveryState.from_row({**row, "state": "lost"})


def test_deliverer_validates_fallbacks() -> None:
    m = {"a": MemoryNotifier("a")}
    with pytest.raises(ValueError, match="no notifier named 'b'"):
        Deliverer(m, fallback={"a": "b"})
    with pytest.raises(ValueError, match="its own fallback"):
        Deliverer(m, fallback={"a": "a"})


# -- one row -----------------------------------------------------------------------------


def test_delivered_is_never_sent_again() -> None:
    pager = MemoryNotifier("pager")
    d = Deliverer({"pager": pager}, clock=Clock())
    [n] = notes(groups=1)[:1]
    done = d.attempt(DeliveryState.new(n, 0), n)
    assert done.state == "delivered"
    assert done.attempts == 1
    assert done.delivered_ms == 0
    assert d.attempt(done, n) is done
    assert d.deliver_due([done], {n.id: n}) == []
    assert d.due([done], 10**12) == []
    assert pager.calls == 1


def test_retry_after_is_honoured_and_pauses_the_receiver() -> None:
    clock = Clock(1_000)
    pager = MemoryNotifier("pager")
    log: list[DeliveryAttempt] = []
    d = Deliverer(
        {"pager": pager},
        RetryPolicy(base_s=1),
        clock=clock,
        rng=random.Random(0),
        record=log.append,
    )
    ns = notes(groups=2)
    rows = start(ns, clock)
    pager.fail_next(retryable("HTTP 429", after=30))
    changed = d.deliver_due(list(rows.values()), {n.id: n for n in ns})
    assert pager.calls == 1, "one failure = one request, not one per pending row"
    first = next(s for s in changed if s.notification_id == ns[0].id)
    assert first.next_attempt_ms == 31_000
    assert first.attempts == 1
    assert "429" in (first.last_error or "")
    others = [s for s in changed if s.notification_id != ns[0].id]
    assert all(s.attempts == 0 and s.next_attempt_ms == 31_000 for s in others)  # deferred
    assert d.due(changed, 30_999) == []
    assert d.next_wakeup_ms(list(rows.values())) == 31_000
    assert [(a.outcome, a.attempt, a.next_attempt_ms) for a in log] == [("retry", 1, 31_000)]


def test_non_retryable_fails_without_fallback() -> None:
    pager = MemoryNotifier("pager")
    pager.fail_next(FATAL)
    d = Deliverer({"pager": pager}, clock=Clock())
    n = notes(groups=1)[0]
    s = d.attempt(DeliveryState.new(n, 0), n)
    assert (s.state, s.attempts, s.last_error) == ("failed", 1, "HTTP 400")
    assert d.breaker("pager").state == "closed"
    assert d.breaker("pager").failures == 0


def test_a_notifier_bug_is_not_retried_and_does_not_stop_delivery() -> None:
    class Broken:
        name = "broken"

        def notify(self, n: Notification) -> None:
            raise KeyError("summary")

        def close(self) -> None:
            pass

    n = notes(groups=1)[0]
    d = Deliverer({"pager": Broken()}, clock=Clock())
    s = d.attempt(DeliveryState.new(n, 0), n)
    assert s.state == "failed"
    assert "notifier raised KeyError" in (s.last_error or "")


def test_gives_up_after_max_attempts_and_max_age() -> None:
    clock = Clock()
    pager = MemoryNotifier("pager")
    pager.fail_next(*[retryable() for _ in range(10)])
    d = Deliverer(
        {"pager": pager},
        RetryPolicy(max_attempts=3, breaker_failures=99),
        clock=clock,
        rng=random.Random(1),
    )
    n = notes(groups=1)[0]
    rows = {(n.id, "pager"): DeliveryState.new(n, 0)}
    run(d, clock, rows, [n])
    [s] = rows.values()
    assert (s.state, s.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in (s.last_error or "")

    clock2 = Clock()
    pager2 = MemoryNotifier("pager")
    pager2.fail_next(*[retryable() for _ in range(50)])
    policy = RetryPolicy(base_s=10, cap_s=10, max_age_s=30, breaker_failures=99)
    d2 = Deliverer({"pager": pager2}, policy, clock=clock2, rng=random.Random(1))
    rows2 = {(n.id, "pager"): DeliveryState.new(n, 0)}
    run(d2, clock2, rows2, [n])
    [s2] = rows2.values()
    assert s2.state == "failed"
    assert "max_age_s=30" in (s2.last_error or "")
    assert clock2.now <= 30_000


def test_mismatched_notification_is_refused() -> None:
    a, b = notes(groups=1)
    d = Deliverer({"pager": MemoryNotifier("pager")}, clock=Clock())
    with pytest.raises(ValueError, match="pass the notification the row was made for"):
        d.attempt(DeliveryState.new(a, 0), b)


# -- breaker -----------------------------------------------------------------------------


def test_breaker_opens_probes_and_closes() -> None:
    clock = Clock()
    pager = MemoryNotifier("pager")
    policy = RetryPolicy(base_s=1, cap_s=2, breaker_failures=3, breaker_cooldown_s=60)
    log: list[DeliveryAttempt] = []
    d = Deliverer({"pager": pager}, policy, clock=clock, rng=random.Random(2), record=log.append)
    pager.fail_next(*[retryable() for _ in range(4)])  # 3 open it, the first probe fails too
    ns = notes(groups=3)
    rows = start(ns, clock)
    run(d, clock, rows, ns)
    assert [s for _, s in d.breaker("pager").transitions] == [
        "open",
        "half_open",
        "open",
        "half_open",
        "closed",
    ]
    opened = [a.at_ms for a in log if a.breaker == "open"]
    assert opened[1] - opened[0] >= 60_000, "nothing is sent while open"
    assert pager.calls == 4 + len(ns), "one request per failure: no retry storm"
    assert all(s.state == "delivered" for s in rows.values())
    assert [n.id for n in pager.received] == [n.id for n in ns]


# -- order and fallback --------------------------------------------------------------------


def test_a_row_waits_behind_an_older_row_of_its_group() -> None:
    clock = Clock()
    pager = MemoryNotifier("pager")
    d = Deliverer(
        {"pager": pager}, RetryPolicy(base_s=5, cap_s=5), clock=clock, rng=random.Random(0)
    )
    firing, resolved = notes(groups=1)
    rows = start([firing, resolved], clock)
    pager.fail_next(retryable())
    run(d, clock, rows, [firing, resolved])
    assert [n.id for n in pager.received] == [firing.id, resolved.id]
    # even when the younger row's own time has come, it is not due before the older one
    head = DeliveryState(firing.id, "pager", firing.group_key, 0, next_attempt_ms=99)
    young = DeliveryState.new(resolved, 1)
    assert d.due([young, head], now_ms=50) == []


def test_fallback_takes_what_the_primary_gives_up() -> None:
    clock = Clock()
    pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
    d = Deliverer({"pager": pager, "chat": chat}, fallback={"pager": "chat"}, clock=clock)
    ns = notes(groups=2)
    rows = start(ns, clock)
    pager.fail_next(FATAL)  # the first is refused by the primary
    run(d, clock, rows, ns)
    assert rows[(ns[0].id, "pager")].state == "fallback"
    assert rows[(ns[0].id, "chat")].state == "delivered"
    assert [n.id for n in chat.received] == [ns[0].id]
    assert [n.id for n in pager.received] == [n.id for n in ns[1:]]


def test_open_breaker_sends_everything_to_the_fallback_in_order() -> None:
    clock = Clock()
    pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
    policy = RetryPolicy(breaker_failures=2, breaker_cooldown_s=600)
    d = Deliverer(
        {"pager": pager, "chat": chat}, policy, {"pager": "chat"}, clock, random.Random(0)
    )
    pager.fail_next(*[retryable() for _ in range(100)])
    ns = notes(groups=3)
    rows = start(ns, clock)
    run(d, clock, rows, ns)
    assert pager.calls == 2
    assert pager.received == []
    assert [n.id for n in chat.received] == [n.id for n in ns]
    assert {s.state for k, s in rows.items() if k[1] == "pager"} == {"fallback"}
    assert clock.now < 600_000, "handed off without waiting for the breaker"


def test_fallback_rows_do_not_fall_back_again() -> None:
    clock = Clock()
    a, b = MemoryNotifier("a"), MemoryNotifier("b")
    d = Deliverer({"a": a, "b": b}, fallback={"a": "b", "b": "a"}, clock=clock)
    n = note(alert(), receiver="a")
    a.fail_next(FATAL)
    b.fail_next(FATAL)
    rows = {(n.id, "a"): DeliveryState.new(n, 0)}
    run(d, clock, rows, [n])
    assert {k[1]: s.state for k, s in rows.items()} == {"a": "fallback", "b": "failed"}
    assert a.calls == 1
    assert b.calls == 1


# -- wiring with the real outbox table -----------------------------------------------------


def test_round_trip_through_the_history_store(tmp_path: object) -> None:
    store = HistoryStore(f"{tmp_path}/h.db")
    try:
        pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
        d = Deliverer({"pager": pager, "chat": chat}, fallback={"pager": "chat"})
        ns = notes(groups=1)
        store.enqueue(
            [
                {
                    "notification_id": n.id,
                    "receiver": n.receiver,
                    "group_key": n.group_key,
                    "payload": n.as_dict(),
                }
                for n in ns
            ]
        )
        pager.fail_next(FATAL)
        rows = store.due_notifications(now_ms=2**62)
        payloads = {r["notification_id"]: Notification.from_dict(r["payload"]) for r in rows}
        states = [DeliveryState.from_row(r) for r in rows]
        known = {(s.notification_id, s.receiver) for s in states}
        for s in d.deliver_due(states, payloads):
            if (s.notification_id, s.receiver) not in known:  # a fallback's new row
                payload = payloads[s.notification_id].as_dict()
                store.enqueue(
                    [
                        {
                            "notification_id": s.notification_id,
                            "receiver": s.receiver,
                            "group_key": s.group_key,
                            "payload": payload,
                        }
                    ]
                )
            store.record_delivery(
                s.notification_id,
                s.receiver,
                state=s.state,
                attempts=s.attempts,
                next_attempt_ms=s.next_attempt_ms,
                last_error=s.last_error,
            )
        stored = {(r["notification_id"], r["receiver"]): r["state"] for r in store.notifications()}
        assert stored == {
            (ns[0].id, "pager"): "fallback",
            (ns[0].id, "chat"): "delivered",
            (ns[1].id, "pager"): "delivered",
        }
        assert store.due_notifications(now_ms=2**62) == []
    finally:
        store.close()


# -- the give-up horizon per receiver, and giving up is never silent -------------------------


def test_each_receiver_gives_up_at_its_own_horizon() -> None:
    clock = Clock()
    pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
    pager.fail_next(*[retryable() for _ in range(50)])
    chat.fail_next(*[retryable() for _ in range(50)])
    base = RetryPolicy(base_s=10, cap_s=10, max_age_s=3600, breaker_failures=99)
    short = RetryPolicy(base_s=10, cap_s=10, max_age_s=30, breaker_failures=99)
    d = Deliverer(
        {"pager": pager, "chat": chat},
        base,
        clock=clock,
        rng=random.Random(3),
        policies={"pager": short},
    )
    assert d.policy_for("pager") is short
    assert d.policy_for("chat") is base
    p, c = note(alert(), receiver="pager"), note(alert(), receiver="chat")
    rows = {(p.id, "pager"): DeliveryState.new(p, 0), (c.id, "chat"): DeliveryState.new(c, 0)}
    for _ in range(40):  # drive both receivers for 40 s of fake time
        pending = [s for s in rows.values() if s.state == "pending"]
        wake = d.next_wakeup_ms(pending)
        if wake is None or wake > 40_000:
            break
        clock.now = max(clock.now, wake)
        for s in d.deliver_due(pending, {p.id: p, c.id: c}):
            rows[(s.notification_id, s.receiver)] = s
    assert rows[(p.id, "pager")].state == "failed"
    assert "max_age_s=30" in (rows[(p.id, "pager")].last_error or "")
    assert rows[(c.id, "chat")].state == "pending", "chat may be down for an hour"


def test_policies_must_name_known_receivers() -> None:
    with pytest.raises(ValueError, match="retry policies for unknown receivers: nope"):
        Deliverer({"a": MemoryNotifier("a")}, policies={"nope": RetryPolicy()})


def test_giving_up_logs_an_error_naming_receiver_notification_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pager, chat = MemoryNotifier("pager"), MemoryNotifier("chat")
    log: list[DeliveryAttempt] = []
    d = Deliverer(
        {"pager": pager, "chat": chat}, fallback={"pager": "chat"}, clock=Clock(), record=log.append
    )
    handed, lost = note(alert(), receiver="pager"), note(alert(), receiver="chat")
    pager.fail_next(DeliveryError("HTTP 400 from pager: bad routing key", retryable=False))
    chat.fail_next(DeliveryError("HTTP 404 from chat: no_service", retryable=False))
    with caplog.at_level("ERROR", logger="monitor.sinks.delivery"):
        assert d.attempt(DeliveryState.new(handed, 0), handed).state == "fallback"
        assert d.attempt(DeliveryState.new(lost, 0), lost).state == "failed"
    first, second = (r for r in caplog.records if r.levelname == "ERROR")
    assert handed.id in first.getMessage()
    assert "receiver 'pager'" in first.getMessage()
    assert "handed to fallback 'chat'" in first.getMessage()
    assert "bad routing key" in first.getMessage()
    assert lost.id in second.getMessage()
    assert "receiver 'chat'" in second.getMessage()
    assert "NOT delivered" in second.getMessage()
    assert "no_service" in second.getMessage()
    assert [(a.receiver, a.outcome) for a in log] == [("pager", "fallback"), ("chat", "failed")]
