"""The router wired into the monitor: plan → outbox → deliver, through real HTTP and crashes.

* in-process: a webhook receiver that fails (503, then a timeout, then 429 with
  Retry-After) before it recovers gets every notification exactly once, in order per group;
* subprocess: ``driftgate run`` killed (exit 137, no clean-up) at each crash point —
  stored but not delivered, a signal sent but not marked, a notification sent but its row
  not written, everything sent and recorded: after a restart nothing is lost, only the
  "sent, not yet recorded" points repeat (what was sent in that window, same ids), and a
  receiver that de-duplicates on ``Idempotency-Key`` pages once per key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.config import load_settings
from monitor.events import Level
from monitor.pipeline import Monitor
from monitor.router.courier import Courier
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sinks.receivers import build_notifiers
from monitor.sinks.webhook import verify
from monitor.sources import ListSource
from monitor.store import HistoryStore
from tests.factories import grid_stream, to_bytes
from tests.http_receiver import DedupingPager, LocalReceiver, Received, Reply

SHIFTED = ("eu-west", "pro")
SECRET = "s3cret"


def router_cfg(url: str, jsonl: Path) -> dict[str, Any]:
    return {
        "receivers": [
            {"name": "oncall", "kind": "webhook", "url": url, "secret": SECRET, "timeout_s": 0.3},
            {"name": "file", "kind": "jsonl", "path": str(jsonl)},
        ],
        "route": {
            "receiver": "file",
            "group_by": ["region"],
            "group_wait_s": 0,
            "routes": [
                {"matchers": ["severity=critical"], "receiver": "oncall", "continue": True},
                {"receiver": "file"},
            ],
        },
        "retry": {"base_s": 0.02, "cap_s": 0.2, "breaker_failures": 50},
    }


def ids(received: list[Received]) -> list[str]:
    return [r.headers["idempotency-key"] for r in received if r.status == 200]


def test_flaky_webhook_gets_every_notification_once_in_order(tmp_path: Path) -> None:
    stream = to_bytes(grid_stream(1200, shift_segment=SHIFTED, shift_at=700, shift=2.0))
    script = [
        Reply(503),
        Reply(503),
        Reply(hang=True, delay_s=0.5),
        Reply(429, headers={"Retry-After": "1"}),
    ]
    with LocalReceiver(Reply(200)) as rx:
        rx.script.extend(script)
        settings = load_settings(
            overrides={
                "source": {"batch_size": 300},
                "detection": {"warmup": 400},
                "router": router_cfg(rx.url + "/hook", tmp_path / "notes.jsonl"),
            },
            search_cwd=False,
        )
        store = HistoryStore(tmp_path / "h.db")
        courier = Courier(store, settings.router, build_notifiers(settings.router))
        sink = MemorySink("memory")
        mon = Monitor(
            settings,
            ListSource(stream, name="logs"),
            store,
            MemoryDeadLetters(),
            [sink],
            courier=courier,
        )
        mon.run()
        deadline = time.monotonic() + 10
        while store.pending_notifications() and time.monotonic() < deadline:
            time.sleep(0.05)
            courier.tick()
        courier.close()

        assert not store.pending_notifications(), "every notification delivered in the end"
        statuses = [r.status for r in rx.requests]
        assert statuses[:4] == [503, 503, None, 429], "the receiver really failed first"
        delivered = ids(rx.requests)
        assert delivered, "HALTs reached the webhook"
        assert len(delivered) == len(set(delivered)), "nothing delivered twice"
        outbox = {n["notification_id"]: n for n in store.notifications("oncall")}
        assert set(delivered) == set(outbox), "each outbox row for the webhook arrived once"
        assert all(n["state"] == "delivered" for n in outbox.values())
        # order per group: the webhook saw each group's notifications in outbox order
        for group in {n["group_key"] for n in outbox.values()}:
            expected = [i for i, n in outbox.items() if n["group_key"] == group]
            assert [i for i in delivered if i in expected] == expected
        # signed, with the documented body
        ok = next(r for r in rx.requests if r.status == 200)
        assert verify(
            SECRET,
            ok.body,
            ok.headers["x-driftgate-signature"],
            ok.headers["x-driftgate-timestamp"],
        )
        halts = {s.segment for s in sink.signals if s.level is Level.HALT}
        sent = {
            a["labels"]["segment"]
            for r in rx.requests
            if r.status == 200
            for a in r.json()["alerts"]
        }
        assert sent & halts
    # the file receiver got every group too
    assert store.notifications("file")
    lines = [orjson.loads(x) for x in (tmp_path / "notes.jsonl").read_bytes().splitlines()]
    assert {line["id"] for line in lines} == {
        n["notification_id"] for n in store.notifications("file")
    }


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


#: What each crash point leaves behind, and what the restart must then repeat.
CRASH_POINTS = [
    "after-checkpoint",  # stored, nothing delivered: nothing repeats
    "signal-sent-unrecorded",  # the JSONL sink has the signals, the outbox not the mark
    "notification-sent-unrecorded",  # the webhook took one notification, its row says pending
    "after-delivery-recorded",  # everything sent and recorded: nothing repeats
]


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_killed_at_each_crash_point_nothing_is_lost_and_one_page_per_key(
    tmp_path: Path, crash_at: str
) -> None:
    """``driftgate run`` killed (exit 137) at a crash point of the batch that raised the
    first signal, then restarted: every signal and notification is delivered; only the
    "sent, not yet recorded" points repeat, and exactly what was sent in that window, with
    the same ids; the webhook receiver that de-duplicates on ``Idempotency-Key`` pages once
    per key."""
    data = tmp_path / "logs.jsonl"
    recs = grid_stream(1200, shift_segment=SHIFTED, shift_at=700, shift=2.0)
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    signals_file = tmp_path / "signals.jsonl"
    pager = DedupingPager()
    with LocalReceiver(pager) as rx:
        cfg = {
            "source": {"kind": "file", "path": str(data), "batch_size": 300},
            "detection": {"warmup": 400},
            "history": {"path": str(tmp_path / "h.db")},
            "signals": {"stdout": False, "jsonl_path": str(signals_file)},
            "router": {
                "receivers": [
                    {"name": "oncall", "kind": "webhook", "url": rx.url + "/hook", "secret": SECRET}
                ],
                "route": {"receiver": "oncall", "group_by": ["region"], "group_wait_s": 0},
            },
        }
        (tmp_path / "driftgate.yaml").write_text(orjson.dumps(cfg).decode())
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        crashed = _run(
            {
                **env,
                "DRIFTGATE_FAULTS__CRASH_AT": crash_at,
                "DRIFTGATE_FAULTS__CRASH_ON_SIGNAL": "true",
            },
            tmp_path,
        )
        assert crashed.returncode == 137, crashed.stderr
        assert f"fault injection: crashing {crash_at}" in crashed.stderr
        store = HistoryStore(tmp_path / "h.db")
        stored = {r["id"] for r in store.signal_states(include_ended=True)}
        unmarked = {s.id for s in store.pending("jsonl")}
        rows = {r["notification_id"]: r for r in store.notifications("oncall")}
        store.close()
        sent_signals = _signal_ids(signals_file)
        sent = ids(rx.requests)
        assert stored, "the crashed batch stored its signals"
        if crash_at == "after-checkpoint":
            assert (sent_signals, sent) == ([], []), "nothing of that batch delivered yet"
            assert unmarked == stored
        elif crash_at == "signal-sent-unrecorded":
            assert sorted(sent_signals) == sorted(unmarked) == sorted(stored), (
                "the sink took the signals; the outbox does not record it"
            )
            assert sent == []
        elif crash_at == "notification-sent-unrecorded":
            assert unmarked == set()
            assert len(sent) == 1, "the webhook took one notification, then the process died"
            assert (rows[sent[0]]["state"], rows[sent[0]]["attempts"]) == ("pending", 0)
        else:
            assert unmarked == set()
            assert sent, "the crashed batch's HALT was delivered before the crash"
            assert all(rows[k]["state"] == "delivered" for k in sent)
        repeat_signals = sent_signals if crash_at == "signal-sent-unrecorded" else []
        repeat_keys = sent if crash_at == "notification-sent-unrecorded" else []

        again = _run(env, tmp_path)
        assert again.returncode == 0, again.stderr
        store = HistoryStore(tmp_path / "h.db")
        rows = {r["notification_id"]: r for r in store.notifications("oncall")}
        stored = {r["id"] for r in store.signal_states(include_ended=True)}
        assert store.pending("jsonl") == []
        store.close()
        delivered = ids(rx.requests)
    assert rows, "HALT notifications were planned for the webhook"
    assert all(r["state"] == "delivered" for r in rows.values()), "none left pending"
    assert set(delivered) == set(rows), "no notification lost"
    assert sorted(pager.repeats) == sorted(repeat_keys), "repeated: exactly the unrecorded one"
    assert sorted(pager.pages) == sorted(rows), "one page per idempotency key"
    signal_counts = Counter(_signal_ids(signals_file))
    assert set(signal_counts) == stored, "no signal lost"
    assert sorted(k for k, n in signal_counts.items() if n > 1) == sorted(repeat_signals)
    assert max(signal_counts.values()) <= 2


def _signal_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [orjson.loads(x)["id"] for x in path.read_bytes().splitlines()]


class _Refreshing:
    """A receiver that, like Alertmanager, wants firing alerts re-sent every interval."""

    refresh_interval_s = 60.0

    def __init__(self) -> None:
        self.name = "am"
        self.notified: list[str] = []
        self.refreshed: list[list[str]] = []

    def notify(self, n: Any) -> None:
        self.notified.append(n.id)

    def refresh(self, alerts: Any) -> int:
        self.refreshed.append([a.labels["segment"] for a in alerts])
        return len(self.refreshed[-1])

    def close(self) -> None:
        pass


def test_firing_alerts_are_refreshed_every_interval_not_every_tick(tmp_path: Path) -> None:
    from monitor.config import RouterSettings
    from monitor.events import Position, Signal
    from monitor.store import Batch

    store = HistoryStore(tmp_path / "h.db")
    run = store.start_run("logs")
    halt = Signal(
        Level.HALT,
        "region=eu",
        "region",
        {"region": "eu"},
        "x rose",
        ("e",),
        0,
        Position("logs", 0, 1),
        signal="feature:x",
    )
    store.checkpoint(run, Batch(signals=[halt]), [])
    am = _Refreshing()
    now = [1_000_000]
    rs = RouterSettings.model_validate(
        {"receivers": [{"name": "am", "kind": "stdout"}], "route": {"receiver": "am"}}
    )
    courier = Courier(store, rs, {"am": am}, clock=lambda: now[0])
    first = courier.tick()
    assert (first.delivered, first.refreshed, am.refreshed) == (1, 1, [["region=eu"]])
    now[0] += 30_000
    assert courier.tick().refreshed == 0  # within the interval: nothing re-sent
    now[0] += 31_000
    assert courier.tick().refreshed == 1
    assert len(am.notified) == 1, "the notification itself went once"
    store.transition(halt.id, "ACK", "ana", "mine")
    courier.tick()
    store.transition(halt.id, "RESUMED", "ana", "fixed")
    now[0] += 61_000
    courier.tick()
    assert am.refreshed[-1] == ["region=eu"], "the resolution is re-sent too, within the window"
    assert len(am.notified) == 3, "ack and resume were each notified once"


def test_a_group_never_told_it_fired_gets_no_resolution(tmp_path: Path) -> None:
    """Alertmanager's notification log: a resolution goes only to a receiver that was told
    the group fired. A WARN superseded by a HALT of another group before any pass (its own
    group then holds only the ended WARN) resolves nothing the receiver ever saw; a HALT
    that was told, then resumed, is resolved."""
    from monitor.config import RouterSettings
    from monitor.events import Position, Signal
    from monitor.sinks.notifier import MemoryNotifier
    from monitor.store import Batch

    def signal(level: Level, n: int, name: str) -> Signal:
        return Signal(
            level, "region=eu", "region", {"region": "eu"}, "x", (f"e{n}",), n,
            Position("logs", 0, n), signal=name,
        )  # fmt: skip

    store = HistoryStore(tmp_path / "h.db")
    run = store.start_run("logs")
    warn, halt = signal(Level.WARN, 1, "feature:x"), signal(Level.HALT, 2, "feature:y")
    store.checkpoint(run, Batch(signals=[warn, halt]), [])
    pager = MemoryNotifier("pager")
    rs = RouterSettings.model_validate(
        {
            "receivers": [{"name": "pager", "kind": "stdout"}],
            "route": {"receiver": "pager", "group_by": ["signal"]},
        }
    )
    courier = Courier(store, rs, {"pager": pager}, clock=lambda: 1_000_000)
    courier.tick()
    assert [(n.group_labels, n.status) for n in pager.received] == [
        ({"signal": "feature:y"}, "firing")
    ]
    store.transition(halt.id, "ACK", "ana", "mine")
    store.transition(halt.id, "RESUMED", "ana", "fixed")
    courier.tick()
    assert [(n.group_labels, n.status) for n in pager.received][-1] == (
        {"signal": "feature:y"},
        "resolved",
    )
    assert all(n.group_labels == {"signal": "feature:y"} for n in pager.received)
