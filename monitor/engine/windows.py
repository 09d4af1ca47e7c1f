"""Event-time windows of the roll-ups: summarised by each member, merged and closed by one.

Every record a roll-up watches (a region, a cohort, the whole fleet) is summarised into the
tumbling window of its *event time*, ``[start, start + window)``, per roll-up scope and
signal (:class:`detectors.window.Summary`: count and moments, or category counts). Two
roles, in every process:

* **every member** (:class:`WindowStage`) summarises its batch's records per (scope, window,
  input partition) into a :class:`Part`, and keeps each partition's **watermark** (the
  latest event time it delivered). Parts and watermarks are checkpointed with the
  partition's offsets, so they are exactly-once like everything else a batch writes;
* **the judge** (:class:`WindowJudge`; in a fleet the member that holds the lowest input
  partition, so a rebalance moves the role with it and the fence covers it) closes a window
  once the lowest watermark over the live partitions has passed its end by
  ``allowed_lateness``, merges the window's parts from every member and hands the merged
  window to the roll-up detectors (``monitor.engine.rollup``).

A partition is *live* if its owner checkpointed records of it within ``idle`` of wall-clock
time (one known but not heard from yet holds windows for ``idle`` from when the judge first
saw it); when none is live, what has arrived is all there is and the watermark is the
lowest of all.

**Late records.** A record is late when its window has closed, or when its own partition's
watermark has already passed the window's end by ``allowed_lateness`` (so whether a record
is late depends only on its partition's order, never on how fast other partitions or
members go). A late record is counted (``late`` in the run summary and the history), used by
its leaf segment and kept out of the roll-ups; parts that reach the judge after their window
closed (a partition that was idle, or a member that had not heard of the closing yet) are
counted late by the judge the same way.

So a closed window holds the same records however Kafka spread them over partitions,
however it interleaved the partitions' blocks and however many members read them, as long
as no partition went idle: a roll-up's decisions depend on event time only. The price is
delay: a roll-up hears of a window ``window + allowed_lateness`` of event time after it
opened, at the earliest, plus the time the slowest partition (and, in a fleet, its owner's
next checkpoint) takes to get there.

The window that closes reports its completing record: of the records in it, the one with
the latest event time (ties: the highest position), which is where roll-up drift events
and signals point (``Position``: input topic, partition, offset, or file line).

>>> from monitor.events import Position
>>> from monitor.segments import Segment
>>> from detectors import SignalKind
>>> g = Segment("*", "global", {})
>>> stage, judge = WindowStage(1000, lateness_ms=0), WindowJudge(1000, 0, idle_ms=60_000)
>>> for i, ts in enumerate([100, 900, 1500, 2100]):
...     stage.heard(("t", 0), ts)
...     _ = stage.add([g], [("latency_ms", 10.0 * i, SignalKind.NUMERIC)], ts, Position("t", 0, i))
>>> parts = stage.drain()
>>> closed, consumed, late = judge.judge(parts, stage.marks_of({("t", 0)}, 0), {("t", 0)}, 0)
>>> [(w.start_ms, w.summaries["latency_ms"].n, w.last_position.offset) for w in closed]
[(0, 2, 1), (1000, 1, 2)]
>>> stage.closed_to = judge.closed_to
>>> stage.add([g], [("latency_ms", 1.0, SignalKind.NUMERIC)], 800, Position("t", 0, 4)), stage.late
(False, 1)
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from detectors import SignalKind
from detectors.window import Summary
from monitor.events import Position
from monitor.observe import Observation
from monitor.segments import Segment
from monitor.store import WindowPart

__all__ = ["ClosedWindow", "Part", "WindowJudge", "WindowStage"]

_NEVER = -(2**62)
PartitionKey = tuple[str, int]
Marks = Mapping[PartitionKey, tuple[int, int]]  # partition -> (watermark, wall ms heard)


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One roll-up scope's summaries of one closed event-time window."""

    segment: Segment
    start_ms: int
    end_ms: int
    summaries: dict[str, Summary]
    kinds: dict[str, SignalKind]
    last_ts_ms: int
    last_position: Position


