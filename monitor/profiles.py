"""Reference profiles: the named baseline a rollout was validated on.

A profile is built by replaying inference logs (typically the canary stage: a time range
and/or a set of segments) and keeps, per signal, what a reference-anchored detector needs:

* numeric and rate signals: a uniform reservoir sample of the values (``sample_size`` at
  most), from which detectors derive quantiles, mean and spread;
* categorical signals: the count of every category (top ``max_categories``, rest "other").

Profiles are stored in the history store by name (``driftgate reference build``) and loaded
by the monitor when ``detection.reference`` names one.

>>> from monitor.observe import Observer
>>> from monitor.schema import InferenceLog
>>> b = ProfileBuilder(Observer(), ProfileFilter(regions=["eu"]), sample_size=100, seed=1)
>>> def rec(i):
...     return InferenceLog.model_validate({"schema_version": 1, "request_id": str(i),
...         "timestamp": i, "model": "m", "model_version": "1",
...         "region": "eu" if i % 2 else "us", "cohort": "a", "features": {"x": i % 10},
...         "prediction": "yes" if i % 3 else "no", "latency_ms": 10.0})
>>> sum(b.add(rec(i)) for i in range(500))
250
>>> p = b.build("canary")
>>> p.records, len(p.signals["feature:x"].sample), p.signals["prediction"].counts
(250, 100, {'yes': 167, 'no': 83})
>>> Profile.from_dict(p.to_dict()) == p
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from detectors import SignalKind
from monitor.observe import Observer
from monitor.schema import InferenceLog

__all__ = ["Profile", "ProfileBuilder", "ProfileFilter", "SignalProfile"]

OTHER = "~other"


@dataclass(frozen=True, slots=True)
class ProfileFilter:
    """Which records make the baseline (all optional; times in epoch ms, inclusive)."""

    regions: list[str] | None = None
    cohorts: list[str] | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def admits(self, rec: InferenceLog) -> bool:
        if self.regions and rec.region not in self.regions:
            return False
        if self.cohorts and rec.cohort not in self.cohorts:
            return False
        ts = rec.ts_ms
        if self.since_ms is not None and ts < self.since_ms:
            return False
        return not (self.until_ms is not None and ts > self.until_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "regions": self.regions,
            "cohorts": self.cohorts,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
        }


@dataclass(slots=True)
class SignalProfile:
    """The baseline of one signal."""

    kind: SignalKind
    seen: int = 0
    sample: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "seen": self.seen,
            "sample": self.sample,
            "counts": self.counts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignalProfile:
        return cls(SignalKind(d["kind"]), int(d["seen"]), list(d["sample"]), dict(d["counts"]))


@dataclass(slots=True)
class Profile:
    """A named baseline: per-signal profiles plus how it was built."""

    name: str
    filter: ProfileFilter
    records: int
    signals: dict[str, SignalProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "filter": self.filter.to_dict(),
            "records": self.records,
            "signals": {k: v.to_dict() for k, v in sorted(self.signals.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        return cls(
            name=d["name"],
            filter=ProfileFilter(**d["filter"]),
            records=int(d["records"]),
            signals={k: SignalProfile.from_dict(v) for k, v in d["signals"].items()},
        )


class ProfileBuilder:
    """Accumulates a profile from records: reservoir samples and category counts."""

    def __init__(
        self,
        observer: Observer,
        filter: ProfileFilter,
        *,
        sample_size: int = 2000,
        max_categories: int = 50,
        seed: int = 0,
    ) -> None:
        if sample_size < 10:
            raise ValueError(f"sample_size must be >= 10, got {sample_size}")
        self.observer = observer
        self.filter = filter
        self.sample_size = sample_size
        self.max_categories = max_categories
        self._rng = random.Random(seed)
        self._signals: dict[str, SignalProfile] = {}
        self.records = 0

    def add(self, rec: InferenceLog) -> bool:
        """Add a record if the filter admits it; return whether it did."""
        if not self.filter.admits(rec):
            return False
        observations = self.observer.observe(rec)  # BadRecord (a changed feature type) first
        self.records += 1
        for name, x, kind in observations:
            prof = self._signals.get(name)
            if prof is None:
                prof = self._signals[name] = SignalProfile(kind)
            prof.seen += 1
            if isinstance(x, str):
                counts = prof.counts
                if x in counts or len(counts) < self.max_categories:
                    counts[x] = counts.get(x, 0) + 1
                else:
                    counts[OTHER] = counts.get(OTHER, 0) + 1
            elif len(prof.sample) < self.sample_size:
                prof.sample.append(x)
            else:  # reservoir sampling (Algorithm R): every value kept with equal chance
                j = self._rng.randrange(prof.seen)
                if j < self.sample_size:
                    prof.sample[j] = x
        return True

    def build(self, name: str) -> Profile:
        return Profile(name, self.filter, self.records, dict(self._signals))
