from __future__ import annotations

import contextlib
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.schema import BadRecord, json_schema_text, parse_record
from tests.factories import record

ROOT = Path(__file__).resolve().parents[2]


def test_valid_record_parses_with_both_timestamp_forms() -> None:
    a = parse_record(orjson.dumps(record(timestamp=1_795_392_000_000)))
    b = parse_record(orjson.dumps(record(timestamp="2026-11-23T00:00:00Z")))
    assert a.ts_ms == b.ts_ms == 1_795_392_000_000
    assert a.region == "eu-west"


def test_unknown_fields_are_tolerated() -> None:
    rec = parse_record(orjson.dumps(record(trace_id="abc", extra={"k": 1})))
    assert rec.request_id == "req-0"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps(record(latency_ms=-1)), "latency_ms"),
        (orjson.dumps(record(confidence=1.5)), "confidence"),
        (orjson.dumps(record(timestamp="yesterday")), "timestamp"),
        (orjson.dumps(record(timestamp="2026-11-23T00:00:00")), "no UTC offset"),
        (orjson.dumps(record(schema_version=2)), "schema_version"),
        (orjson.dumps(record(features={"x": [1, 2]})), "features.x"),
        (
            orjson.dumps({k: v for k, v in record().items() if k != "region"}),
            "region: Field required",
        ),
    ],
)
def test_bad_records_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRecord) as exc:
        parse_record(raw)
    assert reason in exc.value.reason
    assert "\n" not in exc.value.reason


def test_oversize_is_rejected_before_parsing() -> None:
    with pytest.raises(BadRecord, match="oversize"):
        parse_record(orjson.dumps(record(features={"blob": "x" * 2000})), max_bytes=1000)


def test_committed_schema_file_matches_the_model() -> None:
    committed = (ROOT / "monitor" / "schemas" / "inference-log-v1.json").read_text()
    assert committed == json_schema_text()
    schema = json.loads(committed)
    assert {"request_id", "timestamp", "region", "cohort", "latency_ms"} <= set(schema["required"])


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_other_errors(raw: bytes) -> None:
    """Anything but a BadRecord escaping would crash the monitor on one bad message."""
    with contextlib.suppress(BadRecord):
        parse_record(raw)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(list(record())), st.none() | st.integers(-(2**63), 2**63 - 1) | st.text()
    )
)
def test_arbitrary_field_values_never_escape_as_other_errors(over: dict[str, object]) -> None:
    with contextlib.suppress(BadRecord):
        parse_record(orjson.dumps(record(**over)))
