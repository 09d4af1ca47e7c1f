"""No record can stop the monitor: hostile bytes, values and streams, on the record path.

Property tests (hypothesis) drive raw bytes → :class:`~monitor.intake.Intake` → record →
:class:`~monitor.observe.Observer` → observations and assert that whatever is accepted is
safe to feed to a detector (finite, bounded, of the signal's one kind), and that a monitor
fed any mix of good and hostile records counts every good one and dead-letters every bad
one with its reason. The catalogue of hostile kinds is ``tests/hostile.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors import SignalKind
from monitor.config import load_settings
from monitor.events import Position
from monitor.intake import Intake
from monitor.labels import LabelJoiner
from monitor.observe import Observer
from monitor.pipeline import Monitor
from monitor.schema import (
    EPOCH,
    MAX_MAGNITUDE,
    MAX_TS_MS,
    BadRecord,
    InferenceLog,
    LabelRecord,
    parse_record,
)
from monitor.segments import Segmenter
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sinks.base import DeadLetter
from monitor.sinks.deadletter_file import FileDeadLetters
from monitor.sinks.deadletter_kafka import KafkaDeadLetters
from monitor.sources import FileSource, ListSource
from monitor.sources.base import RawRecord
from monitor.sources.merged import MergedFileSource
from monitor.store import HistoryStore
from tests.factories import T0, grid_stream, record, to_bytes
from tests.hostile import DAY_MS, Hostile, hostile_labels, hostile_records

NOW = T0 + 30 * DAY_MS  # the monitor's clock in these tests: a month after the factory data
ROOT = Path(__file__).resolve().parents[2]


def clock() -> int:
    return NOW


def intake() -> Intake:
    return Intake(max_future_ms=DAY_MS, clock=clock)


def check_safe(obs: list[tuple[str, float | str, SignalKind]]) -> None:
    """What a detector may be fed: finite bounded numbers, 0/1 rates, string categories."""
    for name, x, kind in obs:
        if kind is SignalKind.CATEGORY:
            assert isinstance(x, str), name
        else:
            assert isinstance(x, float), name
            assert math.isfinite(x), (name, x)
            assert abs(x) <= MAX_MAGNITUDE, (name, x)
            # independent of the bound's value: squares summed over up to 1e100
            # observations (any detector's running moments) stay finite
            assert math.isfinite(x * x * 1e100), (name, x)
            if kind is SignalKind.RATE:
                assert x in (0.0, 1.0), (name, x)


# --- every hostile kind, one by one ---------------------------------------------------------

RECORDS = hostile_records(NOW)
LABELS = hostile_labels(NOW)


@pytest.mark.parametrize("h", RECORDS, ids=[h.name for h in RECORDS])
def test_each_hostile_record_is_refused_with_a_one_line_reason(h: Hostile) -> None:
    observer, gate = Observer(), intake()
    if h.after_good:
        observer.observe(gate.record(orjson.dumps(record())))
    with pytest.raises(BadRecord) as exc:
        observer.observe(gate.record(h.raw))
    assert h.reason in exc.value.reason
    assert exc.value.reason.splitlines() == [exc.value.reason]
    assert len(exc.value.reason) <= 1000


@pytest.mark.parametrize("h", LABELS, ids=[h.name for h in LABELS])
def test_each_hostile_label_is_refused_with_a_one_line_reason(h: Hostile) -> None:
    with pytest.raises(BadRecord) as exc:
        intake().label(h.raw)
    assert h.reason in exc.value.reason
    assert exc.value.reason.splitlines() == [exc.value.reason]


def test_the_future_limit_is_inclusive_and_follows_the_clock() -> None:
    at_limit = orjson.dumps(record(timestamp=NOW + DAY_MS))
    assert intake().record(at_limit).ts_ms == NOW + DAY_MS
    with pytest.raises(BadRecord, match="timestamp in the future"):
        intake().record(orjson.dumps(record(timestamp=NOW + DAY_MS + 1)))
    later = Intake(max_future_ms=DAY_MS, clock=lambda: NOW + 1)
    assert later.record(orjson.dumps(record(timestamp=NOW + DAY_MS + 1))).ts_ms == NOW + DAY_MS + 1


def test_reasons_stay_one_line_and_short_whatever_the_record_holds() -> None:
    features: dict[str, Any] = {f"bad\nname{i}\u2028": [i] for i in range(50)}
    with pytest.raises(BadRecord) as exc:
        parse_record(orjson.dumps(record(features=features, timestamp="x\n" * 400)))
    reason = exc.value.reason
    assert reason.splitlines() == [reason]
    assert "\\n" in reason  # escaped, not dropped
    assert "more" in reason  # 51 errors: the first few listed, the rest counted
    assert len(reason) <= 1000


def test_large_but_bounded_values_keep_every_detector_state_finite(tmp_path: Path) -> None:
    """1e100 (the bound) mixed into N(0, 1) data: no detector sum overflows to inf/NaN."""
    recs = grid_stream(300, seed=3)
    for r in recs[::7]:
        r["features"] = {"x": MAX_MAGNITUDE * max(-1.0, min(1.0, r["features"]["x"] / 3))}
        r["latency_ms"] = MAX_MAGNITUDE
    mon, _store, _, dead = make(tmp_path, to_bytes(recs))
    summary = mon.run()
    assert summary.records == len(recs)
    assert dead.letters == []
    bad = [path for key, bank in mon.banks.items() for path in non_finite(bank, key)]
    assert bad == []


def non_finite(obj: object, path: str, depth: int = 0) -> list[str]:
    """Paths of the non-finite floats in an object graph (detector state), by attribute.

    ``_h`` is skipped: an unset threshold is +inf on purpose (categorical detectors)."""
    if isinstance(obj, float):
        return [] if math.isfinite(obj) or path.endswith("._h") else [path]
    if isinstance(obj, np.ndarray):
        finite = obj.dtype.kind != "f" or bool(np.isfinite(obj).all())
        return [] if finite else [path]
    if depth > 8 or isinstance(obj, str | bytes | int):
        return []
    if isinstance(obj, dict):
        items: list[tuple[str, object]] = [(f"[{k!r}]", v) for k, v in obj.items()]
    elif isinstance(obj, list | tuple):
        items = [(f"[{i}]", v) for i, v in enumerate(obj[:64])]
    else:
        attrs = dict(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    attrs[slot] = getattr(obj, slot)
        items = [(f".{k}", v) for k, v in attrs.items()]
    return [p for k, v in items for p in non_finite(v, path + k, depth + 1)]


# --- properties: bytes → record → observations ---------------------------------------------

HUGE = [1e300, -1e300, 1e101, -1e101, MAX_MAGNITUDE, -MAX_MAGNITUDE, 2**64, -(2**70)]
SPECIAL_VALUES: list[object] = [
    MAX_TS_MS, MAX_TS_MS + 1, -1, 0, float("nan"), float("inf"), -float("inf"),
    "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-11-23T00:00:00Z",
    "2026-11-23T00:00:00", "", "x" * 300, {"label": [1]}, {"value": 1e300}, {"class": "a"},
]  # fmt: skip
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(HUGE)
    | st.sampled_from(SPECIAL_VALUES),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["label", "class", "value", "x", "lang"]) | st.text(max_size=4),
            children,
            max_size=3,
        )
    ),
    max_leaves=6,
)
FIELDS = [*record(), "features.x", "features.y", "features.lang", "dimensions.team"]


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    """A factory record with some fields replaced by any JSON value (also NaN, Infinity and
    integers beyond 64 bits, which ``json`` writes) or removed."""
    rec: dict[str, Any] = record(3)
    rec["features"] = dict(rec["features"])
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        top, _, sub = name.partition(".")
        if draw(st.booleans()) and not sub:
            rec.pop(top, None)
            continue
        value = draw(json_value)
        if sub:
            if not isinstance(rec.get(top), dict):
                rec[top] = {}
            rec[top][sub] = value
        else:
            rec[top] = value
    return json.dumps(rec).encode()


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_bytes())
def test_an_accepted_record_is_always_safe_to_observe(raw: bytes) -> None:
    observer = Observer()
    observer.observe(intake().record(orjson.dumps(record())))  # features.x is a number now
    try:
        rec = intake().record(raw)
        obs = observer.observe(rec)
    except BadRecord as exc:
        reason: str | None = exc.reason
    else:
        reason = None
    if reason is not None:
        assert reason.splitlines() == [reason]
        return
    assert 0 <= rec.ts_ms <= NOW + DAY_MS
    check_safe(obs)
    segments = Segmenter(["region", "cohort", "team"]).segments_for(
        tuple(rec.dimension(d) for d in ("region", "cohort", "team"))
    )
    assert segments


numbers = (
    st.floats()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from(HUGE)
    | st.floats(min_value=-1e102, max_value=1e102)
)


@settings(deadline=None, max_examples=400)
@given(st.sampled_from(["features.x", "latency_ms", "prediction", "label"]), numbers)
def test_a_number_is_taken_exactly_when_finite_and_within_the_bound(place: str, x: float) -> None:
    """Every numeric place of both record kinds: JSON text of any number (``json`` writes
    NaN, Infinity and big integers); it is taken as it is, or refused naming the place."""
    if place == "label":
        raw = json.dumps({"request_id": "r", "timestamp": T0, "label": x}).encode()
    elif place == "features.x":
        raw = json.dumps(record(features={"x": x})).encode()
    else:
        raw = json.dumps(record(**{place: x})).encode()
    acceptable = math.isfinite(x) and abs(x) <= MAX_MAGNITUDE and (place != "latency_ms" or x >= 0)
    try:
        if place == "label":
            got: Any = intake().label(raw).label
        else:
            rec = intake().record(raw)
            got = rec.features["x"] if place == "features.x" else getattr(rec, place)
            check_safe(Observer().observe(rec))
    except BadRecord as exc:
        reason: str | None = exc.reason
    else:
        reason = None
    if acceptable:
        assert reason is None
        assert float(got) == float(x)  # beyond 64 bits an integer arrives as its double
    else:
        assert reason is not None
        assert place in reason or "invalid JSON" in reason


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=200) | hostile_bytes())
def test_only_bad_record_escapes_the_record_path(raw: bytes) -> None:
    """Any bytes at all: a safe record or a BadRecord, never another exception."""
    with contextlib.suppress(BadRecord):
        check_safe(Observer().observe(intake().record(raw)))


@settings(deadline=None, max_examples=300)
@given(st.dictionaries(st.sampled_from(list(record())), json_value, max_size=4))
def test_python_values_that_json_cannot_carry_are_refused_too(over: dict[str, Any]) -> None:
    """``model_validate`` on Python values (NaN, inf, 10**400): refused or safe."""
    try:
        rec = InferenceLog.model_validate(record(**over))
    except ValueError:  # pydantic's ValidationError
        return
    assert 0 <= rec.ts_ms <= MAX_TS_MS
    check_safe(Observer().observe(rec))


offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)


@settings(deadline=None, max_examples=300)
@given(
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.datetimes(timezones=offsets).map(datetime.isoformat)
    | st.datetimes().map(datetime.isoformat)
    | st.text(max_size=30)
)
def test_timestamps_parse_exactly_or_are_refused(ts: object) -> None:
    """Epoch milliseconds and RFC 3339 strings: exact when in range, refused otherwise."""
    raw = json.dumps(record(timestamp=ts)).encode()
    try:
        got = parse_record(raw).ts_ms
    except BadRecord as exc:
        reason: str | None = exc.reason
    else:
        reason = None
    if reason is not None:
        assert "timestamp" in reason or "invalid JSON" in reason
        return
    assert 0 <= got <= MAX_TS_MS
    if isinstance(ts, int):
        assert got == ts
    elif isinstance(ts, float):
        assert abs(got - ts) < 1  # to the microsecond, then floored to the millisecond
    else:
        parsed = datetime.fromisoformat(str(ts))
        assert got == (parsed - EPOCH) // timedelta(milliseconds=1)


@settings(deadline=None, max_examples=300)
@given(json_value, json_value)
def test_an_accepted_label_joins_to_a_finite_observation(prediction: Any, label: Any) -> None:
    try:
        rec = InferenceLog.model_validate(record(prediction=prediction))
        lab = LabelRecord.model_validate({"request_id": "req-0", "timestamp": T0, "label": label})
    except ValueError:
        return
    joiner = LabelJoiner(window_ms=DAY_MS, max_pending=10)
    joiner.expect(rec.request_id, rec.ts_ms, rec.prediction, [])
    out = joiner.join(lab)
    assert out is not None
    assert math.isfinite(out.value)
    assert 0 <= out.value <= 2 * MAX_MAGNITUDE


# --- the monitor on mixed streams ------------------------------------------------------------


def make(
    tmp_path: Path, values: list[bytes], name: str = "h.db", batch_size: int = 50
) -> tuple[Monitor, HistoryStore, MemorySink, MemoryDeadLetters]:
    over = {"source": {"batch_size": batch_size}, "detection": {"warmup": 200}}
    settings_ = load_settings(overrides=over, search_cwd=False)
    store = HistoryStore(tmp_path / name)
    sink, dead = MemorySink(), MemoryDeadLetters()
    mon = Monitor(settings_, ListSource(values, name="logs"), store, dead, [sink], clock=clock)
    return mon, store, sink, dead


GOOD = to_bytes(grid_stream(20, seed=5))


@settings(
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.sampled_from(RECORDS), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=64),
)
def test_any_mix_of_good_and_hostile_records_runs_to_the_end(
    tmp_path_factory: pytest.TempPathFactory,
    bad: list[Hostile],
    rnd: Any,
    batch_size: int,
) -> None:
    values = list(GOOD)
    for h in bad:  # anywhere after the first good record (which fixes the feature types)
        values.insert(rnd.randint(1, len(values)), h.raw)
    mon, store, _, dead = make(tmp_path_factory.mktemp("mix"), values, batch_size=batch_size)
    summary = mon.run()
    assert summary.status == "ok"
    assert summary.records == len(GOOD)
    assert summary.dead_letters == len(bad) == len(dead.letters)
    assert sorted(d.raw for d in dead.letters) == sorted(h.raw for h in bad)
    for d in dead.letters:
        assert values[d.position.offset - 1] == d.raw
        expected = next(h.reason for h in bad if h.raw == d.raw)
        assert expected in d.reason
    assert store.segment_counts()["*"] == len(GOOD)
    assert store.offsets() == {("logs", 0): len(values) + 1}


def test_a_processing_failure_dead_letters_that_record_only_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Last line of defence: a record whose fields are valid but whose processing raises."""
    mon, store, _, dead = make(tmp_path, GOOD)
    real = mon.observer.observe

    def observe(rec: InferenceLog) -> Any:
        if rec.request_id in ("req-7", "req-9"):
            raise RuntimeError(f"cannot observe {rec.request_id}\nsecond line")
        return real(rec)

    mon.observer.observe = observe  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        summary = mon.run()
    assert summary.status == "ok"
    assert summary.records == len(GOOD) - 2
    assert [d.reason for d in dead.letters] == [
        "processing failed: RuntimeError: cannot observe req-7\\nsecond line",
        "processing failed: RuntimeError: cannot observe req-9\\nsecond line",
    ]
    assert [d.position.offset for d in dead.letters] == [8, 10]
    warnings = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(warnings) == 2
    assert warnings[0].exc_info
    assert not warnings[1].exc_info
    assert store.segment_counts()["*"] == len(GOOD) - 2  # nothing of them was applied


