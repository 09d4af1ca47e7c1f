"""Event-time windows of the roll-ups: closed the same whatever the arrival order."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import SignalKind
from detectors.window import QCUSUM, SignalKindName, Summary, WindowWatcher
from monitor.config import load_settings
from monitor.engine.exchange import MemoryExchange
from monitor.engine.windows import ClosedWindow, WindowJudge, WindowStage
from monitor.events import Position, Signal
from monitor.pipeline import Monitor
from monitor.segments import Segment
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.sources.base import RawRecord
from monitor.store import Batch, HistoryStore
from tests.factories import COHORTS, REGIONS, record, to_bytes

G = Segment("*", "global", {})
EU = Segment("region=eu", "region", {"region": "eu"})


class _Local:
    """A member's window stage and a single process's exchange, the way the monitor runs
    them per batch: add records, then :meth:`ready` (drain, exchange, judge)."""

    def __init__(self, width_ms: int, lateness_ms: int, idle_ms: int) -> None:
        self.stage = WindowStage(width_ms, lateness_ms)
        self.exchange = MemoryExchange(WindowJudge(width_ms, lateness_ms, idle_ms))
        self.partitions: set[tuple[str, int]] = set()
        self._now = 0
        self.late_by_judge = 0

    def assign(self, partitions: set[tuple[str, int]], now_ms: int) -> None:
        self.partitions = partitions

    def heard(self, partition: tuple[str, int], ts_ms: int, now_ms: int) -> None:
        self.stage.heard(partition, ts_ms)
        self._now = now_ms

    def add(self, *args: Any) -> bool:
        return self.stage.add(*args)

    def ready(self, now_ms: int, final: bool = False) -> list[ClosedWindow]:
        own = self.stage.drain()
        marks = self.stage.marks_of(self.stage.marks, self._now)
        closed, late = self.exchange.exchange(
            own, marks, self.partitions, now_ms, Batch(), final=final
        )
        self.stage.closed_to = self.exchange.judge.closed_to
        self.late_by_judge += late
        return closed

    def close_all(self) -> list[ClosedWindow]:
        return self.ready(self._now, final=True)

    @property
    def late(self) -> int:
        return self.stage.late + self.late_by_judge


def _records(n: int, seed: int) -> list[tuple[int, int, float, str]]:
    """(partition, ts, value, category), in event-time order, over 3 partitions."""
    rng = random.Random(seed)
    return [
        (rng.randrange(3), 1000 + 37 * i, rng.gauss(0.0, 1.0), rng.choice("abc")) for i in range(n)
    ]


def _closed(order: list[tuple[int, int, float, str]], batch: int) -> list[tuple[object, ...]]:
    st_ = _Local(width_ms=1000, lateness_ms=0, idle_ms=10**9)
    st_.assign({("t", p) for p in range(3)}, now_ms=0)
    out = []
    for i in range(0, len(order), batch):
        for off, (p, ts, x, c) in enumerate(order[i : i + batch]):
            st_.heard(("t", p), ts, now_ms=0)
            obs = [("x", x, SignalKind.NUMERIC), ("c", c, SignalKind.CATEGORY)]
            st_.add([G, EU], obs, ts, Position("t", p, ts))
            del off
        out += st_.ready(now_ms=0)
    out += st_.close_all()
    assert st_.late == 0
    return [
        (
            w.segment.key,
            w.start_ms,
            w.summaries["x"].n,
            round(w.summaries["x"].mean, 9),
            round(w.summaries["x"].m2, 6),
            w.summaries["c"].counts,
            w.last_position,
        )
        for w in out
    ]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 200))
def test_windows_close_the_same_whatever_order_the_partitions_arrive_in(
    seed: int, batch: int
) -> None:
    """Each partition keeps its own order (as Kafka does); blocks of partitions interleave
    at random: the closed windows and their summaries are the same as in event-time order."""
    recs = _records(600, seed)
    rng = random.Random(seed + 1)
    queues = {p: [r for r in recs if r[0] == p] for p in range(3)}
    blocked: list[tuple[int, int, float, str]] = []
    while any(queues.values()):
        p = rng.choice([q for q, v in queues.items() if v])
        take = rng.randint(1, 80)
        blocked += queues[p][:take]
        del queues[p][:take]
    assert _closed(blocked, batch) == _closed(recs, batch)


def test_a_window_waits_for_every_assigned_partition_until_it_goes_idle() -> None:
    st_ = _Local(width_ms=1000, lateness_ms=0, idle_ms=5000)
    st_.assign({("t", 0), ("t", 1)}, now_ms=0)
    for ts in (100, 900, 2500):
        st_.heard(("t", 0), ts, now_ms=10)
        st_.add([G], [("x", 1.0, SignalKind.NUMERIC)], ts, Position("t", 0, ts))
    assert st_.ready(now_ms=10) == [], "partition 1 has not been heard from"
    closed = st_.ready(now_ms=6000)  # ... and now it has been silent for idle_ms
    assert [(w.start_ms, w.summaries["x"].n) for w in closed] == [(0, 2)]


def test_a_record_for_a_closed_window_is_late_counted_and_kept_out() -> None:
    st_ = _Local(width_ms=1000, lateness_ms=500, idle_ms=10**9)
    for ts in (100, 1200, 1600):
        st_.heard(("t", 0), ts, now_ms=0)
        assert st_.add([G], [("x", 1.0, SignalKind.NUMERIC)], ts, Position("t", 0, ts))
    assert [w.start_ms for w in st_.ready(now_ms=0)] == [0]  # 1600 - 500 passed 1000
    st_.heard(("t", 0), 400, now_ms=0)
    assert not st_.add([G], [("x", 9.0, SignalKind.NUMERIC)], 400, Position("t", 0, 5))
    assert st_.add([G], [("x", 1.0, SignalKind.NUMERIC)], 1100, Position("t", 0, 6))
    assert st_.late == 1


def test_summaries_merge_to_the_moments_of_the_union() -> None:
    rng = np.random.default_rng(2)
    parts = [rng.normal(5.0, 2.0, size=n) for n in (1, 7, 300, 41)]
    merged = Summary()
    for p in parts:
        merged.merge(Summary.of(p))
    allv = np.concatenate(parts)
    assert merged.n == allv.size
    assert math.isclose(merged.mean, float(allv.mean()), rel_tol=1e-12)
    assert math.isclose(merged.std, float(allv.std(ddof=1)), rel_tol=1e-10)


def test_q_scores_are_standard_normal_for_normal_windows() -> None:
    """Self-starting Q-statistics: exactly N(0, 1) and independent for normal input."""
    rng = np.random.default_rng(9)
    q = QCUSUM(1e12, k=0.5, warmup=3)
    zs = []
    for x in rng.normal(3.0, 0.7, size=4000):
        z = q.score(float(x))
        if z is not None:
            zs.append(z)
        q.update(float(x))
    z = np.asarray(zs)
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)  # 4 standard errors
    assert abs(z.var() - 1.0) < 4 * math.sqrt(2 / n)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / math.sqrt(n)


def test_a_stationary_roll_up_is_quiet_and_a_shift_is_caught_within_a_few_windows() -> None:
    rng = np.random.default_rng(4)
    w = WindowWatcher(SignalKindName.NUMERIC, target_arl0=1e6)
    hits = []
    for t in range(600):
        shift = 0.3 if t >= 500 else 0.0  # 0.3 sigma of the records: 6 window-sigmas
        for c in w.update(Summary.of(rng.normal(10.0 + shift, 1.0, size=400)), t):
            hits.append((t, c.detector, c.effect))
    assert hits, "the shift was missed"
    t, det, effect = hits[0]
    assert 500 <= t <= 503
    assert det == "window"
    assert 0.2 < effect < 0.4, "the change is stated in record sigmas"


def test_a_rising_category_share_is_reported_as_a_rate() -> None:
    rng = random.Random(5)
    w = WindowWatcher(SignalKindName.CATEGORY, target_arl0=1e6)
    hits = []
    for t in range(200):
        p_no = 0.3 if t < 150 else 0.5
        vals = ["no" if rng.random() < p_no else "yes" for _ in range(300)]
        hits += [(t, c) for c in w.update(Summary.of_categories(vals), t)]
    t, c = hits[0]
    assert 150 <= t <= 153
    assert c.detector == "window:no"
    assert 0.25 < c.before < 0.35
    assert 0.4 < c.after < 0.6


# -- the monitor: partitions delivered in blocks ---------------------------------------------


class BlockSource:
    """Records spread over one partition per region, served a block of one partition at a
    time (the way a Kafka consumer hands them over), positions ``t[p]@offset``."""

    def __init__(self, values: list[bytes], regions: list[str], block: int = 500) -> None:
        self.name = "blocks"
        self.label_sources: set[str] = set()
        order = sorted(set(regions))
        self._parts: dict[int, list[bytes]] = {p: [] for p in range(len(order))}
        for v, r in zip(values, regions, strict=True):
            self._parts[order.index(r)].append(v)
        self._next = dict.fromkeys(self._parts, 0)
        self._block = block
        self._turn = 0
        self.progress = 0
        self.total = len(values)

    @property
    def exhausted(self) -> bool:
        return all(self._next[p] >= len(v) for p, v in self._parts.items())

    def partitions(self) -> set[tuple[str, int]]:
        return {("t", p) for p in self._parts}

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def poll(self, max_records: int) -> list[RawRecord]:
        live = [p for p in self._parts if self._next[p] < len(self._parts[p])]
        if not live:
            return []
        p = live[self._turn % len(live)]
        self._turn += 1
        start = self._next[p]
        chunk = self._parts[p][start : start + min(self._block, max_records)]
        self._next[p] += len(chunk)
        self.progress += len(chunk)
        return [RawRecord(v, Position("t", p, start + i)) for i, v in enumerate(chunk)]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        pass


def _segment_stream(n_per: int, drift_region: str | None) -> list[dict[str, object]]:
    """3 regions x 3 cohorts whose means differ by up to 0.6 sigma, interleaved in time."""
    rng = random.Random(3)
    means = {(r, c): rng.uniform(-0.6, 0.6) for r in REGIONS for c in COHORTS}
    out = []
    for k in range(n_per):
        for (r, c), m in means.items():
            x = rng.gauss(m, 1.0) + (1.5 if r == drift_region and k >= n_per * 2 // 3 else 0.0)
            out.append(record(len(out), region=r, cohort=c, features={"x": x}))
    return out


def _signals(tmp: Path, source: Any) -> set[tuple[str, str, str]]:
    s = load_settings(
        overrides={
            "history": {"path": str(tmp / "h.db")},
            "detection": {"warmup": 300, "multivariate": {"enabled": False}},
        },
        search_cwd=False,
    )
    store = HistoryStore(s.history.path)
    try:
        Monitor(s, source, store, MemoryDeadLetters(), [MemorySink()]).run()
        return {
            (x.segment, x.signal, x.level.value) for x in store.history() if isinstance(x, Signal)
        }
    finally:
        store.close()


@pytest.mark.parametrize("drift_region", [None, "eu-west"])
def test_partition_blocks_give_the_signals_of_the_time_ordered_stream(
    tmp_path: Path, drift_region: str | None
) -> None:
    recs = _segment_stream(3000, drift_region)
    values = to_bytes(recs)
    ordered = _signals(tmp_path / "ordered", ListSource(values))
    blocks = _signals(tmp_path / "blocks", BlockSource(values, [str(r["region"]) for r in recs]))
    assert blocks == ordered
    halts = {seg for seg, _, level in blocks if level == "HALT"}
    if drift_region is None:
        assert halts == set(), "stationary segments with different means: no HALT"
    else:
        assert f"region={drift_region}" in halts
        assert all(
            drift_region in seg or seg in ("*", "cohort=free", "cohort=pro", "cohort=enterprise")
            for seg in halts
        ), halts


def test_the_window_cusum_keeps_its_arl0_on_normal_window_statistics() -> None:
    """Run lengths of 300 stationary streams at a target of 200 windows: the mean within
    20 % (4 standard errors of the Monte Carlo at this size)."""
    target, lengths = 200.0, []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        q = QCUSUM(target, k=0.5, warmup=10)
        n = 0
        while not q.update(float(rng.normal(3.0, 0.5))):
            n += 1
        lengths.append(n + 1 - 10)  # scored windows (the first 10 only learn)
    assert 0.8 * target < float(np.mean(lengths)) < 1.2 * target


def test_late_records_are_counted_in_the_history_and_still_reach_their_leaf(
    tmp_path: Path,
) -> None:
    """A record 2 minutes behind, after its window closed: counted late (run summary and
    the store's totals), its leaf still sees it, no record is lost."""
    recs = [record(i, features={"x": 0.0}) for i in range(3000)]  # 40 ms apart: 120 s
    straggler = record(3000, features={"x": 0.0}, timestamp=recs[0]["timestamp"] + 5)
    s = load_settings(overrides={"history": {"path": str(tmp_path / "h.db")}}, search_cwd=False)
    store = HistoryStore(s.history.path)
    try:
        summary = Monitor(
            s, ListSource(to_bytes([*recs, straggler])), store, MemoryDeadLetters(), []
        ).run()
        assert summary.late == 1
        assert store.totals()["late"] == 1
        assert store.totals()["records"] == len(recs) + 1
        assert store.segment_counts()["region=eu-west,cohort=free"] == len(recs) + 1
    finally:
        store.close()
