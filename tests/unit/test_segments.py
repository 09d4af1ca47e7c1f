from __future__ import annotations

import logging

import pytest

from monitor.segments import OVERFLOW, Segmenter


def test_leaf_and_rollups() -> None:
    seg = Segmenter(["region", "cohort"])
    keys = [(s.key, s.scope) for s in seg.segments_for(("us-east", "pro"))]
    assert keys == [
        ("region=us-east,cohort=pro", "segment"),
        ("region=us-east", "region"),
        ("cohort=pro", "cohort"),
        ("*", "global"),
    ]


def test_rollups_can_be_off() -> None:
    seg = Segmenter(["region"], rollups=False)
    assert [s.key for s in seg.segments_for(("eu",))] == ["region=eu"]


def test_cardinality_cap_sends_new_segments_to_overflow(caplog: pytest.LogCaptureFixture) -> None:
    seg = Segmenter(["region", "cohort"], max_segments=2)
    seg.segments_for(("a", "x"))
    seg.segments_for(("b", "x"))
    with caplog.at_level(logging.WARNING):
        third = seg.segments_for(("c", "x"))
        seg.segments_for(("d", "x"))
    assert third[0].key == f"region={OVERFLOW},cohort={OVERFLOW}"
    assert seg.overflowed == 2
    assert seg.n_segments == 3  # two real + the overflow bucket
    assert sum("segment cap reached" in r.message for r in caplog.records) == 1
    # already-known segments keep their own key
    assert seg.segments_for(("a", "x"))[0].key == "region=a,cohort=x"


def test_missing_dimension_value_is_marked() -> None:
    seg = Segmenter(["region", "tier"])
    assert seg.segments_for(("eu", None))[0].key == "region=eu,tier=~unknown"
