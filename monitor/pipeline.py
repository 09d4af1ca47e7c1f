"""The monitor loop: poll → parse → segment → detect → decide → checkpoint → deliver → notify.

One batch at a time:

1. ``source.poll`` a batch of raw records;
2. read each record (``monitor.intake``: schema v1, then no timestamp more than
   ``source.max_future_s`` ahead of the wall clock) and compute all it contributes
   (observations, segments, label join) before any of it is applied; a record that fails
   anywhere in that (even by raising something unexpected) goes to the dead-letter sink with
   its reason, position and Kafka key, is counted, and the batch goes on;
3. map each good record to its segments (leaf + roll-ups) and feed every signal to that
   segment's detector bank; confirmed changes become drift events, and the decision engine
   turns drift events into WARN / HALT signals;
4. flush the dead-letter sink (durable before anything is committed);
5. checkpoint: one history-store transaction with the events, signals (+ outbox rows), record
   counts, detector states and the next source offsets (see ``monitor.store.history``);
6. deliver pending signals from the outbox to every signal sink, then mark them delivered
   (at least once: a crash between the two sends them again, with the same signal ids);
7. auto-resolve where routes allow it, then one courier tick: the router plans
   notifications, enqueues the new ones in the notifications outbox and delivers what is
   due (``monitor.router.courier``; also at start and every ``router.tick_s`` while idle);
8. ``source.commit`` the offsets (Kafka group offsets, for lag tools).

Crash points (``faults.crash_at``, for crash tests) sit at the edges of those windows:
``after-checkpoint`` (after 5), ``signal-sent-unrecorded`` (in 6, a sink took the signals,
not yet marked), ``notification-sent-unrecorded`` (in 7, a receiver accepted a
notification, its row not yet written) and ``after-delivery-recorded`` (after 7).

A stop request (SIGTERM/SIGINT) is honoured between batches, so the batch in hand is always
finished, checkpointed and delivered first.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast, overload

import numpy as np
import numpy.typing as npt

from detectors import Change, DetectorBank, Persistence, SignalKind
from monitor.config import CrashPoint, Settings
from monitor.decisions import DecisionEngine
from monitor.detection import build_plan, save_calibrations, window_target_arl0
from monitor.engine.exchange import (
    JUDGE_STATE_KEY,
    WINDOWS_STATE_KEY,
    MemoryExchange,
    StoreExchange,
)
from monitor.engine.rollup import RollupStage
from monitor.engine.windows import ClosedWindow, PartitionKey, WindowJudge, WindowStage
from monitor.errors import Fenced, SinkError, StoreError, StoreUnavailable
from monitor.events import DriftEvent, Position, Signal
from monitor.intake import Intake, wall_clock_ms
from monitor.labels import LabelJoiner, Outcome
from monitor.observe import Observation, Observer
from monitor.router.courier import Courier
from monitor.router.resolve import any_auto_resolve, resolvable
from monitor.router.route import Route
from monitor.schema import BadRecord
from monitor.segments import Segment, Segmenter
from monitor.sinks.base import DeadLetter, DeadLetterSink, SignalSink
from monitor.sources.base import RawRecord, Source
from monitor.store import Batch, Fence, HistoryStore
from monitor.telemetry import Metrics

__all__ = ["Monitor", "RunSummary"]

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


DECISION_STATE_PREFIX = "~decision:"  # rows of the decision engine's per-scope memory
LABELS_STATE_KEY = "~labels"  # detector_state row that holds the label joiner
FEATURES_STATE_KEY = "~features"  # detector_state row that holds each feature's kind
DELIVERY_LEASE_MS = 60_000  # a claim on a signal's delivery to a sink holds this long
JOINT_SIGNAL = "features:joint"  # the multivariate signal: all numeric features together


@dataclass(slots=True)
class RunSummary:
    """What one run did."""

    run_id: str
    source: str
    status: str = "running"
    records: int = 0
    dead_letters: int = 0
    drift_events: int = 0
    signals: list[Signal] = field(default_factory=list)
    segments: int = 0
    overflowed: int = 0
    late: int = 0  # records whose roll-up window had closed (used by their leaf only)
    elapsed_s: float = 0.0
    undelivered: int = 0
    labels: dict[str, float] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "status": self.status,
            "records": self.records,
            "dead_letters": self.dead_letters,
            "drift_events": self.drift_events,
            "signals": [s.as_dict() for s in self.signals],
            "segments": self.segments,
            "overflowed": self.overflowed,
            "late": self.late,
            "elapsed_s": round(self.elapsed_s, 3),
            "undelivered": self.undelivered,
            "labels": self.labels,
        }


class _Tags(Sequence[object]):
    """The tags of a subset of a batch's records, built only where one is read."""

    def __init__(self, tags: list[object], idx: npt.NDArray[np.int64]) -> None:
        self._tags, self._idx = tags, idx

    def __len__(self) -> int:
        return int(self._idx.size)

    @overload
    def __getitem__(self, i: int) -> object: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[object]: ...
    def __getitem__(self, i: int | slice) -> object | Sequence[object]:
        if isinstance(i, slice):
            return [self._tags[j] for j in self._idx[i].tolist()]
        return self._tags[int(self._idx[i])]


