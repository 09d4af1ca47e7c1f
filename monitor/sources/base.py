"""The source contract and an in-memory source.

The pipeline calls, in order:

1. ``resume(offsets)`` once, with the next offset per (source, partition) from the history
   store; a source starts there instead of its own idea of the start;
2. ``poll(max_records)`` in a loop; it returns at most ``max_records`` raw records (possibly
   none, when nothing arrived within the source's poll timeout);
   Records whose ``position.source`` is in ``label_sources`` are delayed labels;
3. ``commit(offsets)`` after each checkpoint has committed, with the next offsets of the batch
   (Kafka mirrors them into the consumer group; files and the demo need nothing);
4. ``close()`` once.

``exhausted`` turns true when the source can never yield more (end of file, end of demo);
a Kafka source never exhausts. ``progress`` / ``total`` drive the progress bar (bytes or
records; ``total`` is None when unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from monitor.events import Position

__all__ = ["ListSource", "RawRecord", "Source"]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """Undecoded bytes of one record, where they came from and their Kafka key (if any)."""

    value: bytes
    position: Position
    key: bytes | None = None


class Source(Protocol):
    name: str
    #: ``Position.source`` values whose records are delayed labels, not inference logs.
    label_sources: set[str]

    @property
    def exhausted(self) -> bool: ...

    @property
    def progress(self) -> int: ...

    @property
    def total(self) -> int | None: ...

    def resume(self, offsets: dict[tuple[str, int], int]) -> None: ...

    def poll(self, max_records: int) -> list[RawRecord]: ...

    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...

    def close(self) -> None: ...


class ListSource:
    """Serves records from a list (tests); positions are ``name`` partition 0, offsets 1…n.

    >>> src = ListSource([b'{"a": 1}', b'oops'], name="mem")
    >>> [r.position.offset for r in src.poll(10)], src.exhausted
    ([1, 2], True)
    """

    def __init__(self, values: Iterable[bytes], name: str = "memory") -> None:
        self.name = name
        self.label_sources: set[str] = set()
        self._values = list(values)
        self._next = 0

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self._values)

    @property
    def progress(self) -> int:
        return self._next

    @property
    def total(self) -> int | None:
        return len(self._values)

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        nxt = offsets.get((self.name, 0))
        if nxt is not None:
            self._next = nxt - 1

    def poll(self, max_records: int) -> list[RawRecord]:
        chunk = self._values[self._next : self._next + max_records]
        start = self._next
        self._next += len(chunk)
        return [RawRecord(v, Position(self.name, 0, start + i + 1)) for i, v in enumerate(chunk)]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        pass
