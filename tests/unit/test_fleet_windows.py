"""Roll-ups across the members of a group: window parts and watermarks through the store.

Two monitors share one history store as two members of a consumer group, each holding two
of four partitions (records keyed by segment, each partition served in blocks). Every
member checkpoints its partitions' window parts and watermarks; the member holding the
lowest partition judges the roll-ups from everyone's parts. Midway a rebalance moves a
partition from one member to the other (a new generation). The fleet must give the signals
of one process reading the records in event-time order, count every record once and no
record late, and raise no signal twice.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_settings
from monitor.errors import StoreUnavailable
from monitor.events import Position, Signal
from monitor.pipeline import Monitor, RunSummary
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.sources.base import RawRecord
from monitor.store import Fence, HistoryStore
from tests.factories import COHORTS, REGIONS, record, to_bytes

TOPIC = "logs"
N_PARTITIONS = 4


class Member:
    """A consumer-group member over shared partitions: it serves blocks of the partitions
    it holds, from where the store says, and knows every partition of the topic."""

    def __init__(self, name: str, parts: dict[int, list[bytes]], held: set[int]) -> None:
        self.name = name
        self.label_sources: set[str] = set()
        self._parts = parts
        self.held = held
        self.generation = 1
        self.next: dict[int, int] = dict.fromkeys(parts, 0)
        self._turn = 0
        self.rewound = 0
        self.progress, self.total = 0, sum(len(v) for v in parts.values())

    exhausted = False

    def all_partitions(self) -> set[tuple[str, int]]:
        return {(TOPIC, p) for p in self._parts}

    def partitions(self) -> set[tuple[str, int]]:
        return {(TOPIC, p) for p in self.held}

    def fence(self) -> Fence:
        return Fence(self.name, self.generation, frozenset(self.partitions()))

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        self.next.update({p: o for (_t, p), o in offsets.items()})

    def rewind(self, offsets: dict[tuple[str, int], int]) -> None:
        self.rewound += 1
        self.next.update({p: offsets.get((TOPIC, p), 0) for p in self.held})

    def done(self) -> bool:
        return all(self.next[p] >= len(self._parts[p]) for p in self.held)

    def poll(self, max_records: int) -> list[RawRecord]:
        live = sorted(p for p in self.held if self.next[p] < len(self._parts[p]))
        if not live:
            return []
        p = live[self._turn % len(live)]
        self._turn += 1
        start = self.next[p]
        chunk = self._parts[p][start : start + max_records]
        self.next[p] += len(chunk)
        return [RawRecord(v, Position(TOPIC, p, start + i)) for i, v in enumerate(chunk)]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        pass


def _stream(n_per: int, drift_region: str | None) -> list[dict[str, object]]:
    """3 regions x 3 cohorts whose means differ by up to 0.6 sigma, interleaved in time."""
    rng = random.Random(5)
    means = {(r, c): rng.uniform(-0.6, 0.6) for r in REGIONS for c in COHORTS}
    out = []
    for k in range(n_per):
        for (r, c), m in means.items():
            x = rng.gauss(m, 1.0) + (1.5 if r == drift_region and k >= n_per * 2 // 3 else 0.0)
            out.append(record(len(out), region=r, cohort=c, features={"x": x}))
    return out


def _settings(db: Path, **source: Any) -> Any:
    return load_settings(
        overrides={
            "history": {"path": str(db)},
            "source": {"batch_size": 250, **source},
            "detection": {"warmup": 300, "multivariate": {"enabled": False}},
        },
        search_cwd=False,
    )


def _signals(store: HistoryStore) -> list[Signal]:
    return [x for x in store.history() if isinstance(x, Signal)]


@pytest.mark.parametrize("drift_region", [None, "eu-west"])
def test_two_members_with_a_rebalance_give_the_signals_of_one_process(
    tmp_path: Path, drift_region: str | None
) -> None:
    recs = _stream(2400, drift_region)
    values = to_bytes(recs)
    segments = sorted({(str(r["region"]), str(r["cohort"])) for r in recs})
    parts: dict[int, list[bytes]] = {p: [] for p in range(N_PARTITIONS)}
    for r, v in zip(recs, values, strict=True):  # keyed by segment
        parts[segments.index((str(r["region"]), str(r["cohort"]))) % N_PARTITIONS].append(v)

    ref_store = HistoryStore(tmp_path / "one.db")
    Monitor(
        _settings(tmp_path / "one.db"), ListSource(values), ref_store, MemoryDeadLetters(), []
    ).run()
    reference = {(s.segment, s.signal, s.level.value) for s in _signals(ref_store)}
    ref_store.close()

    db = tmp_path / "fleet.db"
    store = HistoryStore(db)
    a, b = Member("a", parts, {0, 1}), Member("b", parts, {2, 3})
    sink_a, sink_b = MemorySink(), MemorySink()
    monitors = {
        "a": Monitor(_settings(db), a, store, MemoryDeadLetters(), [sink_a]),
        "b": Monitor(_settings(db), b, store, MemoryDeadLetters(), [sink_b]),
    }
    runs = {}
    for name, m in monitors.items():
        src = m.source
        assert isinstance(src, Member)
        src.resume(m._assigned(src.partitions()))  # claims at generation 1
        runs[name] = (store.start_run(name), RunSummary(run_id=name, source=name))

    def step(name: str) -> None:
        m = monitors[name]
        m._process(runs[name][0], m.source.poll(250), runs[name][1])

    batches = 0
    while not (a.done() and b.done()):
        for name in ("a", "b"):
            step(name)
        batches += 1
        if batches == 40:  # a rebalance: partition 1 moves from a to b (generation 2)
            a.held, b.held = {0}, {1, 2, 3}
            for m in monitors.values():
                src = m.source
                assert isinstance(src, Member)
                src.generation = 2
                src.resume(m._assigned(src.partitions()))
    judge = monitors["a"]  # holds partition 0, the lowest
    judge._process(runs["a"][0], [], runs["a"][1], final=True)  # the input ended

    got = _signals(store)
    assert {(s.segment, s.signal, s.level.value) for s in got} == reference
    ids = [s.id for s in got]
    assert len(ids) == len(set(ids)), "no signal raised twice"
    totals = store.totals()
    assert totals["records"] == len(recs)
    assert totals["late"] == 0
    assert sum(store.segment_counts()[f"region={r},cohort={c}"] for r, c in segments) == len(recs)
    assert store.window_parts(2**62) == [], "every window part was judged"
    halts = {seg for seg, _, level in reference if level == "HALT"}
    if drift_region is None:
        assert halts == set()
    else:
        assert f"region={drift_region}" in halts
        # claimed delivery: every signal reached the sink once, from one member or the other
        delivered = [s.id for s in sink_a.signals] + [s.id for s in sink_b.signals]
        assert sorted(delivered) == sorted(ids)
    store.close()


def test_a_leaf_split_over_partitions_of_several_members_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Unkeyed records: a leaf's records on two partitions while another member holds
    others. Its leaf detectors would see only this member's share: said once, in a line
    that says what to do."""
    values = to_bytes(_stream(60, None))
    parts = {p: values[p::N_PARTITIONS] for p in range(N_PARTITIONS)}  # round robin
    store = HistoryStore(tmp_path / "h.db")
    member = Member("a", parts, {0, 1})
    m = Monitor(_settings(tmp_path / "h.db"), member, store, MemoryDeadLetters(), [])
    member.resume(m._assigned(member.partitions()))
    run = store.start_run("a")
    summary = RunSummary(run_id=run, source="a")
    with caplog.at_level("WARNING", logger="monitor.pipeline"):
        while not member.done():
            m._process(run, member.poll(50), summary)
    said = [r.getMessage() for r in caplog.records if "Key the input topics" in r.getMessage()]
    assert len(said) == 1, said
    assert "arrives on logs[0] and logs[1]" in said[0]
    assert store.totals()["records"] == len(values) // 2
    store.close()