class BatchFeed:
    """A batch's observations, regrouped per (segment, signal) with numpy.

    Records are added once each (with the segments that watch them); :meth:`streams` then
    yields, per segment and signal, the values in record order and their tags, without a
    per-observation dictionary look-up per segment.
    """

    def __init__(self) -> None:
        self._tags: list[object] = []
        self._seg_rows: dict[str, tuple[Segment, list[int]]] = {}
        self._sig: dict[str, tuple[SignalKind, list[int], list[float | str]]] = {}
        self._vec: dict[str, tuple[Segment, list[int], list[dict[str, float]]]] = {}

    def add_vector(self, seg: Segment, vec: dict[str, float]) -> None:
        """The multivariate observation of the record added last, for one segment."""
        hit = self._vec.get(seg.key)
        if hit is None:
            hit = self._vec[seg.key] = (seg, [], [])
        hit[1].append(len(self._tags) - 1)
        hit[2].append(vec)

    def add(self, segments: list[Segment], obs: list[Observation], tag: object) -> None:
        row = len(self._tags)
        self._tags.append(tag)
        for seg in segments:
            hit = self._seg_rows.get(seg.key)
            if hit is None:
                self._seg_rows[seg.key] = (seg, [row])
            else:
                hit[1].append(row)
        for name, x, kind in obs:
            sig = self._sig.get(name)
            if sig is None:
                sig = self._sig[name] = (kind, [], [])
            sig[1].append(row)
            sig[2].append(x)

    def streams(
        self,
    ) -> Iterator[tuple[Segment, str, SignalKind, list[Any], Sequence[object]]]:
        n = len(self._tags)
        masks = {}
        for key, (seg, rows) in self._seg_rows.items():
            m = np.zeros(n, dtype=bool)
            m[rows] = True
            masks[key] = (seg, m)
        for name, (kind, rows, vals) in self._sig.items():
            idx = np.asarray(rows, dtype=np.int64)
            arr = np.asarray(vals, dtype=object if kind is SignalKind.CATEGORY else np.float64)
            for seg, m in masks.values():
                sel = m[idx]
                if not sel.any():
                    continue
                yield seg, name, kind, arr[sel].tolist(), _Tags(self._tags, idx[sel])
        for seg, rows, vecs in self._vec.values():
            tags = _Tags(self._tags, np.asarray(rows, dtype=np.int64))
            yield seg, JOINT_SIGNAL, SignalKind.VECTOR, vecs, tags


