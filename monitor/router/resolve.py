"""Auto-resolve: lift a signal without a person, only where its routes allow it.

A HALT is lifted by a person (ack, then resume) unless **every** route its alert takes
says ``auto_resolve: true``. Then it is resolved once its scope has been quiet — no drift
event in that segment — for ``router.resolve_quiet_s`` of record time (the hysteresis: a
scope that keeps drifting keeps its signal; the reference-anchored detectors keep firing
while a segment stays unlike its reference, so a shifted segment stays halted).

>>> from monitor.config import RouteSettings
>>> from monitor.events import Level, Position, Signal
>>> tree = Route.from_settings(RouteSettings.model_validate({"receiver": "file",
...     "routes": [{"matchers": ["severity=warning"], "auto_resolve": True}]}))
>>> def row(level):
...     s = Signal(level, "region=eu", "region", {"region": "eu"}, "x rose", ("e1",), 0,
...                Position("demo", 0, 1), signal="x")
...     return {"signal": s, "state": "active", "acked_by": None, "ended_at": None}
>>> rows = [row(Level.WARN), row(Level.HALT)]
>>> [(r["signal"].level.value) for r, _ in resolvable(rows, tree, {"region=eu": 0}, 60_000, 30_000)]
['WARN']
>>> resolvable(rows, tree, {"region=eu": 50_000}, 60_000, 30_000)  # not quiet long enough
[]
"""

from __future__ import annotations

from typing import Any

from monitor.router.alerts import to_alert
from monitor.router.route import Route

__all__ = ["any_auto_resolve", "resolvable"]


def any_auto_resolve(tree: Route) -> bool:
    """Does any node of the tree allow auto-resolve? (If not, skip the check entirely.)"""
    return tree.auto_resolve or any(any_auto_resolve(c) for c in tree.routes)


def resolvable(
    rows: list[dict[str, Any]],
    tree: Route,
    last_event_ms: dict[str, int],
    now_ms: int,
    quiet_ms: int,
) -> list[tuple[dict[str, Any], str]]:
    """The in-force rows to resolve now, each with the reason recorded in history."""
    out: list[tuple[dict[str, Any], str]] = []
    for row in rows:
        if row["state"] not in ("active", "acknowledged"):
            continue
        routes = tree.match(to_alert(row).labels)
        if not routes or not all(r.auto_resolve for r in routes):
            continue
        sig = row["signal"]
        last = max(last_event_ms.get(sig.segment, sig.ts_ms), sig.ts_ms)
        if now_ms - last >= quiet_ms:
            out.append((row, f"auto-resolved: no drift in {sig.segment} for {quiet_ms / 1000:g}s"))
    return out