class FlakyStore(HistoryStore):
    """A store whose ``fail_at``-th checkpoint fails as if PostgreSQL went away, after
    committing (``committed``: the commit's answer was lost) or before."""

    def __init__(self, path: Path, fail_at: int, committed: bool) -> None:
        super().__init__(path)
        self.fail_at, self.committed, self.calls = fail_at, committed, 0

    def checkpoint(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            if self.committed:
                super().checkpoint(*args, **kwargs)
            raise StoreUnavailable("history store test: OperationalError: server closed")
        super().checkpoint(*args, **kwargs)


@pytest.mark.parametrize("committed", [False, True])
def test_a_store_outage_mid_batch_is_waited_out_and_the_batch_read_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, committed: bool
) -> None:
    """The checkpoint of batch 5 fails (before or after its commit): the member waits for
    the store, reloads its state, rewinds to the store's offsets and goes on; every record
    is counted once and the leaf states are those of a run without the outage."""
    recs = _stream(300, "eu-west")
    values = to_bytes(recs)
    segments = sorted({(str(r["region"]), str(r["cohort"])) for r in recs})
    parts: dict[int, list[bytes]] = {p: [] for p in range(N_PARTITIONS)}
    for r, v in zip(recs, values, strict=True):  # keyed by segment: each leaf in one order
        parts[segments.index((str(r["region"]), str(r["cohort"]))) % N_PARTITIONS].append(v)
    states = {}
    for name, store in (
        ("clean", HistoryStore(tmp_path / "clean.db")),
        ("flaky", FlakyStore(tmp_path / "flaky.db", fail_at=5, committed=committed)),
    ):
        member = Member("a", parts, set(parts))
        settings = _settings(tmp_path / f"{name}.db", idle_exit_s=0.3)
        store.claim("a", 1, member.partitions())
        with caplog.at_level("WARNING", logger="monitor.pipeline"):
            Monitor(settings, member, store, MemoryDeadLetters(), []).run()
        assert store.totals()["records"] == len(values), name
        states[name] = {k: v for k, v in store.detector_states().items() if k != "~judge"}
        if name == "flaky":
            assert member.rewound == 1
            assert "history store is back" in caplog.text
        store.close()
    leaves = [k for k in states["clean"] if not k.startswith("~")]
    assert leaves
    assert {k: states["flaky"][k] for k in leaves} == {k: states["clean"][k] for k in leaves}


