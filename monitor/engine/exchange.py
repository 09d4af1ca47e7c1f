"""Where roll-up window parts and partition watermarks wait for the judge between batches.

* :class:`MemoryExchange`, for one process reading a file or the demo: in this process,
  checkpointed whole as the ``~windows`` state row;
* :class:`StoreExchange`, for Kafka (a consumer group of one member or many): in the shared
  history store, written by each member with its partitions' offsets (``window_parts``,
  ``offsets.mark_ms``), merged by the member that judges (it holds the lowest input
  partition), whose judge state is the ``~judge`` row.

Both run the same :class:`~monitor.engine.windows.WindowJudge`, so a file and a topic give
the same closed windows.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable

from monitor.engine.windows import ClosedWindow, Part, PartitionKey, WindowJudge
from monitor.store import Batch, HistoryStore

__all__ = ["JUDGE_STATE_KEY", "WINDOWS_STATE_KEY", "MemoryExchange", "StoreExchange"]

WINDOWS_STATE_KEY = "~windows"  # a single process's open window parts and watermarks
JUDGE_STATE_KEY = "~judge"  # the fleet judge's state (closed_to, partitions first seen)


class MemoryExchange:
    """Parts and watermarks kept in this process (one process: it always judges)."""

    def __init__(self, judge: WindowJudge) -> None:
        self.judge = judge
        self.parts: list[Part] = []
        self.marks: dict[PartitionKey, tuple[int, int]] = {}

    @property
    def open_windows(self) -> int:
        return len({(p.start_ms, p.segment.key) for p in self.parts})

    def exchange(
        self,
        own: list[Part],
        marks: dict[PartitionKey, tuple[int, int]],
        partitions: Iterable[PartitionKey],
        now_ms: int,
        batch: Batch,
        *,
        judging: bool = True,
        final: bool = False,
    ) -> tuple[list[ClosedWindow], int]:
        """Add the batch's parts and watermarks; judge; (closed windows, late records).
        The batch carries this exchange's new state."""
        self.marks.update(marks)
        self.parts += own
        closed, consumed, late = self.judge.judge(
            self.parts, self.marks, set(partitions) | set(self.marks), now_ms, final=final
        )
        if consumed:
            used = {id(p) for p in consumed}
            self.parts = [p for p in self.parts if id(p) not in used]
        batch.states[WINDOWS_STATE_KEY] = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        return closed, late


class StoreExchange:
    """Parts and watermarks in the shared store; judged by the member told it judges."""

    def __init__(self, judge: WindowJudge, store: HistoryStore) -> None:
        self.judge = judge
        self.store = store

    def exchange(
        self,
        own: list[Part],
        marks: dict[PartitionKey, tuple[int, int]],
        partitions: Iterable[PartitionKey],
        now_ms: int,
        batch: Batch,
        *,
        judging: bool = True,
        final: bool = False,
    ) -> tuple[list[ClosedWindow], int]:
        """Judging: read every member's watermarks and parts, close what the watermark
        passed, consume the parts used (closed windows, late records). Not judging: the
        batch carries this member's parts and it learns how far the judge has got."""
        if not judging:
            batch.window_parts += [p.to_row() for p in own]
            blob = self.store.detector_states(JUDGE_STATE_KEY).get(JUDGE_STATE_KEY)
            if blob is not None:
                self.judge = pickle.loads(blob)
            return [], 0
        every = self.store.window_marks()
        every.update(marks)  # this batch's, not checkpointed yet
        before = self.judge.closed_to
        stored: list[Part] = []
        if final:
            stored = [Part.from_row(r) for r in self.store.window_parts(2**62)]
            self.judge.close_all([*stored, *own])
        else:
            self.judge.advance(every, partitions, now_ms)
            if self.judge.closed_to > before:
                below = self.judge.closed_to - self.judge.width_ms + 1
                stored = [Part.from_row(r) for r in self.store.window_parts(below)]
        closed: list[ClosedWindow] = []
        late = 0
        used: set[int] = set()
        if self.judge.closed_to > before:
            closed, consumed, late = self.judge.collect([*stored, *own], before)
            used = {id(p) for p in consumed}
            batch.consumed_parts += [p.key for p in stored if id(p) in used]
        batch.window_parts += [p.to_row() for p in own if id(p) not in used]
        batch.states[JUDGE_STATE_KEY] = pickle.dumps(self.judge, protocol=pickle.HIGHEST_PROTOCOL)
        return closed, late
