"""The detectors of one segment: for every signal, the detectors a plan assigns to it.

A **plan** decides, the first time a segment sees a signal, which detectors watch it: in
basic mode one River detector (:class:`BasicPlan`); in calibrated mode a detector against the
segment's own past plus one anchored to the validated reference profile, and categorical
detectors for categories. The bank serializes its detectors but not the plan (which can
hold large reference profiles shared by every segment): restore with the same plan.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from detectors.base import Change, DetectorSpec

__all__ = ["BasicPlan", "DetectorBank", "Plan", "SignalKind", "Watcher"]


class SignalKind(StrEnum):
    """How a signal's values are distributed, which sets how a shift is scaled."""

    NUMERIC = "numeric"
    RATE = "rate"  # 0/1 observations: refusals, errors, safety flags, boolean features
    CATEGORY = "category"  # text values: string features, the predicted class
    VECTOR = "vector"  # a record's numeric features together (multivariate detector)


class Watcher(Protocol):
    """Anything that takes one observation and may report a :class:`Change`."""

    def update(self, x: Any, tag: object = None) -> Change | None: ...


class Plan(Protocol):
    """Which detectors watch a signal, decided the first time a segment sees it."""

    def watchers(self, signal: str, kind: SignalKind, stream: str = "") -> list[Watcher]:
        """Detectors for ``signal``; ``stream`` identifies segment and signal (for seeds)."""
        ...


class BasicPlan:
    """One detector from ``spec`` per numeric or rate signal; categories are not watched,
    and a family that takes 0/1 observations only (``binary_only``) watches rates only.

    >>> BasicPlan(DetectorSpec("adwin")).watchers("latency_ms", SignalKind.NUMERIC)
    [ADWINDetector(warmup=100, confirm=30, delta=0.002, clock=32)]
    >>> ddm = BasicPlan(DetectorSpec("ddm"))
    >>> ddm.watchers("latency_ms", SignalKind.NUMERIC), len(ddm.watchers("e", SignalKind.RATE))
    ([], 1)
    >>> both = BasicPlan(DetectorSpec("adwin"), rate_spec=DetectorSpec("hddm_a"))
    >>> [type(both.watchers(s, k)[0]).__name__ for s, k in
    ...  [("latency_ms", SignalKind.NUMERIC), ("error_rate", SignalKind.RATE)]]
    ['ADWINDetector', 'HDDMADetector']
    """

    def __init__(self, spec: DetectorSpec, rate_spec: DetectorSpec | None = None) -> None:
        self.spec = spec
        self.rate_spec = rate_spec

    def watchers(self, signal: str, kind: SignalKind, stream: str = "") -> list[Watcher]:
        if kind in (SignalKind.CATEGORY, SignalKind.VECTOR):
            return []
        spec = self.rate_spec if kind is SignalKind.RATE and self.rate_spec else self.spec
        det = spec.build(binary=kind is SignalKind.RATE)
        if det.binary_only and kind is not SignalKind.RATE:
            return []
        return [det]


class DetectorBank:
    """Detectors for every signal of one segment.

    >>> import random
    >>> rng = random.Random(11)
    >>> bank = DetectorBank(BasicPlan(DetectorSpec("adwin")))
    >>> changes = []
    >>> for i in range(3000):
    ...     for c in bank.update("latency_ms", rng.gauss(100 if i < 2000 else 160, 10)):
    ...         changes.append((i, round(c.effect)))
    >>> changes[0][0] >= 2000, changes[0][1] >= 4
    (True, True)
    >>> restored = DetectorBank.from_state(bank.state(), bank.plan)
    >>> restored.signals() == bank.signals()
    True
    """

    def __init__(self, plan: Plan, key: str = "") -> None:
        self.plan = plan
        self.key = key
        self._watchers: dict[str, list[Watcher]] = {}

    def update(
        self,
        signal: str,
        x: Any,
        kind: SignalKind = SignalKind.NUMERIC,
        tag: object = None,
    ) -> list[Change]:
        """Feed ``x`` to every detector of ``signal`` (created on first use); their changes."""
        ws = self._watchers.get(signal)
        if ws is None:
            ws = self._watchers[signal] = self.plan.watchers(signal, kind, f"{self.key}|{signal}")
        out: list[Change] = []
        for w in ws:
            c = w.update(x, tag)
            if c is not None:
                out.append(c)
        return out

    def update_many(
        self,
        signal: str,
        xs: Sequence[Any],
        kind: SignalKind = SignalKind.NUMERIC,
        tags: Sequence[object] | None = None,
    ) -> list[Change]:
        """Feed a batch of one signal's values; same changes as :meth:`update` one by one.

        Detectors with a vectorised ``update_many`` get the whole batch at once.
        """
        ws = self._watchers.get(signal)
        if ws is None:
            ws = self._watchers[signal] = self.plan.watchers(signal, kind, f"{self.key}|{signal}")
        tag_list: Sequence[object] = tags if tags is not None else [None] * len(xs)
        out: list[Change] = []
        for w in ws:
            many = getattr(w, "update_many", None)
            if many is not None and kind in (SignalKind.NUMERIC, SignalKind.RATE):
                out.extend(many(np.asarray(xs, dtype=np.float64), tag_list))
                continue
            for x, t in zip(xs, tag_list, strict=True):
                c = w.update(x, t)
                if c is not None:
                    out.append(c)
        return out

    def signals(self) -> list[str]:
        """Names of the signals this bank has seen."""
        return sorted(self._watchers)

    def state(self) -> bytes:
        """Serialize the detectors (not the plan); :meth:`from_state` restores them exactly."""
        return pickle.dumps(self._watchers, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_state(cls, blob: bytes, plan: Plan, key: str = "") -> DetectorBank:
        """Restore a bank serialized by :meth:`state` (trusted input: our own store)."""
        watchers = pickle.loads(blob)
        if not isinstance(watchers, dict):
            raise TypeError(f"state blob holds {type(watchers).__name__}, not a detector bank")
        bank = cls(plan, key)
        bank._watchers = watchers
        return bank
