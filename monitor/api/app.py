"""The API factory: ``create_app(settings, store)`` wires the routers and the error handling.

Every error is JSON ``{"error": "<one line saying what to do>"}``: 401/403 auth, 404 unknown
signal or silence, 409 transition not allowed, 422 bad body or parameter, 503 history store
unreachable or empty (a real monitor fault), 500 anything unexpected (logged).

>>> import asyncio, os, tempfile, httpx
>>> from monitor.config import load_settings
>>> from monitor.store import HistoryStore
>>> store = HistoryStore(os.path.join(tempfile.mkdtemp(), "h.db"))
>>> app = create_app(load_settings(search_cwd=False), store)
>>> async def get(path):
...     transport = httpx.ASGITransport(app=app)
...     async with httpx.AsyncClient(transport=transport, base_url="http://driftgate") as c:
...         return await c.get(path)
>>> asyncio.run(get("/healthz")).json()["status"]
'ok'
>>> r = asyncio.run(get("/v1/signals/nope"))
>>> r.status_code, r.json()["error"][:20]
(404, "no signal 'nope' (li")
>>> store.close()
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor import __version__
from monitor.api import gate, history, metrics, signals, silences
from monitor.api.context import Context
from monitor.config import Settings
from monitor.errors import ConfigError, StoreError
from monitor.operations import OperationError
from monitor.store import HistoryStore

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "bad request: " + "; ".join(parts) + " (see docs/api.md)"


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint (see docs/api.md for the list)"
        return _error(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(OperationError)
    async def _operation(_: Request, exc: OperationError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        log.error("history store: %s", exc)
        return _error(503, str(exc))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error(500, f"internal error: {type(exc).__name__}: {exc} (see the server log)")


def create_app(settings: Settings, store: HistoryStore | None = None) -> FastAPI:
    """The driftgate API over ``store`` (opened from ``history.url`` / ``history.path`` when
    not given).

    A store opened here is closed when the app shuts down; a store passed in belongs to the
    caller.
    """
    own = store is None
    the_store = HistoryStore.from_settings(settings.history) if store is None else store

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own:
                the_store.close()

    app = FastAPI(
        title="driftgate",
        version=__version__,
        summary="Scaling-halt signals for staged AI rollouts: gates, metrics, lifecycle.",
        lifespan=lifespan,
    )
    app.state.driftgate = Context(settings=settings, store=the_store)
    _install_errors(app)
    for module in (gate, signals, silences, history, metrics):
        app.include_router(module.router)
    return app
