"""Run lengths and detection delays: the measurements every section of the benchmark shares.

A *run length* is the number of observations a detector sees before its first alarm on a
stream that never changes; its mean is the ARL0. A run can be *censored* (the stream ended
first): the ARL0 is then estimated as exposure / alarms (the maximum-likelihood estimate for
geometric run lengths), which is the plain mean when nothing is censored.

A *delay* is counted on streams that change at index ``c``: an alarm at index ``t >= c`` has
delay ``t - c + 1`` (an alarm on the first changed observation has delay 1, the convention of
the Markov-chain ARL1 in :func:`detectors.calibration.arl`). Trials with an alarm before the
change are counted apart and left out of the delay statistics (conditional delay); a trial
with no alarm within ``horizon`` observations after the change is missed.

>>> import numpy as np
>>> rl = RunLengths(np.array([10, 30, 50]), np.array([False, False, True]))
>>> rl.alarms, rl.arl
(2, 45.0)
>>> d = delay_stats(np.array([5, 120, 101, -1, 400]), change=100, horizon=200)
>>> d.pre_change, d.valid, d.missed, d.delays.tolist()
(1, 4, 2, [21, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from detectors.base import Change

__all__ = [
    "DelayStats",
    "RunLengths",
    "delay_stats",
    "first_change",
    "river_first_alarm",
    "tag_index",
    "tune_log",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RunLengths:
    """Run lengths to the first false alarm (``censored``: the stream ended first)."""

    lengths: IntArray
    censored: BoolArray

    @property
    def alarms(self) -> int:
        return int((~self.censored).sum())

    @property
    def exposure(self) -> int:
        return int(self.lengths.sum())

    @property
    def arl(self) -> float:
        """exposure / alarms (the mean run length when nothing is censored)."""
        return self.exposure / self.alarms if self.alarms else math.inf

    def ci95(self) -> tuple[float, float]:
        """95 % interval of the ARL0: sample spread if uncensored, else Poisson on alarms."""
        n = self.lengths.size
        if self.alarms == 0:
            return (float(self.exposure), math.inf)
        if not self.censored.any() and n > 1:
            half = 1.96 * float(self.lengths.std(ddof=1)) / math.sqrt(n)
            return (self.arl - half, self.arl + half)
        r = 1.96 / math.sqrt(self.alarms)
        return (self.arl * math.exp(-r), self.arl * math.exp(r))

    @property
    def median(self) -> float:
        return float(np.median(self.lengths)) if not self.censored.any() else math.nan


@dataclass(frozen=True)
class DelayStats:
    """Delays of the trials that had no alarm before the change."""

    delays: IntArray
    pre_change: int  # trials with an alarm before the change (left out)
    valid: int  # trials without one
    missed: int  # valid trials with no alarm within the horizon

    @property
    def missed_rate(self) -> float:
        return self.missed / self.valid if self.valid else math.nan

    @property
    def mean(self) -> float:
        return float(self.delays.mean()) if self.delays.size else math.nan

    @property
    def median(self) -> float:
        return float(np.median(self.delays)) if self.delays.size else math.nan


def delay_stats(first: IntArray, change: int, horizon: int) -> DelayStats:
    """Delay statistics from each trial's first alarm index (-1: none)."""
    first = np.asarray(first, dtype=np.int64)
    pre = (first >= 0) & (first < change)
    valid = ~pre
    hit = valid & (first >= change) & (first < change + horizon)
    return DelayStats(
        delays=(first[hit] - change + 1).astype(np.int64),
        pre_change=int(pre.sum()),
        valid=int(valid.sum()),
        missed=int((valid & ~hit).sum()),
    )


class RiverDetector(Protocol):
    """River's drift-detector interface: ``update`` then read ``drift_detected``."""

    drift_detected: bool

    def update(self, x: Any) -> Any: ...


def river_first_alarm(det: RiverDetector, xs: Sequence[float]) -> int:
    """Index of the first observation after which ``det.drift_detected`` is true, or -1."""
    update = det.update
    for i, v in enumerate(xs):
        update(v)
        if det.drift_detected:
            return i
    return -1


class Batched(Protocol):
    def update_many(self, xs: Any, tags: Sequence[object] | None = None) -> list[Change]: ...


class Single(Protocol):
    def update(self, x: Any, tag: object = None) -> Change | None: ...


def first_change(det: Batched | Single, xs: Sequence[Any] | FloatArray, start: int = 0) -> int:
    """Index (``start`` + position in ``xs``) of the observation that fired the first
    confirmed :class:`Change` of a driftgate detector (its ``tag``), or -1.

    Uses ``update_many`` when the detector has it (the vectorised path), else ``update``.
    A firing whose confirmation window runs past the end of ``xs`` is not seen.
    """
    if hasattr(det, "update_many"):
        changes = det.update_many(xs, tags=range(start, start + len(xs)))
        return tag_index(changes[0]) if changes else -1
    upd = det.update
    for i, v in enumerate(xs):
        c = upd(v, start + i)
        if c is not None:
            return tag_index(c)
    return -1


def tag_index(c: Change) -> int:
    """The observation index the benchmark passed as the firing observation's tag."""
    if not isinstance(c.tag, int):
        raise TypeError(f"expected an int tag, got {c.tag!r}")
    return c.tag


def tune_log(
    arl_of: Callable[[float], float],
    target: float,
    lo: float,
    hi: float,
    *,
    increasing: bool,
    iters: int = 10,
    tol: float = 0.05,
) -> tuple[float, float]:
    """Bisection on log(parameter) for ``arl_of(p) ~= target``; returns (p, measured ARL0).

    ``increasing``: the ARL0 grows with the parameter (PageHinkley's threshold) or falls
    with it (ADWIN's delta). Measurements use common random numbers, so the measured ARL0 is
    close to monotone in ``p``; the best value seen is returned.

    >>> round(tune_log(lambda p: 100.0 * p, 1000.0, 1.0, 100.0, increasing=True)[0], 6)
    10.0
    """
    best = (math.nan, math.inf)
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        mid = 0.5 * (a + b)
        p = math.exp(mid)
        v = arl_of(p)
        err = abs(math.log(v / target)) if v > 0 and math.isfinite(v) else math.inf
        if err < abs(math.log(best[1] / target)) or math.isnan(best[0]):
            best = (p, v)
        if err < tol:
            break
        if (v < target) == increasing:
            a = mid
        else:
            b = mid
    return best
