"""Dead letters to a Kafka topic (the Kafka source's dead-letter sink).

Value: the JSON envelope (:meth:`~monitor.sinks.base.DeadLetter.as_dict`: reason, source
position, raw record and key as text or base64). Key: the original record's key (none when
it had none). Headers: ``driftgate-reason`` (its first 200 characters).
"""

from __future__ import annotations

from typing import Any

import orjson
from kafka.errors import KafkaError

from monitor.errors import SinkError
from monitor.sinks.base import DeadLetter

__all__ = ["KafkaDeadLetters"]


class KafkaDeadLetters:
    """Sends letters as they come; :meth:`flush` waits until the broker has them all."""

    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0) -> None:
        self.topic = topic
        self._producer = producer
        self._timeout_s = timeout_s
        self._futures: list[Any] = []

    def add(self, letter: DeadLetter) -> None:
        try:
            self._futures.append(
                self._producer.send(
                    self.topic,
                    key=letter.key,
                    value=orjson.dumps(letter.as_dict()),
                    headers=[("driftgate-reason", letter.reason[:200].encode())],
                )
            )
        except KafkaError as exc:
            raise SinkError(f"cannot send to dead-letter topic {self.topic!r}: {exc}") from None

    def flush(self) -> None:
        if not self._futures:
            return
        try:
            self._producer.flush(timeout=self._timeout_s)
            for fut in self._futures:
                fut.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise SinkError(
                f"dead-letter topic {self.topic!r} did not acknowledge: {type(exc).__name__}: {exc}"
            ) from None
        self._futures.clear()

    def close(self) -> None:
        self.flush()
