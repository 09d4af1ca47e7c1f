"""Signals and their lifecycle: list, one, acknowledge, resume.

``POST /v1/signals/{id}/ack`` and ``/resume`` need the bearer token and a body
``{"actor": "...", "comment": "..."}``; both are recorded in the history store.
Resume lifts a HALT only after it was acknowledged (else 409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from monitor.api.auth import require_token
from monitor.api.context import Ctx
from monitor.api.models import TransitionBody
from monitor.operations import acknowledge, get_signal, list_signals, resume

__all__ = ["router"]

router = APIRouter(prefix="/v1/signals", tags=["signals"])


@router.get("")
def signals(ctx: Ctx, every: Annotated[bool, Query(alias="all")] = False) -> dict[str, Any]:
    """Signals in force (``?all=true``: also those superseded, resumed or resolved)."""
    items = list_signals(ctx.store, include_ended=every)
    return {"signals": items, "count": len(items)}


@router.get("/{signal_id}")
def signal(ctx: Ctx, signal_id: str) -> dict[str, Any]:
    """One signal with its lifecycle and transitions."""
    return get_signal(ctx.store, signal_id)


@router.post("/{signal_id}/ack", dependencies=[Depends(require_token)])
def ack(ctx: Ctx, signal_id: str, body: TransitionBody) -> dict[str, Any]:
    """A person owns the signal; it stays in force (a HALT still halts)."""
    return acknowledge(ctx.store, signal_id, body.actor, body.comment)


@router.post("/{signal_id}/resume", dependencies=[Depends(require_token)])
def resume_signal(ctx: Ctx, signal_id: str, body: TransitionBody) -> dict[str, Any]:
    """Lift an acknowledged HALT: rollouts of its scope may go on."""
    return resume(ctx.store, signal_id, body.actor, body.comment)
