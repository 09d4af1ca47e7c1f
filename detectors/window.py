"""Window-level detectors: roll-ups judged on mergeable summaries of event-time windows.

A roll-up (a region, a cohort, the whole fleet) mixes the records of many leaf segments,
and Kafka delivers them in blocks, partition by partition. Fed record by record in arrival
order, a roll-up's detector sees the *mix* change with every block and takes that for drift.
Here a roll-up is judged on summaries of event-time windows instead: whatever order the
records came in, a closed window holds the same records, so the same summary, so the same
decisions. Summaries are mergeable (:meth:`Summary.merge`), so members of a fleet can each
summarise their share and the owner of the roll-up merges them.

**The test.** One statistic per window and stream (the window mean of a number;
``asin(sqrt(rate))`` of a 0/1 rate or of a category's share, which steadies the variance of
a proportion). Each is standardised against the windows before it
since the last detection, Hawkins' self-starting way (Hawkins 1987; Quesenberry's
Q-statistics): with ``m`` earlier values of mean ``x̄`` and deviation ``s``,

    t = (x - x̄) / (s sqrt(1 + 1/m))  ~ Student t, m - 1 degrees of freedom,
    z = Phi^-1(F_t(t))                ~ N(0, 1), independent of every earlier z,

exactly, for independent normal window statistics (window means of hundreds of records are
close to normal by the central limit theorem; the ARL0 rows of ``make bench-detect``
measure the rest). A two-sided CUSUM with reference value ``k`` watches ``z`` with the
threshold :func:`detectors.calibration.calibrate` gives for N(0, 1) scores, so a window
stream has an exact ARL0 counted in windows, and the fleet budget splits windows the way it
splits records (:mod:`monitor.detection`). Scores are not capped: a roll-up whose mean jumps
by many window-sigmas alarms in one or two windows.

A :class:`Change` states the size in *record* units, like a leaf's, so the same decision
rules apply: ``before`` / ``scale`` are the pooled mean and standard deviation of the
records of the windows since the last detection up to the start of the excursion that
alarmed (the last window at which that side's sum stood at zero), ``after`` is the alarming
window's mean (rates and shares: proportions).

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> w = WindowWatcher(SignalKindName.NUMERIC, target_arl0=1e6)
>>> hits = []
>>> for t in range(80):
...     xs = rng.normal(100.0 + (8.0 if t >= 60 else 0.0), 10.0, size=400)
...     hits += [(t, c.detector, round(c.effect, 1)) for c in w.update(Summary.of(xs), t)]
>>> hits
[(61, 'window', 0.8)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri, stdtr

from detectors.base import Change, Stateful
from detectors.calibration import calibrate

__all__ = ["QCUSUM", "SignalKindName", "Summary", "WindowWatcher", "asin_sqrt"]

#: a z-score is clipped here (a p-value of 1e-33 either side): the CUSUM stays finite.
_Z_MAX = 12.0


class SignalKindName(StrEnum):
    """The kinds a window watcher knows (the same names as ``detectors.SignalKind``)."""

    NUMERIC = "numeric"
    RATE = "rate"
    CATEGORY = "category"


@dataclass(slots=True)
class Summary:
    """A mergeable summary of one signal's values in one window.

    Numbers and 0/1 rates: count, mean and sum of squared deviations (Chan's merge);
    categories: counts per value.

    >>> a, b = Summary.of([1.0, 2.0, 3.0]), Summary.of([10.0])
    >>> m = a.merged(b)
    >>> m.n, m.mean, round(m.std, 4)
    (4, 4.0, 4.0825)
    >>> Summary.of_categories(["yes", "no", "yes"]).counts
    {'yes': 2, 'no': 1}
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    counts: dict[str, int] | None = None

    @classmethod
    def of(cls, xs: Sequence[float] | npt.NDArray[np.float64]) -> Summary:
        arr = np.asarray(xs, dtype=np.float64)
        if arr.size == 0:
            return cls()
        mean = float(arr.mean())
        return cls(int(arr.size), mean, float(((arr - mean) ** 2).sum()))

    @classmethod
    def of_categories(cls, values: Iterable[str]) -> Summary:
        counts = dict(Counter(values))
        return cls(sum(counts.values()), counts=counts)

    @property
    def std(self) -> float:
        """Sample standard deviation (0 with fewer than two values)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0

    def merge(self, other: Summary) -> None:
        """Fold ``other`` into this summary (exact for counts; Chan et al. for moments)."""
        if other.counts is not None or self.counts is not None:
            mine = self.counts if self.counts is not None else {}
            for k, v in (other.counts or {}).items():
                mine[k] = mine.get(k, 0) + v
            self.counts = mine
            self.n += other.n
            return
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n

    def merged(self, other: Summary) -> Summary:
        out = Summary(self.n, self.mean, self.m2, dict(self.counts) if self.counts else None)
        out.merge(other)
        return out


class QCUSUM(Stateful):
    """Self-starting two-sided CUSUM on Q-statistics (one window statistic per update).

    ``warmup`` values are learned before any score counts (at least 3: a t statistic needs
    two earlier values and a spread). :meth:`update` returns ``+1`` / ``-1`` when the upper
    / lower sum crosses ``h``, else 0; after an alarm the detector learns anew.

    >>> q = QCUSUM(1e4, k=0.5, warmup=10)
    >>> calm = [1.0, 1.2, 0.9, 1.1, 1.0, 1.05, 0.95, 0.98, 1.03, 1.1, 0.92, 1.01]
    >>> [q.update(x) for x in calm + [1.6] * 4][-5:]  # each jump joins the learned values
    [0, 0, 0, 0, 1]
    """

    def __init__(self, target_arl0: float, k: float = 0.5, warmup: int = 10) -> None:
        if warmup < 3:
            raise ValueError(f"warmup must be >= 3 windows, got {warmup}")
        self.target_arl0 = target_arl0
        self.k = k
        self.warmup = warmup
        self.h = calibrate(target_arl0, k).threshold
        self._restart()

    def _restart(self) -> None:
        self.m = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.up = 0.0
        self.down = 0.0

    @property
    def statistic(self) -> float:
        return max(self.up, self.down)

    def score(self, x: float) -> float | None:
        """The N(0, 1) score of ``x`` against the earlier values (None while learning)."""
        if self.m < max(self.warmup, 3):
            return None
        s = math.sqrt(self.m2 / (self.m - 1))
        if s <= 0.0:  # every earlier value equal: an unequal one is infinitely surprising
            return 0.0 if x == self.mean else math.copysign(_Z_MAX, x - self.mean)
        t = (x - self.mean) / (s * math.sqrt(1.0 + 1.0 / self.m))
        tail = float(stdtr(self.m - 1, -abs(t)))  # the smaller tail: precise far out
        z = -float(ndtri(tail)) if tail > 0.0 else _Z_MAX
        return math.copysign(min(z, _Z_MAX), t)

    def update(self, x: float) -> int:
        z = self.score(x)
        if z is not None:
            self.up = max(0.0, self.up + z - self.k)
            self.down = max(0.0, self.down - z - self.k)
            if self.up >= self.h or self.down >= self.h:
                side = 1 if self.up >= self.h else -1
                self._restart()
                return side
        self.m += 1
        delta = x - self.mean
        self.mean += delta / self.m
        self.m2 += delta * (x - self.mean)
        return 0


def asin_sqrt(p: float) -> float:
    """The variance-steadying transform of a proportion (clipped to [0, 1])."""
    return math.asin(math.sqrt(min(max(p, 0.0), 1.0)))


@dataclass(slots=True)
class _Stream:
    """One statistic of one signal: its CUSUM, the pooled records since it last fired, and
    that pool as it was when each side's sum last stood at zero (the regime before the
    excursion that alarms: the windows of a change do not bias its ``before``)."""

    q: QCUSUM
    pooled: Summary = field(default_factory=Summary)
    calm_up: Summary = field(default_factory=Summary)
    calm_down: Summary = field(default_factory=Summary)


class WindowWatcher(Stateful):
    """The window detectors of one signal of one roll-up scope.

    * numbers: the window mean (detector ``window``). No spread test: the log of a window's
      standard deviation is far from normal for skewed signals (measured ARL0 0.32x the
      target at 1e4 for lognormal values, against 1.03x for normal window statistics), so a
      roll-up's spread is left to its leaves' spread CUSUMs;
    * 0/1 rates: ``asin(sqrt(rate))``; only a *rise* is reported (a falling error rate is
      good news, as with the leaves' Bernoulli CUSUM);
    * categories: the share of each of the ``top_k`` values most seen while learning, and
      of the rest (``~other``); detector ``window:<value>``, reported as a rising rate.

    Windows with fewer than ``min_records`` values are skipped (their statistic is noise).
    """

    def __init__(
        self,
        kind: SignalKindName | str,
        target_arl0: float,
        *,
        k: float = 0.5,
        warmup: int = 10,
        top_k: int = 8,
        min_records: int = 5,
    ) -> None:
        self.kind = SignalKindName(kind)
        self.target_arl0 = target_arl0
        self.k = k
        self.warmup = warmup
        self.top_k = top_k
        self.min_records = min_records
        QCUSUM(target_arl0, k, warmup)  # validate (and calibrate, cached) now
        self._streams: dict[str, _Stream] = {}
        self._learning: Counter[str] = Counter()  # categories: counts while choosing top_k
        self._windows = 0

    def _stream(self, name: str) -> _Stream:
        st = self._streams.get(name)
        if st is None:
            st = self._streams[name] = _Stream(QCUSUM(self.target_arl0, self.k, self.warmup))
        return st

    def update(self, s: Summary, tag: object = None) -> list[Change]:
        """Feed one closed window's summary; the changes it confirms (tagged ``tag``)."""
        if s.n < self.min_records:
            return []
        self._windows += 1
        if self.kind is SignalKindName.CATEGORY:
            return self._categories(s, tag)
        if self.kind is SignalKindName.RATE:
            return self._feed("window", asin_sqrt(s.mean), s, tag, rising_only=True)
        return self._feed("window", s.mean, s, tag)

    def _feed(
        self,
        name: str,
        x: float,
        s: Summary,
        tag: object,
        *,
        rising_only: bool = False,
    ) -> list[Change]:
        st = self._stream(name)
        side = st.q.update(x)
        if side == 0:
            if st.q.up == 0.0:
                st.calm_up = st.pooled.merged(Summary())
            if st.q.down == 0.0:
                st.calm_down = st.pooled.merged(Summary())
            st.pooled.merge(Summary(s.n, s.mean, s.m2))
            return []
        before = st.calm_up if side > 0 else st.calm_down
        st.pooled = Summary(s.n, s.mean, s.m2)  # learn anew from the alarming window on
        st.calm_up, st.calm_down = Summary(), Summary()
        if before.n < 2:
            return []
        if rising_only and side < 0:
            return []
        scale = before.std if before.std > 0.0 else max(abs(before.mean) * 1e-6, 1e-9)
        if self.kind is not SignalKindName.NUMERIC:
            p = min(max(before.mean, 1.0 / (before.n + 2)), 1.0 - 1.0 / (before.n + 2))
            scale = math.sqrt(p * (1.0 - p))
        return [Change(name, before.mean, s.mean, scale, before.n, tag)]

    def _categories(self, s: Summary, tag: object) -> list[Change]:
        counts = s.counts or {}
        if self._windows <= self.warmup:  # learn which values to follow first
            self._learning.update(counts)
        tracked = [c for c, _ in sorted(self._learning.items(), key=lambda kv: (-kv[1], kv[0]))]
        tracked = tracked[: self.top_k]
        out: list[Change] = []
        rest = s.n - sum(counts.get(c, 0) for c in tracked)
        for cat, hits in [*((c, counts.get(c, 0)) for c in tracked), ("~other", rest)]:
            share = Summary(s.n, hits / s.n, hits * (1.0 - hits / s.n))  # 0/1 moments
            out += self._feed(f"window:{cat}", asin_sqrt(share.mean), share, tag, rising_only=True)
        # one report per window: the share that rose the most (the others moved with it)
        return [max(out, key=lambda c: c.after / max(c.before, 1e-12))] if out else []