@dataclass(slots=True)
class Part:
    """One batch's records of one input partition in one (roll-up scope, window)."""

    segment: Segment
    start_ms: int
    source: str
    partition: int
    first_offset: int
    records: int = 0
    summaries: dict[str, Summary] = field(default_factory=dict)
    kinds: dict[str, SignalKind] = field(default_factory=dict)
    last: tuple[int, Position] | None = None

    @property
    def key(self) -> tuple[str, int, str, int, int]:
        return (self.segment.key, self.start_ms, self.source, self.partition, self.first_offset)

    def to_row(self) -> WindowPart:
        blob = pickle.dumps(
            (self.segment, self.summaries, self.kinds, self.last), protocol=pickle.HIGHEST_PROTOCOL
        )
        return WindowPart(*self.key, self.records, blob)

    @classmethod
    def from_row(cls, row: WindowPart) -> Part:
        segment, summaries, kinds, last = pickle.loads(row.blob)
        return cls(
            segment,
            row.start_ms,
            row.source,
            row.partition,
            row.first_offset,
            row.records,
            summaries,
            kinds,
            last,
        )


@dataclass(slots=True)
class _Pending:
    """A part being filled by the batch in hand: values not yet summarised."""

    part: Part
    values: dict[str, list[float | str]] = field(default_factory=dict)


class WindowStage:
    """A member's side: its partitions' watermarks, the batch's parts, the late count.

    ``closed_to`` is what this member knows of the judge's progress (windows ending at or
    before it have closed); a record for such a window is late.
    """

    def __init__(self, width_ms: int, lateness_ms: int) -> None:
        if width_ms < 1:
            raise ValueError(f"window width must be >= 1 ms, got {width_ms}")
        self.width_ms = width_ms
        self.lateness_ms = lateness_ms
        self.marks: dict[PartitionKey, int] = {}  # partition -> latest event time
        self.closed_to = _NEVER
        self.late = 0
        self._pending: dict[tuple[int, str, PartitionKey], _Pending] = {}
        self._heard: set[PartitionKey] = set()  # partitions heard from in the batch in hand

    def heard(self, partition: PartitionKey, ts_ms: int) -> None:
        """A record of ``partition`` with event time ``ts_ms`` arrived (good or late)."""
        if ts_ms > self.marks.get(partition, _NEVER):
            self.marks[partition] = ts_ms
        self._heard.add(partition)

    def is_late(self, ts_ms: int, partition: PartitionKey | None = None) -> bool:
        """Has the window of ``ts_ms`` closed, or has ``partition``'s own watermark passed its
        end by the allowed lateness?"""
        end = self._start(ts_ms) + self.width_ms
        if end <= self.closed_to:
            return True
        mark = self.marks.get(partition, _NEVER) if partition is not None else _NEVER
        return end + self.lateness_ms <= mark

    def add(
        self, segments: list[Segment], obs: list[Observation], ts_ms: int, pos: Position
    ) -> bool:
        """Add one record's observations to its window in each roll-up scope of
        ``segments``; False (and counted late) when that window is closed for it."""
        partition = (pos.source, pos.partition)
        if self.is_late(ts_ms, partition):
            self.late += 1
            return False
        start = self._start(ts_ms)
        mark = (ts_ms, pos)
        for seg in segments:
            key = (start, seg.key, partition)
            w = self._pending.get(key)
            if w is None:
                w = self._pending[key] = _Pending(
                    Part(seg, start, pos.source, pos.partition, pos.offset)
                )
            part = w.part
            part.records += 1
            part.first_offset = min(part.first_offset, pos.offset)
            if part.last is None or mark > part.last:
                part.last = mark
            for name, x, kind in obs:
                vals = w.values.get(name)
                if vals is None:
                    vals = w.values[name] = []
                    part.kinds.setdefault(name, kind)
                vals.append(x)
        return True

    def drain(self) -> list[Part]:
        """The batch's parts, summarised (in key order); the stage starts the next batch."""
        out = []
        for key in sorted(self._pending):
            w = self._pending[key]
            for name, vals in w.values.items():
                if w.part.kinds[name] is SignalKind.CATEGORY:
                    w.part.summaries[name] = Summary.of_categories(str(v) for v in vals)
                else:
                    w.part.summaries[name] = Summary.of(np.asarray(vals, dtype=np.float64))
            out.append(w.part)
        self._pending.clear()
        return out

    def marks_of(
        self, partitions: Iterable[PartitionKey], now_ms: int
    ) -> dict[PartitionKey, tuple[int, int]]:
        """The watermarks of ``partitions`` heard from in this batch, heard at ``now_ms``
        (what the batch's checkpoint writes next to their offsets); resets the batch."""
        heard, self._heard = self._heard, set()
        return {p: (self.marks[p], now_ms) for p in partitions if p in heard and p in self.marks}

    def _start(self, ts_ms: int) -> int:
        return ts_ms - ts_ms % self.width_ms


