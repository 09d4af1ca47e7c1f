"""Request bodies of the API (validated by pydantic; a bad body is a 422)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FlaggerPayload", "SilenceBody", "TransitionBody"]


class TransitionBody(BaseModel):
    """Who acknowledges or resumes a signal, and why (both recorded)."""

    model_config = ConfigDict(extra="forbid")

    actor: str = Field(min_length=1, max_length=200, description="Who, e.g. alice@example.com.")
    comment: str = Field(min_length=1, max_length=2000, description="Why.")


class SilenceBody(BaseModel):
    """A silence: mutes notifications of alerts matching every matcher, for a while."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[str] = Field(min_length=1, description="label=value, !=, =~, !~")
    starts_at: datetime | None = Field(None, description="RFC 3339; default now.")
    ends_at: datetime | None = Field(None, description="RFC 3339; or give duration.")
    duration: str | None = Field(None, description="e.g. 2h, 30m, 1h30m; or give ends_at.")
    author: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)


class FlaggerPayload(BaseModel):
    """What Flagger POSTs to a webhook (flagger pkg/controller/webhook.go).

    ``metadata`` carries the scope (e.g. ``region``, ``cohort``, ``model``) and optionally
    ``block_on: warn`` to make a WARN close the gate too.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str
    phase: str | None = None
    checksum: str | None = None
    metadata: dict[str, str] | None = None
