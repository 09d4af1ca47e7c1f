"""The multivariate detector wired into the monitor: a joint shift no single feature shows."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.events import DriftEvent
from monitor.pipeline import JOINT_SIGNAL, Monitor
from monitor.sinks import MemoryDeadLetters, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryStore
from tests.factories import COHORTS, REGIONS, record, to_bytes

SHIFTED = ("eu-west", "pro")
LEAF = "region=eu-west,cohort=pro"


def correlated_grid(n: int, flip_at: int, seed: int = 3) -> list[dict[str, Any]]:
    """Features a, b ~ N(0, 1) with correlation 0.8; in SHIFTED it flips to -0.8 at flip_at."""
    rng = random.Random(seed)
    out, i = [], 0
    for k in range(n):
        for region in REGIONS:
            for cohort in COHORTS:
                rho = -0.8 if (region, cohort) == SHIFTED and k >= flip_at else 0.8
                a, z = rng.gauss(0, 1), rng.gauss(0, 1)
                b = rho * a + (1 - rho * rho) ** 0.5 * z
                out.append(record(i, region=region, cohort=cohort, features={"a": a, "b": b}))
                i += 1
    return out


def run(tmp_path: Path, recs: list[dict[str, Any]], **mv: Any) -> HistoryStore:
    settings = load_settings(
        overrides={
            "source": {"batch_size": 500},
            "detection": {"warmup": 400, "multivariate": {"warmup": 400, **mv}},
        },
        search_cwd=False,
    )
    store = HistoryStore(tmp_path / "h.db")
    mon = Monitor(
        settings,
        ListSource(to_bytes(recs), name="logs"),
        store,
        MemoryDeadLetters(),
        [MemorySink("m")],
    )
    mon.run()
    return store


def events(store: HistoryStore) -> list[DriftEvent]:
    return [e for e in store.history() if isinstance(e, DriftEvent)]


def test_a_correlation_flip_is_caught_jointly_and_not_per_feature(tmp_path: Path) -> None:
    store = run(tmp_path, correlated_grid(1500, flip_at=800))
    joint = [e for e in events(store) if e.signal == JOINT_SIGNAL]
    assert [e.segment for e in joint] == [LEAF], "only the flipped segment, once"
    assert joint[0].detector == "multivariate"
    assert joint[0].position.offset > 800 * 9, "after the flip"
    assert joint[0].effect >= 0.5
    marginal = [e for e in events(store) if e.signal in ("feature:a", "feature:b")]
    assert marginal == [], "the marginals did not move: no per-feature detector fires"


def test_disabled_or_other_scopes_leave_the_leaf_unwatched(tmp_path: Path) -> None:
    off = run(tmp_path / "off", correlated_grid(1500, flip_at=800), enabled=False)
    assert not [e for e in events(off) if e.signal == JOINT_SIGNAL]
    none = run(tmp_path / "none", correlated_grid(1500, flip_at=800), scopes=[])
    assert not [e for e in events(none) if e.signal == JOINT_SIGNAL]


def test_a_roll_up_scope_is_refused_with_the_reason() -> None:
    """Roll-ups are judged on event-time window summaries; raw vectors in arrival order
    would make the joint detector see Kafka's partition blocks as drift."""
    with pytest.raises(ConfigError, match=r"scopes .*'global'.* leaf segments only"):
        load_settings(
            overrides={"detection": {"multivariate": {"scopes": ["global"]}}}, search_cwd=False
        )
