"""The embedded demo: a realistic multi-region, multi-cohort inference-log stream.

A support assistant serves three regions and three cohorts with uneven traffic. Two things
happen part-way through:

* from 60 % of the stream, one (region, cohort) segment changes: enterprise users in
  ``eu-west`` start pasting whole documents, so prompts get much longer and the model's
  confidence drops (a segment-level HALT);
* from 80 %, a whole region degrades: ``ap-south`` (the newest region of the rollout) gets
  1.8× slower for every cohort (a region-level HALT, which inhibits its cohorts' alerts).

Everything else stays stationary. Records are generated with a seeded numpy generator, serialized to
JSON and fed through the same parse path as Kafka or file input.

>>> src = DemoSource(DemoScenario(records=5, seed=1))
>>> recs = src.poll(10)
>>> len(recs), recs[0].position.as_dict(), src.exhausted
(5, {'demo': True, 'record': 1}, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from monitor.events import DEMO_SOURCE, Position
from monitor.sources.base import RawRecord

__all__ = ["DemoScenario", "DemoSource"]

REGIONS = ("us-east", "eu-west", "ap-south")
REGION_WEIGHTS = (0.45, 0.35, 0.20)
COHORTS = ("free", "pro", "enterprise")
COHORT_WEIGHTS = (0.55, 0.30, 0.15)
LANGS = {"us-east": ("en", "es"), "eu-west": ("en", "de", "fr"), "ap-south": ("en", "hi")}
CLASSES = ("answer", "clarify", "escalate")
START_MS = 1795392000000  # 2026-11-23T00:00:00Z


@dataclass(frozen=True, slots=True)
class DemoScenario:
    """What the demo stream looks like and where the drift goes."""

    records: int = 80_000
    seed: int = 7
    drift_region: str = "eu-west"
    drift_cohort: str = "enterprise"
    drift_at: float = 0.6  # fraction of the stream after which the drift starts
    outage_region: str | None = "ap-south"  # a region-wide latency regression (None: off)
    outage_at: float = 0.8
    outage_factor: float = 1.8
    rate_per_s: float = 25.0

    @property
    def drift_index(self) -> int:
        """0-based index of the first drifted record in the whole stream."""
        return int(self.records * self.drift_at)

    @property
    def outage_index(self) -> int | None:
        """0-based index of the first record of the regional slowdown (None: no slowdown)."""
        return None if self.outage_region is None else int(self.records * self.outage_at)


class DemoSource:
    """Generates the scenario's records in chunks; positions are ``demo`` record numbers."""

    name = DEMO_SOURCE

    def __init__(self, scenario: DemoScenario | None = None) -> None:
        self.scenario = scenario or DemoScenario()
        self._rng = np.random.default_rng(self.scenario.seed)
        self.label_sources: set[str] = set()
        self._next = 0

    @property
    def exhausted(self) -> bool:
        return self._next >= self.scenario.records

    @property
    def progress(self) -> int:
        return self._next

    @property
    def total(self) -> int | None:
        return self.scenario.records

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        """The demo always starts from its first record."""

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Nothing to commit: the demo is regenerated from its seed."""

    def close(self) -> None:
        pass

    def poll(self, max_records: int) -> list[RawRecord]:
        n = min(max_records, self.scenario.records - self._next)
        if n <= 0:
            return []
        out = [
            RawRecord(orjson.dumps(rec), Position(DEMO_SOURCE, 0, self._next + i + 1))
            for i, rec in enumerate(self._generate(self._next, n))
        ]
        self._next += n
        return out

    def _generate(self, start: int, n: int) -> list[dict[str, Any]]:
        sc, rng = self.scenario, self._rng
        idx = np.arange(start, start + n)
        region = rng.choice(len(REGIONS), size=n, p=REGION_WEIGHTS)
        cohort = rng.choice(len(COHORTS), size=n, p=COHORT_WEIGHTS)
        drifted = (
            (idx >= sc.drift_index)
            & (region == REGIONS.index(sc.drift_region))
            & (cohort == COHORTS.index(sc.drift_cohort))
        )
        tokens = np.round(rng.lognormal(5.7 + 0.1 * cohort, 0.35, n) * np.where(drifted, 2.2, 1.0))
        docs = rng.poisson(3 + cohort, n)
        tenure = np.round(rng.exponential(90 + 120 * cohort, n), 1)
        returning = rng.random(n) < 0.4 + 0.15 * cohort
        conf = rng.beta(np.where(drifted, 4.0, 9.0), 2.0, n)
        latency = rng.lognormal(np.log(90 + 0.15 * tokens), 0.25, n)
        if sc.outage_region is not None:
            slow = (idx >= int(sc.records * sc.outage_at)) & (
                region == REGIONS.index(sc.outage_region)
            )
            latency = latency * np.where(slow, sc.outage_factor, 1.0)
        refused = rng.random(n) < 0.02
        flagged = rng.random(n) < 0.01
        errored = rng.random(n) < 0.003
        mix = np.array([[0.7, 0.2, 0.1], [0.65, 0.2, 0.15], [0.55, 0.2, 0.25]])
        cls = (rng.random(n)[:, None] > np.cumsum(mix[cohort], axis=1)).sum(axis=1)
        lang_u = rng.random(n)
        recs = []
        for i in range(n):
            reg = REGIONS[region[i]]
            langs = LANGS[reg]
            recs.append(
                {
                    "schema_version": 1,
                    "request_id": f"demo-{start + i + 1:08d}",
                    "timestamp": START_MS + int((start + i) * 1000 / sc.rate_per_s),
                    "model": "support-assistant",
                    "model_version": "2.3.0",
                    "region": reg,
                    "cohort": COHORTS[cohort[i]],
                    "features": {
                        "prompt_tokens": int(tokens[i]),
                        "context_docs": int(docs[i]),
                        "user_tenure_days": float(tenure[i]),
                        "is_returning": bool(returning[i]),
                        "lang": langs[int(lang_u[i] * len(langs))],
                    },
                    "prediction": CLASSES[min(int(cls[i]), 2)],
                    "confidence": round(float(conf[i]), 4),
                    "latency_ms": round(float(latency[i]), 2),
                    "refused": bool(refused[i]),
                    "safety_flags": ["toxicity"] if flagged[i] else [],
                    "error": "upstream_timeout" if errored[i] else None,
                }
            )
        return recs
