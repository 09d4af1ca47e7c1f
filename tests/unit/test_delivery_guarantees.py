"""What docs/sinks.md ("Delivery guarantees") promises, one statement per test.

* At least once: a crash after a receiver accepted a notification and before its outbox row
  is written sends it again at the next start, with the same notification id; per receiver
  kind, the id (or the receiver's own key) travels where the docs say, and a webhook receiver
  that de-duplicates on ``Idempotency-Key`` pages once.
* The give-up horizon is configurable per receiver (``max_age_s``, ``max_attempts``); a
  notification given up goes to the fallback, and in every case it is signalled: an ERROR
  line, the ``driftgate.notifications.given_up`` counter, ``driftgate status`` and
  ``GET /v1/status``.

The crash here is an exception raised from ``Courier.on_delivered`` (the hook the
``notification-sent-unrecorded`` crash point uses), so the pass stops exactly where
``os._exit`` stops it; the subprocess tests (``test_router_delivery.py``) kill for real.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from monitor.config import RouterSettings, load_settings
from monitor.events import Level
from monitor.operations import given_up
from monitor.pipeline import Monitor
from monitor.router.courier import Courier
from monitor.router.model import DeliveryError
from monitor.sinks import MemoryDeadLetters, MemoryNotifier
from monitor.sinks.delivery import DeliveryAttempt
from monitor.sinks.receivers import build_notifiers
from monitor.sources import ListSource
from monitor.store import Batch, HistoryStore
from monitor.telemetry import Metrics
from tests.http_receiver import DedupingPager, LocalReceiver, Received, Reply
from tests.unit.api.helpers import api
from tests.unit.sinks.builders import ROUTING_KEY, signal


class Crash(BaseException):
    """Stands in for os._exit: nothing after it in the pass runs."""


def crash(_attempt: DeliveryAttempt) -> None:
    raise Crash


def store_with_halt(path: Path) -> HistoryStore:
    store = HistoryStore(path)
    run = store.start_run("logs")
    store.checkpoint(run, Batch(signals=[signal(Level.HALT, region="eu-west")]), [])
    return store


def one_receiver(rx: dict[str, Any]) -> RouterSettings:
    return RouterSettings.model_validate({"receivers": [rx], "route": {"receiver": rx["name"]}})


def crash_then_restart(store: HistoryStore, rs: RouterSettings) -> str:
    """Deliver with a crash right after the receiver accepted; then a fresh courier (the
    restart) delivers again. Returns the notification id."""
    first = Courier(store, rs, build_notifiers(rs))
    first.on_delivered = crash
    with pytest.raises(Crash):
        first.tick()
    first.close()
    [row] = store.notifications()
    assert (row["state"], row["attempts"]) == ("pending", 0), "sent, but not recorded"
    again = Courier(store, rs, build_notifiers(rs))
    report = again.tick()
    again.close()
    assert report.delivered == 1
    [row] = store.notifications()
    assert row["state"] == "delivered"
    return str(row["notification_id"])


def test_the_row_is_written_after_on_delivered(tmp_path: Path) -> None:
    store = store_with_halt(tmp_path / "h.db")
    rs = one_receiver({"name": "pager", "kind": "stdout"})
    courier = Courier(store, rs, {"pager": MemoryNotifier("pager")})
    seen: list[str] = []
    courier.on_delivered = lambda a: seen.append(store.notifications()[0]["state"])
    assert courier.tick().delivered == 1
    assert seen == ["pending"], "the hook sits between 'sent' and 'recorded'"
    assert store.notifications()[0]["state"] == "delivered"


def test_webhook_repeat_carries_the_same_idempotency_key_and_pages_once(tmp_path: Path) -> None:
    store = store_with_halt(tmp_path / "h.db")
    pager = DedupingPager()
    with LocalReceiver(pager) as rx:
        nid = crash_then_restart(
            store, one_receiver({"name": "hook", "kind": "webhook", "url": rx.url + "/hook"})
        )
        keys = [r.headers["idempotency-key"] for r in rx.answered()]
        bodies = [r.json()["id"] for r in rx.answered()]
    assert keys == [nid, nid], "sent again after the crash, with the same key"
    assert bodies == [nid, nid]
    assert (pager.pages, pager.repeats) == ([nid], [nid]), "one page per idempotency key"


def _pagerduty(rx: LocalReceiver, _tmp: Path) -> dict[str, Any]:
    return {"name": "pd", "kind": "pagerduty", "routing_key": ROUTING_KEY, "url": rx.url}


def _alertmanager(rx: LocalReceiver, _tmp: Path) -> dict[str, Any]:
    return {"name": "am", "kind": "alertmanager", "url": rx.url}


def _slack(rx: LocalReceiver, _tmp: Path) -> dict[str, Any]:
    return {"name": "chat", "kind": "slack", "url": rx.url + "/services/T/B/X", "min_interval_s": 0}


def _pd_key(r: Received, nid: str) -> object:
    body = r.json()
    assert body["payload"]["custom_details"]["notification_id"] == nid
    return body["dedup_key"]


def _am_key(r: Received, nid: str) -> object:
    [a] = r.json()
    return (tuple(sorted(a["labels"].items())), a["annotations"]["driftgate_alert_id"])


def _slack_key(r: Received, nid: str) -> object:
    context = r.json()["blocks"][-1]["elements"][0]["text"]
    assert nid in context, "the notification id is shown, but Slack cannot de-duplicate on it"
    return r.json()["text"]


@pytest.mark.parametrize(
    ("config", "key", "reply"),
    [
        (_pagerduty, _pd_key, Reply(202)),
        (_alertmanager, _am_key, Reply(200)),
        (_slack, _slack_key, Reply(200, b"ok")),
    ],
    ids=["pagerduty-dedup_key", "alertmanager-labels", "slack-no-key"],
)
def test_a_crash_repeats_the_same_request_per_receiver(
    tmp_path: Path,
    config: Callable[[LocalReceiver, Path], dict[str, Any]],
    key: Callable[[Received, str], object],
    reply: Reply,
) -> None:
    """PagerDuty gets the same ``dedup_key`` (it updates the incident), Alertmanager the same
    labels (it merges by them), Slack the same message twice (no key: it posts twice)."""
    store = store_with_halt(tmp_path / "h.db")
    with LocalReceiver(reply) as rx:
        nid = crash_then_restart(store, one_receiver(config(rx, tmp_path)))
        answered = rx.answered()
    assert len(answered) >= 2, "the crashed request, then the same one again"
    assert len({key(r, nid) for r in answered}) == 1


def test_jsonl_repeat_is_the_same_line_with_the_notification_id(tmp_path: Path) -> None:
    store = store_with_halt(tmp_path / "h.db")
    path = tmp_path / "notes.jsonl"
    nid = crash_then_restart(
        store, one_receiver({"name": "file", "kind": "jsonl", "path": str(path)})
    )
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(x)["id"] for x in lines] == [nid, nid]
    assert lines[0] == lines[1], "a reader drops the repeat by id"


def test_stdout_repeat_is_the_same_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = store_with_halt(tmp_path / "h.db")
    crash_then_restart(store, one_receiver({"name": "console", "kind": "stdout"}))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0] == lines[1]
    assert lines[0].startswith("[console] firing")


# -- the give-up horizon and how giving up is signalled ---------------------------------------


def test_receiver_max_age_s_gives_up_to_the_fallback_and_is_signalled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_with_halt(tmp_path / "h.db")
    path = tmp_path / "fallback.jsonl"
    now = [1_000_000]
    with LocalReceiver(Reply(503, b"down")) as rx:
        rs = RouterSettings.model_validate(
            {
                "receivers": [
                    {
                        "name": "pager",
                        "kind": "webhook",
                        "url": rx.url,
                        "max_age_s": 60,
                        "max_attempts": 100,
                        "fallback": "file",
                    },
                    {"name": "file", "kind": "jsonl", "path": str(path)},
                ],
                "route": {"receiver": "pager"},
                "retry": {"base_s": 5, "cap_s": 5, "breaker_failures": 99},
            }
        )
        courier = Courier(store, rs, build_notifiers(rs), clock=lambda: now[0])
        reports = []
        with caplog.at_level(logging.ERROR, logger="monitor.sinks.delivery"):
            for _ in range(20):  # 100 s of fake time, a tick every 5 s
                reports.append(courier.tick())
                now[0] += 5_000
        courier.close()
        tried = len(rx.requests)
    given = [a for r in reports for a in r.given_up]
    assert [(a.receiver, a.outcome) for a in given] == [("pager", "fallback")]
    assert given[0].at_ms - 1_000_000 <= 60_000, "given up within max_age_s"
    assert 2 <= tried <= 13, "retried (a tick every 5 s) while within the horizon"
    rows = {r["receiver"]: r for r in store.notifications()}
    assert rows["pager"]["state"] == "fallback"
    assert "max_age_s=60" in rows["pager"]["last_error"]
    assert rows["file"]["state"] == "delivered"
    assert [orjson.loads(x)["id"] for x in path.read_bytes().splitlines()] == [
        rows["pager"]["notification_id"]
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert rows["pager"]["notification_id"] in errors[0]
    assert "'pager'" in errors[0]
    assert "max_age_s=60" in errors[0]
    view = given_up(store)
    assert (view["failed"], view["fallback"]) == (0, 1)
    assert view["recent"][0]["receiver"] == "pager"
    assert view["recent"][0]["given_up_at"] is not None


def test_a_notification_given_up_without_fallback_is_counted_listed_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "h.db"
    store = store_with_halt(db)
    settings = load_settings(
        overrides={
            "history": {"path": str(db)},
            "router": {
                "receivers": [{"name": "pager", "kind": "stdout", "max_attempts": 1}],
                "route": {"receiver": "pager"},
            },
        },
        search_cwd=False,
    )
    pager = MemoryNotifier("pager")
    pager.fail_next(DeliveryError("HTTP 503 from pager: down", retryable=True))
    courier = Courier(store, settings.router, {"pager": pager})
    reader = InMemoryMetricReader()
    monitor = Monitor(
        settings,
        ListSource([], name="logs"),
        store,
        MemoryDeadLetters(),
        [],
        metrics=Metrics(MeterProvider(metric_readers=[reader])),
        courier=courier,
    )
    with caplog.at_level(logging.ERROR):
        monitor.run()  # the router pass at start delivers what is pending: it gives up
    [row] = store.notifications()
    assert row["state"] == "failed"
    assert "gave up after 1 attempts (max_attempts=1)" in row["last_error"]

    points = [
        (dict(p.attributes or {}), p.value)
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "driftgate.notifications.given_up"
        for p in m.data.data_points  # type: ignore[union-attr]
    ]
    assert points == [({"receiver": "pager", "outcome": "failed"}, 1)]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(row["notification_id"] in e and "NOT delivered" in e for e in errors)

    body = api(store).get("/v1/status").json()
    assert (body["given_up"]["failed"], body["given_up"]["fallback"]) == (1, 0)
    [shown] = body["given_up"]["recent"]
    assert (shown["notification_id"], shown["receiver"], shown["state"]) == (
        row["notification_id"],
        "pager",
        "failed",
    )
    assert "max_attempts=1" in shown["reason"]
    store.close()

    status = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
        cwd=tmp_path,
    )
    assert status.returncode == 0, status.stderr
    assert "Notifications given up" in status.stdout
    assert row["notification_id"] in status.stdout
    assert "1 notifications given up and delivered nowhere" in status.stderr
    as_json = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert as_json.returncode == 0, as_json.stderr
    assert [orjson.loads(x)["kind"] for x in as_json.stdout.splitlines()] == ["HALT"]
    assert "1 notifications given up" in as_json.stderr