class WindowJudge:
    """Closes windows by watermark and merges their parts (state: ``closed_to`` and when
    each partition without a watermark was first seen; checkpointed by the judge)."""

    def __init__(self, width_ms: int, lateness_ms: int, idle_ms: int) -> None:
        if width_ms < 1:
            raise ValueError(f"window width must be >= 1 ms, got {width_ms}")
        self.width_ms = width_ms
        self.lateness_ms = lateness_ms
        self.idle_ms = idle_ms
        self.closed_to = _NEVER  # windows ending at or before this have closed
        self._first_seen: dict[PartitionKey, int] = {}

    def watermark(
        self, marks: Marks, partitions: Iterable[PartitionKey], now_ms: int
    ) -> int | None:
        """The event time every live partition has reached (None: not known yet)."""
        parts = set(partitions) | set(marks)
        if not parts:
            return None
        for p in parts - set(marks):
            self._first_seen.setdefault(p, now_ms)

        def heard(p: PartitionKey) -> int:
            return marks[p][1] if p in marks else self._first_seen[p]

        live = {p for p in parts if now_ms - heard(p) < self.idle_ms}
        if not live:  # everyone idle: what has arrived is all there is for now
            live = set(marks)
        if not live or any(p not in marks for p in live):
            return None
        return min(marks[p][0] for p in live)

    def advance(self, marks: Marks, partitions: Iterable[PartitionKey], now_ms: int) -> int:
        """Move ``closed_to`` to the last window boundary the watermark minus the allowed
        lateness passed; the new ``closed_to``."""
        mark = self.watermark(marks, partitions, now_ms)
        if mark is not None:
            bound = mark - self.lateness_ms
            if bound > self.closed_to:
                self.closed_to = max(self.closed_to, bound - bound % self.width_ms)
        return self.closed_to

    def close_all(self, parts: Iterable[Part]) -> int:
        """Close every window (the input has ended: a file read to its end)."""
        starts = [p.start_ms for p in parts]
        if starts:
            self.closed_to = max(self.closed_to, max(starts) + self.width_ms)
        return self.closed_to

    def collect(
        self, parts: Iterable[Part], closed_before: int
    ) -> tuple[list[ClosedWindow], list[Part], int]:
        """Of ``parts``, merge those of windows closed now (ending after ``closed_before``,
        at or before ``closed_to``) into closed windows, in (window, scope) order; parts of
        windows that had closed before are late. Returns (closed windows, every part used
        up: merged or late, the late records)."""
        groups: dict[tuple[int, str], list[Part]] = {}
        consumed: list[Part] = []
        late = 0
        for p in parts:
            end = p.start_ms + self.width_ms
            if end > self.closed_to:
                continue
            consumed.append(p)
            if end <= closed_before:
                late += p.records
            else:
                groups.setdefault((p.start_ms, p.segment.key), []).append(p)
        out = []
        for start, scope in sorted(groups):
            members = sorted(groups[(start, scope)], key=lambda p: p.key)
            summaries: dict[str, Summary] = {}
            kinds: dict[str, SignalKind] = {}
            last: tuple[int, Position] | None = None
            for p in members:
                for name, s in p.summaries.items():
                    have = summaries.get(name)
                    if have is None:
                        summaries[name] = Summary().merged(s)
                        kinds[name] = p.kinds[name]
                    else:
                        have.merge(s)
                if p.last is not None and (last is None or p.last > last):
                    last = p.last
            if last is None:
                continue
            out.append(
                ClosedWindow(
                    members[0].segment,
                    start,
                    start + self.width_ms,
                    summaries,
                    kinds,
                    last[0],
                    last[1],
                )
            )
        return out, consumed, late

    def judge(
        self,
        parts: list[Part],
        marks: Marks,
        partitions: Iterable[PartitionKey],
        now_ms: int,
        *,
        final: bool = False,
    ) -> tuple[list[ClosedWindow], list[Part], int]:
        """:meth:`advance` (or :meth:`close_all` when ``final``), then :meth:`collect`."""
        before = self.closed_to
        if final:
            self.close_all(parts)
        else:
            self.advance(marks, partitions, now_ms)
        return self.collect(parts, before)
