"""PagerDuty Events API v2: fields, lengths, dedup_key stability, actions."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.events import Level
from monitor.router.model import Alert, Notification
from monitor.sinks import PagerDutyNotifier
from monitor.sinks.pagerduty import MAX_DEDUP_KEY, MAX_SUMMARY, dedup_key
from tests.http_receiver import ReceiverFactory, Reply
from tests.unit.sinks.builders import ROUTING_KEY, T0, alert, note

OK = Reply.json(202, {"status": "success", "message": "Event processed"})


def _events(receiver: ReceiverFactory, *ns: Notification, **kw: Any) -> list[dict[str, Any]]:
    server = receiver(OK)
    pd = PagerDutyNotifier("pager", routing_key=ROUTING_KEY, url=server.url + "/v2/enqueue", **kw)
    try:
        for n in ns:
            pd.notify(n)
    finally:
        pd.close()
    assert {r.path for r in server.requests} == {"/v2/enqueue"}
    return [r.json() for r in server.requests]


def test_trigger_fields(receiver: ReceiverFactory) -> None:
    a = alert(Level.HALT, region="eu-west", cohort="free")
    [e] = _events(receiver, note(a), source="driftgate-prod")
    assert e["routing_key"] == ROUTING_KEY
    assert e["event_action"] == "trigger"
    assert e["client"] == "driftgate"
    p = e["payload"]
    assert p["summary"] == "HALT region=eu-west,cohort=free: latency_ms rose 2.3σ"
    assert p["source"] == "driftgate-prod"
    assert p["severity"] == "critical"
    assert p["timestamp"] == "2026-11-23T00:00:00.000Z"
    assert (p["component"], p["group"], p["class"]) == (
        "region=eu-west,cohort=free",
        "eu-west",
        "latency_ms",
    )
    details = p["custom_details"]
    assert details["evidence"] == "e1,e2"
    assert details["reason"] == "latency_ms rose 2.3σ"
    assert details["labels"]["cohort"] == "free"
    assert details["alert_id"] == a.id
    assert set(p) <= {
        "summary",
        "source",
        "severity",
        "timestamp",
        "component",
        "group",
        "class",
        "custom_details",
    }


def test_warn_is_warning(receiver: ReceiverFactory) -> None:
    [e] = _events(receiver, note(alert(Level.WARN)))
    assert e["payload"]["severity"] == "warning"


def test_dedup_key_is_stable_across_the_episode_and_distinct_between_episodes(
    receiver: ReceiverFactory,
) -> None:
    firing = alert(Level.HALT)
    acked = alert(Level.HALT, state="acknowledged", acked_by="ana")
    resolved = alert(Level.HALT, state="resolved", ended_at=T0 + 1)
    other_episode = alert(Level.HALT, evidence=("e9",))
    other_scope = alert(Level.HALT, region="us-east")
    events = _events(receiver, note(firing), note(acked), note(resolved))
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert len({e["dedup_key"] for e in events}) == 1
    assert events[0]["dedup_key"] == dedup_key(firing)
    assert all(len(e["dedup_key"]) <= MAX_DEDUP_KEY for e in events)
    assert len({dedup_key(firing), dedup_key(other_episode), dedup_key(other_scope)}) == 3
    assert "payload" not in events[1]
    assert "payload" not in events[2]


def test_dedup_key_is_at_most_255_characters() -> None:
    a = alert()
    long = Alert(a.id * 20, a.fingerprint * 20, a.level, a.state, a.labels, a.annotations, 0)
    assert len(dedup_key(long)) == MAX_DEDUP_KEY


def test_summary_is_cut_to_1024_characters(receiver: ReceiverFactory) -> None:
    [e] = _events(receiver, note(alert(reason="x" * 5000)))
    summary = e["payload"]["summary"]
    assert len(summary) == MAX_SUMMARY
    assert summary.endswith("…")


def test_one_event_per_alert_of_a_group(receiver: ReceiverFactory) -> None:
    n = note(alert(Level.HALT), alert(Level.WARN, region="eu-west", cohort="free"), by=("region",))
    events = _events(receiver, n)
    assert [e["payload"]["severity"] for e in events] == ["critical", "warning"]
    assert len({e["dedup_key"] for e in events}) == 2


def test_huge_details_are_dropped_to_fit_512_kb(receiver: ReceiverFactory) -> None:
    [e] = _events(receiver, note(alert(evidence=tuple(f"event-{i}" for i in range(80_000)))))
    assert e["payload"]["custom_details"] == {"truncated": True, "alert_id": e["dedup_key"][-16:]}


def test_routing_key_must_be_32_characters() -> None:
    with pytest.raises(ValueError, match="32-character integration key"):
        PagerDutyNotifier("pager", routing_key="short")
    ok = PagerDutyNotifier("pager", routing_key=ROUTING_KEY)
    try:
        assert ROUTING_KEY not in repr(ok)
        assert ok.url == "https://events.pagerduty.com/v2/enqueue"
    finally:
        ok.close()