def test_a_feature_keeps_its_type_across_a_restart(tmp_path: Path) -> None:
    """The feature kinds are checkpointed: after a restart, a string for a numeric feature is
    still refused (fed to that feature's numeric detectors, it would crash every restart)."""
    first, store, _, _ = make(tmp_path, GOOD)
    first.run()
    changed = orjson.dumps(record(999, features={"x": "seven"}))
    flag = orjson.dumps(record(1000, features={"x": True}))
    again = Monitor(
        first.settings,
        ListSource([changed, flag, GOOD[0]], name="more"),
        store,
        dead := MemoryDeadLetters(),
        [MemorySink()],
        clock=clock,
    )
    summary = again.run()
    assert summary.status == "ok"
    assert summary.records == 1
    assert [d.reason.split(";")[0] for d in dead.letters] == [
        "features.x: a string, but this feature has been a number",
        "features.x: a bool, but this feature has been a number",
    ]


def test_future_records_do_not_drag_event_time_forward(tmp_path: Path) -> None:
    """A year-9999 prediction and label are dead-lettered; the labels that follow still join
    (a 9999 watermark would have expired every pending prediction)."""
    preds = grid_stream(3, seed=2)
    labels: list[bytes] = [
        orjson.dumps({"request_id": "req-0", "timestamp": "9999-01-01T00:00:00Z", "label": "ok"})
    ]
    labels += [
        orjson.dumps(
            {"request_id": p["request_id"], "timestamp": p["timestamp"] + 5_000, "label": "ok"}
        )
        for p in preds
    ]
    future = orjson.dumps(record(500, timestamp="9999-06-01T00:00:00Z"))
    lines = [orjson.dumps(p) for p in preds[:10]] + [future] + [orjson.dumps(p) for p in preds[10:]]
    (tmp_path / "preds.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "labels.jsonl").write_bytes(b"\n".join(labels) + b"\n")
    over = {"labels": {"path": str(tmp_path / "labels.jsonl"), "window_s": 60}}
    settings_ = load_settings(overrides=over, search_cwd=False)
    source = MergedFileSource(
        FileSource(str(tmp_path / "preds.jsonl")),
        FileSource(str(tmp_path / "labels.jsonl")),
        max_future_ms=DAY_MS,
        clock=clock,
    )
    dead = MemoryDeadLetters()
    try:
        summary = Monitor(
            settings_, source, HistoryStore(tmp_path / "h.db"), dead, [MemorySink()], clock=clock
        ).run()
    finally:
        source.close()
    assert summary.records == len(preds)
    assert sorted(d.raw for d in dead.letters) == sorted([future, labels[0]])
    assert all(d.reason.startswith("timestamp in the future") for d in dead.letters)
    assert summary.labels is not None
    assert summary.labels["labelled"] == len(preds)
    assert summary.labels["unlabelled"] == 0


# --- dead letters keep the original key ------------------------------------------------------


class KeyedSource(ListSource):
    """A list source whose records carry Kafka-style keys (``None`` for some)."""

    def __init__(self, values: list[tuple[bytes | None, bytes]]) -> None:
        super().__init__([v for _, v in values], name="keyed")
        self._keys = [k for k, _ in values]

    def poll(self, max_records: int) -> list[RawRecord]:
        out = super().poll(max_records)
        return [RawRecord(r.value, r.position, self._keys[r.position.offset - 1]) for r in out]


def test_dead_letters_carry_the_original_key(tmp_path: Path) -> None:
    values = [(b"k-good", GOOD[0]), (b"k-bad", b"{oops"), (None, b"[]"), (b"\xff\x00", b"{")]
    store = HistoryStore(tmp_path / "h.db")
    dead = MemoryDeadLetters()
    settings_ = load_settings(search_cwd=False)
    Monitor(settings_, KeyedSource(values), store, dead, [MemorySink()], clock=clock).run()
    assert [d.key for d in dead.letters] == [b"k-bad", None, b"\xff\x00"]
    envelopes = [d.as_dict() for d in dead.letters]
    assert envelopes[0]["key"] == "k-bad"
    assert envelopes[1]["key"] is None
    assert envelopes[2]["key_base64"] == "/wA="
    assert "key" not in envelopes[2]


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, **kwargs: Any) -> Any:
        self.sent.append({"topic": topic, **kwargs})
        return self

    def get(self, timeout: float) -> None:
        return None

    def flush(self, timeout: float) -> None:
        return None


