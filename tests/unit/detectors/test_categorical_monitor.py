"""The monitor in calibrated mode watches categories: a shift of a string feature's mix."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from monitor.config import load_settings
from monitor.events import DriftEvent, Level
from monitor.observe import Observer
from monitor.pipeline import Monitor
from monitor.profiles import ProfileBuilder, ProfileFilter
from monitor.schema import parse_record
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryFilter, HistoryStore
from tests.factories import record, to_bytes

LANGS = ["de", "en", "fr"]


def stream(n: int, shift_at: int, seed: int = 1) -> list[dict[str, Any]]:
    """One segment; feature ``lang`` 60/30/10 % until ``shift_at``, then 20/30/50 %."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        weights = [0.6, 0.3, 0.1] if i < shift_at else [0.2, 0.3, 0.5]
        lang = rng.choices(LANGS, weights)[0]
        out.append(
            record(
                i,
                features={"x": rng.gauss(0.0, 1.0), "lang": lang},
                latency_ms=max(0.0, rng.gauss(50.0, 5.0)),
            )
        )
    return out


def run(tmp_path: Path, records: list[dict[str, Any]], **detection: Any) -> HistoryStore:
    store = HistoryStore(tmp_path / "h.db")
    if "reference" in detection:  # build the profile from the first 2,500 records
        builder = ProfileBuilder(Observer(), ProfileFilter(), seed=1)
        for raw in to_bytes(records[:2500]):
            builder.add(parse_record(raw, 1 << 20))
        profile = builder.build(detection["reference"])
        store.save_profile(profile.name, profile.records, profile.to_dict())
    overrides = {
        "source": {"batch_size": 500},
        "detection": {"warmup": 1000, "target_arl0": 1e7, **detection},
    }
    settings = load_settings(overrides=overrides, search_cwd=False)
    sink = MemorySink("memory")
    mon = Monitor(
        settings, ListSource(to_bytes(records), name="logs"), store, MemoryDeadLetters(), [sink]
    )
    assert mon.run().status == "ok"
    return store


def lang_events(store: HistoryStore) -> list[DriftEvent]:
    return [
        e for e in store.history(HistoryFilter(signal="feature:lang")) if isinstance(e, DriftEvent)
    ]


def test_calibrated_monitor_halts_on_a_category_mix_shift(tmp_path: Path) -> None:
    store = run(tmp_path, stream(7000, shift_at=6000))
    events = lang_events(store)
    assert events, "the lang mix shift at record 6000 should be reported"
    assert {e.detector for e in events} == {"categorical"}
    assert all(e.position.offset >= 6000 for e in events)
    assert min(e.effect for e in events) > 1.0  # sqrt(0.4^2/0.6 + 0.4^2/0.1) = 1.37
    halts = [
        s
        for s in store.history(HistoryFilter(kind="HALT"))
        if not isinstance(s, DriftEvent) and s.level is Level.HALT
    ]
    assert any(s.signal == "feature:lang" for s in halts)


def test_no_category_events_on_a_stationary_stream(tmp_path: Path) -> None:
    store = run(tmp_path, stream(7000, shift_at=10**9, seed=2))
    assert lang_events(store) == []


def test_anchored_to_a_profile_the_shift_is_reported_against_it(tmp_path: Path) -> None:
    store = run(tmp_path, stream(4000, shift_at=3000), reference="canary")
    events = lang_events(store)
    assert events
    assert {e.detector for e in events} == {"categorical@canary"}  # own past still learning
    assert all(e.position.offset >= 3000 for e in events)
    assert min(e.effect for e in events) > 1.0
