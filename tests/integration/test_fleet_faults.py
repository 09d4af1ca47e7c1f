"""Faults with members as subprocesses on the real broker (issue 11, item 7; first cases).

A member SIGSTOPped past its session timeout while a second member takes its partitions,
then SIGCONTed: the zombie must write nothing for partitions the newer generation owns, and
the history must count every record exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import grid_stream
from tests.integration.test_monitor_kafka import keyed, make_topics, monitor_env, produce
from tests.kafka_broker import KafkaBroker, TopicFactory

pytestmark = pytest.mark.kafka
SESSION_TIMEOUT_S = 10.0  # KafkaSource's session_timeout_ms


def _member(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """``driftgate run`` as a subprocess, its stderr (the log) to ``log``."""
    with log.open("wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _stored(db: Path) -> int:
    """Records the history has counted so far (0 before the first checkpoint)."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT coalesce(sum(records), 0) FROM runs").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0])


def test_a_member_paused_past_its_session_writes_nothing_when_it_resumes(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = make_topics(kafka_broker, kafka_topic)  # 3 partitions
    records = grid_stream(1500, shift_segment=("eu-west", "pro"), shift_at=900, shift=2.0)
    produce(kafka_broker, topic, keyed(records))
    env = monitor_env(
        kafka_broker,
        tmp_path,
        topic,
        DRIFTGATE_SOURCE__BATCH_SIZE="100",
        DRIFTGATE_SOURCE__IDLE_EXIT_S="8",
        DRIFTGATE_SIGNALS__STDOUT="false",
    )
    db = tmp_path / "history.db"
    zombie = _member(env, tmp_path, tmp_path / "a.log")
    try:
        deadline = time.monotonic() + 120
        while _stored(db) == 0:  # let it checkpoint some batches, then freeze it mid-stream
            assert zombie.poll() is None, (tmp_path / "a.log").read_text()
            assert time.monotonic() < deadline, "member A never checkpointed"
            time.sleep(0.05)
        os.kill(zombie.pid, signal.SIGSTOP)
        frozen_at = _stored(db)
        assert frozen_at < len(records), "A finished before it could be paused"
        time.sleep(SESSION_TIMEOUT_S + 3)  # its session expires: the group evicts it

        heir = _member(env, tmp_path, tmp_path / "b.log")
        assert heir.wait(timeout=180) == 0, (tmp_path / "b.log").read_text()
        assert _stored(db) == len(records), "the new member read the rest"

        os.kill(zombie.pid, signal.SIGCONT)
        assert zombie.wait(timeout=180) == 0, (tmp_path / "a.log").read_text()
    finally:
        if zombie.poll() is None:
            os.kill(zombie.pid, signal.SIGCONT)
            zombie.kill()
    a_log = (tmp_path / "a.log").read_text()
    assert "partitions lost" in a_log or "checkpoint fenced" in a_log, a_log[-2000:]

    # every record exactly once; nothing the zombie read after its eviction landed
    with sqlite3.connect(db) as conn:
        total = conn.execute("SELECT sum(records) FROM runs").fetchone()[0]
        leaf = conn.execute(
            "SELECT sum(records) FROM segment_counts WHERE scope = 'segment'"
        ).fetchone()[0]
        offsets = dict(
            ((t, p), o)
            for t, p, o in conn.execute("SELECT source, partition, next_offset FROM offsets")
        )
        owners = conn.execute("SELECT DISTINCT generation FROM partition_owners").fetchall()
        ids = [r[0] for r in conn.execute("SELECT id FROM signals")]
        halts = {r[0] for r in conn.execute("SELECT segment FROM signals WHERE level='HALT'")}
    assert total == leaf == len(records)
    assert sum(offsets.values()) == len(records)  # offsets are next offsets, from 0
    assert len(owners) == 1, "every partition ends owned by one (the latest) generation"
    assert len(ids) == len(set(ids))
    assert "region=eu-west,cohort=pro" in halts
