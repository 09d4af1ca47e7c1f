"""Delayed labels: joined to predictions, correctness watched per segment."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from monitor.config import load_settings
from monitor.pipeline import Monitor
from monitor.schema import LabelRecord
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import FileSource
from monitor.sources.merged import MergedFileSource
from monitor.store import HistoryStore
from tests.factories import grid_stream


def test_rising_error_rate_from_delayed_labels_signals_the_segment(tmp_path: Path) -> None:
    rng = random.Random(8)
    preds = grid_stream(1500, seed=2)
    labels = []
    for i, p in enumerate(preds):
        k = i // 9
        bad_segment = (p["region"], p["cohort"]) == ("us-east", "enterprise")
        p_err = 0.40 if bad_segment and k >= 900 else 0.05
        wrong = rng.random() < p_err
        if rng.random() < 0.9:  # 10 % of predictions never get a label
            labels.append(
                {
                    "request_id": p["request_id"],
                    "timestamp": p["timestamp"] + 5_000,
                    "label": "nope" if wrong else p["prediction"],
                }
            )
    (tmp_path / "preds.jsonl").write_bytes(b"\n".join(orjson.dumps(p) for p in preds) + b"\n")
    (tmp_path / "labels.jsonl").write_bytes(
        b"\n".join(orjson.dumps(x) for x in labels) + b"\n{broken label\n"
    )
    settings = load_settings(
        overrides={
            "labels": {"path": str(tmp_path / "labels.jsonl"), "window_s": 60},
            "detection": {"warmup": 400},  # the segment sees ~800 labels before the change
        },
        search_cwd=False,
    )
    source = MergedFileSource(
        FileSource(str(tmp_path / "preds.jsonl")), FileSource(str(tmp_path / "labels.jsonl"))
    )
    store = HistoryStore(tmp_path / "h.db")
    sink, dead = MemorySink(), MemoryDeadLetters()
    try:
        summary = Monitor(settings, source, store, dead, [sink]).run()
    finally:
        source.close()

    assert summary.records == len(preds)
    assert [d.raw for d in dead.letters] == [b"{broken label"]
    assert summary.labels is not None
    assert summary.labels["labelled"] == len(labels)
    assert 0.07 < summary.labels["share_unlabelled"] < 0.13
    label_halts = {s.segment for s in sink.signals if s.signal == "label_error_rate"}
    assert "region=us-east,cohort=enterprise" in label_halts
    assert not {k for k in label_halts if k.startswith("region=") and "," in k} - {
        "region=us-east,cohort=enterprise"
    }
    events = [e for e in store.history() if getattr(e, "signal", "") == "label_error_rate"]
    leaf = next(e for e in events if e.segment == "region=us-east,cohort=enterprise")
    assert leaf.position.source.endswith("labels.jsonl")


def test_label_outside_the_window_or_unknown_is_counted_not_joined() -> None:
    from monitor.labels import LabelJoiner
    from monitor.segments import Segmenter

    segs = Segmenter(["region"]).segments_for(("eu",))
    j = LabelJoiner(window_ms=1_000, max_pending=2)
    j.expect("a", 0, 1.5, segs)
    late = LabelRecord(request_id="a", timestamp=5_000, label=1.0)
    assert j.join(late) is None
    assert j.join(LabelRecord(request_id="zzz", timestamp=5_000, label=1.0)) is None
    for rid in ("b", "c", "d"):  # cap 2: the oldest pending prediction is evicted
        j.expect(rid, 6_000, 2.0, segs)
    out = j.join(LabelRecord(request_id="d", timestamp=6_500, label=1.25))
    assert out is not None
    assert (out.signal, out.value, out.binary) == ("label_abs_error", 0.75, False)
    st = j.stats()
    assert st["late_labels"] == 1
    assert st["unmatched_labels"] == 1
    assert st["unlabelled"] == 2  # the late one and the evicted one