def test_a_member_taking_a_scope_over_keeps_counting_its_warn_level_drifts(
    tmp_path: Path,
) -> None:
    """WARN-level drifts after a scope's WARN count towards ``halt_after``. A member that
    takes the scope over mid-way (here: a new process on the same store, after the WARN
    and a second WARN-level drift, before the third)
    must go on counting from the same evidence, and so raise the HALT where one
    uninterrupted member does."""
    rng = random.Random(9)
    recs = []
    for k in range(2400):  # eu-west steps up three times: three WARN-level drifts per scope
        for r in REGIONS:
            for c in COHORTS:
                step = (k >= 1000) + (k >= 1500) + (k >= 2000) if r == "eu-west" else 0
                x = rng.gauss(0.0, 1.0) + 1.5 * step
                recs.append(record(len(recs), region=r, cohort=c, features={"x": x}))
    values = to_bytes(recs)
    segments = sorted({(str(r["region"]), str(r["cohort"])) for r in recs})
    parts: dict[int, list[bytes]] = {p: [] for p in range(N_PARTITIONS)}
    for r, v in zip(recs, values, strict=True):
        parts[segments.index((str(r["region"]), str(r["cohort"]))) % N_PARTITIONS].append(v)
    decisions = {"warn_effect": 0.05, "halt_effect": 50.0, "halt_after": 3}

    def settings(db: Path) -> Any:
        return load_settings(
            overrides={
                "history": {"path": str(db)},
                "source": {"batch_size": 250},
                "decisions": decisions,
                "detection": {"warmup": 300, "multivariate": {"enabled": False}},
            },
            search_cwd=False,
        )

    results = []
    for split in (None, 62):  # 62 x 250 records: between the second and third steps
        db = tmp_path / f"split-{split}.db"
        store = HistoryStore(db)
        member = Member("a", parts, set(parts))
        store.claim("a", 1, member.partitions())
        m = Monitor(settings(db), member, store, MemoryDeadLetters(), [])
        run = store.start_run("a")
        summary = RunSummary(run_id=run, source="a")
        batches = 0
        while not member.done():
            if batches == split:  # another process takes over from the store
                m = Monitor(settings(db), member, store, MemoryDeadLetters(), [])
            m._process(run, member.poll(250), summary)
            batches += 1
        m._process(run, [], summary, final=True)
        results.append({(s.segment, s.level.value, s.ts_ms) for s in _signals(store)})
        store.close()
    whole, taken_over = results
    assert any(level == "HALT" for _, level, _ in whole), "halt_after escalated somewhere"
    assert taken_over == whole
