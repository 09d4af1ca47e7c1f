"""Auto-resolve with hysteresis: only routes that allow it, only once the scope is quiet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.config import RouteSettings, load_settings
from monitor.events import Level, Position, Signal
from monitor.pipeline import Monitor
from monitor.router.courier import Courier
from monitor.router.resolve import resolvable
from monitor.router.route import Route
from monitor.sinks import MemoryDeadLetters, MemoryNotifier, MemorySink
from monitor.sources import ListSource
from monitor.store import HistoryStore
from tests.factories import grid_stream, to_bytes

SHIFTED = ("eu-west", "pro")
LEAF = "region=eu-west,cohort=pro"


def transient_shift() -> list[bytes]:
    """x in eu-west/pro shifts by 2σ for segment records 700..899, then returns."""
    recs = grid_stream(3000, shift_segment=SHIFTED, shift_at=700, shift=2.0)
    for i, r in enumerate(recs):
        if (r["region"], r["cohort"]) == SHIFTED and i // 9 >= 900:
            r["features"]["x"] -= 2.0
    return to_bytes(recs)


def run(tmp_path: Path, auto: bool) -> tuple[HistoryStore, MemoryNotifier]:
    router: dict[str, Any] = {
        "receivers": [{"name": "pager", "kind": "stdout"}],
        "route": {"receiver": "pager", "group_by": ["segment"], "auto_resolve": auto},
        "resolve_quiet_s": 60,  # records are 40 ms apart: 1,500 records, ~170 per segment
    }
    settings = load_settings(
        overrides={
            "source": {"batch_size": 300},
            "detection": {"warmup": 400},
            "router": router,
        },
        search_cwd=False,
    )
    store = HistoryStore(tmp_path / f"{auto}.db")
    pager = MemoryNotifier("pager")
    courier = Courier(store, settings.router, {"pager": pager})
    mon = Monitor(
        settings,
        ListSource(transient_shift(), name="logs"),
        store,
        MemoryDeadLetters(),
        [MemorySink("memory")],
        courier=courier,
    )
    mon.run()
    return store, pager


def test_without_auto_resolve_a_halt_stays_until_a_person_lifts_it(tmp_path: Path) -> None:
    store, pager = run(tmp_path, auto=False)
    halts = [s for s in store.active_signals() if s.segment == LEAF and s.level is Level.HALT]
    assert halts, "the HALT is still in force long after the segment went back to normal"
    assert not [t for t in store.transitions() if t["kind"] == "RESOLVED"]
    assert all(n.status == "firing" for n in pager.received)


def test_auto_resolve_lifts_the_signal_once_the_scope_is_quiet(tmp_path: Path) -> None:
    store, pager = run(tmp_path, auto=True)
    resolved = [t for t in store.transitions() if t["kind"] == "RESOLVED"]
    assert any(t["segment"] == LEAF for t in resolved)
    assert all(t["actor"] == "driftgate" and "auto-resolved" in t["comment"] for t in resolved)
    assert not [s for s in store.active_signals() if s.segment == LEAF]
    # the resolution was told: the receiver got the leaf firing, then resolved
    leaf = [n.status for n in pager.received if n.group_labels.get("segment") == LEAF]
    assert leaf[0] == "firing"
    assert "resolved" in leaf


def _row(state: str = "active") -> dict[str, Any]:
    s = Signal(
        Level.HALT,
        LEAF,
        "segment",
        {"region": "eu-west", "cohort": "pro"},
        "x rose",
        ("e1",),
        1_000,
        Position("logs", 0, 1),
        signal="feature:x",
    )
    return {"signal": s, "state": state, "acked_by": None, "ended_at": None}


def test_resolvable_needs_every_route_to_allow_it_and_a_quiet_scope() -> None:
    both = Route.from_settings(
        RouteSettings.model_validate(
            {
                "receiver": "file",
                "auto_resolve": True,
                "routes": [
                    {
                        "matchers": ["severity=critical"],
                        "receiver": "pager",
                        "continue": True,
                        "auto_resolve": False,
                    },
                    {"receiver": "file"},
                ],
            }
        )
    )
    auto = Route.from_settings(
        RouteSettings.model_validate({"receiver": "file", "auto_resolve": True})
    )
    quiet = {LEAF: 10_000}
    assert resolvable([_row()], both, quiet, 100_000, 60_000) == []  # the pager route says no
    assert len(resolvable([_row()], auto, quiet, 70_000, 60_000)) == 1  # 60 s after last drift
    assert resolvable([_row()], auto, quiet, 69_999, 60_000) == []  # not yet
    assert len(resolvable([_row("acknowledged")], auto, quiet, 70_000, 60_000)) == 1
    assert resolvable([_row("resumed")], auto, quiet, 70_000, 60_000) == []  # already ended
