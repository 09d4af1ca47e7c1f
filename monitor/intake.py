"""Intake: one raw record → a record that is safe to observe, or the reason it is not.

Two checks, in this order:

1. the schema (:mod:`monitor.schema`): size, JSON, one type per field, finite and bounded
   numbers, timestamps between 1970-01-01 and 9999-12-31;
2. the wall clock: a timestamp more than ``max_future_ms`` ahead of :attr:`Intake.clock` is
   refused as "timestamp in the future". Event time only moves forward (the label join's
   watermark, the auto-resolve clock), so one record from year 9999 would otherwise expire
   every prediction still waiting for its label and hold that clock in year 9999 for ever.

Both raise :class:`~monitor.schema.BadRecord`; the pipeline dead-letters the record with
``reason`` and goes on.

>>> now = 1_795_392_000_000  # 2026-11-23T00:00:00Z
>>> intake = Intake(max_future_ms=86_400_000, clock=lambda: now)
>>> intake.label(b'{"request_id": "r1", "timestamp": "2026-11-23T01:00:00Z", "label": 1}').ts_ms
1795395600000
>>> intake.label(b'{"request_id": "r1", "timestamp": "9999-01-01T00:00:00Z", "label": 1}')
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
monitor.schema.BadRecord: timestamp in the future: 9999-01-01T00:00:00.000Z is 7972 years ahead ...
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from monitor.config import SourceSettings
from monitor.schema import (
    EPOCH,
    BadRecord,
    InferenceLog,
    LabelRecord,
    parse_label,
    parse_record,
)

__all__ = ["Intake", "wall_clock_ms"]

_YEAR_MS = 365.25 * 86_400_000


def wall_clock_ms() -> int:
    """The wall clock in epoch milliseconds (the default clock of :class:`Intake`)."""
    return int(time.time() * 1000)


def _ahead(ms: int) -> str:
    """A distance in time, in the unit that reads best."""
    if ms >= _YEAR_MS:
        return f"{ms / _YEAR_MS:.0f} years"
    if ms >= 86_400_000:
        return f"{ms / 86_400_000:.1f} days"
    return f"{ms / 1000:.0f} s"


class Intake:
    """Parses, validates and time-checks raw records (``clock``: epoch ms, injectable)."""

    def __init__(
        self,
        *,
        max_bytes: int = 1_048_576,
        max_future_ms: int = 86_400_000,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if max_future_ms <= 0:
            raise ValueError(f"max_future_ms must be > 0, got {max_future_ms}")
        self.max_bytes = max_bytes
        self.max_future_ms = max_future_ms
        self.clock = clock

    @classmethod
    def from_settings(
        cls, source: SourceSettings, clock: Callable[[], int] = wall_clock_ms
    ) -> Intake:
        """The intake ``source.max_record_bytes`` and ``source.max_future_s`` describe."""
        return cls(
            max_bytes=source.max_record_bytes,
            max_future_ms=int(source.max_future_s * 1000),
            clock=clock,
        )

    def record(self, raw: bytes) -> InferenceLog:
        """An inference log that is safe to observe; :class:`BadRecord` otherwise."""
        rec = parse_record(raw, self.max_bytes)
        self._check_time(rec.ts_ms)
        return rec

    def label(self, raw: bytes) -> LabelRecord:
        """A label record that is safe to join; :class:`BadRecord` otherwise."""
        label = parse_label(raw, self.max_bytes)
        self._check_time(label.ts_ms)
        return label

    def _check_time(self, ts_ms: int) -> None:
        ahead = ts_ms - self.clock()
        if ahead > self.max_future_ms:
            when = (EPOCH + timedelta(milliseconds=ts_ms)).isoformat(timespec="milliseconds")
            raise BadRecord(
                f"timestamp in the future: {when.replace('+00:00', 'Z')} is {_ahead(ahead)} "
                f"ahead of the monitor's clock (limit source.max_future_s = "
                f"{self.max_future_ms / 1000:g} s); fix the producer's clock or timestamp unit"
            )
