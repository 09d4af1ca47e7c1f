"""A router receiver (``kind: kafka``): notifications, lifecycle included, on a Kafka topic.

The control topic (``signals.control_topic``) carries each signal once, when it is raised.
A rollout controller that consumes Kafka also needs to know when a HALT is acknowledged,
lifted by a person or auto-resolved: this receiver produces every router notification —
``status`` firing or resolved, each alert with its ``state`` (firing, acknowledged,
resolved) — as one JSON message (``schema_version`` 1), keyed by the group key so a
group's notifications stay in order on one partition, with the notification id in the
``driftgate-notification-id`` header (the idempotency key: a consumer drops repeats).

The producer is idempotent (``acks=all``), built on the first notification from the
``source`` connection settings; an unreachable broker is a retryable delivery error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from kafka.errors import KafkaError

from monitor.errors import DriftgateError
from monitor.router.model import DeliveryError, Notification

__all__ = ["NOTIFICATION_SCHEMA_VERSION", "KafkaNotifier"]

NOTIFICATION_SCHEMA_VERSION = 1


class KafkaNotifier:
    """Produces each notification to ``topic`` and waits for the broker's acknowledgement."""

    def __init__(
        self,
        name: str,
        topic: str,
        producer_factory: Callable[[], Any],
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.topic = topic
        self._factory = producer_factory
        self._producer: Any = None
        self._timeout_s = timeout_s

    def notify(self, n: Notification) -> None:
        body = {"schema_version": NOTIFICATION_SCHEMA_VERSION, **n.as_dict()}
        try:
            if self._producer is None:
                self._producer = self._factory()
            fut = self._producer.send(
                self.topic,
                key=n.group_key.encode(),
                value=orjson.dumps(body),
                headers=[
                    ("driftgate-notification-id", n.id.encode()),
                    ("driftgate-status", n.status.encode()),
                ],
            )
            self._producer.flush(timeout=self._timeout_s)
            fut.get(timeout=self._timeout_s)
        except (KafkaError, DriftgateError) as exc:
            raise DeliveryError(
                f"receiver {self.name!r}: cannot produce to topic {self.topic!r}: "
                f"{type(exc).__name__}: {exc} (retried with back-off)",
                retryable=True,
            ) from None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
