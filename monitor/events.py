"""The facts driftgate produces: source positions, drift events and scaling-halt signals.

Ids are deterministic (a hash of what identifies the fact), so replaying the same input
reproduces the same ids and a store or consumer can de-duplicate on them.

>>> pos = Position("file:/data/logs.jsonl", 0, 42)
>>> pos.as_dict()
{'file': '/data/logs.jsonl', 'line': 42}
>>> Position("inference-logs", 3, 1007).as_dict()
{'topic': 'inference-logs', 'partition': 3, 'offset': 1007}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["DriftEvent", "Level", "Position", "Signal", "stable_id"]

FILE_PREFIX = "file:"
DEMO_SOURCE = "demo"


def stable_id(*parts: object) -> str:
    """A short deterministic id from its parts.

    >>> a = stable_id("HALT", "region=eu-west", 7)
    >>> len(a), a == stable_id("HALT", "region=eu-west", 7), a == stable_id("HALT", "x", 7)
    (16, True, False)
    """
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a record came from: Kafka (topic, partition, offset), a file line, or the demo.

    ``source`` is the topic name, ``file:<path>`` or ``demo``; for files and the demo the
    partition is 0 and ``offset`` is the 1-based line (or record) number.
    """

    source: str
    partition: int
    offset: int

    @property
    def is_file(self) -> bool:
        return self.source.startswith(FILE_PREFIX)

    def as_dict(self) -> dict[str, Any]:
        if self.is_file:
            return {"file": self.source[len(FILE_PREFIX) :], "line": self.offset}
        if self.source == DEMO_SOURCE:
            return {"demo": True, "record": self.offset}
        return {"topic": self.source, "partition": self.partition, "offset": self.offset}

    def __str__(self) -> str:
        if self.is_file:
            return f"{self.source[len(FILE_PREFIX) :]}:{self.offset}"
        if self.source == DEMO_SOURCE:
            return f"demo#{self.offset}"
        return f"{self.source}[{self.partition}]@{self.offset}"


def _scope_fields(fid: str, segment: str, scope: str, labels: dict[str, str]) -> dict[str, Any]:
    """The identity and scope part of every fact's JSON form."""
    return {
        "id": fid,
        "segment": segment,
        "scope": scope,
        "region": labels.get("region"),
        "cohort": labels.get("cohort"),
        "labels": labels,
    }


class Level(StrEnum):
    """Severity of a scaling-halt signal. HALT outranks WARN."""

    WARN = "WARN"
    HALT = "HALT"

    @property
    def rank(self) -> int:
        return 2 if self is Level.HALT else 1


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """One detector firing on one signal of one segment."""

    segment: str
    scope: str  # "segment", a dimension name ("region", "cohort"…) or "global"
    labels: dict[str, str]
    signal: str
    detector: str
    effect: float  # shift in pre-change sigmas (signed)
    before: float
    after: float
    scale: float
    observations: int
    ts_ms: int  # event time of the triggering record
    position: Position  # source position of the triggering record
    id: str = field(default="")
    rate: bool = False  # a 0/1 rate signal: judged by its relative rise (not stored)
    # "mean": effect/before/after are a shift of the mean; "spread": before/after are
    # standard deviations, effect +-(ratio - 1) (not stored: the detector "scale" says it)
    measure: str = "mean"

    def __post_init__(self) -> None:
        if not self.id:
            p = self.position
            parts: tuple[object, ...] = (self.segment, self.signal, p.source, p.partition)
            parts += (p.offset,) if self.measure == "mean" else (p.offset, self.measure)
            object.__setattr__(self, "id", stable_id("drift", *parts))

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "drift",
            **_scope_fields(self.id, self.segment, self.scope, self.labels),
            "signal": self.signal,
            "detector": self.detector,
            "statistic": {
                "effect": round(self.effect, 4),
                "before": self.before,
                "after": self.after,
                "scale": self.scale,
            },
            "observations": self.observations,
            "ts_ms": self.ts_ms,
            "position": self.position.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Signal:
    """A scaling-halt signal: WARN or HALT for one scope, with reason and evidence."""

    level: Level
    segment: str  # the scope key, e.g. "region=eu-west,cohort=free" or "*"
    scope: str
    labels: dict[str, str]
    reason: str
    evidence: tuple[str, ...]  # ids of the drift events behind it
    ts_ms: int
    position: Position
    id: str = field(default="")
    signal: str = ""  # the signal of the latest drift event behind it, e.g. latency_ms

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(
                self, "id", stable_id("signal", self.level.value, self.segment, self.evidence[-1])
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.level.value,
            **_scope_fields(self.id, self.segment, self.scope, self.labels),
            "reason": self.reason,
            "signal": self.signal,
            "evidence": list(self.evidence),
            "ts_ms": self.ts_ms,
            "position": self.position.as_dict(),
        }
