"""Two file sources merged in event-time order: inference logs plus delayed labels.

Each file is assumed to be in time order (as logs are written); the merge yields whichever
head record is older, so a label never arrives before the prediction it judges. A record
whose timestamp cannot be read, is out of range or too far in the future goes first (it
will be dead-lettered by the intake): it must not hold back the other file — a year-9999
head would otherwise let every label of the file pass before the predictions they judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import orjson

from monitor.intake import wall_clock_ms
from monitor.schema import timestamp_ms
from monitor.sources.base import RawRecord
from monitor.sources.file import FileSource

__all__ = ["MergedFileSource", "peek_ts_ms"]


def peek_ts_ms(raw: bytes, latest_ms: float = math.inf) -> float:
    """The record's timestamp in epoch ms, or -inf when it cannot be read or is after
    ``latest_ms``.

    >>> peek_ts_ms(b'{"timestamp": 1500}'), peek_ts_ms(b'{"timestamp": "1970-01-01T00:00:02Z"}')
    (1500.0, 2000.0)
    >>> peek_ts_ms(b'garbage'), peek_ts_ms(b'{"timestamp": 1e20}'), peek_ts_ms(b'[]')
    (-inf, -inf, -inf)
    >>> peek_ts_ms(b'{"timestamp": 5000}', latest_ms=4000)
    -inf
    """
    try:
        data = orjson.loads(raw)
        ts = float(timestamp_ms(data["timestamp"]))
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError):
        return -math.inf
    return ts if ts <= latest_ms else -math.inf


class _Head:
    def __init__(self, src: FileSource) -> None:
        self.src = src
        self.buf: list[RawRecord] = []
        self.i = 0

    def peek(self, chunk: int) -> RawRecord | None:
        if self.i >= len(self.buf):
            if self.src.exhausted:
                return None
            self.buf, self.i = self.src.poll(chunk), 0
            if not self.buf:
                return None
        return self.buf[self.i]


class MergedFileSource:
    """Event-time merge of an inference-log file and a labels file.

    ``max_future_ms`` and ``clock`` (epoch ms) are the intake's (``source.max_future_s``):
    records it will refuse as "in the future" are not waited for.
    """

    def __init__(
        self,
        main: FileSource,
        labels: FileSource,
        *,
        max_future_ms: int = 86_400_000,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.main, self.labels = main, labels
        self.max_future_ms = max_future_ms
        self.clock = clock
        self.name = main.name
        self.label_sources = {labels.name}
        self._heads = (_Head(main), _Head(labels))

    @property
    def exhausted(self) -> bool:
        return all(h.src.exhausted and h.i >= len(h.buf) for h in self._heads)

    @property
    def progress(self) -> int:
        return self.main.progress + self.labels.progress

    @property
    def total(self) -> int | None:
        a, b = self.main.total, self.labels.total
        return a + b if a is not None and b is not None else None

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        self.main.resume(offsets)
        self.labels.resume(offsets)

    def poll(self, max_records: int) -> list[RawRecord]:
        out: list[RawRecord] = []
        a, b = self._heads
        latest = self.clock() + self.max_future_ms
        while len(out) < max_records:
            ra, rb = a.peek(max_records), b.peek(max_records)
            if ra is None and rb is None:
                break
            if rb is None or (
                ra is not None and peek_ts_ms(ra.value, latest) <= peek_ts_ms(rb.value, latest)
            ):
                out.append(ra)  # type: ignore[arg-type]
                a.i += 1
            else:
                out.append(rb)
                b.i += 1
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        self.main.close()
        self.labels.close()
