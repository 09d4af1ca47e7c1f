"""What every request reads: the settings and the history store of the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from monitor.config import Settings
from monitor.store import HistoryStore

__all__ = ["Context", "Ctx", "get_context"]


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    store: HistoryStore

    @property
    def dimensions(self) -> list[str]:
        """The segment dimensions a gate query may narrow (``segments.dimensions``)."""
        return list(self.settings.segments.dimensions)


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.driftgate
    return ctx


Ctx = Annotated[Context, Depends(get_context)]
