"""Inference-log schema v1: the record a deployment writes for every prediction.

A record is one JSON object. ``driftgate schema`` prints its JSON Schema; the same schema is
kept in ``monitor/schemas/inference-log-v1.json`` (a test keeps the two equal).

A record that parses is safe to observe: every number in it is finite and at most
:data:`MAX_MAGNITUDE` in size, its timestamp lies between 1970-01-01 and 9999-12-31 (UTC),
identifiers that become segment or signal names are at most :data:`MAX_NAME` characters,
and every value has the one type the schema gives it (no coercion: ``"12"`` is not a
number, ``1`` is not a bool). Everything else is a :class:`BadRecord` with a one-line
reason; nothing else escapes :func:`parse_record` and :func:`parse_label`.

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
>>> parse_label(b'{"request_id": "r", "timestamp": 1e20, "label": 1}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
monitor.schema.BadRecord: schema: timestamp: epoch milliseconds 1e+20 out of range: ...
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
)

__all__ = [
    "MAX_MAGNITUDE",
    "MAX_NAME",
    "MAX_TS_MS",
    "SCHEMA_VERSION",
    "BadRecord",
    "InferenceLog",
    "LabelRecord",
    "json_schema",
    "one_line",
    "parse_label",
    "parse_record",
    "timestamp_ms",
]

SCHEMA_VERSION = 1

#: Largest magnitude of any number in a record. Beyond it lie no measurements anyone logs,
#: and the overflow of the detectors' running sums: the square of 1e155 is already
#: infinite, and one infinite sum of squares leaves a detector NaN (blind) for ever.
#: At 1e100, squares are 1e200, so sums over any feasible count of observations stay finite.
MAX_MAGNITUDE = 1e100
#: Longest identifier that becomes part of a segment or signal name (dimension values,
#: feature names, safety flags) — and of request ids.
MAX_NAME = 256
#: Most safety flags one record may carry.
MAX_FLAGS = 256
#: Latest timestamp, 9999-12-31T23:59:59.999Z, in epoch milliseconds (the earliest is 0).
#: Timestamps too far ahead of the wall clock are refused later, by ``monitor.intake``.
MAX_TS_MS = 253_402_300_799_999

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_LATEST = timedelta(milliseconds=MAX_TS_MS)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (control characters escaped), cut to ``limit`` characters.

    >>> one_line("bad\\nvalue\\t!")
    'bad\\\\nvalue\\\\t!'
    >>> one_line("x" * 20, limit=8)
    'xxxxxxx…'
    """
    out = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _show(v: object) -> str:
    """A short, one-line rendering of an offending value for a reason."""
    return one_line(repr(v), 60)


