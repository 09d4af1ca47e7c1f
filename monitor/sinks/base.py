"""The two sink contracts, and their in-memory implementations used by tests and the demo.

**SignalSink** — receives scaling-halt signals from the outbox.
``deliver(signals)`` is called after the checkpoint that stored them has committed, with the
signals still pending for this sink, oldest first. It returns only when every signal is
durably handed over, and raises :class:`~monitor.errors.SinkError` otherwise; the signals
then stay pending and are delivered again on the next batch or the next start. ``close()``
is called once at shutdown.

**DeadLetterSink** — receives records that could not be used.
``add(letter)`` is called for each bad record while a batch is processed; ``flush()`` is
called before the batch's checkpoint commits and returns only when every letter is durable,
so a bad record is never lost (a crash before the commit can repeat a letter, never drop it).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.events import Position, Signal

__all__ = ["DeadLetter", "DeadLetterSink", "MemoryDeadLetters", "MemorySink", "SignalSink"]


class SignalSink(Protocol):
    name: str

    def deliver(self, signals: list[Signal]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with why and where it came from.

    ``key`` is the original Kafka message key (None for files, the demo and keyless
    messages); the Kafka dead-letter sink sends it as the letter's key.

    >>> from monitor.events import Position
    >>> letter = DeadLetter(b'{"a"', "invalid JSON", Position("logs", 0, 7), b"eu|free", 0)
    >>> letter.as_dict()
    {'reason': 'invalid JSON', 'position': {'topic': 'logs', 'partition': 0, 'offset': 7}, \
'failed_at_ms': 0, 'raw': '{"a"', 'key': 'eu|free'}
    """

    raw: bytes
    reason: str
    position: Position
    key: bytes | None = None
    failed_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready envelope: the raw record (and key) as text, or base64 when not UTF-8."""
        out: dict[str, Any] = {
            "reason": self.reason,
            "position": self.position.as_dict(),
            "failed_at_ms": self.failed_at_ms,
        }
        _put(out, "raw", self.raw)
        if self.key is None:
            out["key"] = None
        else:
            _put(out, "key", self.key)
        return out


def _put(out: dict[str, Any], name: str, data: bytes) -> None:
    try:
        out[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        out[name + "_base64"] = base64.b64encode(data).decode("ascii")


class DeadLetterSink(Protocol):
    def add(self, letter: DeadLetter) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps delivered signals in a list. ``fail`` makes ``deliver`` raise (for tests)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.signals: list[Signal] = []
        self.fail = False

    def deliver(self, signals: list[Signal]) -> None:
        if self.fail:
            from monitor.errors import SinkError

            raise SinkError(f"sink {self.name} is failing (test switch)")
        self.signals.extend(signals)

    def close(self) -> None:
        pass


class MemoryDeadLetters:
    """Keeps dead letters in a list."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.flushed = 0

    def add(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def flush(self) -> None:
        self.flushed = len(self.letters)

    def close(self) -> None:
        pass
