"""History, status and health: ``GET /v1/history``, ``GET /v1/status``, ``GET /healthz``.

The status carries the detection mode and the fleet false-alarm budget with its split, so
what the detectors were calibrated to is visible next to what they raised.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from monitor.api.context import Ctx
from monitor.detection import fleet_budget
from monitor.operations import given_up, list_signals, list_silences, parse_time
from monitor.store import HistoryFilter

__all__ = ["router"]

router = APIRouter(tags=["history"])


@router.get("/healthz")
def healthz(ctx: Ctx) -> dict[str, Any]:
    """200 while the history store answers (a store fault is a 503)."""
    totals = ctx.store.totals()
    return {"status": "ok", "runs": totals["runs"], "history": ctx.store.path}


@router.get("/v1/history")
def history(
    ctx: Ctx,
    since: str | None = None,
    until: str | None = None,
    region: str | None = None,
    cohort: str | None = None,
    signal: str | None = None,
    kind: Literal["drift", "WARN", "HALT"] | None = None,
    limit: int | None = Query(None, ge=1, le=100_000),
) -> dict[str, Any]:
    """Drift events and signals, oldest first, filtered like ``driftgate history``."""
    f = HistoryFilter(
        region=region,
        cohort=cohort,
        signal=signal,
        kind=kind,
        since_ms=parse_time(since, "since"),
        until_ms=parse_time(until, "until"),
        limit=limit,
    )
    items = [r.as_dict() for r in ctx.store.history(f)]
    return {"items": items, "count": len(items)}


def _detection(ctx: Ctx) -> dict[str, Any]:
    det = ctx.settings.detection
    out: dict[str, Any] = {"mode": det.mode}
    if det.mode == "basic":
        return out | {"detector": det.detector, "params": det.params}
    budget = fleet_budget(ctx.settings, anchored=det.reference is not None)
    target = det.target_arl0 if det.target_arl0 is not None else budget.target_arl0
    return out | {
        "reference": det.reference,
        "k": det.k,
        "rate_k": det.rate_k,
        "rate_ratio": det.rate_ratio,
        "target_arl0": float(f"{min(target, 1e12):.3g}"),
        "target_arl0_overridden": det.target_arl0 is not None,
    }


def _has_token(ctx: Ctx) -> bool:
    token = ctx.settings.api.token
    return token is not None and bool(token.get_secret_value())


@router.get("/v1/status")
def status(ctx: Ctx) -> dict[str, Any]:
    """Totals, signals in force, silences, notifications given up, detection mode and the
    fleet budget and its split."""
    det = ctx.settings.detection
    budget = fleet_budget(ctx.settings, anchored=det.reference is not None)
    active = list_signals(ctx.store)
    return {
        "totals": ctx.store.totals(),
        "segments": len(ctx.store.segments()),
        "active": active,
        "halts": sum(1 for s in active if s["level"] == "HALT"),
        "warns": sum(1 for s in active if s["level"] == "WARN"),
        "silences": len(list_silences(ctx.store)),
        "given_up": given_up(ctx.store),
        "detection": _detection(ctx),
        "budget": budget.describe(),
        "mutations": "token" if _has_token(ctx) else "disabled (set api.token)",
    }
