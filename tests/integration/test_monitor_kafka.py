"""End to end on the real broker: driftgate runs as a subprocess (`python -m monitor run`)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.factories import COHORTS, REGIONS, grid_stream
from tests.kafka_broker import KafkaBroker, TopicFactory

pytestmark = pytest.mark.kafka
SHIFTED = ("eu-west", "pro")


def produce(broker: KafkaBroker, topic: str, values: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, linger_ms=20, batch_size=256 * 1024
    )
    for key, value in values:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=60)
    producer.close(timeout=10)


def keyed(records: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(f"{r['region']}|{r['cohort']}".encode(), orjson.dumps(r)) for r in records]


def read_all(broker: KafkaBroker, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=4000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def monitor_env(broker: KafkaBroker, tmp: Path, topic: str, **extra: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "DRIFTGATE_SOURCE__KIND": "kafka",
        "DRIFTGATE_SOURCE__BOOTSTRAP_SERVERS": broker.bootstrap,
        "DRIFTGATE_SOURCE__TOPICS": json.dumps([topic]),
        "DRIFTGATE_SOURCE__GROUP_ID": f"driftgate-{tag}",
        "DRIFTGATE_SOURCE__IDLE_EXIT_S": "6",
        "DRIFTGATE_SOURCE__DEAD_LETTER_TOPIC": f"{topic}.dlq",
        "DRIFTGATE_SIGNALS__CONTROL_TOPIC": f"{topic}.control",
        "DRIFTGATE_HISTORY__PATH": str(tmp / "history.db"),
        # 600 records per segment before the shift: a shorter self-learning window
        "DRIFTGATE_DETECTION__WARMUP": "300",
    }
    env.update(extra)
    return env


def run_monitor(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def make_topics(broker: KafkaBroker, kafka_topic: TopicFactory) -> str:
    topic = kafka_topic(3)
    broker.create_topic(f"{topic}.dlq", partitions=1)
    broker.create_topic(f"{topic}.control", partitions=1)
    return topic


def test_shift_in_one_segment_halts_it_on_the_control_topic_and_in_history(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = make_topics(kafka_broker, kafka_topic)
    records = grid_stream(1000, shift_segment=SHIFTED, shift_at=600, shift=2.0)
    produce(kafka_broker, topic, keyed(records))

    r = run_monitor(monitor_env(kafka_broker, tmp_path, topic), tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["records"] == len(records)

    control = read_all(kafka_broker, f"{topic}.control")
    signals = [orjson.loads(m.value) for m in control]
    assert all(m.key.decode() == s["segment"] for m, s in zip(control, signals, strict=True))
    halts = {s["segment"] for s in signals if s["kind"] == "HALT"}
    assert "region=eu-west,cohort=pro" in halts
    untouched = {f"region={g},cohort={c}" for g in REGIONS for c in COHORTS if (g, c) != SHIFTED}
    assert not halts & untouched
    assert len({s["id"] for s in signals}) == len(signals), "a signal was delivered twice"

    # The history agrees, and the HALT points at a record of the shifted segment after the change.
    h = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "history",
            "--json",
            "--kind",
            "HALT",
            "--db",
            str(tmp_path / "history.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert h.returncode == 0, h.stderr
    rows = [json.loads(x) for x in h.stdout.splitlines()]
    leaf = next(x for x in rows if x["segment"] == "region=eu-west,cohort=pro")
    pos = leaf["position"]
    assert pos["topic"] == topic
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, pos["partition"])
    consumer.assign([tp])
    consumer.seek(tp, pos["offset"])
    msg = next(iter(consumer.poll(timeout_ms=5000, max_records=1).values()))[0]
    consumer.close()
    trigger = orjson.loads(msg.value)
    assert (trigger["region"], trigger["cohort"]) == SHIFTED
    assert int(trigger["request_id"].split("-")[1]) // 9 >= 600


def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_are_all_processed(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = make_topics(kafka_broker, kafka_topic)
    good = keyed(grid_stream(60))
    bad: list[tuple[bytes | None, bytes]] = [
        (None, b"{not json"),
        (b"k", b'["an", "array"]'),
        (None, orjson.dumps({"schema_version": 1, "request_id": "x"})),
        (None, b"\xff\xfe\x00binary"),
        (None, orjson.dumps({**grid_stream(1)[0], "latency_ms": -5})),
        (None, b'{"pad": "' + b"x" * 5000 + b'"}'),
    ]
    mixed = list(good)
    for i, b in enumerate(bad):
        mixed.insert(i * 70 + 3, b)
    produce(kafka_broker, topic, mixed)

    env = monitor_env(kafka_broker, tmp_path, topic, DRIFTGATE_SOURCE__MAX_RECORD_BYTES="4096")
    r = run_monitor(env, tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["records"] == len(good)
    assert summary["dead_letters"] == len(bad)

    letters = [orjson.loads(m.value) for m in read_all(kafka_broker, f"{topic}.dlq")]
    assert len(letters) == len(bad)
    raws = sorted(
        (x["raw"].encode() if "raw" in x else __import__("base64").b64decode(x["raw_base64"]))
        for x in letters
    )
    assert raws == sorted(v for _, v in bad)
    reasons = " | ".join(x["reason"] for x in letters)
    for expected in (
        "invalid JSON",
        "not a JSON object",
        "Field required",
        "latency_ms",
        "oversize",
    ):
        assert expected in reasons
    for x in letters:
        assert x["position"]["topic"] == topic
        assert {"partition", "offset"} <= set(x["position"])

    con = sqlite3.connect(tmp_path / "history.db")
    (star,) = con.execute("SELECT records FROM segment_counts WHERE segment='*'").fetchone()
    con.close()
    assert star == len(good)


def test_sigterm_mid_stream_then_restart_processes_every_record_exactly_once(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = make_topics(kafka_broker, kafka_topic)
    records = grid_stream(6000, seed=11)
    produce(kafka_broker, topic, keyed(records))
    env = monitor_env(kafka_broker, tmp_path, topic, DRIFTGATE_SOURCE__BATCH_SIZE="100")
    db = tmp_path / "history.db"

    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--no-progress", "--json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and committed == 0:
        time.sleep(0.05)
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=1)
                committed = con.execute("SELECT COALESCE(SUM(records),0) FROM runs").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                committed = 0
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    first = json.loads(out.splitlines()[-1])
    assert first["status"] == "interrupted"
    assert 0 < first["records"] < len(records), "SIGTERM should land mid-stream"

    r = run_monitor(env, tmp_path)
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout.splitlines()[-1])
    assert first["records"] + second["records"] == len(records)

    con = sqlite3.connect(db)
    counts = dict(con.execute("SELECT segment, records FROM segment_counts").fetchall())
    offsets = dict(
        ((p, o) for p, o in con.execute("SELECT partition, next_offset FROM offsets").fetchall())
    )
    con.close()
    expected = Counter(f"region={x['region']},cohort={x['cohort']}" for x in records)
    assert {k: v for k, v in counts.items() if k in expected} == dict(expected)
    assert counts["*"] == len(records)

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
    consumer.close()
    assert {tp.partition: off for tp, off in ends.items()} == offsets


@pytest.mark.parametrize(
    "crash_at", ["after-checkpoint", "signal-sent-unrecorded", "after-delivery-recorded"]
)
def test_killed_at_a_crash_point_every_signal_reaches_the_control_topic_repeats_keep_their_id(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path, crash_at: str
) -> None:
    """kill -9 in the batch that stores the first signal: right after its checkpoint
    (nothing produced yet), after the control topic acknowledged its signals but before the
    outbox marks them (sent, not recorded), or after they were produced and marked. After a
    restart every stored signal is on the control topic; only ``signal-sent-unrecorded``
    repeats — exactly the signals produced in that window, with the same signal id (key and
    header), so de-duplicating by id leaves exactly the stored set."""
    topic = make_topics(kafka_broker, kafka_topic)
    records = grid_stream(1000, shift_segment=SHIFTED, shift_at=600, shift=2.5)
    produce(kafka_broker, topic, keyed(records))
    # the control topic is the only signal sink: the crash point fires after it
    env = monitor_env(kafka_broker, tmp_path, topic, DRIFTGATE_SIGNALS__STDOUT="false")
    db = tmp_path / "history.db"

    # Crash right at the batch that stores the first signal.
    crashed = run_monitor(
        {
            **env,
            "DRIFTGATE_FAULTS__CRASH_AT": crash_at,
            "DRIFTGATE_FAULTS__CRASH_ON_SIGNAL": "true",
        },
        tmp_path,
    )
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    con = sqlite3.connect(db)
    stored = {r[0] for r in con.execute("SELECT id FROM signals")}
    unmarked = {
        r[0] for r in con.execute("SELECT signal_id FROM outbox WHERE delivered_at IS NULL")
    }
    con.close()
    assert stored, "the crashed batch had stored its signals"
    before = [orjson.loads(m.value)["id"] for m in read_all(kafka_broker, f"{topic}.control")]
    if crash_at == "after-checkpoint":
        assert before == [], "nothing stored by the crashed batch was delivered yet"
        assert unmarked == stored
    elif crash_at == "signal-sent-unrecorded":
        assert sorted(before) == sorted(unmarked) == sorted(stored), "produced, not marked"
    else:
        assert sorted(before) == sorted(stored)
        assert unmarked == set()

    r = run_monitor(env, tmp_path)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    stored = {r[0] for r in con.execute("SELECT id FROM signals")}
    (pending,) = con.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()
    (counted,) = con.execute("SELECT records FROM segment_counts WHERE segment='*'").fetchone()
    con.close()
    messages = read_all(kafka_broker, f"{topic}.control")
    delivered = [orjson.loads(m.value)["id"] for m in messages]
    assert all(
        dict(m.headers)["driftgate-signal-id"].decode() == i
        for m, i in zip(messages, delivered, strict=True)
    )
    assert set(delivered) == stored, "every stored signal reached the control topic"
    assert pending == 0
    assert counted == len(records), "no record lost or counted twice across the crashes"
    repeated = sorted(i for i, n in Counter(delivered).items() if n > 1)
    assert max(Counter(delivered).values()) <= 2
    expected = sorted(before) if crash_at == "signal-sent-unrecorded" else []
    assert repeated == expected, "only what was sent but not recorded is sent again"


def test_lifecycle_reaches_kafka_controllers_firing_then_resolved_after_a_person_resumes(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    """A `kind: kafka` receiver carries the lifecycle: the HALT fires; after a person
    acknowledges and resumes it (CLI), the next monitor run tells the topic it is resolved."""
    topic = make_topics(kafka_broker, kafka_topic)
    kafka_broker.create_topic(f"{topic}.lifecycle", partitions=1)
    produce(kafka_broker, topic, keyed(grid_stream(1000, shift_segment=SHIFTED, shift_at=600)))
    receivers = [{"name": "controllers", "kind": "kafka", "topic": f"{topic}.lifecycle"}]
    env = monitor_env(
        kafka_broker,
        tmp_path,
        topic,
        DRIFTGATE_ROUTER__RECEIVERS=json.dumps(receivers),
        DRIFTGATE_ROUTER__ROUTE=json.dumps({"receiver": "controllers", "group_by": ["segment"]}),
    )
    r = run_monitor(env, tmp_path)
    assert r.returncode == 0, r.stderr
    first = [orjson.loads(m.value) for m in read_all(kafka_broker, f"{topic}.lifecycle")]
    # one page per root cause: the segment that halted first (the roll-ups that echo it are
    # explained by it, or it is inhibited by a broader HALT raised before it)
    leaf = first[0]["group_labels"]["segment"]
    assert leaf in {"region=eu-west,cohort=pro", "region=eu-west", "cohort=pro"}
    fired = [n for n in first if n["group_labels"].get("segment") == leaf]
    assert [n["status"] for n in fired] == ["firing"]
    assert fired[0]["schema_version"] == 1
    assert fired[0]["alerts"][0]["labels"]["severity"] == "critical"

    db = str(tmp_path / "history.db")
    signal_id = fired[0]["alerts"][0]["id"]
    for verb in ("ack", "resume"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "monitor",
                verb,
                signal_id,
                "--by",
                "sre-ana",
                "--comment",
                "rolled back the prompt template",
                "--db",
                db,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    again = run_monitor(env, tmp_path)  # no new records: a router pass at start, then idle exit
    assert again.returncode == 0, again.stderr
    msgs = read_all(kafka_broker, f"{topic}.lifecycle")
    later = [orjson.loads(m.value) for m in msgs][len(first) :]
    statuses = [n["status"] for n in later if n["group_labels"].get("segment") == leaf]
    assert "resolved" in statuses
    ids = [dict(m.headers)["driftgate-notification-id"] for m in msgs]
    assert len(ids) == len(set(ids)), "no notification produced twice"
    assert all(m.key.decode().startswith("controllers:") for m in msgs)


def test_a_missing_control_topic_is_one_line_at_start_not_a_stall_per_batch(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    """A producer waits a minute for a topic that does not exist, at every batch: refuse
    to start instead, naming the setting."""
    topic = make_topics(kafka_broker, kafka_topic)
    env = monitor_env(
        kafka_broker, tmp_path, topic, DRIFTGATE_SIGNALS__CONTROL_TOPIC=f"{topic}.nowhere"
    )
    started = time.monotonic()
    r = run_monitor(env, tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    said = " ".join(r.stderr.split())  # the console may wrap a long line
    assert said.count("error:") == 1, r.stderr
    assert f"signals.control_topic '{topic}.nowhere'" in said
    assert time.monotonic() - started < 60, "no minute-long wait for the topic's metadata"
