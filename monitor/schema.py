"""Inference-log schema v1: the record a deployment writes for every prediction.

A record is one JSON object. ``driftgate schema`` prints its JSON Schema; the same schema is
kept in ``monitor/schemas/inference-log-v1.json`` (a test keeps the two equal).

>>> rec = parse_record(
...     b'{"schema_version": 1, "request_id": "r1", "timestamp": "2026-11-23T10:00:00Z",'
...     b' "model": "ranker", "model_version": "3.2.0", "region": "eu-west", "cohort": "free",'
...     b' "features": {"prompt_tokens": 412, "lang": "de"}, "prediction": "approve",'
...     b' "confidence": 0.91, "latency_ms": 84.5, "refused": false, "safety_flags": [],'
...     b' "error": null}'
... )
>>> rec.region, rec.ts_ms, rec.features["prompt_tokens"]
('eu-west', 1795428000000, 412)
>>> parse_record(b'{"schema_version": 1}')
Traceback (most recent call last):
...
monitor.schema.BadRecord: schema: request_id: Field required; timestamp: Field required; ...
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

__all__ = [
    "SCHEMA_VERSION",
    "BadRecord",
    "InferenceLog",
    "LabelRecord",
    "json_schema",
    "parse_label",
    "parse_record",
]

SCHEMA_VERSION = 1


def _parse_timestamp(v: object) -> datetime:
    if isinstance(v, bool):
        raise ValueError("must be an RFC 3339 string or epoch milliseconds, not a bool")
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v / 1000.0, tz=UTC)
    if isinstance(v, str):
        try:
            ts = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"not an RFC 3339 timestamp: {v!r}") from None
        if ts.tzinfo is None:
            raise ValueError(f"timestamp {v!r} has no UTC offset (RFC 3339 needs one)")
        return ts
    raise ValueError("must be an RFC 3339 string or epoch milliseconds")


Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
FeatureValue = StrictBool | StrictInt | StrictFloat | StrictStr | None
Prediction = StrictBool | StrictInt | StrictFloat | StrictStr | dict[str, Any]


class BadRecord(ValueError):  # noqa: N818 - reads as "raise BadRecord(reason)"
    """A record that cannot be used; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InferenceLog(BaseModel):
    """One inference: inputs, outputs and behaviour of a single model call (schema v1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = Field(description="Schema version of this record; always 1.")
    request_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="Unique id of the request; joins delayed labels to predictions."
    )
    timestamp: Timestamp = Field(
        description="When the inference happened: RFC 3339 string with an offset, "
        "or epoch milliseconds."
    )
    model: Annotated[str, Field(min_length=1)] = Field(description="Model name.")
    model_version: Annotated[str, Field(min_length=1)] = Field(description="Model version.")
    region: Annotated[str, Field(min_length=1)] = Field(description="Deployment region.")
    cohort: Annotated[str, Field(min_length=1)] = Field(description="User cohort.")
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="Extra segment dimensions (name -> value)."
    )
    features: dict[str, FeatureValue] = Field(
        default_factory=dict, description="Model inputs: name -> number, string, bool or null."
    )
    prediction: Prediction = Field(description="Model output: number, class label or object.")
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        default=None, description="Model confidence or score in [0, 1]."
    )
    latency_ms: Annotated[float, Field(ge=0.0)] = Field(description="Serving latency.")
    refused: bool = Field(default=False, description="The model refused to answer.")
    safety_flags: list[str] = Field(
        default_factory=list, description="Safety classifiers that flagged this call."
    )
    error: str | None = Field(default=None, description="Serving error, null when none.")

    @property
    def ts_ms(self) -> int:
        """The timestamp as epoch milliseconds."""
        return int(self.timestamp.timestamp() * 1000)

    def dimension(self, name: str) -> str | None:
        """Value of a segment dimension: ``region``, ``cohort``, ``model``… or ``dimensions``."""
        if name in ("region", "cohort", "model", "model_version"):
            value: str = getattr(self, name)
            return value
        return self.dimensions.get(name)


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{loc}: {e['msg']}")
    return "schema: " + "; ".join(parts)


class LabelRecord(BaseModel):
    """A delayed ground-truth label for one earlier prediction, joined by ``request_id``.

    >>> parse_label(b'{"request_id": "r1", "timestamp": 0, "label": "approve"}').label
    'approve'
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="The request whose prediction this label judges."
    )
    timestamp: Timestamp = Field(description="When the label became known.")
    label: StrictBool | StrictInt | StrictFloat | StrictStr = Field(
        description="The true class (compared with the prediction) or true value (regression)."
    )

    @property
    def ts_ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000)


def parse_label(raw: bytes, max_bytes: int = 1_048_576) -> LabelRecord:
    """Parse and validate one label record; raise :class:`BadRecord` on failure."""
    return _parse(raw, max_bytes, LabelRecord)


def parse_record(raw: bytes, max_bytes: int = 1_048_576) -> InferenceLog:
    """Parse and validate one raw record; raise :class:`BadRecord` with a one-line reason."""
    return _parse(raw, max_bytes, InferenceLog)


M = TypeVar("M", bound=BaseModel)


def _parse(raw: bytes, max_bytes: int, model: type[M]) -> M:
    if len(raw) > max_bytes:
        raise BadRecord(f"oversize: {len(raw)} bytes > limit {max_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRecord(f"not a JSON object: got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRecord(_describe(exc)) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`InferenceLog` (draft 2020-12)."""
    schema = InferenceLog.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://driftgate.dev/schemas/inference-log-v1.json"
    schema["title"] = "driftgate inference log v1"
    return schema


def json_schema_text() -> str:
    """The JSON Schema as the text kept in ``monitor/schemas/inference-log-v1.json``."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
