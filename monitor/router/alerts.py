"""Decide: signals in the store (with their lifecycle state) become receiver-facing alerts.

Labels: ``alertname`` (DriftgateScalingHalt), ``severity`` (critical for HALT, warning for
WARN), ``level``, ``scope`` (segment, region, cohort… or global), ``segment`` (the scope key),
one label per segment dimension (``region``, ``cohort``…; empty when the scope does not fix
it) and ``signal``.

>>> from monitor.events import Level, Position, Signal
>>> s = Signal(Level.HALT, "region=eu", "region", {"region": "eu"}, "latency rose 2σ",
...            ("e1",), 1000, Position("demo", 0, 1), signal="latency_ms")
>>> a = to_alert({"signal": s, "state": "active", "acked_by": None, "ended_at": None})
>>> a.labels["severity"], a.labels["region"], a.state.value
('critical', 'eu', 'firing')
"""

from __future__ import annotations

from typing import Any

from monitor.events import Level, Signal
from monitor.router.model import Alert, AlertState, fingerprint

__all__ = ["ALERTNAME", "alert_labels", "scope_labels", "to_alert"]

ALERTNAME = "DriftgateScalingHalt"
_STATES = {
    "active": AlertState.FIRING,
    "acknowledged": AlertState.ACKNOWLEDGED,
    "resumed": AlertState.RESOLVED,
    "resolved": AlertState.RESOLVED,
    "superseded": AlertState.RESOLVED,
}


def alert_labels(sig: Signal) -> dict[str, str]:
    labels = {
        "alertname": ALERTNAME,
        "severity": "critical" if sig.level is Level.HALT else "warning",
        "level": sig.level.value,
        "scope": sig.scope,
        "segment": sig.segment,
        "region": sig.labels.get("region", ""),
        "cohort": sig.labels.get("cohort", ""),
        "signal": sig.signal,
    }
    for k, v in sig.labels.items():
        labels.setdefault(k, v)
    return labels


def scope_labels(alert: Alert) -> dict[str, str]:
    """The dimension values a scope fixes (empty for global)."""
    seg = alert.labels.get("segment", "*")
    if seg == "*":
        return {}
    return dict(part.split("=", 1) for part in seg.split(","))


def to_alert(row: dict[str, Any]) -> Alert:
    """One row of ``HistoryStore.signal_states()`` as an alert."""
    sig: Signal = row["signal"]
    state = _STATES.get(str(row["state"]), AlertState.FIRING)
    labels = alert_labels(sig)
    transition = f"{state.value}:{sig.level.value}"
    if state is AlertState.ACKNOWLEDGED:
        transition += f":{row.get('acked_by')}"
    return Alert(
        id=sig.id,
        fingerprint=fingerprint(labels),
        level=sig.level.value,
        state=state,
        labels=labels,
        annotations={
            "summary": f"{sig.level.value} {sig.segment}: {sig.reason}",
            "reason": sig.reason,
            "evidence": ",".join(sig.evidence),
            "signal_id": sig.id,
            "position": str(sig.position),
        },
        starts_at_ms=sig.ts_ms,
        ends_at_ms=row.get("ended_at") if state is AlertState.RESOLVED else None,
        transition=transition,
    )
