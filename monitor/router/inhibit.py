"""Inhibit: a broader HALT in force mutes the narrower alerts it covers.

A HALT for ``region=eu-west`` mutes alerts of ``region=eu-west,cohort=free``; a global HALT
mutes every other alert. Only firing or acknowledged HALTs inhibit; an alert never
inhibits itself.

>>> from monitor.router.model import Alert, AlertState
>>> def a(seg, level="HALT"):
...     return Alert(seg, seg, level, AlertState.FIRING, {"segment": seg}, {}, 0)
>>> muted = inhibited([a("region=eu"), a("region=eu,cohort=free", "WARN"), a("region=us")])
>>> muted
{'region=eu,cohort=free': 'region=eu'}
"""

from __future__ import annotations

from monitor.router.alerts import scope_labels
from monitor.router.model import Alert, AlertState

__all__ = ["covers", "inhibited"]


def covers(broad: dict[str, str], narrow: dict[str, str]) -> bool:
    """True when every dimension the broad scope fixes has the same value in the narrow one."""
    return all(narrow.get(k) == v for k, v in broad.items())


def inhibited(alerts: list[Alert]) -> dict[str, str]:
    """Muted alert id → id of the HALT that mutes it."""
    sources = [
        (a, scope_labels(a))
        for a in alerts
        if a.level == "HALT" and a.state is not AlertState.RESOLVED
    ]
    out: dict[str, str] = {}
    for target in alerts:
        if target.state is AlertState.RESOLVED:
            continue
        mine = scope_labels(target)
        for src, broad in sources:
            if src.id != target.id and len(broad) < len(mine) and covers(broad, mine):
                out[target.id] = src.id
                break
    return out
