"""driftgate's AlertmanagerNotifier against a real prometheus-alertmanager (API v2).

Timeline: post a firing HALT (critical, region=eu-west) and a firing WARN (warning,
region=eu-west, cohort=free) → both are in Alertmanager with driftgate's labels, the WARN
is suppressed (inhibitedBy the HALT) and only the HALT is notified; post the HALT resolved
(endsAt in the past) → it is no longer active, Alertmanager notifies its resolution, and
the WARN, no longer inhibited, becomes active.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from monitor.events import Level
from monitor.router.model import Alert
from monitor.sinks import AlertmanagerNotifier
from tests.integration.conftest import Alertmanager
from tests.unit.sinks.builders import alert, note

pytestmark = [pytest.mark.alertmanager, pytest.mark.timeout(60)]

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, within_s: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy (Alertmanager works asynchronously)."""
    deadline = time.monotonic() + within_s
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"Alertmanager: {what} not seen within {within_s} s"
        time.sleep(0.1)


def by_severity(am: Alertmanager) -> dict[str, dict[str, Any]]:
    return {a["labels"]["severity"]: a for a in am.alerts()}


def webhook_alerts(am: Alertmanager) -> list[tuple[str, str]]:
    """(status, severity) of every alert Alertmanager's webhook receiver has posted."""
    return [
        (a["status"], a["labels"]["severity"]) for r in am.webhooks() for a in r.json()["alerts"]
    ]


def test_firing_inhibition_and_resolution(alertmanager: Alertmanager) -> None:
    am = alertmanager
    now_ms = int(time.time() * 1000)
    halt = alert(Level.HALT, ts_ms=now_ms - 60_000, region="eu-west")
    warn = alert(Level.WARN, ts_ms=now_ms - 30_000, region="eu-west", cohort="free")
    notifier = AlertmanagerNotifier("am", am.url, timeout_s=5, resolve_window_s=300)
    try:
        notifier.notify(note(halt, receiver="am"))
        notifier.notify(note(warn, receiver="am"))

        def both_processed() -> dict[str, dict[str, Any]] | None:
            seen = by_severity(am)
            states = {s: a["status"]["state"] for s, a in seen.items()}
            return seen if states == {"critical": "active", "warning": "suppressed"} else None

        seen = eventually(both_processed, "the HALT active and the WARN suppressed")
        crit, warning = seen["critical"], seen["warning"]
        assert crit["labels"] == {
            "alertname": "DriftgateScalingHalt",
            "severity": "critical",
            "level": "HALT",
            "scope": "region",
            "segment": "region=eu-west",
            "region": "eu-west",
            "signal": "latency_ms",
        }
        assert warning["labels"]["cohort"] == "free"
        assert warning["labels"]["segment"] == "region=eu-west,cohort=free"
        assert warning["status"]["inhibitedBy"] == [crit["fingerprint"]]
        assert crit["status"]["inhibitedBy"] == []
        assert crit["annotations"]["evidence"] == "e1,e2"
        assert crit["annotations"]["driftgate_alert_id"] == halt.id

        # Alertmanager notified the HALT only: the WARN is muted by the inhibit rule
        eventually(lambda: ("firing", "critical") in webhook_alerts(am), "a firing webhook")
        assert ("firing", "warning") not in webhook_alerts(am)

        # refresh (what the dispatcher calls periodically) keeps both alive and changes nothing
        assert notifier.refresh([halt, warn]) == 2

        resolved: Alert = alert(
            Level.HALT, ts_ms=now_ms - 60_000, region="eu-west", state="resolved", ended_at=now_ms
        )
        assert resolved.fingerprint == halt.fingerprint
        notifier.notify(note(resolved, receiver="am"))

        def halt_gone() -> dict[str, dict[str, Any]] | None:
            seen = by_severity(am)
            return seen if "critical" not in seen else None

        after = eventually(halt_gone, "the HALT resolved (no longer active)")
        assert after["warning"]["status"]["state"] == "active"  # no longer inhibited
        eventually(lambda: ("resolved", "critical") in webhook_alerts(am), "a resolved webhook")
        eventually(lambda: ("firing", "warning") in webhook_alerts(am), "the un-muted WARN")
    finally:
        notifier.close()
