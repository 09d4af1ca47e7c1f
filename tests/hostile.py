"""Hostile records: one of every kind the monitor must dead-letter, and survive.

Each :class:`Hostile` is the raw bytes a producer bug could write, and a piece of the reason
the dead letter must give. Inference records are built on :func:`tests.factories.record`
(so exactly one thing is wrong with each); ``after_good`` marks those that are only wrong
after a good record has fixed the feature types (``features.x`` is a number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tests.factories import record

DAY_MS = 86_400_000
_HOLE = "\x00hole\x00"


@dataclass(frozen=True)
class Hostile:
    name: str
    raw: bytes
    reason: str  # a substring of the dead letter's reason
    after_good: bool = False


def _with(raw_value: bytes, base: dict[str, Any]) -> bytes:
    """``base`` as JSON with the placeholder replaced by ``raw_value`` (any JSON text, also
    what no encoder writes: NaN, 1e400, integers beyond 64 bits)."""
    return orjson.dumps(base).replace(orjson.dumps(_HOLE), raw_value)


def _field(field: str, raw_value: bytes, i: int = 0) -> bytes:
    return _with(raw_value, record(i, **{field: _HOLE}))


def _feature(raw_value: bytes, i: int = 0) -> bytes:
    return _with(raw_value, record(i, features={"x": _HOLE}))


def hostile_records(now_ms: int) -> list[Hostile]:
    """Inference records of every hostile kind; ``now_ms`` is the monitor's clock."""
    future = str(now_ms + 2 * DAY_MS).encode()
    return [
        Hostile("timestamp overflows datetime", _field("timestamp", b"99999999999999999999"),
                "out of range"),
        Hostile("timestamp int beyond 64 bits",
                _field("timestamp", b"123456789012345678901234567890"), "out of range"),
        Hostile("timestamp negative", _field("timestamp", b"-1e20"), "out of range"),
        Hostile("timestamp string before 1970 in UTC",
                _field("timestamp", b'"0001-01-01T00:00:00+01:00"'), "out of range"),
        Hostile("timestamp string after 9999 in UTC",
                _field("timestamp", b'"9999-12-31T23:59:59-01:00"'), "out of range"),
        Hostile("timestamp year 9999", _field("timestamp", b'"9999-06-01T00:00:00Z"'),
                "timestamp in the future"),
        Hostile("timestamp two days ahead", _field("timestamp", future),
                "timestamp in the future"),
        Hostile("timestamp without offset", _field("timestamp", b'"2026-11-23T00:00:00"'),
                "no UTC offset"),
        Hostile("timestamp bool", _field("timestamp", b"true"), "not a bool"),
        Hostile("timestamp object", _field("timestamp", b'{"s": 1}'), "timestamp"),
        Hostile("NaN token", _feature(b"NaN"), "invalid JSON"),
        Hostile("Infinity token", _field("latency_ms", b"Infinity"), "invalid JSON"),
        Hostile("number overflows a double", _feature(b"1e400"), "invalid JSON"),
        Hostile("negative overflow", _field("latency_ms", b"-1e400"), "invalid JSON"),
        Hostile("huge finite feature", _feature(b"1e300"), "too large"),
        Hostile("huge finite latency", _field("latency_ms", b"1e300"), "too large"),
        Hostile("huge numeric prediction", _field("prediction", b"-1e300"), "too large"),
        Hostile("huge value in a prediction object",
                _field("prediction", b'{"value": 1e250, "extra": [1, 2]}'), "too large"),
        Hostile("list as a prediction class", _field("prediction", b'{"label": [1]}'),
                "prediction"),
        Hostile("list as prediction", _field("prediction", b"[1, 2]"), "prediction"),
        Hostile("bool latency", _field("latency_ms", b"true"), "latency_ms: must be a number"),
        Hostile("string latency", _field("latency_ms", b'"inf"'),
                "latency_ms: must be a number"),
        Hostile("list confidence", _field("confidence", b"[0.5]"), "confidence"),
        Hostile("string refused", _field("refused", b'"yes"'), "refused"),
        Hostile("int error", _field("error", b"500"), "error"),
        Hostile("number as region", _field("region", b"42"), "region"),
        Hostile("non-string dimension", _field("dimensions", b'{"team": 7}'), "dimensions.team"),
        Hostile("object as feature value", _feature(b'{"nested": true}'), "features.x"),
        Hostile("huge safety_flags", _field("safety_flags", orjson.dumps(["f"] * 5000)),
                "safety_flags"),
        Hostile("non-string safety flag", _field("safety_flags", b"[1]"), "safety_flags.0"),
        Hostile("request_id too long", _field("request_id", orjson.dumps("r" * 300)),
                "request_id"),
        Hostile("schema version 2", _field("schema_version", b"2"), "schema_version"),
        Hostile("empty object", b"{}", "Field required"),
        Hostile("JSON array", b"[1, 2]", "not a JSON object"),
        Hostile("not UTF-8", b"\xff\xfe{}", "invalid JSON"),
        Hostile("nested too deep", b'{"a": ' * 2000 + b"1" + b"}" * 2000, "invalid JSON"),
        Hostile("string for a numeric feature", _feature(b'"seven"'),
                "features.x: a string, but this feature has been a number", after_good=True),
        Hostile("bool for a numeric feature", _feature(b"false"),
                "features.x: a bool, but this feature has been a number", after_good=True),
    ]  # fmt: skip


def hostile_labels(now_ms: int) -> list[Hostile]:
    """Label records of every hostile kind (same rules as inference records)."""

    def label(raw_value: bytes, field: str = "label") -> bytes:
        base: dict[str, Any] = {"request_id": "req-1", "timestamp": now_ms - DAY_MS, "label": 1}
        base[field] = _HOLE
        return _with(raw_value, base)

    return [
        Hostile("label timestamp overflows", label(b"99999999999999999999", "timestamp"),
                "out of range"),
        Hostile("label in the future", label(b'"9999-01-01T00:00:00Z"', "timestamp"),
                "timestamp in the future"),
        Hostile("huge label value", label(b"1e300"), "too large"),
        Hostile("list label", label(b"[1]"), "label"),
        Hostile("null label", label(b"null"), "label"),
        Hostile("label NaN", label(b"NaN"), "invalid JSON"),
        Hostile("label without request_id", b'{"timestamp": 0, "label": 1}', "request_id"),
    ]  # fmt: skip
