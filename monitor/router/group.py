"""Group: alerts that share a route and the values of its ``group_by`` labels travel together.

>>> from monitor.router.model import Alert, AlertState
>>> a = Alert("1", "f1", "HALT", AlertState.FIRING, {"region": "eu", "segment": "x"}, {}, 0)
>>> b = Alert("2", "f2", "WARN", AlertState.FIRING, {"region": "eu", "segment": "y"}, {}, 0)
>>> group_key("pager", ("region",), a.labels) == group_key("pager", ("region",), b.labels)
True
"""

from __future__ import annotations

__all__ = ["group_key", "group_labels"]


def group_labels(group_by: tuple[str, ...], labels: dict[str, str]) -> dict[str, str]:
    return {k: labels.get(k, "") for k in group_by}


def group_key(receiver: str, group_by: tuple[str, ...], labels: dict[str, str]) -> str:
    """Stable key of the group an alert falls into for one receiver."""
    parts = ",".join(f"{k}={v}" for k, v in group_labels(group_by, labels).items())
    return f"{receiver}:{{{parts}}}"
