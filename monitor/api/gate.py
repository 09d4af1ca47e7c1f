"""Gates for rollout controllers: the Argo Rollouts web metric and Flagger webhooks.

* ``GET /v1/gate?region=&cohort=&model=`` — Argo web metric. Always 200 with
  ``{"state": "ok"|"warn"|"halt", ...}`` for a decision (template:
  ``successCondition: result.state == "ok"``, ``failureCondition: result.state == "halt"``,
  so ``warn`` is Inconclusive and pauses the rollout for a person). 503 only when the
  monitor cannot judge (store unreachable or never written): Argo counts it as a
  measurement error and aborts after ``consecutiveErrorLimit``.
* ``POST /v1/flagger/gate`` — for ``confirm-rollout``, ``confirm-traffic-increase``,
  ``confirm-promotion``, ``pre-rollout`` and ``rollout`` hooks: 200 when clear, 403 with the
  reason when halted (Flagger treats any code above 202 as a failure).
  ``metadata.block_on: warn`` closes the gate on a WARN too.
* ``POST /v1/flagger/rollback`` — for the ``rollback`` hook, whose meaning is inverted: 200
  (roll back now) only while a HALT counts for the scope, else 404.

Which signals count for a scope: :mod:`monitor.operations`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from monitor.api.context import Ctx
from monitor.api.models import FlaggerPayload
from monitor.operations import GateDecision, GateState, evaluate_gate

__all__ = ["router"]

router = APIRouter(tags=["gates"])

_FLAGGER_KEYS = ("block_on",)


@router.get("/v1/gate")
def argo_gate(
    ctx: Ctx,
    request: Request,
    region: str | None = None,
    cohort: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """The worst signal in force that counts for the asked scope (always 200).

    Every query parameter is a scope label; those that are not segment dimensions are
    echoed under ``ignored``.
    """
    query: dict[str, str | None] = dict(request.query_params)
    query.update({"region": region, "cohort": cohort, "model": model})
    return evaluate_gate(ctx.store, query, ctx.dimensions).as_dict()


def _flagger_decision(ctx: Ctx, payload: FlaggerPayload) -> GateDecision:
    meta = {k: v for k, v in (payload.metadata or {}).items() if k not in _FLAGGER_KEYS}
    return evaluate_gate(ctx.store, meta, ctx.dimensions)


def _canary(payload: FlaggerPayload) -> str:
    return f"{payload.namespace}/{payload.name}"


@router.post("/v1/flagger/gate")
def flagger_gate(ctx: Ctx, payload: FlaggerPayload) -> JSONResponse:
    """200 when the canary's scope is clear; 403 with the reason when it is halted."""
    decision = _flagger_decision(ctx, payload)
    block_on_warn = (payload.metadata or {}).get("block_on", "halt").lower() == "warn"
    closed = decision.state is GateState.HALT or (
        block_on_warn and decision.state is GateState.WARN
    )
    body = decision.as_dict() | {"canary": _canary(payload), "phase": payload.phase}
    if closed:
        body = {
            "error": f"gate closed for {_canary(payload)}: {decision.reason}",
            **body,
        }
        return JSONResponse(body, status_code=403)
    return JSONResponse(body, status_code=200)


@router.post("/v1/flagger/rollback")
def flagger_rollback(ctx: Ctx, payload: FlaggerPayload) -> JSONResponse:
    """200 (Flagger rolls the canary back) only while a HALT counts for its scope; else 404."""
    decision = _flagger_decision(ctx, payload)
    body = decision.as_dict() | {"canary": _canary(payload), "phase": payload.phase}
    if decision.state is GateState.HALT:
        return JSONResponse(
            {"rollback": True, "message": f"roll back {_canary(payload)}: {decision.reason}"}
            | body,
            status_code=200,
        )
    return JSONResponse(
        {
            "error": f"no HALT in force for the scope of {_canary(payload)}: no rollback",
            "rollback": False,
        }
        | body,
        status_code=404,
    )
