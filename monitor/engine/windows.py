"""Event-time windows of the roll-ups, closed by watermark.

Every record a roll-up watches (a region, a cohort, the whole fleet) is summarised into the
tumbling window of its *event time*, ``[start, start + window)``, per roll-up scope and
signal (:class:`detectors.window.Summary`: count and moments, or category counts). A window
closes once the **watermark** has passed its end by ``allowed_lateness``:

* each input partition's watermark is the latest event time it delivered;
* the stage's watermark is the *lowest* of them over the partitions that are assigned and
  not idle (a partition that delivered nothing for ``idle`` of wall-clock time stops holding
  windows open; a partition assigned but not heard from yet holds them until then);
* a record whose window already closed is **late**: counted (:attr:`WindowStage.late`),
  used by its leaf segment, kept out of the roll-ups.

So a closed window holds the same records however Kafka spread them over partitions and
however it interleaved the partitions' blocks: a roll-up's decisions do not depend on the
layout, only on event time. The price is delay: a roll-up hears of a window ``window +
allowed_lateness`` of event time after it opened, at the earliest, plus the time the slowest
partition takes to get there.

The window that closes reports its completing record: of the records in it, the one with
the latest event time (ties: the highest position), which is where roll-up drift events
and signals point (``Position``: input topic, partition, offset, or file line).

>>> from monitor.events import Position
>>> from monitor.segments import Segment
>>> from detectors import SignalKind
>>> g = Segment("*", "global", {})
>>> st = WindowStage(width_ms=1000, lateness_ms=0, idle_ms=60_000)
>>> for i, ts in enumerate([100, 900, 1500, 2100]):
...     st.heard(("t", 0), ts, now_ms=0)
...     _ = st.add([g], [("latency_ms", 10.0 * i, SignalKind.NUMERIC)], ts, Position("t", 0, i))
>>> [(w.start_ms, w.summaries["latency_ms"].n, w.last_position.offset) for w in st.ready(0)]
[(0, 2, 1), (1000, 1, 2)]
>>> st.add([g], [("latency_ms", 1.0, SignalKind.NUMERIC)], 800, Position("t", 0, 4)), st.late
(False, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from detectors import SignalKind
from detectors.window import Summary
from monitor.events import Position
from monitor.observe import Observation
from monitor.segments import Segment

__all__ = ["ClosedWindow", "WindowStage"]

_NEVER = -(2**62)
PartitionKey = tuple[str, int]


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
class _Open:
    """A window of one scope still open: summaries + values of the batch not yet folded."""

    segment: Segment
    summaries: dict[str, Summary] = field(default_factory=dict)
    kinds: dict[str, SignalKind] = field(default_factory=dict)
    pending: dict[str, list[float | str]] = field(default_factory=dict)
    last: tuple[int, Position] | None = None


class WindowStage:
    """Open windows, per-partition watermarks and the late count (all checkpointed)."""

    def __init__(self, width_ms: int, lateness_ms: int, idle_ms: int) -> None:
        if width_ms < 1:
            raise ValueError(f"window width must be >= 1 ms, got {width_ms}")
        self.width_ms = width_ms
        self.lateness_ms = lateness_ms
        self.idle_ms = idle_ms
        self._open: dict[tuple[int, str], _Open] = {}
        self._marks: dict[PartitionKey, int] = {}  # partition -> latest event time
        self._heard: dict[PartitionKey, int] = {}  # partition -> wall ms it last delivered
        self._assigned: set[PartitionKey] = set()
        self.closed_to = _NEVER  # windows ending at or before this have closed
        self.late = 0

    # -- input --------------------------------------------------------------------------------

    def assign(self, partitions: Iterable[PartitionKey], now_ms: int) -> None:
        """The partitions the source holds now; new ones may hold windows for ``idle``."""
        parts = set(partitions)
        for p in parts - self._assigned:
            self._heard.setdefault(p, now_ms)
        self._assigned = parts

    def heard(self, partition: PartitionKey, ts_ms: int, now_ms: int) -> None:
        """A record of ``partition`` with event time ``ts_ms`` arrived (good or late)."""
        if ts_ms > self._marks.get(partition, _NEVER):
            self._marks[partition] = ts_ms
        self._heard[partition] = now_ms

    def is_late(self, ts_ms: int) -> bool:
        return self._start(ts_ms) + self.width_ms <= self.closed_to

    def add(
        self, segments: list[Segment], obs: list[Observation], ts_ms: int, pos: Position
    ) -> bool:
        """Add one record's observations to its window in each roll-up scope of
        ``segments``; False (and counted late) when that window has closed already."""
        if self.is_late(ts_ms):
            self.late += 1
            return False
        start = self._start(ts_ms)
        mark = (ts_ms, pos)
        for seg in segments:
            w = self._open.get((start, seg.key))
            if w is None:
                w = self._open[(start, seg.key)] = _Open(seg)
            if w.last is None or mark > w.last:
                w.last = mark
            for name, x, kind in obs:
                vals = w.pending.get(name)
                if vals is None:
                    vals = w.pending[name] = []
                    w.kinds.setdefault(name, kind)
                vals.append(x)
        return True

    def fold(self) -> None:
        """Fold the values added since the last fold into the summaries (once per batch:
        the checkpointed state holds summaries, never raw values)."""
        for w in self._open.values():
            for name, vals in w.pending.items():
                if w.kinds[name] is SignalKind.CATEGORY:
                    part = Summary.of_categories(str(v) for v in vals)
                else:
                    part = Summary.of(np.asarray(vals, dtype=np.float64))
                have = w.summaries.get(name)
                if have is None:
                    w.summaries[name] = part
                else:
                    have.merge(part)
            w.pending.clear()

    # -- output -------------------------------------------------------------------------------

    @property
    def watermark(self) -> int | None:
        """The event time every live partition has reached (None: not known yet)."""
        return self._watermark(None)

    def _watermark(self, now_ms: int | None) -> int | None:
        parts = self._assigned | set(self._marks)
        if not parts:
            return None
        live = parts
        if now_ms is not None:
            live = {p for p in parts if now_ms - self._heard.get(p, now_ms) < self.idle_ms}
            if not live:  # everyone idle: what has arrived is all there is for now
                live = set(self._marks)
        if not live or any(p not in self._marks for p in live):
            return None
        return min(self._marks[p] for p in live)

    def ready(self, now_ms: int) -> list[ClosedWindow]:
        """Close and return the windows the watermark has passed (window, then scope order)."""
        mark = self._watermark(now_ms)
        if mark is None:
            return []
        bound = mark - self.lateness_ms
        if bound > self.closed_to:
            self.closed_to = self._start(bound)  # the last window boundary the bound passed
        return self._close(lambda start: start + self.width_ms <= self.closed_to)

    def close_all(self) -> list[ClosedWindow]:
        """Close every open window (the input has ended: a file read to its end)."""
        if self._open:
            last = max(start for start, _ in self._open) + self.width_ms
            self.closed_to = max(self.closed_to, last)
        return self._close(lambda start: True)

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def _close(self, due: Callable[[int], bool]) -> list[ClosedWindow]:
        self.fold()
        keys = sorted(k for k in self._open if due(k[0]))
        out = []
        for key in keys:
            w = self._open.pop(key)
            if w.last is None:
                continue
            out.append(
                ClosedWindow(
                    w.segment,
                    key[0],
                    key[0] + self.width_ms,
                    w.summaries,
                    w.kinds,
                    w.last[0],
                    w.last[1],
                )
            )
        return out

    def _start(self, ts_ms: int) -> int:
        return ts_ms - ts_ms % self.width_ms