def test_kafka_dead_letter_sink_sends_the_original_key_and_the_file_sink_records_it(
    tmp_path: Path,
) -> None:
    letters = [
        DeadLetter(b"{oops", "invalid JSON", Position("logs", 2, 41), b"eu|free", 1),
        DeadLetter(b"[]", "not a JSON object", Position("logs", 0, 7), None, 2),
    ]
    producer = FakeProducer()
    sink = KafkaDeadLetters(producer, "dlq")
    file_sink = FileDeadLetters(tmp_path / "dl.jsonl")
    for letter in letters:
        sink.add(letter)
        file_sink.add(letter)
    sink.flush()
    file_sink.flush()
    assert [m["key"] for m in producer.sent] == [b"eu|free", None]
    assert [orjson.loads(m["value"])["key"] for m in producer.sent] == ["eu|free", None]
    assert producer.sent[0]["headers"] == [("driftgate-reason", b"invalid JSON")]
    lines = [orjson.loads(x) for x in (tmp_path / "dl.jsonl").read_bytes().splitlines()]
    assert [(x["key"], x["reason"], x["position"]["offset"]) for x in lines] == [
        ("eu|free", "invalid JSON", 41),
        (None, "not a JSON object", 7),
    ]


# --- the command line, end to end ------------------------------------------------------------


