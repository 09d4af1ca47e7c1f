"""Two ``driftgate run`` members on one PostgreSQL history reproduce one member (issue 11).

One input (12 segments whose means differ a little, one injected drift per scope level: a
segment, a region, a cohort, global; ``tests/integration/test_layouts.py``) on one topic of
4 partitions keyed by segment, read to the end:

* by one member of a consumer group, into one PostgreSQL database;
* by two members of another group, as two subprocesses, into another database. They start
  together, so the group rebalances while they read, and the one that finishes first
  leaves the group (its partitions, and maybe the judging of the roll-ups, move to the
  other).

``driftgate history --json`` and ``driftgate status --json`` on the two-member database
must show every record counted once and the same signals (scope, signal, level, position:
the signal ids, which are derived from them) as the one-member run; each signal reaches the
control topic once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer
from sqlalchemy import select

from monitor.store import HistoryStore
from monitor.store import tables as t
from tests.integration.test_layouts import DRIFTS, produce, stream
from tests.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _env(broker: KafkaBroker, topic: str, group: str, url: str, member: str) -> dict[str, str]:
    return {
        **os.environ,
        "DRIFTGATE_SOURCE__KIND": "kafka",
        "DRIFTGATE_SOURCE__BOOTSTRAP_SERVERS": broker.bootstrap,
        "DRIFTGATE_SOURCE__TOPICS": json.dumps([topic]),
        "DRIFTGATE_SOURCE__GROUP_ID": group,
        "DRIFTGATE_SOURCE__MEMBER_ID": member,
        "DRIFTGATE_SOURCE__IDLE_EXIT_S": "10",
        "DRIFTGATE_SOURCE__POLL_TIMEOUT_MS": "200",
        "DRIFTGATE_SOURCE__DEAD_LETTER_TOPIC": f"{topic}.dlq",
        "DRIFTGATE_SIGNALS__CONTROL_TOPIC": f"{topic}.{group}.control",
        "DRIFTGATE_SIGNALS__STDOUT": "false",
        "DRIFTGATE_HISTORY__URL": url,
        "DRIFTGATE_DETECTION__WARMUP": "300",
        "DRIFTGATE_DETECTION__MULTIVARIATE__ENABLED": "false",
    }


def _member(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _cli(*args: str, cwd: Path) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr  # tables on standard output, the totals line on standard error


def _control(broker: KafkaBroker, topic: str) -> list[str]:
    """Signal ids on a control topic, in order."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        group_id=None,
    )
    try:
        return [orjson.loads(m.value)["id"] for m in consumer]
    finally:
        consumer.close()


def _run_group(
    broker: KafkaBroker, topic: str, url: str, members: list[str], tmp: Path
) -> dict[str, Any]:
    group = f"g-{len(members)}-{uuid.uuid4().hex[:6]}"
    broker.create_topic(f"{topic}.{group}.control", partitions=1)
    procs = {
        m: _member(_env(broker, topic, group, url, m), tmp, tmp / f"{group}-{m}.log")
        for m in members
    }
    try:
        for m, p in procs.items():
            assert p.wait(timeout=600) == 0, (tmp / f"{group}-{m}.log").read_text()[-3000:]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    out = _cli("history", "--json", "--db", url, cwd=tmp)
    history = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    store = HistoryStore(url)
    try:
        totals = store.totals()
        with store.engine.connect() as conn:
            runs = [dict(r._mapping) for r in conn.execute(select(t.runs))]
    finally:
        store.close()
    return {
        "signals": [r for r in history if r.get("kind") in ("WARN", "HALT")],
        "events": [r for r in history if r.get("kind") == "drift"],
        "status": _cli("status", "--db", url, cwd=tmp),
        "totals": totals,
        "runs": runs,
        "control": _control(broker, f"{topic}.{group}.control"),
        "logs": {m: (tmp / f"{group}-{m}.log").read_text() for m in members},
    }


def test_two_members_on_one_postgres_history_give_one_members_signals_and_counts(
    kafka_broker: KafkaBroker, postgres_server: Any, tmp_path: Path
) -> None:
    records = stream(drift=True)
    topic = f"fleet-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=4)
    kafka_broker.create_topic(f"{topic}.dlq", partitions=1)
    produce(
        kafka_broker,
        [(topic, f"{r['region']}|{r['cohort']}".encode(), orjson.dumps(r)) for r in records],
    )
    one_url, two_url = postgres_server.create_database(), postgres_server.create_database()
    started = time.monotonic()
    one = _run_group(kafka_broker, topic, one_url, ["solo"], tmp_path)
    two = _run_group(kafka_broker, topic, two_url, ["member-a", "member-b"], tmp_path)
    print(f"both runs in {time.monotonic() - started:.1f}s")

    for run in (one, two):  # every record once
        totals = run["totals"]
        assert totals["records"] == len(records), totals
        assert totals["dead_letters"] == 0, totals
        assert totals["late"] == 0, totals
        assert f"{len(records):,} records" in run["status"], run["status"]
    # both members did part of the work, in one history
    runs = two["runs"]
    assert len(runs) == 2, runs
    assert all(r["records"] > 0 for r in runs), runs
    assert sum(r["records"] for r in runs) == len(records)

    def key(s: dict[str, Any]) -> tuple[Any, ...]:
        return (s["segment"], s["signal"], s["kind"], json.dumps(s["position"]), s["id"])

    assert sorted(map(key, two["signals"])) == sorted(map(key, one["signals"]))
    halted = {s["segment"] for s in one["signals"] if s["kind"] == "HALT"}
    assert set(DRIFTS) <= halted, halted
    ids = [s["id"] for s in two["signals"]]
    assert len(ids) == len(set(ids)), "no signal raised twice"
    assert sorted(two["control"]) == sorted(ids), "each signal on the control topic once"
    events = lambda run: sorted((e["segment"], e["signal"], e["id"]) for e in run["events"])  # noqa: E731
    assert events(two) == events(one)
