"""Bearer-token guard of the mutating endpoints (ack, resume, silences).

* ``api.token`` set: the request needs ``Authorization: Bearer <token>``; missing or wrong →
  401 (compared in constant time).
* ``api.token`` unset (or empty): mutating endpoints are refused with 403 — a monitor that
  anyone on the network could resume is not a safe default.

Read endpoints (gates, metrics, signals, history, status) are open.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from monitor.api.context import get_context

__all__ = ["require_token"]


def require_token(request: Request) -> None:
    """FastAPI dependency: raise 401/403 unless the request carries the configured token."""
    secret = get_context(request).settings.api.token
    expected = secret.get_secret_value() if secret is not None else ""
    if not expected:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "mutating endpoints are disabled: set api.token (env DRIFTGATE_API__TOKEN) and "
            "send Authorization: Bearer <token>",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )
    if not ok:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token: send Authorization: Bearer <api.token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
