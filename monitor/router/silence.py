"""Silence: alerts matching an active silence are muted (same predicate as routes).

>>> from monitor.router.model import Alert, AlertState
>>> a = Alert("s1", "f", "HALT", AlertState.FIRING, {"region": "eu"}, {}, 0)
>>> sil = [{"id": "x", "matchers": [{"label": "region", "op": "=", "value": "eu"}],
...         "starts_ms": 0, "ends_ms": 10}]
>>> silenced([a], sil, now_ms=5), silenced([a], sil, now_ms=11)
({'s1': 'x'}, {})
"""

from __future__ import annotations

from typing import Any

from monitor.router.matchers import Matcher, matches
from monitor.router.model import Alert

__all__ = ["silenced"]


def silenced(alerts: list[Alert], silences: list[dict[str, Any]], now_ms: int) -> dict[str, str]:
    """Muted alert id → id of the silence that mutes it."""
    live = [
        (s["id"], [Matcher.from_dict(m) for m in s["matchers"]])
        for s in silences
        if s["starts_ms"] <= now_ms < s["ends_ms"]
    ]
    out: dict[str, str] = {}
    for a in alerts:
        for sid, ms in live:
            if ms and matches(ms, a.labels):
                out[a.id] = sid
                break
    return out