@dataclass(frozen=True, slots=True)
class _Observed:
    """All one inference record adds to a batch, computed before any of it is applied."""

    request_id: str
    ts_ms: int
    prediction: object
    segments: list[Segment]
    obs: list[Observation]
    vector: dict[str, float] | None  # its multivariate observation, when sampled


@dataclass(frozen=True, slots=True)
class _Labelled:
    """All one label record adds to a batch (None: no observation, e.g. unmatched)."""

    ts_ms: int
    outcome: Outcome | None


class Monitor:
    """Runs the loop for one source until it is exhausted or asked to stop.

    ``clock`` (epoch ms; the wall clock by default) is what record timestamps are checked
    against (``source.max_future_s``).
    """

    def __init__(
        self,
        settings: Settings,
        source: Source,
        store: HistoryStore,
        dead_letters: DeadLetterSink,
        sinks: list[SignalSink],
        metrics: Metrics | None = None,
        courier: Courier | None = None,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.settings = settings
        self.courier = courier
        self.source = source
        self.store = store
        self.dead_letters = dead_letters
        self.sinks = sinks
        self.metrics = metrics or Metrics()
        det = settings.detection
        self.plan, self.detection = build_plan(settings, store)
        seg = settings.segments
        self.segmenter = Segmenter(
            seg.dimensions, max_segments=seg.max_segments, rollups=seg.rollups
        )
        self.clock = clock
        self.intake = Intake.from_settings(settings.source, clock)
        self.rollups = RollupStage(
            window_target_arl0(settings, anchored=self.detection.get("reference") is not None),
            k=seg.window_k,
            warmup=seg.window_warmup,
            top_k=det.categorical.top_k,
        )
        self._failures_logged: set[type[Exception]] = set()
        self._load_state()
        tree = Route.from_settings(settings.router.route)
        self._resolve_tree = tree if any_auto_resolve(tree) else None
        self._record_ms = 0  # latest record time seen: the clock of auto-resolve
        mv = det.multivariate
        # scopes whose segments get the multivariate detector (calibrated mode only)
        self._mv_scopes = set(mv.scopes) if mv.enabled and det.mode == "calibrated" else set()
        self._batches = 0
        self._homes: dict[str, PartitionKey] = {}  # leaf segment -> partition it came from
        self._split: tuple[str, PartitionKey, PartitionKey] | None = None  # one seen split
        self._split_said = False
        if courier is not None and settings.faults.crash_at == "notification-sent-unrecorded":
            courier.on_delivered = lambda _attempt: self._maybe_crash(
                "notification-sent-unrecorded", signalled=True
            )

    def _load_state(self) -> None:
        """(Re)build everything the checkpoints hold from the store: detector banks, roll-up
        windows and watchers, feature kinds, the label joiner, the signals in force. At
        start, and again when partitions are assigned or a checkpoint was fenced (another
        member may have written them: the store is the truth, never this memory)."""
        settings, store, det = self.settings, self.store, self.settings.detection
        seg = settings.segments
        self.observer = Observer(det.features, det.max_features)
        states = store.detector_states()
        labels_blob = states.pop(LABELS_STATE_KEY, None)
        features_blob = states.pop(FEATURES_STATE_KEY, None)
        if features_blob is not None:
            self.observer.restore(features_blob)
        # roll-ups: event-time windows of mergeable summaries, judged by window detectors
        judge = WindowJudge(
            int(seg.window_s * 1000), int(seg.allowed_lateness_s * 1000), int(seg.idle_s * 1000)
        )
        self.windows = WindowStage(judge.width_ms, judge.lateness_ms)
        self.exchange: MemoryExchange | StoreExchange
        windows_blob = states.pop(WINDOWS_STATE_KEY, None)
        judge_blob = states.pop(JUDGE_STATE_KEY, None)
        if hasattr(self.source, "all_partitions"):  # a consumer group: through the store
            if judge_blob is not None:
                judge = pickle.loads(judge_blob)
            self.exchange = StoreExchange(judge, store)
            self.windows.marks = {p: m for p, (m, _) in store.window_marks().items()}
        else:
            self.exchange = (
                pickle.loads(windows_blob) if windows_blob is not None else MemoryExchange(judge)
            )
            self.windows.marks = {p: m for p, (m, _) in self.exchange.marks.items()}
        self.windows.closed_to = self.exchange.judge.closed_to
        decisions = {
            k[len(DECISION_STATE_PREFIX) :]: states.pop(k)
            for k in [k for k in states if k.startswith(DECISION_STATE_PREFIX)]
        }
        self.rollups.restore(states)
        self._kinds_saved = self.observer.n_kinds
        self.banks: dict[str, DetectorBank] = {
            key: DetectorBank.from_state(blob, self.plan, key) for key, blob in states.items()
        }
        self.joiner: LabelJoiner | None = None
        if self.source.label_sources:
            lab = settings.labels
            self.joiner = (
                pickle.loads(labels_blob)
                if labels_blob is not None
                else LabelJoiner(int(lab.window_s * 1000), lab.max_pending)
            )
        b = det.budget
        self.engine = DecisionEngine.from_signals(
            settings.decisions,
            store.active_signals(),
            Persistence(b.confirm_alarms, b.confirm_within),
        )
        self.engine.restore_scopes(decisions)

    def _assigned(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Partitions were assigned (called from the source's poll, not its callback):
        claim them at this generation, reload the state, and say where to seek."""
        fence = self._fence()
        if fence is not None:
            self.store.claim(fence.member, fence.generation, partitions)
        self._load_state()
        return self.store.offsets()

    def _outage(self, exc: StoreUnavailable, stop: threading.Event) -> None:
        """The history store went away mid-batch: wait for it (``history.outage_wait_s``),
        then forget the batch in hand, reload the state from the store and read again from
        its offsets (whether the last checkpoint committed or not, the store says)."""
        limit = self.settings.history.outage_wait_s
        log.warning(
            "history store unreachable, waiting up to %.0fs for it (history.outage_wait_s); "
            "the batch in hand will be read again from the last checkpoint: %s",
            limit,
            exc,
        )
        t0 = time.monotonic()
        pause = 0.5
        while True:
            if stop.wait(pause):
                raise exc  # asked to stop while the store is away: nothing more to write
            try:
                self.store.ping()
                break
            except StoreError as again:
                if time.monotonic() - t0 >= limit:
                    raise StoreError(
                        f"the history store stayed unreachable for {limit:.0f}s "
                        f"(history.outage_wait_s): {again}"
                    ) from None
            pause = min(pause * 2, 5.0)
        self._load_state()
        offsets = self.store.offsets()
        self.source.rewind(offsets)  # type: ignore[attr-defined]
        log.warning(
            "history store is back after %.1fs; resumed from the last checkpoint",
            time.monotonic() - t0,
        )

    def _may_close(self) -> bool:
        """Could an idle poll close a window? (Windows are open here, or in the store and
        this member judges.)"""
        ex = self.exchange
        if isinstance(ex, MemoryExchange):
            return bool(ex.parts)
        return self._partitions()[1]

    def _partitions(self) -> tuple[set[PartitionKey], bool]:
        """Every input partition the roll-ups wait for, and whether this process judges
        them: a consumer group's lowest partition's owner does (one judge per group); a
        source without a group (a file, the demo) always does."""
        every = getattr(self.source, "all_partitions", None)
        held = getattr(self.source, "partitions", None)
        mine: set[PartitionKey] = set(held()) if held is not None else set()
        if every is None:
            return mine, True
        parts: set[PartitionKey] = set(every()) | mine
        return parts, bool(parts) and min(parts) in mine

    def _fence(self) -> Fence | None:
        """Who writes the next checkpoint (a consumer-group member at its generation), or
        None for a source without a group (a file, the demo)."""
        fence = getattr(self.source, "fence", None)
        return fence() if fence is not None else None

    def run(
        self,
        stop: threading.Event | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> RunSummary:
        stop = stop or threading.Event()
        started = time.monotonic()
        run_id = self.store.start_run(self.source.name, self.settings.dump())
        summary = RunSummary(run_id=run_id, source=self.source.name)
        if hasattr(self.source, "on_assign"):
            self.source.on_assign = self._assigned
        self.source.resume(self.store.offsets())
        self._deliver(summary)  # signals left pending by an earlier run
        self._notify()
        tick_ms = int(self.settings.router.tick_s * 1000)
        batch_size = self.settings.source.batch_size
        idle_exit = self.settings.source.idle_exit_s
        last_data = time.monotonic()
        status = "failed"
        try:
            while not stop.is_set() and not self.source.exhausted:
                try:
                    records = self.source.poll(batch_size)
                    if not records:
                        if self._may_close():
                            self._process(run_id, [], summary)  # idle partitions release windows
                        if (
                            self.courier is not None
                            and _now_ms() - self.courier.last_tick_ms >= tick_ms
                        ):
                            self._notify()  # retries and back-off progress on a quiet stream
                        if getattr(self.source, "waiting", False):
                            last_data = (
                                time.monotonic()
                            )  # idle time counts once partitions are ours
                        elif idle_exit is not None and time.monotonic() - last_data >= idle_exit:
                            log.info(
                                "no new records for %.1fs; stopping (source.idle_exit_s)", idle_exit
                            )
                            break
                        continue
                    last_data = time.monotonic()
                    self._process(run_id, records, summary)
                    if on_progress is not None:
                        on_progress(self.source.progress)
                except StoreUnavailable as exc:
                    if not hasattr(self.source, "rewind"):
                        raise  # a file or the demo: nothing to wait for
                    self._outage(exc, stop)
                    last_data = time.monotonic()
            if self.source.exhausted and not stop.is_set():
                self._process(run_id, [], summary, final=True)  # the input ended: close all
            status = "interrupted" if stop.is_set() else "ok"
        finally:
            summary.status = status
            summary.segments = self.segmenter.n_segments
            summary.overflowed = self.segmenter.overflowed
            summary.labels = self.joiner.stats() if self.joiner is not None else None
            summary.elapsed_s = time.monotonic() - started
            self.store.finish_run(run_id, status)
            save_calibrations()  # thresholds computed on the way (categorical mixes) persist
        return summary

    def _read(self, raw: RawRecord) -> _Observed | _Labelled:
        """Everything fallible about one record, before the batch is touched.

        Raises :class:`BadRecord` with the reason the record cannot be used: the intake's
        (schema, future timestamp), the observer's (a feature changed its type), or, as the
        last line of defence, ``processing failed: <Type>: <message>`` for anything else
        that raises (logged as a warning, with the traceback the first time per type)."""
        pos = raw.position
        try:
            if pos.source in self.source.label_sources:
                label = self.intake.label(raw.value)
                joiner = self.joiner
                return _Labelled(label.ts_ms, joiner.join(label) if joiner is not None else None)
            rec = self.intake.record(raw.value)
            obs = self.observer.observe(rec)  # first: it may refuse the record (a type change)
            segments = self.segmenter.segments_for(
                tuple(rec.dimension(d) for d in self.segmenter.dimensions)
            )
            vector = None
            mv_every = self.settings.detection.multivariate.sample_every
            if self._mv_scopes and (pos.offset + pos.partition) % mv_every == 0:
                vector = {
                    n: float(x)
                    for n, x, k in obs
                    if k is SignalKind.NUMERIC and n.startswith("feature:")
                }
            return _Observed(rec.request_id, rec.ts_ms, rec.prediction, segments, obs, vector)
        except BadRecord:
            raise
        except Exception as exc:  # one record never stops the monitor
            failure = BadRecord(f"processing failed: {type(exc).__name__}: {exc}")
            first = type(exc) not in self._failures_logged
            self._failures_logged.add(type(exc))
            log.warning("record at %s dead-lettered: %s", pos, failure.reason, exc_info=first)
            raise failure from exc

    def _process(
        self, run_id: str, records: list[RawRecord], summary: RunSummary, final: bool = False
    ) -> None:
        """One batch (``final``: none, the input has ended: close every open window)."""
        batch = Batch()
        windows = self.windows
        late_before = windows.late
        now = self.clock()
        self.engine.sync(self.store.active_signals())  # a person may have lifted a HALT
        counts: dict[tuple[str, str], int] = defaultdict(int)
        offsets = batch.offsets
        joiner = self.joiner
        touched: set[str] = set()
        feed = BatchFeed()  # fed to the detectors per batch (vectorised where they can)
        homes = self._homes
        mv_scopes = self._mv_scopes
        overflow_before = self.segmenter.overflowed
        for raw in records:
            pos = raw.position
            key = (pos.source, pos.partition)
            if offsets.get(key, -1) <= pos.offset:
                offsets[key] = pos.offset + 1
            try:
                item = self._read(raw)
            except BadRecord as exc:
                self.dead_letters.add(DeadLetter(raw.value, exc.reason, pos, raw.key))
                batch.dead_letters += 1
                continue
            # from here on nothing can fail: the record's contribution is applied whole
            if isinstance(item, _Labelled):
                batch.labels += 1
                outcome = item.outcome
                windows.heard(key, item.ts_ms)
                if outcome is not None:
                    kind = SignalKind.RATE if outcome.binary else SignalKind.NUMERIC
                    obs: list[Observation] = [(outcome.signal, outcome.value, kind)]
                    leaves = [s for s in outcome.segments if s.scope == "segment"]
                    for seg in leaves:
                        touched.add(seg.key)
                    feed.add(leaves, obs, (pos, item.ts_ms))
                    rolled = [s for s in outcome.segments if s.scope != "segment"]
                    if rolled:
                        windows.add(rolled, obs, item.ts_ms, pos)
                continue
            batch.records += 1
            segments = item.segments
            if joiner is not None:
                joiner.expect(item.request_id, item.ts_ms, item.prediction, segments)
            leaves, rolled = [], []
            for seg in segments:
                counts[(seg.key, seg.scope)] += 1
                (leaves if seg.scope == "segment" else rolled).append(seg)
            for seg in leaves:
                touched.add(seg.key)
                home = homes.get(seg.key)
                if home is None:
                    homes[seg.key] = key
                elif home != key and self._split is None:
                    self._split = (seg.key, home, key)
            feed.add(leaves, item.obs, (pos, item.ts_ms))  # leaves: record by record
            windows.heard(key, item.ts_ms)
            if rolled:  # roll-ups: into their event-time windows
                windows.add(rolled, item.obs, item.ts_ms, pos)
            if item.vector is not None and len(item.vector) >= 2:
                for seg in leaves:
                    if seg.scope in mv_scopes:
                        feed.add_vector(seg, item.vector)
            if item.ts_ms > self._record_ms:
                self._record_ms = item.ts_ms
        own = windows.drain()
        marks = windows.marks_of(offsets, now)
        partitions, judging = self._partitions()
        if (
            self._split is not None
            and not self._split_said
            and isinstance(self.exchange, StoreExchange)
        ):
            held = getattr(self.source, "partitions", None)
            if held is not None and set(held()) != partitions:  # other members hold some
                seg_key, p1, p2 = self._split
                log.warning(
                    "leaf segment %s arrives on %s[%d] and %s[%d] while other members read "
                    "some partitions: its leaf detectors see only this member's share. Key "
                    "the input topics by segment when running several members (docs/fleet.md)",
                    seg_key,
                    *p1,
                    *p2,
                )
                self._split_said = True
        closed, orphans = self.exchange.exchange(
            own, marks, partitions, now, batch, judging=judging, final=final
        )
        windows.closed_to = self.exchange.judge.closed_to
        windows.late += orphans  # parts that reached the judge after their window closed
        if not records and not closed:
            return  # an idle poll that closed no window: nothing to checkpoint
        batch.marks = marks
        self._detect(feed, closed, batch)
        for scope in sorted(self.engine.changed):  # written by the scope's owner only
            batch.states[DECISION_STATE_PREFIX + scope] = self.engine.scope_state(scope)
        self.engine.changed.clear()
        batch.counts = dict(counts)
        batch.states |= {key: self.banks[key].state() for key in touched}
        for scope_key in sorted({w.segment.key for w in closed}):
            row, blob = self.rollups.state(scope_key)
            batch.states[row] = blob
        if joiner is not None:
            batch.states[LABELS_STATE_KEY] = pickle.dumps(joiner, protocol=pickle.HIGHEST_PROTOCOL)
        if self.observer.n_kinds != self._kinds_saved:
            batch.states[FEATURES_STATE_KEY] = self.observer.state()
            self._kinds_saved = self.observer.n_kinds

        batch.late = windows.late - late_before
        self.dead_letters.flush()
        t0 = time.monotonic()
        try:
            self.store.checkpoint(run_id, batch, [s.name for s in self.sinks], self._fence())
        except Fenced as exc:
            # a newer member owns a partition of this batch: write nothing, forget it,
            # and let the next poll rejoin the group (its assignment reloads the state)
            log.warning("checkpoint fenced, batch dropped (%s); reloading from the store", exc)
            self._load_state()
            return
        self.metrics.checkpoints.record(time.monotonic() - t0)
        self._batches += 1
        self._maybe_crash("after-checkpoint", signalled=bool(batch.signals))
        self._auto_resolve()
        self._deliver(summary)
        self._notify()
        self._maybe_crash("after-delivery-recorded", signalled=bool(batch.signals))
        self.source.commit(batch.offsets)

        summary.records += batch.records
        summary.dead_letters += batch.dead_letters
        summary.late += batch.late
        summary.drift_events += len(batch.events)
        summary.signals.extend(batch.signals)
        self.metrics.records.add(batch.records)
        self.metrics.dead_letters.add(batch.dead_letters)
        self.metrics.late.add(batch.late)
        self.metrics.drift_events.add(len(batch.events))
        self.metrics.signals.add(len(batch.signals))
        self.metrics.overflow.add(self.segmenter.overflowed - overflow_before)
        for s in batch.signals:
            log.log(logging.WARNING, "%s %s: %s", s.level.value, s.segment, s.reason)

    def _auto_resolve(self) -> None:
        """Resolve the signals whose routes allow it once their scope is quiet."""
        if self._resolve_tree is None:
            return
        quiet_ms = int(self.settings.router.resolve_quiet_s * 1000)
        rows = self.store.signal_states()
        last = self.store.last_event_ms()
        for row, reason in resolvable(rows, self._resolve_tree, last, self._record_ms, quiet_ms):
            self.store.transition(row["signal"].id, "RESOLVED", "driftgate", reason)
            log.info("%s %s: %s", row["signal"].level.value, row["signal"].segment, reason)

    def _notify(self) -> None:
        """Router pass + delivery from the notifications outbox (``monitor.router.courier``)."""
        if self.courier is None:
            return
        t0 = time.monotonic()
        report = self.courier.tick()
        self.metrics.notifications.add(report.delivered)
        for a in report.given_up:  # each was logged as an ERROR by the delivery engine
            self.metrics.notifications_given_up.add(
                1, {"receiver": a.receiver, "outcome": a.outcome}
            )
        if report.failed:
            log.error(
                "%d notifications given up and delivered nowhere (see `driftgate status`)",
                report.failed,
            )
        log.debug("router pass in %.3fs: %s", time.monotonic() - t0, report)

    def _maybe_crash(self, point: CrashPoint, *, signalled: bool) -> None:
        """Fault injection (settings.faults): die like kill -9 at a named point of a batch.

        Fires at ``point`` in the batch ``faults.crash_after_batches``, or, with
        ``faults.crash_on_signal``, the first time ``signalled`` (the batch raised a signal;
        at the ``*-sent-unrecorded`` points: something was just sent). Never before the first
        batch (not in the deliveries at start).
        """
        f = self.settings.faults
        if f.crash_at != point or self._batches < 1:
            return
        if signalled if f.crash_on_signal else self._batches >= f.crash_after_batches:
            log.error("fault injection: crashing %s (batch %d)", point, self._batches)
            os._exit(137)

    def _detect(self, feed: BatchFeed, closed: list[ClosedWindow], batch: Batch) -> None:
        """Feed the batch to every leaf segment's detectors and the closed windows to the
        roll-ups'; changes become events in the event-time order of their triggering
        records (a roll-up's: the window's completing record; ties by position), so
        decisions depend neither on dictionary order nor on the partition layout."""
        found: list[tuple[Position, Segment, str, Change, bool]] = []
        for window in closed:
            for name, kind, change in self.rollups.judge(window):
                fired_at = window.last_position
                rate = kind in (SignalKind.RATE, SignalKind.CATEGORY)
                found.append((fired_at, window.segment, name, change, rate))
        for seg, name, kind, xs, tags in feed.streams():
            bank = self.banks.get(seg.key)
            if bank is None:
                bank = self.banks[seg.key] = DetectorBank(self.plan, seg.key)
            for change in bank.update_many(name, xs, kind, tags):
                fired_at = cast(tuple[Position, int], change.tag)[0]
                found.append((fired_at, seg, name, change, kind is SignalKind.RATE))
        # event time first: a roll-up's windows then decide in window order whatever the
        # partitions of their completing records (positions only break ties)
        found.sort(
            key=lambda f: (
                cast(tuple[Position, int], f[3].tag)[1],
                f[0],
                f[1].key,
                f[2],
                f[3].detector,
            )
        )
        for _, seg, name, change, rate in found:
            self._event(seg, name, change, batch, rate)

    def _event(self, seg: Segment, name: str, change: Change, batch: Batch, rate: bool) -> None:
        """A confirmed change becomes a drift event, and maybe a signal."""
        fired_at, ts_ms = cast(tuple[Position, int], change.tag)
        event = DriftEvent(
            segment=seg.key,
            scope=seg.scope,
            labels=seg.labels,
            signal=name,
            detector=change.detector,
            effect=change.effect,
            before=change.before,
            after=change.after,
            scale=change.scale,
            observations=change.n,
            ts_ms=ts_ms,
            position=fired_at,
            rate=rate,
            measure=change.measure,
        )
        batch.events.append(event)
        sig = self.engine.decide(event)
        if sig is not None:
            batch.signals.append(sig)

    def _deliver(self, summary: RunSummary) -> None:
        undelivered = 0
        member = self.settings.source.member_id
        for sink in self.sinks:
            # claimed: two members of a fleet never deliver one signal at the same time
            pending = self.store.claim_pending(sink.name, member, DELIVERY_LEASE_MS, _now_ms())
            if not pending:
                continue
            try:
                sink.deliver(pending)
            except SinkError as exc:
                undelivered += len(pending)
                log.warning("%s", exc)
                continue
            # sent, not yet recorded: a crash here sends these again (same signal ids)
            self._maybe_crash("signal-sent-unrecorded", signalled=True)
            self.store.mark_delivered(sink.name, [s.id for s in pending])
        summary.undelivered = undelivered