def _type_name(v: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "bool", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def _bounded(v: int | float) -> int | float:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{v} is not a finite number")
    if abs(v) > MAX_MAGNITUDE:
        raise ValueError(
            f"{_show(v)} is too large: numbers must lie within ±{MAX_MAGNITUDE:g} "
            "(larger ones overflow the detectors' statistics)"
        )
    return v


def _number(v: object) -> object:
    """A JSON number (not a bool, not a numeric string), finite and bounded."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"must be a number, not {_type_name(v)}")
    return _bounded(v)


def _scalar(v: object) -> object:
    """A string, bool or bounded number (a label, a predicted class or value)."""
    if isinstance(v, str | bool):
        return v
    if isinstance(v, int | float):
        return _bounded(v)
    raise ValueError(f"must be a string, number or bool, not {_type_name(v)}")


def _feature_value(v: object) -> object:
    if v is None:
        return v
    if isinstance(v, str | bool | int | float):
        return _scalar(v)
    raise ValueError(f"must be a number, string, bool or null, not {_type_name(v)}")


def _prediction(v: object) -> object:
    """A scalar, or an object whose ``label`` / ``class`` / ``value`` (read by the observer
    and the label joiner) are scalars or null; its other keys are free."""
    if isinstance(v, dict):
        for key in ("label", "class", "value"):
            inner = v.get(key)
            if inner is None:
                continue
            try:
                _scalar(inner)
            except ValueError as exc:
                raise ValueError(f"prediction object's {key!r} {exc}") from None
        return v
    if isinstance(v, str | bool | int | float):
        return _scalar(v)
    raise ValueError(f"must be a number, string, bool or object, not {_type_name(v)}")


def _parse_timestamp(v: object) -> datetime:
    """RFC 3339 with an offset, or epoch milliseconds, in 1970-01-01 … 9999-12-31 (UTC).

    Returns an exact UTC datetime: no platform ``time_t`` (``fromtimestamp`` raises
    OSError or OverflowError out of range), no float rounding of whole milliseconds.
    """
    if isinstance(v, bool):
        raise ValueError("must be an RFC 3339 string or epoch milliseconds, not a bool")
    if isinstance(v, int | float):
        if not 0 <= v <= MAX_TS_MS:  # also false for NaN
            raise ValueError(
                f"epoch milliseconds {_show(v)} out of range: a timestamp must lie between "
                f"1970-01-01 and 9999-12-31 UTC (0 to {MAX_TS_MS})"
            )
        return EPOCH + timedelta(milliseconds=v)
    if isinstance(v, str):
        try:
            ts = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"not an RFC 3339 timestamp: {_show(v)}") from None
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"{_show(v)} has no UTC offset (RFC 3339 needs one)")
        since_epoch = ts - EPOCH  # exact, and safe where astimezone() would overflow
        if not timedelta(0) <= since_epoch <= _LATEST:
            raise ValueError(
                f"{_show(v)} out of range: a timestamp must lie between 1970-01-01 and "
                "9999-12-31 UTC"
            )
        return EPOCH + since_epoch
    raise ValueError(f"must be an RFC 3339 string or epoch milliseconds, not {_type_name(v)}")


def _ts_ms(ts: datetime) -> int:
    return (ts - EPOCH) // _MS


def timestamp_ms(v: object) -> int:
    """A record's ``timestamp`` value as epoch milliseconds; ValueError when invalid.

    >>> timestamp_ms("2026-11-23T01:00:00+01:00"), timestamp_ms(1500.9)
    (1795392000000, 1500)
    """
    return _ts_ms(_parse_timestamp(v))


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "minimum": 0, "maximum": MAX_TS_MS},
            ]
        }
    ),
]
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]
Text = Annotated[StrictStr, Field(max_length=MAX_NAME)]
BoundedFloat = Annotated[
    float, Field(strict=True, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE, allow_inf_nan=False)
]
Scalar = Annotated[StrictBool | StrictInt | BoundedFloat | StrictStr, BeforeValidator(_scalar)]
FeatureValue = Annotated[
    StrictBool | StrictInt | BoundedFloat | StrictStr | None, BeforeValidator(_feature_value)
]
Prediction = Annotated[
    StrictBool | StrictInt | BoundedFloat | StrictStr | dict[str, Any],
    BeforeValidator(_prediction),
]


class BadRecord(ValueError):  # noqa: N818 - reads as "raise BadRecord(reason)"
    """A record that cannot be used; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        reason = one_line(reason, 1000)
        super().__init__(reason)
        self.reason = reason


class InferenceLog(BaseModel):
    """One inference: inputs, outputs and behaviour of a single model call (schema v1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = Field(description="Schema version of this record; always 1.")
    request_id: Name = Field(
        description="Unique id of the request; joins delayed labels to predictions."
    )
    timestamp: Timestamp = Field(
        description="When the inference happened: RFC 3339 string with an offset, "
        "or epoch milliseconds; between 1970-01-01 and 9999-12-31 UTC, and at most "
        "source.max_future_s ahead of the monitor's clock."
    )
    model: Name = Field(description="Model name.")
    model_version: Name = Field(description="Model version.")
    region: Name = Field(description="Deployment region.")
    cohort: Name = Field(description="User cohort.")
    dimensions: dict[str, Text] = Field(
        default_factory=dict, description="Extra segment dimensions (name -> value)."
    )
    features: dict[Annotated[str, Field(max_length=MAX_NAME)], FeatureValue] = Field(
        default_factory=dict,
        description="Model inputs: name -> number, string, bool or null; a feature keeps "
        "one type. Numbers are finite, within ±1e100.",
    )
    prediction: Prediction = Field(
        description="Model output: number, class label or object (its label, class or "
        "value, when present, a string, number or bool)."
    )
    confidence: (
        Annotated[
            float,
            Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False),
            BeforeValidator(_number),
        ]
        | None
    ) = Field(default=None, description="Model confidence or score in [0, 1].")
    latency_ms: Annotated[
        float,
        Field(strict=True, ge=0.0, le=MAX_MAGNITUDE, allow_inf_nan=False),
        BeforeValidator(_number),
    ] = Field(description="Serving latency.")
    refused: StrictBool = Field(default=False, description="The model refused to answer.")
    safety_flags: Annotated[list[Name], Field(max_length=MAX_FLAGS)] = Field(
        default_factory=list, description="Safety classifiers that flagged this call."
    )
    error: StrictStr | None = Field(default=None, description="Serving error, null when none.")

    @property
    def ts_ms(self) -> int:
        """The timestamp as epoch milliseconds (exact)."""
        return _ts_ms(self.timestamp)

    def dimension(self, name: str) -> str | None:
        """Value of a segment dimension: ``region``, ``cohort``, ``model``… or ``dimensions``."""
        if name in ("region", "cohort", "model", "model_version"):
            value: str = getattr(self, name)
            return value
        return self.dimensions.get(name)


_MAX_ERRORS = 5  # errors listed in one reason; the rest are counted


def _describe(err: ValidationError) -> str:
    parts = []
    errors = err.errors(include_url=False)
    for e in errors[:_MAX_ERRORS]:
        loc = ".".join(one_line(str(p), 64) for p in e["loc"]) or "record"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    return "schema: " + "; ".join(parts)


class LabelRecord(BaseModel):
    """A delayed ground-truth label for one earlier prediction, joined by ``request_id``.

    >>> parse_label(b'{"request_id": "r1", "timestamp": 0, "label": "approve"}').label
    'approve'
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: Name = Field(description="The request whose prediction this label judges.")
    timestamp: Timestamp = Field(description="When the label became known.")
    label: Scalar = Field(
        description="The true class (compared with the prediction) or true value (regression)."
    )

    @property
    def ts_ms(self) -> int:
        """The timestamp as epoch milliseconds (exact)."""
        return _ts_ms(self.timestamp)


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
        data = orjson.loads(raw)  # rejects NaN, Infinity and numbers that overflow a double
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRecord(f"not a JSON object: got {_type_name(data)}")
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
