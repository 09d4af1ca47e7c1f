"""A member whose partitions a newer generation took writes nothing (the zombie case)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.events import Position
from monitor.pipeline import Monitor
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources.base import RawRecord
from monitor.store import Fence, HistoryStore
from tests.factories import grid_stream, to_bytes

PART = ("logs", 0)


class GroupSource:
    """One partition of a consumer group, as a member at ``generation`` sees it: claims on
    its first poll (through the monitor's ``on_assign``), then serves from where the store
    said. ``before_poll`` runs before each poll (the test's hook to act as another member)."""

    def __init__(self, values: list[bytes], member: str, generation: int) -> None:
        self.name = "group"
        self.label_sources: set[str] = set()
        self._values = values
        self.member, self.generation = member, generation
        self.on_assign: Callable[[set[tuple[str, int]]], dict[tuple[str, int], int]] = lambda _p: {}
        self._next: int | None = None
        self.polls = 0
        self.before_poll: Callable[[int], None] = lambda _n: None
        self.progress, self.total = 0, len(values)

    @property
    def exhausted(self) -> bool:
        return self._next is not None and self._next >= len(self._values)

    def partitions(self) -> set[tuple[str, int]]:
        return {PART}

    def fence(self) -> Fence:
        return Fence(self.member, self.generation, frozenset({PART}))

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def poll(self, max_records: int) -> list[RawRecord]:
        self.before_poll(self.polls)
        self.polls += 1
        if self._next is None:  # the assignment: claim, reload, seek
            self._next = self.on_assign({PART}).get(PART, 0)
        start = self._next
        chunk = self._values[start : start + max_records]
        self._next += len(chunk)
        return [RawRecord(v, Position(*PART, start + i)) for i, v in enumerate(chunk)]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        pass


def _run(store: HistoryStore, source: GroupSource) -> None:
    s = load_settings(
        overrides={
            "source": {"batch_size": 200},
            "detection": {"multivariate": {"enabled": False}},
        },
        search_cwd=False,
    )
    Monitor(s, source, store, MemoryDeadLetters(), [MemorySink()]).run()


def test_a_zombie_writes_nothing_and_the_new_owner_counts_every_record_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    values = to_bytes(grid_stream(300, shift_segment=("eu-west", "pro"), shift_at=150))
    store = HistoryStore(tmp_path / "h.db")
    try:
        zombie = GroupSource(values, "member-a", generation=1)

        def taken_over(polls: int) -> None:  # after 4 batches a newer generation claims
            if polls == 4:
                store.claim("member-b", 2, [PART])

        zombie.before_poll = taken_over
        with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
            _run(store, zombie)
        assert "checkpoint fenced" in caplog.text
        assert store.offsets() == {PART: 800}, "only the 4 batches before the takeover"
        assert store.totals()["records"] == 800
        assert store.owners() == {PART: ("member-b", 2)}

        _run(store, GroupSource(values, "member-b", generation=2))  # the new owner
        assert store.offsets() == {PART: len(values)}
        assert store.totals()["records"] == len(values)
        assert sum(store.segment_counts().values()) == 4 * len(values)  # leaf + 3 roll-ups
        ids = [x.id for x in store.history()]
        assert len(ids) == len(set(ids))
    finally:
        store.close()
