"""Inhibit: a broader HALT in force mutes the narrower alerts it covers.

A HALT for ``region=eu-west`` mutes alerts of ``region=eu-west,cohort=free``, also those
raised before it (a roll-up decides once its event-time window closes, after the first
segments of a regional incident; like Alertmanager's inhibit rules, there is no time
condition); a global HALT mutes every other alert. Only firing or acknowledged HALTs
inhibit; an alert never inhibits itself.

The other way round, a roll-up alert can be the echo of one child: when
``region=eu-west,cohort=enterprise`` halts on ``feature:prompt_tokens`` and later the
roll-up ``cohort=enterprise`` fires on the same signal (its mean moved because one of its
children did), the roll-up is *explained by* the earlier, narrower HALT and muted, so
on-call is paged for the root cause, not for each roll-up it drags along. A broader alert
on a different signal, one that fired first, or one under which two or more separate
narrower HALTs fired on its signal (then the broader scope is the cause: it inhibits them)
is not explained away. Muting only affects
notifications: gates and metrics still show every signal in force.

>>> from monitor.router.model import Alert, AlertState
>>> def a(seg, level="HALT"):
...     return Alert(seg, seg, level, AlertState.FIRING, {"segment": seg}, {}, 0)
>>> muted = inhibited([a("region=eu"), a("region=eu,cohort=free", "WARN"), a("region=us")])
>>> muted
{'region=eu,cohort=free': 'region=eu'}
>>> def b(seg, t, signal="x"):
...     return Alert(seg, seg, "HALT", AlertState.FIRING, {"segment": seg, "signal": signal}, {}, t)
>>> explained([b("region=eu,cohort=a", 1), b("cohort=a", 2), b("region=eu", 3, "y")])
{'cohort=a': 'region=eu,cohort=a'}
>>> explained([b("region=eu,cohort=a", 1), b("region=eu,cohort=b", 2), b("region=eu", 3)])
... # two of its cohorts: the region is the cause, not an echo
{}
"""

from __future__ import annotations

from collections.abc import Collection

from monitor.router.alerts import scope_labels
from monitor.router.model import Alert, AlertState

__all__ = ["covers", "explained", "inhibited"]


def covers(broad: dict[str, str], narrow: dict[str, str]) -> bool:
    """True when every dimension the broad scope fixes has the same value in the narrow one."""
    return all(narrow.get(k) == v for k, v in broad.items())


def inhibited(alerts: list[Alert], exclude: Collection[str] = ()) -> dict[str, str]:
    """Muted alert id → id of the HALT that mutes it (HALTs in ``exclude``, e.g. explained
    ones, do not inhibit)."""
    sources = [
        (a, scope_labels(a))
        for a in alerts
        if a.level == "HALT" and a.state is not AlertState.RESOLVED and a.id not in exclude
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


def explained(alerts: list[Alert]) -> dict[str, str]:
    """Muted roll-up alert id → id of the one earlier, narrower HALT on the same signal.

    Only the *outermost* narrower HALTs under the roll-up count (a leaf under a region that
    halts too counts as the region). When exactly one is left, the roll-up echoes it and is
    explained by it. When two or more are, the roll-up is the broader cause (a regional
    incident shows in several of its segments before the region's event-time window closes):
    it is not explained, and inhibits them instead."""
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
        under = [
            (src, narrow)
            for src, narrow in sources
            if src.id != target.id
            and len(narrow) > len(mine)
            and covers(mine, narrow)
            and src.labels.get("signal") == target.labels.get("signal")
        ]
        outer = [
            (src, narrow)
            for src, narrow in under
            if not any(len(wide) < len(narrow) and covers(wide, narrow) for _, wide in under)
        ]
        if len(outer) == 1 and outer[0][0].starts_at_ms < target.starts_at_ms:
            out[target.id] = outer[0][0].id
    return out