def test_driftgate_run_on_a_hostile_file_exits_0_and_dead_letters_every_bad_line(
    tmp_path: Path,
) -> None:
    """`driftgate run --source file:...` on logs and labels mixed with hostile records of
    every kind: exit 0, every good record and label counted, every bad one in the
    dead-letter file with its reason and line. The wall clock is the real one here."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    good = grid_stream(30, seed=7)
    bad, bad_labels = hostile_records(now), hostile_labels(now)
    lines = [orjson.dumps(r) for r in good]
    for i, h in enumerate(bad):
        lines.insert(1 + i * 7, h.raw)  # spread over the file, after the first good record
    labels = [
        orjson.dumps(
            {"request_id": r["request_id"], "timestamp": r["timestamp"] + 1_000, "label": "ok"}
        )
        for r in good[::3]
    ]
    for i, h in enumerate(bad_labels):
        labels.insert(i * 3, h.raw)
    (tmp_path / "logs.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "labels.jsonl").write_bytes(b"\n".join(labels) + b"\n")
    (tmp_path / "driftgate.yaml").write_text(
        "source:\n  batch_size: 40\nlabels:\n  path: labels.jsonl\n  window_s: 3600\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "run",
            "--source",
            "file:logs.jsonl",
            "--no-progress",
            "--json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["status"] == "ok"
    assert summary["records"] == len(good)
    assert summary["dead_letters"] == len(bad) + len(bad_labels)
    assert summary["labels"]["labelled"] == len(good[::3])

    letters = [
        orjson.loads(x) for x in (tmp_path / "driftgate-deadletter.jsonl").read_bytes().splitlines()
    ]
    assert len(letters) == len(bad) + len(bad_labels)
    by_file = {"logs.jsonl": (lines, bad), "labels.jsonl": (labels, bad_labels)}
    for x in letters:
        name = Path(x["position"]["file"]).name
        file_lines, catalogue = by_file[name]
        raw = file_lines[x["position"]["line"] - 1]
        assert (x["raw"].encode() if "raw" in x else base64.b64decode(x["raw_base64"])) == raw
        expected = next(h for h in catalogue if h.raw == raw)
        assert expected.reason in x["reason"], (expected.name, x["reason"])
        assert x["key"] is None
