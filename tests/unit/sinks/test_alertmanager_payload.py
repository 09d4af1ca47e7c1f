"""Alertmanager API v2 payload: array, labels, annotations, startsAt/endsAt, refresh."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.events import Level
from monitor.router.model import Alert
from monitor.sinks import AlertmanagerNotifier
from tests.http_receiver import ReceiverFactory, Reply
from tests.unit.sinks.builders import T0, alert, note

NOW_MS = T0 + 7_200_000  # 02:00
NOW_S = NOW_MS / 1000


def _posted(receiver: ReceiverFactory, *alerts: Alert, **kw: Any) -> list[dict[str, Any]]:
    server = receiver(Reply(200))
    am = AlertmanagerNotifier("am", server.url + "/", clock=lambda: NOW_S, **kw)
    try:
        am.notify(note(*alerts, receiver="am"))
    finally:
        am.close()
    [r] = server.requests
    assert r.path == "/api/v2/alerts"
    docs: list[dict[str, Any]] = r.json()
    return docs


def test_labels_annotations_and_times_of_a_firing_halt_and_warn(receiver: ReceiverFactory) -> None:
    halt = alert(Level.HALT, region="eu-west")
    warn = alert(Level.WARN, region="eu-west", cohort="free", name="confidence")
    a, b = _posted(receiver, halt, warn)
    assert a["labels"] == {
        "alertname": "DriftgateScalingHalt",
        "severity": "critical",
        "level": "HALT",
        "scope": "region",
        "segment": "region=eu-west",
        "region": "eu-west",
        "signal": "latency_ms",
    }  # cohort is empty for a region scope: left out (absent to Alertmanager)
    assert b["labels"]["severity"] == "warning"
    assert b["labels"]["cohort"] == "free"
    assert b["labels"]["scope"] == "segment"
    assert b["labels"]["signal"] == "confidence"
    assert a["annotations"]["summary"] == "HALT region=eu-west: latency_ms rose 2.3σ"
    assert a["annotations"]["description"] == "latency_ms rose 2.3σ"
    assert a["annotations"]["evidence"] == "e1,e2"
    assert a["annotations"]["driftgate_alert_id"] == halt.id
    assert a["startsAt"] == "2026-11-23T00:00:00.000Z"
    assert a["endsAt"] == "2026-11-23T02:05:00.000Z"  # now + resolve window (300 s)
    assert "generatorURL" not in a
    assert all(
        isinstance(v, str) for d in (a, b) for v in {**d["labels"], **d["annotations"]}.values()
    )


def test_resolved_alert_ends_in_the_past(receiver: ReceiverFactory) -> None:
    resolved = alert(Level.HALT, state="resolved", ended_at=T0 + 3_600_000)
    [a] = _posted(receiver, resolved)
    assert a["endsAt"] == "2026-11-23T01:00:00.000Z" < "2026-11-23T02:00:00.000Z"
    assert a["annotations"]["driftgate_state"] == "resolved"
    # a resolution time in the future (clock skew) is clamped to now: still resolves at once
    [b] = _posted(receiver, alert(Level.HALT, state="resolved", ended_at=NOW_MS + 60_000))
    assert b["endsAt"] == "2026-11-23T02:00:00.000Z"


def test_no_resolve_window_means_no_ends_at(receiver: ReceiverFactory) -> None:
    [a] = _posted(receiver, alert(), resolve_window_s=None, generator_url="http://dg/alerts")
    assert "endsAt" not in a
    assert a["generatorURL"] == "http://dg/alerts"


def test_acknowledged_alert_still_fires(receiver: ReceiverFactory) -> None:
    [a] = _posted(receiver, alert(state="acknowledged", acked_by="ana"))
    assert a["endsAt"] > "2026-11-23T02:00:00.000Z"
    assert a["annotations"]["driftgate_state"] == "acknowledged"


def test_bad_label_names_are_made_valid(receiver: ReceiverFactory) -> None:
    [a] = _posted(receiver, alert(**{"model-version": "1.2", "region": "eu"}))
    assert a["labels"]["model_version"] == "1.2"
    assert "model-version" not in a["labels"]


def test_refresh_resends_firing_and_recently_resolved(receiver: ReceiverFactory) -> None:
    server = receiver(Reply(200))
    am = AlertmanagerNotifier("am", server.url, clock=lambda: NOW_S, resolve_window_s=90)
    firing = alert(region="eu-west")
    recent = alert(region="us-east", state="resolved", ended_at=NOW_MS - 60_000)
    old = alert(region="ap-south", state="resolved", ended_at=NOW_MS - 600_000)
    try:
        assert am.refresh([firing, recent, old]) == 2
        assert am.refresh([old]) == 0  # nothing to send: no request
        assert am.refresh_interval_s == 30.0
    finally:
        am.close()
    [r] = server.requests
    assert [d["labels"]["region"] for d in r.json()] == ["eu-west", "us-east"]


def test_resolve_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="resolve_window_s must be > 0"):
        AlertmanagerNotifier("am", "http://127.0.0.1:9", resolve_window_s=0)
