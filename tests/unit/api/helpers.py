"""Builders for the API tests: a real SQLite history store filled through its own API,
and a synchronous client over httpx's ASGI transport (no sockets, no Starlette TestClient)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from monitor.api import create_app
from monitor.config import Settings, load_settings
from monitor.events import DriftEvent, Level, Position, Signal
from monitor.store import Batch, HistoryStore
from tests.factories import COHORTS, REGIONS

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def segment_key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "*"


def scope_of(labels: dict[str, str]) -> str:
    return "segment" if len(labels) == 2 else next(iter(labels)) if labels else "global"


def all_segments() -> list[dict[str, str]]:
    """The 9 leaves, 3 region and 3 cohort roll-ups and the global scope of tests.factories."""
    leaves = [{"region": r, "cohort": c} for r in REGIONS for c in COHORTS]
    return [*leaves, *({"region": r} for r in REGIONS), *({"cohort": c} for c in COHORTS), {}]


def seed(store: HistoryStore, records: int = 100) -> str:
    """One monitor run that saw ``records`` records in every segment, and no signal."""
    run = store.start_run("logs")
    counts = {(segment_key(lab), scope_of(lab)): records for lab in all_segments()}
    store.checkpoint(run, Batch(counts=counts, records=records * 9, late=3), sinks=[])
    return run


_offset = iter(range(1, 1_000_000))


def raise_signal(
    store: HistoryStore,
    run: str,
    level: Level,
    labels: dict[str, str],
    *,
    effect: float = 2.5,
) -> Signal:
    """A drift event and the signal it raised, committed by one checkpoint."""
    n = next(_offset)
    seg = segment_key(labels)
    event = DriftEvent(
        seg,
        scope_of(labels),
        dict(labels),
        "feature:x",
        "cusum",
        effect,
        0.0,
        effect,
        1.0,
        500,
        1_795_392_000_000 + n,
        Position("logs", 0, n),
    )
    signal = Signal(
        level,
        seg,
        scope_of(labels),
        dict(labels),
        f"feature:x rose {abs(effect):.1f}σ",
        (event.id,),
        event.ts_ms,
        event.position,
        signal="feature:x",
    )
    store.checkpoint(run, Batch(events=[event], signals=[signal]), sinks=[])
    return signal


def settings(token: str | None = TOKEN, **over: Any) -> Settings:
    data: dict[str, Any] = {"api": {"token": token}} if token is not None else {}
    data.update(over)
    return load_settings(overrides=data, search_cwd=False)


class Api:
    """Synchronous calls into the ASGI app (each call runs on a fresh event loop)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://driftgate") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


def api(store: HistoryStore, token: str | None = TOKEN, **over: Any) -> Api:
    return Api(create_app(settings(token, **over), store))
