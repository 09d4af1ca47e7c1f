"""Poison records on a real broker: the monitor consumes past every one of them.

The issue this guards: one record with a timestamp that overflows a datetime ended the
monitor; on Kafka it sat at the committed offset, so every restart died on it again.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.factories import grid_stream, record
from tests.hostile import Hostile, hostile_records
from tests.integration.test_monitor_kafka import make_topics, monitor_env, read_all, run_monitor
from tests.kafka_broker import KafkaBroker, TopicFactory

pytestmark = pytest.mark.kafka

Message = tuple[int, bytes | None, bytes]  # partition, key, value


def produce(broker: KafkaBroker, topic: str, messages: list[Message]) -> None:
    """Send in order, each to its partition (so offsets are known: per partition, 0, 1…)."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
    for partition, key, value in messages:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush(timeout=60)
    producer.close(timeout=10)


def poisoned_partitions(good: list[bytes], bad: list[Hostile]) -> list[Message]:
    """Good records over 3 partitions, poison at the first offset of partition 0 (the
    committed offset of a fresh group: the crash loop of the issue), in the middle of
    partition 1 and at the last offsets of partition 2, with the rest spread between."""
    lanes: list[list[tuple[bytes | None, bytes]]] = [[], [], []]
    for i, value in enumerate(good):
        lanes[i % 3].append((f"good-{i}".encode(), value))
    keyed = [(f"poison-{i}".encode() if i else None, h.raw) for i, h in enumerate(bad)]
    first, middle, last, rest = keyed[:2], keyed[2:4], keyed[4:6], keyed[6:]
    lanes[0][0:0] = first
    lanes[1][len(lanes[1]) // 2 : len(lanes[1]) // 2] = middle
    lanes[2].extend(last)
    for i, msg in enumerate(rest):
        lane = lanes[i % 3]
        lane.insert(1 + (i * 7) % (len(lane) - 1), msg)
    return [(p, k, v) for p, lane in enumerate(lanes) for k, v in lane]


def test_poison_at_several_offsets_is_dead_lettered_with_its_key_and_the_monitor_goes_on(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = make_topics(kafka_broker, kafka_topic)
    now = int(time.time() * 1000)
    catalogue = hostile_records(now)
    issue = next(h for h in catalogue if h.name == "timestamp overflows datetime")
    bad = [issue] + [h for h in catalogue if h is not issue and not h.after_good]
    good = [orjson.dumps(r) for r in grid_stream(40, seed=3)]
    messages = poisoned_partitions(good, bad)
    assert messages[0] == (0, None, issue.raw)  # the issue's record at offset 0
    produce(kafka_broker, topic, messages)

    env = monitor_env(kafka_broker, tmp_path, topic, DRIFTGATE_SOURCE__BATCH_SIZE="25")
    first = run_monitor(env, tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.splitlines()[-1])
    assert summary["status"] == "ok"
    assert summary["records"] == len(good)
    assert summary["dead_letters"] == len(bad)

    # A restart resumes after the poison, and a feature that changes its type later (the
    # kinds were checkpointed by the first run) is poison too; good records go on counting.
    later = [orjson.dumps(record(10_000 + i, region="us-east", cohort="pro")) for i in range(6)]
    changed = [h for h in catalogue if h.after_good]
    produce(
        kafka_broker,
        topic,
        [(0, b"good-later-0", later[0])]
        + [(1, f"typed-{i}".encode(), h.raw) for i, h in enumerate(changed)]
        + [(i % 3, f"good-later-{i}".encode(), v) for i, v in enumerate(later[1:], 1)],
    )
    second = run_monitor(env, tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout.splitlines()[-1])
    assert again["records"] == len(later)
    assert again["dead_letters"] == len(changed)

    sent = {v: k for _, k, v in messages}
    sent.update({h.raw: f"typed-{i}".encode() for i, h in enumerate(changed)})
    expected = {h.raw: h.reason for h in bad + changed}
    letters = read_all(kafka_broker, f"{topic}.dlq")
    assert len(letters) == len(expected)
    seen: set[bytes] = set()
    for m in letters:
        body = orjson.loads(m.value)
        # not UTF-8: carried as base64
        raw = body["raw"].encode() if "raw" in body else base64.b64decode(body["raw_base64"])
        assert raw in expected, body
        seen.add(raw)
        assert expected[raw] in body["reason"]
        assert m.key == sent[raw], "the dead letter keeps the original key"
        assert body["key"] == (sent[raw].decode() if sent[raw] is not None else None)
        assert dict(m.headers)["driftgate-reason"] == body["reason"][:200].encode()
        assert body["position"]["topic"] == topic
    assert seen == set(expected)

    # every partition consumed to its end: nothing is stuck on a poison record
    con = sqlite3.connect(tmp_path / "history.db")
    stored = dict(con.execute("SELECT partition, next_offset FROM offsets").fetchall())
    (star,) = con.execute("SELECT records FROM segment_counts WHERE segment='*'").fetchone()
    con.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
    consumer.close()
    assert stored == {tp.partition: off for tp, off in ends.items()}
    assert star == len(good) + len(later)
