"""``GET /metrics``: Prometheus text exposition, read from the history store at each scrape.

Per segment that has seen records (and per scope that has had a signal), **always present**
— 0 when clear, so an absent series never stalls Flagger ("no values found") or errors an
Argo query on an empty vector:

* ``driftgate_halt`` 1 while a HALT is in force for exactly that scope (acknowledged or not);
* ``driftgate_warn`` 1 while a WARN is;
* ``driftgate_drift_score`` the largest |shift| in sigmas behind the signal in force, 0 when
  none.

Labels: ``segment`` (the scope key, ``*`` for global), ``scope`` (``segment``, a dimension
name or ``global``) and one label per ``segments.dimensions`` entry (empty when the scope
does not fix it; add ``model`` to the dimensions to get a ``model`` label). To ask "does
anything halt eu-west/free, counting roll-ups", as the gate does:
``max(driftgate_halt{region=~"eu-west|", cohort=~"free|"})``.

Also: ``driftgate_records_total``, ``driftgate_dead_letters_total``, ``driftgate_late_total``,
``driftgate_runs_total``, ``driftgate_drift_events_total``, ``driftgate_signals_total{level}``,
``driftgate_segment_records_total{segment,…}``, ``driftgate_signals_in_force{level}``,
``driftgate_silences_active`` and ``driftgate_notifications{receiver,state}`` (pending,
delivered, failed, fallback).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.api.context import Ctx
from monitor.operations import list_silences, segment_labels
from monitor.segments import GLOBAL_KEY
from monitor.store import HistoryStore

__all__ = ["StoreCollector", "router"]

router = APIRouter(tags=["metrics"])

# The classic text format: every name and label here is a legacy (ASCII) one, so the output
# of generate_latest is valid 0.0.4, which every Prometheus version (and Flagger) scrapes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _scope_of(segment: str, n_dimensions: int) -> str:
    labels = segment_labels(segment)
    if segment == GLOBAL_KEY:
        return "global"
    if len(labels) == 1 and n_dimensions > 1:
        return next(iter(labels))
    return "segment"


class StoreCollector(Collector):
    """Builds every metric family from the history store when Prometheus scrapes."""

    def __init__(self, store: HistoryStore, dimensions: Sequence[str]) -> None:
        self.store = store
        self.dimensions = list(dimensions)

    def _label_values(self, segment: str, scope: str) -> list[str]:
        labels = segment_labels(segment)
        return [segment, scope, *(labels.get(d, "") for d in self.dimensions)]

    def collect(self) -> Iterable[Metric]:
        names = ["segment", "scope", *self.dimensions]
        store = self.store
        counts = {r["segment"]: r for r in store.segments()}
        rows = store.signal_states(include_ended=True)
        in_force = {r["segment"]: r for r in rows if r["active"]}
        effects = store.drift_effects(e for r in in_force.values() for e in r["signal"].evidence)
        scopes: dict[str, str] = {seg: str(r["scope"]) for seg, r in counts.items()}
        for r in rows:
            scopes.setdefault(r["segment"], str(r["scope"]))

        halt = GaugeMetricFamily(
            "driftgate_halt", "1 while a HALT is in force for this scope, else 0.", labels=names
        )
        warn = GaugeMetricFamily(
            "driftgate_warn", "1 while a WARN is in force for this scope, else 0.", labels=names
        )
        score = GaugeMetricFamily(
            "driftgate_drift_score",
            "Largest |shift| (sigmas) behind the signal in force for this scope; 0 when clear.",
            labels=names,
        )
        seg_records = CounterMetricFamily(
            "driftgate_segment_records", "Records seen per segment.", labels=names
        )
        for seg in sorted(scopes):
            values = self._label_values(seg, scopes[seg])
            row = in_force.get(seg)
            level = row["level"] if row is not None else None
            halt.add_metric(values, 1.0 if level == "HALT" else 0.0)
            warn.add_metric(values, 1.0 if level == "WARN" else 0.0)
            found = (
                [abs(effects[e]) for e in row["signal"].evidence if e in effects]
                if row is not None
                else []
            )
            score.add_metric(values, max(found, default=0.0))
            if seg in counts:
                seg_records.add_metric(values, float(counts[seg]["records"]))
        yield from (halt, warn, score, seg_records)
        yield from self._totals(in_force.values())

    def _totals(self, in_force: Iterable[dict[str, Any]]) -> Iterator[Metric]:
        store = self.store
        totals = store.totals()
        for key, help_text in (
            ("records", "Records processed over every run."),
            ("dead_letters", "Records sent to the dead-letter sink."),
            ("late", "Records whose roll-up window had closed (used by their leaf only)."),
            ("runs", "Monitor runs recorded in the history."),
            ("drift_events", "Drift events detected."),
        ):
            yield CounterMetricFamily(f"driftgate_{key}", help_text, value=float(totals[key]))
        by_level = store.signal_counts()
        signals = CounterMetricFamily(
            "driftgate_signals", "Signals raised, per level.", labels=["level"]
        )
        active = GaugeMetricFamily(
            "driftgate_signals_in_force", "Signals in force now, per level.", labels=["level"]
        )
        live = [r["level"] for r in in_force]
        for level in ("WARN", "HALT"):
            signals.add_metric([level], float(by_level.get(level, 0)))
            active.add_metric([level], float(live.count(level)))
        yield signals
        yield active
        yield GaugeMetricFamily(
            "driftgate_silences_active",
            "Silences pending or active.",
            value=float(len(list_silences(store))),
        )
        notes = GaugeMetricFamily(
            "driftgate_notifications",
            "Notifications in the outbox per receiver and state (pending, delivered, …).",
            labels=["receiver", "state"],
        )
        for (receiver, state), n in sorted(store.notification_counts().items()):
            notes.add_metric([receiver, state], float(n))
        yield notes


@router.get("/metrics", response_class=Response)
def metrics(ctx: Ctx) -> Response:
    """Prometheus text format 0.0.4."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(ctx.store, ctx.dimensions))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
