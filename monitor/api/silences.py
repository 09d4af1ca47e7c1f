"""Silences: mute notifications of matching alerts for a while (never a gate).

``POST`` and ``DELETE`` need the bearer token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from monitor.api.auth import require_token
from monitor.api.context import Ctx
from monitor.api.models import SilenceBody
from monitor.operations import (
    InvalidRequestError,
    create_silence,
    expire_silence,
    list_silences,
    parse_duration,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/silences", tags=["silences"])


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidRequestError("starts_at / ends_at need a time zone, e.g. 2026-11-23T10:00:00Z")
    return int(value.timestamp() * 1000)


@router.get("")
def silences(ctx: Ctx, every: Annotated[bool, Query(alias="all")] = False) -> dict[str, Any]:
    """Pending and active silences, newest first (``?all=true``: also expired ones)."""
    items = list_silences(ctx.store, include_expired=every)
    return {"silences": items, "count": len(items)}


@router.post("", dependencies=[Depends(require_token)], status_code=201)
def add(ctx: Ctx, body: SilenceBody) -> JSONResponse:
    """Create a silence from matchers and a duration or an end time."""
    view = create_silence(
        ctx.store,
        body.matchers,
        author=body.author,
        comment=body.comment,
        duration_s=parse_duration(body.duration) if body.duration is not None else None,
        starts_ms=_ms(body.starts_at),
        ends_ms=_ms(body.ends_at),
    )
    return JSONResponse(view, status_code=201, headers={"Location": f"/v1/silences/{view['id']}"})


@router.delete("/{silence_id}", dependencies=[Depends(require_token)])
def expire(ctx: Ctx, silence_id: str) -> dict[str, Any]:
    """End a silence now (it stays listed with ``?all=true``)."""
    return expire_silence(ctx.store, silence_id)
