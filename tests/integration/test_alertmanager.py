"""driftgate's AlertmanagerNotifier against a real prometheus-alertmanager (API v2).

Timeline: post a firing HALT (critical, region=eu-west) and a firing WARN (warning,
region=eu-west, cohort=free) → both are in Alertmanager with driftgate's labels, the WARN
is suppressed (inhibitedBy the HALT) and only the HALT is notified; post the HALT resolved
(endsAt in the past) → it is no longer active, Alertmanager notifies its resolution, and
the WARN, no longer inhibited, becomes active.

Crash: ``driftgate run`` killed between Alertmanager's 200 and the outbox write re-posts
the HALT after a restart; Alertmanager holds one alert and sends one group notification.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from monitor.events import Level
from monitor.router.model import Alert
from monitor.sinks import AlertmanagerNotifier
from monitor.store import HistoryStore
from tests.factories import record
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


def _crash_stream(shifted: str, quiet: str) -> list[dict[str, Any]]:
    """Two regions, 1200 records each; feature ``x`` rises by 3σ in ``shifted`` from #700."""
    rng = random.Random(5)
    out = []
    for k in range(1200):
        for region in (shifted, quiet):
            x = rng.gauss(0.0, 1.0) + (3.0 if region == shifted and k >= 700 else 0.0)
            out.append(
                record(
                    len(out),
                    region=region,
                    features={"x": x},
                    confidence=min(1.0, max(0.0, rng.gauss(0.8, 0.05))),
                    latency_ms=max(0.0, rng.gauss(50.0, 5.0)),
                )
            )
    return out


def _am_rows(db: Path) -> list[dict[str, Any]]:
    store = HistoryStore(db)
    try:
        return store.notifications("am")
    finally:
        store.close()


def _group_notifications(am: Alertmanager, region: str) -> list[dict[str, Any]]:
    return [r.json() for r in am.webhooks() if r.json()["groupLabels"].get("region") == region]


@pytest.mark.timeout(180)
def test_a_halt_repeated_after_a_crash_is_one_alert_and_one_group_notification(
    alertmanager: Alertmanager, tmp_path: Path
) -> None:
    """``driftgate run`` killed right after Alertmanager accepted the HALT and before the
    outbox row was written; the restart posts it again (same labels, so the same
    fingerprint): Alertmanager merges it into the one alert it has, and its notification
    log keeps the group at one notification."""
    am = alertmanager
    tag = uuid.uuid4().hex[:8]
    shifted, quiet = f"crash-{tag}-a", f"crash-{tag}-b"
    data = tmp_path / "logs.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in _crash_stream(shifted, quiet)))
    cfg = {
        "source": {"kind": "file", "path": str(data), "batch_size": 300},
        "segments": {"dimensions": ["region"], "rollups": False},
        "detection": {"warmup": 400},
        "history": {"path": str(tmp_path / "h.db")},
        "signals": {"stdout": False},
        "router": {
            "receivers": [
                {"name": "am", "kind": "alertmanager", "url": am.url, "resolve_window_s": 300},
                {"name": "file", "kind": "jsonl", "path": str(tmp_path / "notes.jsonl")},
            ],
            "route": {
                "receiver": "file",
                "group_by": ["segment"],
                "group_wait_s": 0,
                "routes": [{"matchers": ["severity=critical"], "receiver": "am"}],
            },
        },
    }
    (tmp_path / "driftgate.yaml").write_text(orjson.dumps(cfg).decode())
    command = [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"]

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            env={**os.environ, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    crashed = run(
        DRIFTGATE_FAULTS__CRASH_AT="notification-sent-unrecorded",
        DRIFTGATE_FAULTS__CRASH_ON_SIGNAL="true",
    )
    assert crashed.returncode == 137, crashed.stderr
    first = eventually(lambda: am.alerts(filter=f'region="{shifted}"'), "the HALT")
    assert len(first) == 1
    [row] = _am_rows(tmp_path / "h.db")
    assert (row["state"], row["attempts"]) == ("pending", 0), "sent, not recorded"
    eventually(lambda: _group_notifications(am, shifted), "the group's first notification")

    again = run()
    assert again.returncode == 0, again.stderr
    [row] = _am_rows(tmp_path / "h.db")
    assert row["state"] == "delivered"
    after = am.alerts(filter=f'region="{shifted}"')
    assert len(after) == 1, "the repeat merged into the one alert"
    assert after[0]["fingerprint"] == first[0]["fingerprint"]
    assert after[0]["startsAt"] == first[0]["startsAt"]
    assert after[0]["updatedAt"] > first[0]["updatedAt"], "the repeat reached Alertmanager"
    time.sleep(3.0)  # three group_intervals: a changed group would have been notified again
    notified = _group_notifications(am, shifted)
    assert len(notified) == 1, "one group notification for the repeated alert"
    [only] = notified[0]["alerts"]
    assert (only["status"], only["fingerprint"]) == ("firing", first[0]["fingerprint"])
