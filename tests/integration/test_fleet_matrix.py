"""The fleet fault matrix: members join, leave, are killed, the broker and PostgreSQL restart.

Every scenario reads the same input (``tests/integration/test_layouts.py``: 30,000 records,
12 segments, one injected drift per scope level) from its own topic of 6 partitions keyed
by segment, produced live at a steady rate while members (``driftgate run`` subprocesses,
one consumer group, one PostgreSQL history) come and go. Each is compared with one
undisturbed member that read the same records (module fixture ``reference``):

* every record counted exactly once (runs, leaf and global counts), none late;
* the same signals (ids: scope, level and triggering record) and the same drift events;
* the same final detector state: leaf banks byte for byte, roll-up watchers to 1e-9
  (their window summaries are merged from parts whose batch boundaries differ);
* each signal on the control topic (repeats only where a crash point sent without
  recording, with the same id), each notification paged once at a receiver that
  de-duplicates on ``Idempotency-Key``;
* every partition owned by one generation at the end, and every window part judged.

``make test`` runs the light form (scale 1 → 2 → 3 → 1, kill -9 after a checkpoint,
PostgreSQL restarted); ``make test-faults`` the whole matrix (marker ``faults``).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import create_engine, text

from monitor.events import DriftEvent, Signal
from monitor.store import HistoryStore
from tests.http_receiver import DedupingPager, LocalReceiver
from tests.integration.test_layouts import DRIFTS, stream
from tests.kafka_broker import KafkaBroker
from tests.postgres_server import PostgresServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

N_PARTITIONS = 6
RATE = 1500  # records/s produced: 30,000 in 20 s
RECORDS = stream(drift=True)
VALUES = [(f"{r['region']}|{r['cohort']}".encode(), orjson.dumps(r)) for r in RECORDS]
JUDGE_ROW = "~judge"  # holds wall-clock times: not compared


# -- servers and snapshots ----------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module's own (one scenario restarts it)."""
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:
        server.close()
        pytest.fail(f"could not start the PostgreSQL test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@dataclass
class Snapshot:
    # id -> (scope, signal, level, partition, offset): ids name the topic, which differs
    signals: dict[str, tuple[str, str, str, int, int]]
    events: set[tuple[str, str, str, int, int]]  # (scope, signal, detector, partition, offset)
    states: dict[str, bytes]
    totals: dict[str, int]
    counts: dict[str, int]
    runs: list[dict[str, Any]]
    generations: set[int]
    parts_left: int


def snapshot(url: str) -> Snapshot:
    store = HistoryStore(url)
    try:
        rows = store.history()
        states = store.detector_states()
        totals = store.totals()
        counts = store.segment_counts()
        judge = pickle.loads(store.detector_states(JUDGE_ROW)[JUDGE_ROW])
        # parts of windows the judge closed must all have been merged (the last windows of a
        # Kafka stream stay open: their parts wait for the watermark)
        parts_left = sum(
            1 for w in store.window_parts(2**62) if w.start_ms + judge.width_ms <= judge.closed_to
        )
        generations = {g for _m, g in store.owners().values()}
    finally:
        store.close()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            runs = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM runs"))]
    finally:
        engine.dispose()
    return Snapshot(
        signals={
            r.id: (r.segment, r.signal, r.level.value, r.position.partition, r.position.offset)
            for r in rows
            if isinstance(r, Signal)
        },
        events={
            (r.segment, r.signal, r.detector, r.position.partition, r.position.offset)
            for r in rows
            if isinstance(r, DriftEvent)
        },
        states=states,
        totals=totals,
        counts=counts,
        runs=runs,
        generations=generations,
        parts_left=parts_left,
    )


def _close(a: Any, b: Any, where: str = "") -> None:
    """Assert two unpickled detector states are equal, floats to a relative 1e-9."""
    if isinstance(a, str | int | bytes | Enum | None) and not isinstance(a, bool | float):
        assert a == b, (where, a, b)
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (where, a, b)
    elif isinstance(a, np.ndarray):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dict__") or hasattr(a, "__slots__"):
        assert type(a) is type(b), where
        names = set(getattr(a, "__dict__", {})) | {
            s for c in type(a).__mro__ for s in getattr(c, "__slots__", ())
        }
        for n in sorted(names):
            if hasattr(a, n):
                _close(getattr(a, n), getattr(b, n), f"{where}.{n}")
    else:
        assert a == b, (where, a, b)


def assert_like(got: Snapshot, ref: Snapshot) -> None:
    """What every scenario must give: the undisturbed member's results, counted once."""
    n = len(RECORDS)
    assert got.totals["records"] == n, got.totals
    assert got.totals["late"] == 0, got.totals
    assert got.totals["dead_letters"] == 0, got.totals
    assert got.counts["*"] == n
    assert sum(v for k, v in got.counts.items() if "," in k) == n
    assert got.counts == ref.counts
    missing = sorted(set(ref.signals.values()) - set(got.signals.values()))
    extra = sorted(set(got.signals.values()) - set(ref.signals.values()))
    assert (missing, extra) == ([], []), "signals differ from the undisturbed run"
    assert len(got.signals) == len(ref.signals)
    halts = Counter(s[0] for s in got.signals.values() if s[2] == "HALT")
    assert max(halts.values()) == 1, "one HALT per scope: never raised twice"
    assert set(DRIFTS) <= set(halts)
    assert got.events == ref.events
    assert len(got.generations) == 1, got.generations
    assert got.parts_left == 0, "every part of a closed window judged"

    # the judge's row holds wall-clock times; decision rows name events by ids that name
    # the topic (each scenario has its own): their effect is checked through the signals
    def compared(states: dict[str, bytes]) -> set[str]:
        return {k for k in states if k != JUDGE_ROW and not k.startswith("~decision:")}

    keys = compared(ref.states)
    assert compared(got.states) == keys
    for key in sorted(keys):
        if key.startswith("~rollup:"):
            _close(pickle.loads(got.states[key]), pickle.loads(ref.states[key]), key)
        else:
            assert got.states[key] == ref.states[key], f"detector state {key} differs"


# -- a fleet ------------------------------------------------------------------------------


class Fleet:
    """One scenario: a topic, a consumer group, a database, members as subprocesses."""

    def __init__(
        self, broker: KafkaBroker, pg: PostgresServer, tmp: Path, receiver: str | None = None
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.broker, self.tmp = broker, tmp
        self.topic, self.group = f"matrix-{tag}", f"driftgate-{tag}"
        self.control = f"{self.topic}.control"
        broker.create_topic(self.topic, partitions=N_PARTITIONS)
        broker.create_topic(self.control, partitions=1)
        broker.create_topic(f"{self.topic}.dlq", partitions=1)
        self.url = pg.create_database()
        self.receiver = receiver
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._n: Counter[str] = Counter()
        self._producer: threading.Thread | None = None

    def env(self, member: str, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DRIFTGATE_SOURCE__KIND": "kafka",
            "DRIFTGATE_SOURCE__BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "DRIFTGATE_SOURCE__TOPICS": json.dumps([self.topic]),
            "DRIFTGATE_SOURCE__GROUP_ID": self.group,
            "DRIFTGATE_SOURCE__MEMBER_ID": member,
            "DRIFTGATE_SOURCE__BATCH_SIZE": "200",
            "DRIFTGATE_SOURCE__IDLE_EXIT_S": "12",
            "DRIFTGATE_SOURCE__POLL_TIMEOUT_MS": "200",
            "DRIFTGATE_SOURCE__DEAD_LETTER_TOPIC": f"{self.topic}.dlq",
            "DRIFTGATE_SIGNALS__CONTROL_TOPIC": self.control,
            "DRIFTGATE_SIGNALS__STDOUT": "false",
            "DRIFTGATE_HISTORY__URL": self.url,
            "DRIFTGATE_DETECTION__WARMUP": "300",
            "DRIFTGATE_DETECTION__MULTIVARIATE__ENABLED": "false",
        }
        if self.receiver is not None:
            env["DRIFTGATE_ROUTER__RECEIVERS"] = json.dumps(
                [{"name": "pager", "kind": "webhook", "url": self.receiver}]
            )
            env["DRIFTGATE_ROUTER__ROUTE"] = json.dumps({"receiver": "pager"})
        env.update(extra)
        return env

    def log(self, member: str) -> Path:
        return self.tmp / f"{self.group}-{member}-{self._n[member]}.log"

    def start(self, member: str, **extra: str) -> subprocess.Popen[bytes]:
        self._n[member] += 1
        with self.log(member).open("wb") as err:
            p = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"],
                env=self.env(member, **extra),
                cwd=self.tmp,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.procs[member] = p
        return p

    def produce(self, live: bool = True) -> None:
        """Produce the input, at ``RATE`` records/s in a thread (``live``) or all now."""

        def run() -> None:
            producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, linger_ms=20)
            t0 = time.monotonic()
            for i, (key, value) in enumerate(VALUES):
                producer.send(self.topic, key=key, value=value)
                if live and i % 500 == 499:
                    ahead = (i + 1) / RATE - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            producer.flush(timeout=120)
            producer.close(timeout=10)

        if not live:
            run()
            return
        self._producer = threading.Thread(target=run, daemon=True)
        self._producer.start()

    def stored(self) -> int:
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                return int(
                    conn.execute(text("SELECT coalesce(sum(records), 0) FROM runs")).scalar_one()
                )
        except Exception:  # not created yet, or the server is restarting
            return 0
        finally:
            engine.dispose()

    def wait_stored(self, at_least: int, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while self.stored() < at_least:
            for m, p in self.procs.items():
                assert p.poll() in (None, 0), self.log(m).read_text()[-3000:]
            assert time.monotonic() < deadline, f"never stored {at_least} records"
            time.sleep(0.2)

    def joined(self, member: str, timeout_s: float = 120) -> None:
        """Wait until ``member`` has been assigned partitions (it is up, in the group)."""
        deadline = time.monotonic() + timeout_s
        while "partitions assigned: ['" not in self.log(member).read_text():
            assert self.procs[member].poll() is None, self.log(member).read_text()[-3000:]
            assert time.monotonic() < deadline, f"{member} never got partitions"
            time.sleep(0.2)

    def wait(self, member: str, code: int = 0, timeout_s: float = 300) -> str:
        p = self.procs[member]
        try:
            got = p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        text_ = self.log(member).read_text()
        assert got == code, f"{member} exited {got}, not {code}:\n{text_[-3000:]}"
        return text_

    def finish(self) -> None:
        if self._producer is not None:
            self._producer.join(timeout=120)
        for m in list(self.procs):
            if self.procs[m].returncode is None:
                self.wait(m)

    def control_ids(self) -> list[str]:
        consumer = KafkaConsumer(
            self.control,
            bootstrap_servers=self.broker.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        try:
            return [orjson.loads(m.value)["id"] for m in consumer]
        finally:
            consumer.close()

    def kill_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def fleet(kafka_broker: KafkaBroker, pg: PostgresServer, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(kafka_broker, pg, tmp_path)
    try:
        yield f
    finally:
        f.kill_all()


@pytest.fixture(scope="module")
def reference(
    kafka_broker: KafkaBroker, pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Snapshot:
    """One member, undisturbed, the whole input produced before it starts."""
    f = Fleet(kafka_broker, pg, tmp_path_factory.mktemp("reference"))
    try:
        f.produce(live=False)
        f.start("solo")
        f.finish()
    finally:
        f.kill_all()
    ref = snapshot(f.url)
    assert ref.totals["records"] == len(RECORDS)
    assert sorted(f.control_ids()) == sorted(ref.signals)
    return ref


def _check_control(f: Fleet, got: Snapshot, repeats_ok: bool = False) -> None:
    delivered = f.control_ids()
    assert set(delivered) == set(got.signals), "every signal on the control topic"
    repeats = [i for i, n in Counter(delivered).items() if n > 1]
    if not repeats_ok:
        assert repeats == [], "no signal delivered twice"
    assert max(Counter(delivered).values()) <= 2


# -- the light form (make test) -----------------------------------------------------------


def test_members_join_and_leave_mid_stream_1_2_3_1(fleet: Fleet, reference: Snapshot) -> None:
    fleet.produce()
    fleet.start("a")
    fleet.wait_stored(5_000)
    fleet.start("b")
    fleet.joined("b")
    fleet.wait_stored(11_000)
    fleet.start("c")
    fleet.joined("c")
    fleet.wait_stored(18_000)
    for m in ("b", "c"):  # scale back to one: finish the batch in hand, leave the group
        fleet.procs[m].send_signal(signal.SIGTERM)
    for m in ("b", "c"):
        fleet.wait(m)
    assert fleet.stored() < len(RECORDS), "the scale-down landed mid-stream"
    fleet.finish()
    got = snapshot(fleet.url)
    assert_like(got, reference)
    _check_control(fleet, got)
    assert len(got.runs) == 3
    assert sum(1 for r in got.runs if r["records"] > 0) >= 2, got.runs


def test_a_member_killed_after_a_checkpoint_and_restarted(
    fleet: Fleet, reference: Snapshot
) -> None:
    _crash_and_restart(fleet, reference, "after-checkpoint")


def test_postgres_restarted_mid_stream_the_members_wait_and_recover(
    fleet: Fleet, reference: Snapshot, pg: PostgresServer
) -> None:
    fleet.produce()
    fleet.start("a")
    fleet.start("b")
    fleet.wait_stored(8_000)
    pg.stop()
    time.sleep(4)  # the members' checkpoints fail meanwhile
    pg.start()
    fleet.finish()
    logs = [fleet.log(m).read_text() for m in ("a", "b")]
    assert any("history store unreachable" in t for t in logs), logs[0][-2000:]
    assert any("history store is back" in t for t in logs), logs[0][-2000:]
    got = snapshot(fleet.url)
    assert_like(got, reference)
    _check_control(fleet, got, repeats_ok=True)


# -- the full matrix (make test-faults) -----------------------------------------------------


def _crash_and_restart(
    fleet: Fleet, reference: Snapshot, point: str, pager: DedupingPager | None = None
) -> None:
    """Two members; b dies like kill -9 at ``point`` in its first batch there after its
    tenth, and is started again (same member id) at once."""
    fleet.produce()
    fleet.start("a")
    fleet.start("b", DRIFTGATE_FAULTS__CRASH_AT=point, DRIFTGATE_FAULTS__CRASH_AFTER_BATCHES="10")
    fleet.wait("b", code=137)
    assert fleet.stored() < len(RECORDS), "b crashed mid-stream"
    fleet.start("b")
    fleet.finish()
    got = snapshot(fleet.url)
    assert_like(got, reference)
    _check_control(fleet, got, repeats_ok=point == "signal-sent-unrecorded")
    if pager is not None:
        store = HistoryStore(fleet.url)
        try:
            sent = {
                n["notification_id"] for n in store.notifications() if n["state"] == "delivered"
            }
        finally:
            store.close()
        assert sent, "notifications were delivered"
        assert sorted(pager.pages) == sorted(sent), "each notification paged once"
        if point != "notification-sent-unrecorded":
            assert pager.repeats == [], "nothing sent twice"


@pytest.mark.faults
@pytest.mark.parametrize(
    "point", ["signal-sent-unrecorded", "notification-sent-unrecorded", "after-delivery-recorded"]
)
def test_a_member_killed_at_a_crash_point_and_restarted(
    kafka_broker: KafkaBroker, pg: PostgresServer, tmp_path: Path, reference: Snapshot, point: str
) -> None:
    pager = DedupingPager()
    with LocalReceiver(pager) as rx:
        f = Fleet(kafka_broker, pg, tmp_path, receiver=rx.url)
        try:
            _crash_and_restart(f, reference, point, pager)
        finally:
            f.kill_all()


@pytest.mark.faults
def test_a_member_killed_at_a_random_moment_and_restarted(
    fleet: Fleet, reference: Snapshot
) -> None:
    fleet.produce()
    fleet.start("a")
    fleet.start("b")
    fleet.wait_stored(random.Random().randint(3_000, 20_000))
    os.kill(fleet.procs["b"].pid, signal.SIGKILL)
    fleet.wait("b", code=-signal.SIGKILL)
    fleet.start("b")
    fleet.finish()
    got = snapshot(fleet.url)
    assert_like(got, reference)
    _check_control(fleet, got, repeats_ok=True)


@pytest.mark.faults
def test_the_broker_restarted_mid_stream(
    fleet: Fleet, reference: Snapshot, kafka_broker: KafkaBroker
) -> None:
    fleet.produce(live=False)  # a producer of our own would have to survive the restart too
    fleet.start("a")
    fleet.start("b")
    fleet.wait_stored(6_000)
    kafka_broker.restart()
    fleet.finish()
    got = snapshot(fleet.url)
    assert_like(got, reference)
    _check_control(fleet, got, repeats_ok=True)
