"""The real-Kafka harness itself: produce/consume through a group, and a broker restart."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tests.kafka_broker import KafkaBroker, TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

N_RECORDS = 100
PARTITIONS = 3


def produce_json(bootstrap: str, topic: str, n: int = N_RECORDS) -> None:
    """Send ``n`` keyed JSON records ``{"id": i}`` and wait until every one is acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        futures = [
            producer.send(
                topic,
                key=f"key-{i}".encode(),
                value=json.dumps({"id": i, "payload": f"value-{i}"}).encode(),
            )
            for i in range(n)
        ]
        producer.flush(timeout=30)
        for fut in futures:
            fut.get(timeout=30)
    finally:
        producer.close(timeout=10)


@contextmanager
def group_consumer(bootstrap: str, topic: str, group_id: str) -> Iterator[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        reconnect_backoff_max_ms=1000,
    )
    try:
        yield consumer
    finally:
        consumer.close(autocommit=False, timeout_ms=5000)


def consume(
    consumer: Any, want: int, deadline_s: float = 30.0, max_records: int | None = None
) -> list[Any]:
    """Poll until at least ``want`` records arrived (or fail after ``deadline_s``)."""
    records: list[Any] = []
    deadline = time.monotonic() + deadline_s
    while len(records) < want:
        assert time.monotonic() < deadline, f"got {len(records)}/{want} records in {deadline_s} s"
        for batch in consumer.poll(timeout_ms=500, max_records=max_records).values():
            records.extend(batch)
    return records


def ids(records: list[Any]) -> list[int]:
    return [int(json.loads(r.value)["id"]) for r in records]


def test_produce_and_consume_through_a_group(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory
) -> None:
    topic = kafka_topic(PARTITIONS)
    produce_json(kafka_broker.bootstrap, topic)

    with group_consumer(kafka_broker.bootstrap, topic, f"g-{uuid.uuid4().hex}") as consumer:
        records = consume(consumer, N_RECORDS)
        # Nothing beyond the 100 (no duplicates delivered).
        records.extend(r for b in consumer.poll(timeout_ms=500).values() for r in b)

    got = ids(records)
    assert len(got) == N_RECORDS
    assert set(got) == set(range(N_RECORDS))
    assert {r.partition for r in records} == set(range(PARTITIONS)), "keys should spread"
    for r in records:
        assert r.key == f"key-{json.loads(r.value)['id']}".encode()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_committed_offsets_and_data_survive_restart(kill: bool) -> None:
    # Its own broker: a restart must not disturb the session broker other tests share.
    with KafkaBroker() as broker:
        topic = "restart-topic"
        group = "restart-group"
        broker.create_topic(topic, partitions=PARTITIONS)
        produce_json(broker.bootstrap, topic)

        with group_consumer(broker.bootstrap, topic, group) as consumer:
            first = consume(consumer, 40, max_records=10)
            consumer.commit()
            committed_before = {
                tp: consumer.committed(tp) for tp in (TopicPartition(topic, p) for p in range(3))
            }
            # What we committed is exactly what we consumed, per partition (a partition with
            # nothing consumed yet commits its position 0, or nothing if it had none).
            for tp, offset in committed_before.items():
                consumed_here = [r.offset for r in first if r.partition == tp.partition]
                if consumed_here:
                    assert offset == max(consumed_here) + 1
                else:
                    assert offset in (0, None)

        bootstrap, pid = broker.bootstrap, broker.pid
        broker.restart(kill=kill)
        assert broker.is_running
        assert broker.bootstrap == bootstrap
        assert broker.pid != pid
        assert set(broker.admin().list_topics()) >= {topic}

        # Committed offsets survived: read them back through the admin client...
        offsets = broker.admin().list_group_offsets({group: None})[group]
        assert {tp: o.offset for tp, o in offsets.items()} == {
            tp: o for tp, o in committed_before.items() if o is not None
        }
        assert all(isinstance(o, OffsetAndMetadata) for o in offsets.values())

        # ...and the group resumes exactly after them: together that is every record once.
        with group_consumer(broker.bootstrap, topic, group) as consumer:
            rest = consume(consumer, N_RECORDS - len(first))
            rest.extend(r for b in consumer.poll(timeout_ms=500).values() for r in b)
        assert sorted(ids(first) + ids(rest)) == list(range(N_RECORDS))

        # The data itself survived: a fresh group reads all 100 records from the start.
        with group_consumer(broker.bootstrap, topic, f"fresh-{uuid.uuid4().hex}") as consumer:
            everything = consume(consumer, N_RECORDS)
        assert sorted(ids(everything)) == list(range(N_RECORDS))
