"""Factories for inference-log records and streams used across the tests."""

from __future__ import annotations

import random
from typing import Any

import orjson

REGIONS = ("us-east", "eu-west", "ap-south")
COHORTS = ("free", "pro", "enterprise")
T0 = 1_795_392_000_000


def record(i: int = 0, **over: Any) -> dict[str, Any]:
    """A valid schema-v1 record; keyword arguments override top-level fields."""
    rec: dict[str, Any] = {
        "schema_version": 1,
        "request_id": f"req-{i}",
        "timestamp": T0 + i * 40,
        "model": "ranker",
        "model_version": "1.0.0",
        "region": "eu-west",
        "cohort": "free",
        "features": {"x": 0.0},
        "prediction": "ok",
        "confidence": 0.9,
        "latency_ms": 50.0,
        "refused": False,
        "safety_flags": [],
        "error": None,
    }
    rec.update(over)
    return rec


def grid_stream(
    n_per_segment: int,
    *,
    shift_segment: tuple[str, str] | None = None,
    shift_at: int = 0,
    shift: float = 3.0,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """3 regions x 3 cohorts interleaved; feature ``x`` ~ N(0, 1), shifted by ``shift``
    in ``shift_segment`` for that segment's records with index >= ``shift_at``."""
    rng = random.Random(seed)
    out = []
    i = 0
    for k in range(n_per_segment):
        for region in REGIONS:
            for cohort in COHORTS:
                x = rng.gauss(0.0, 1.0)
                if (region, cohort) == shift_segment and k >= shift_at:
                    x += shift
                out.append(
                    record(
                        i,
                        region=region,
                        cohort=cohort,
                        features={"x": x},
                        confidence=min(1.0, max(0.0, rng.gauss(0.8, 0.05))),
                        latency_ms=max(0.0, rng.gauss(50.0, 5.0)),
                    )
                )
                i += 1
    return out


def to_bytes(records: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(r) for r in records]
