"""Signals to the Kafka control topic: JSON, keyed by scope, idempotent producer.

Message value: the signal as JSON (``kind`` is WARN or HALT, ``id`` is deterministic), plus
``schema_version``. Key: the scope key (``region=eu-west,cohort=free``), so every signal of
a scope lands on one partition in order. Headers: ``driftgate-signal-id``, ``driftgate-kind``.
"""

from __future__ import annotations

from typing import Any

import orjson
from kafka.errors import KafkaError

from monitor.errors import SinkError
from monitor.events import Signal

__all__ = ["CONTROL_SCHEMA_VERSION", "KafkaControlSink"]

CONTROL_SCHEMA_VERSION = 1


class KafkaControlSink:
    """Produces each signal and waits for the broker's acknowledgement."""

    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0) -> None:
        self.name = "kafka-control"
        self.topic = topic
        self._producer = producer
        self._timeout_s = timeout_s

    def deliver(self, signals: list[Signal]) -> None:
        try:
            futures = []
            for s in signals:
                body = s.as_dict() | {"schema_version": CONTROL_SCHEMA_VERSION}
                futures.append(
                    self._producer.send(
                        self.topic,
                        key=s.segment.encode(),
                        value=orjson.dumps(body),
                        headers=[
                            ("driftgate-signal-id", s.id.encode()),
                            ("driftgate-kind", s.level.value.encode()),
                        ],
                    )
                )
            self._producer.flush(timeout=self._timeout_s)
            for fut in futures:
                fut.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise SinkError(
                f"cannot deliver signals to control topic {self.topic!r}: "
                f"{type(exc).__name__}: {exc} (signals stay pending and are retried)"
            ) from None

    def close(self) -> None:
        self._producer.close(timeout=5)
