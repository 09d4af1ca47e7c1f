"""Calibrated Bernoulli CUSUM for 0/1 rates: near-optimal for a rising rate, exact ARL0.

An error, refusal or safety-flag indicator is a 0/1 stream with a small rate ``p``. The
likelihood-ratio CUSUM for a rise from ``p`` to ``r p`` adds ``log r`` for every 1 and
``log((1 - r p) / (1 - p))`` for every 0; it is the fastest test of that rise at a given
false-alarm rate (Moustakides 1986). Two things stand in the way of using it as is: ``p`` is
not known (it is learned, and a threshold set for an estimate misses its ARL0 target by the
estimation error), and its ARL0 for a threshold must be computed for every ``p``.

**Self-starting, exact.** The first half of the warm-up sets ``q`` (below) and is never
counted; from the second half on, the detector scores each value against every value
counted before it, as a smoothed conformal p-value (as :class:`~detectors.cusum.CUSUMDetector`
does), with ``n0`` zeros and ``n1`` ones counted so far and ``v ~ U(0, 1)``:

    u = (n0 + v (n1 + 1)) / (n0 + n1 + 1)   for a 1,     u = v (n0 + 1) / (n0 + n1 + 1)   for a 0

While the stream is i.i.d. these ``u`` are exactly i.i.d. U(0, 1), whatever ``p`` is, and
independent of the values that set ``q``. The CUSUM watches the *tail event* ``u > 1 - q``,
with ``q`` the rate of the first half of the warm-up (on a 1/8-octave grid, floored at
0.5 %): under no change it happens with probability exactly ``q``, independently at each
step, so the ARL0 of a threshold is that of a Bernoulli(q)
CUSUM, computed exactly; and since the ones occupy the top ``~p`` of the unit interval, the
tail event is (nearly) "a 1 was seen", and the test is (nearly) the optimal one for ``p``.

**Exact ARL.** Increments are put on an integer lattice: ``+M`` for a tail event, ``-b`` for
any other (``M / b`` rounds ``log r / -log((1 - r q) / (1 - q))``, with ``b`` chosen so a
lattice unit is at most ~0.02 of log-likelihood). The CUSUM on the lattice *is* the test
(no approximation left between what is calibrated and what runs); its ARL from 0 with
threshold ``H`` is one banded linear solve (Markov chain on ``0 .. H-1``), and ``H`` is the
smallest threshold whose ARL0 reaches the target (bisection; lattice steps change the ARL0
by a few per cent). Cached per ``(target, ratio, q)``.

**Reports.** One-sided: only rises fire. The new rate of a report is read over the CUSUM's
change-point stretch (since its sum last left 0) plus the ``confirm`` window, or over the
confirm window alone when that reads higher (a large rise: the stretch then starts before
the change); 30 values alone are too few to measure a rate of a few per cent.

>>> import random
>>> rng = random.Random(2)
>>> errors = [float(rng.random() < 0.05) for _ in range(6000)]  # 5 % error rate ...
>>> errors += [float(rng.random() < 0.08) for _ in range(4000)]  # ... rises to 8 %
>>> det = BernoulliCUSUMDetector(target_arl0=50_000, warmup=2000)
>>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
[(6382, 0.2)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.linalg import solve_banded

from detectors.base import Change, Detector, register
from detectors.calibration import lindley
from detectors.memo import Memo
from detectors.rate import RateDetector
from detectors.reference import counter_uniform, counter_uniforms

__all__ = [
    "BERNOULLI_CALIBRATIONS",
    "BernoulliCUSUMDetector",
    "BernoulliCalibration",
    "calibrate_bernoulli",
    "grid_rate",
]

_Q_MIN = 0.005  # tail mass floor: rarer rates are watched through the top 0.5 %
_MAX_UNIT = 0.02  # largest log-likelihood step of one lattice unit
_BLOCK = 4096


@dataclass(frozen=True, slots=True)
class BernoulliCalibration:
    """Lattice and threshold of a Bernoulli CUSUM for a target ARL0 at tail mass ``q``.

    ``up`` / ``down``: lattice increments of a tail event / of any other observation;
    ``threshold``: ``H`` in lattice units (fires at ``S >= H``); ``unit``: log-likelihood per
    lattice unit; ``achieved_arl0``: the exact ARL0 at ``H`` (Markov chain, not simulated).
    """

    target_arl0: float
    ratio: float
    q: float
    up: int
    down: int
    unit: float
    threshold: int
    achieved_arl0: float
    seconds: float
    method: str = "Bernoulli(q) CUSUM on an integer lattice: exact Markov chain (banded solve)"


def _lattice(q: float, ratio: float) -> tuple[int, int, float]:
    d = -math.log((1.0 - ratio * q) / (1.0 - q))  # LLR of a non-tail event, negated
    up = math.log(ratio)
    down = max(1, round(d / _MAX_UNIT))
    unit = d / down
    return max(1, round(up / unit)), down, unit


def _arl_lattice(q: float, up: int, down: int, h: int) -> float:
    """Zero-state ARL of ``S = max(0, S + (up w.p. q else -down))``, alarm at ``S >= h``."""
    if h <= up and q > 0:
        # every tail event alarms from any state: geometric
        return 1.0 / q
    n = h
    # banded matrix I - P: lower bandwidth ``down`` (drops), upper ``up`` (jumps)
    ab = np.zeros((down + up + 1, n))
    diag = up  # row index of the main diagonal in banded storage
    ab[diag, :] = 1.0
    s = np.arange(n)
    # drop: s -> max(0, s - down) with probability 1 - q
    target = np.maximum(0, s - down)
    for col_off in range(0, down + 1):
        rows = s[(s - target) == col_off]
        if rows.size:
            ab[diag + col_off, rows - col_off] -= 1.0 - q
    # jump: s -> s + up with probability q, when still below h
    rows = s[s + up < n]
    ab[diag - up, rows + up] -= q
    arl = solve_banded((down, up), ab, np.ones(n))
    return float(arl[0])


def grid_rate(p: float, ratio: float) -> float:
    """The tail mass ``q`` for a learned rate ``p``: floored at 0.5 %, rounded to 1/8 octave
    (the calibration grid), capped at ``0.5 / ratio`` (the alternative ``ratio * q`` must be a
    rate)."""
    q = max(p, _Q_MIN)
    return min(float(f"{2.0 ** (round(8.0 * math.log2(q)) / 8.0):.6g}"), 0.5 / ratio)


def calibrate_bernoulli(target_arl0: float, q: float, ratio: float = 1.5) -> BernoulliCalibration:
    """Smallest lattice threshold with ARL0 >= ``target_arl0`` at tail mass ``q`` (cached).

    >>> cal = calibrate_bernoulli(10_000, 0.05)
    >>> (cal.up, cal.down), 1.0 <= cal.achieved_arl0 / 10_000 < 1.05
    ((15, 1), True)
    """
    if not 10 <= target_arl0 <= 1e12:
        raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
    if not 1.0 < ratio <= 10.0:
        raise ValueError(f"ratio must be in (1, 10], got {ratio}")
    if not 0.0 < q < 1.0 / ratio:
        raise ValueError(f"q must be in (0, 1 / ratio), got {q}")
    key = (float(target_arl0), float(ratio), float(q))
    return BERNOULLI_CALIBRATIONS.get(key, lambda: _calibrate(*key))


def _calibrate(target: float, ratio: float, q: float) -> BernoulliCalibration:
    t0 = time.perf_counter()
    up, down, unit = _lattice(q, ratio)
    # Wald: ARL0 ~ exp(h) in log-likelihood units; bracket around it, then bisect on H
    guess = max(up + 1, int(math.log(target) / unit))
    lo, hi = max(1, guess // 2), guess
    while _arl_lattice(q, up, down, hi) < target:
        lo, hi = hi, 2 * hi
    while _arl_lattice(q, up, down, lo) >= target and lo > 1:
        lo //= 2
    while hi - lo > 1:  # ARL(lo) < target <= ARL(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _arl_lattice(q, up, down, mid) < target else (lo, mid)
    return BernoulliCalibration(
        target_arl0=target,
        ratio=ratio,
        q=q,
        up=up,
        down=down,
        unit=unit,
        threshold=hi,
        achieved_arl0=_arl_lattice(q, up, down, hi),
        seconds=time.perf_counter() - t0,
    )


BernoulliKey = tuple[float, float, float]
#: every Bernoulli calibration of this process (the monitor persists it)
BERNOULLI_CALIBRATIONS: Memo[BernoulliKey, BernoulliCalibration] = Memo()


@register
class BernoulliCUSUMDetector(RateDetector):
    """Self-starting Bernoulli CUSUM for a *rising* 0/1 rate, calibrated to ``target_arl0``.

    Parameters
    ----------
    target_arl0
        Expected number of observations between false alarms with no change (10 .. 1e12).
    ratio
        The rise it is tuned for (the CUSUM is optimal for ``p -> ratio * p``), in (1, 10].
        Rises of a half to twice that are caught within ~1.3x of their own optimum.
    seed
        Key of the detector's uniforms (randomized conformal scores).
    warmup
        Observations before a detection may be reported; the rate ``q`` of the tail event is
        learned from them (and again from the post-change data after each detection).
    """

    name = "bernoulli"
    hyper = ("target_arl0", "ratio", "seed")

    def __init__(
        self,
        target_arl0: float = 10_000,
        ratio: float = 1.5,
        seed: int = 0,
        *,
        warmup: int = 1000,
        confirm: int = 30,
        binary: bool = True,
    ) -> None:
        if not 10 <= target_arl0 <= 1e12:
            raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
        if not 1.0 < ratio <= 10.0:
            raise ValueError(f"ratio must be in (1, 10], got {ratio}")
        if not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if warmup < 10:
            raise ValueError(f"warmup must be >= 10 (it is the learning window), got {warmup}")
        self.target_arl0 = target_arl0
        self.ratio = ratio
        self.seed = seed
        super().__init__(warmup=warmup, confirm=confirm)
        self._s = 0
        self._seg_at_fire = (0, 0)
        self._restart_learning()

    # -- read-outs ------------------------------------------------------------------------

    @property
    def calibration(self) -> BernoulliCalibration | None:
        """The lattice and threshold in force (``None`` while learning)."""
        return self._cal

    @property
    def threshold(self) -> float:
        """``H`` in log-likelihood units (``inf`` while learning)."""
        cal = self._cal
        return math.inf if cal is None else cal.threshold * cal.unit

    def _statistic(self) -> float:
        cal = self._cal
        return 0.0 if cal is None else self._s * cal.unit

    def _warning(self) -> bool:
        cal = self._cal
        return cal is not None and 2 * self._s > cal.threshold

    # -- the test -------------------------------------------------------------------------

    def update(self, x: float, tag: object = None) -> Change | None:
        """Feed one 0/1 observation; return a :class:`Change` when a rise is detected.

        One-sided by construction (only tail events push the sum up), so a firing is
        reported whatever the ``confirm`` observations after it average: with a rate of a
        few per cent, 30 observations are too few to refute a rise (8 % shows as <= 5 %
        about a third of the time).
        """
        if x != 0.0 and x != 1.0:
            raise ValueError(f"{self.name} takes 0/1 observations, got {x!r}")
        change = Detector.update(self, x, tag)
        if change is None:
            return None
        # the new rate: over the CUSUM's own change-point estimate (the stretch since its
        # sum last left 0) plus the confirmation window, which is far less noisy than the
        # 30 confirmation values alone for a small rise; for a large rise that stretch starts
        # before the change (it is the change point for a rise by ``ratio``) and dilutes the
        # new rate, where the confirmation values alone read it well: the larger of the two
        ones, n = self._seg_at_fire
        stretch = (ones + change.after * self.confirm) / (n + self.confirm)
        return replace(change, after=max(stretch, change.after))

    def _restart_learning(self) -> None:
        self._q_ones = 0  # first half of the learning window: sets q, not counted
        self._q_n = 0
        self._n0 = 0  # counted values (the conformal history): from the second half on
        self._n1 = 0
        self._cal: BernoulliCalibration | None = None
        self._tail = 1.0  # u above this is a tail event
        self._s = 0
        self._seg_ones = 0  # ones and observations since the sum was last 0
        self._seg_n = 0

    def _learn(self, x: float) -> None:
        if self._q_n < self.warmup // 2:
            # q comes from values that are never counted: the later conformal scores are
            # functions of later values only, so they are independent of q (exactness)
            self._q_ones += int(x)
            self._q_n += 1
        elif x == 1.0:
            self._n1 += 1
        else:
            self._n0 += 1
        if self._q_n + self._n0 + self._n1 >= self.warmup:
            q = grid_rate((self._q_ones + 0.5) / (self._q_n + 1.0), self.ratio)
            self._cal = calibrate_bernoulli(self.target_arl0, q, self.ratio)
            self._tail = 1.0 - q

    def _test(self, x: float) -> bool:
        cal = self._cal
        if cal is None:
            self._learn(x)
            return False
        n0, n1 = self._n0, self._n1
        v = counter_uniform(self.seed, self._n_total)
        if x == 1.0:
            u = (n0 + v * (n1 + 1)) / (n0 + n1 + 1)
            self._n1 = n1 + 1
        else:
            u = v * (n0 + 1) / (n0 + n1 + 1)
            self._n0 = n0 + 1
        self._s = max(0, self._s + (cal.up if u > self._tail else -cal.down))
        if self._s == 0:
            self._seg_ones = self._seg_n = 0
        else:
            self._seg_ones += int(x)
            self._seg_n += 1
        fired = self._s >= cal.threshold
        if fired and self._pending is None and self._n > self.warmup:
            self._seg_at_fire = (self._seg_ones, self._seg_n)
            self._restart_learning()
        return fired

    # -- vectorised path ------------------------------------------------------------------

    def update_many(self, xs: npt.ArrayLike, tags: Sequence[object] | None = None) -> list[Change]:
        """Feed a batch; same changes, same state as calling :meth:`update` on each value.

        >>> rng = np.random.default_rng(3)
        >>> data = (rng.random(30_000) < np.where(np.arange(30_000) < 20_000, 0.05, 0.1))
        >>> a, b = BernoulliCUSUMDetector(1e5, seed=1), BernoulliCUSUMDetector(1e5, seed=1)
        >>> one = [c for i, x in enumerate(data) if (c := a.update(float(x), i))]
        >>> many = b.update_many(data.astype(float), tags=list(range(data.size)))
        >>> one == many, a.state() == b.state(), [c.tag for c in many]
        (True, True, [20312])
        """
        arr = np.asarray(xs, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"xs must be 1-D, got shape {arr.shape}")
        if not np.isin(arr, (0.0, 1.0)).all():
            raise ValueError(f"{self.name} takes 0/1 observations")
        if tags is not None and len(tags) != arr.size:
            raise ValueError(f"tags has {len(tags)} items for {arr.size} observations")
        vals: list[float] = arr.tolist()
        changes: list[Change] = []
        i, size = 0, arr.size
        while i < size:
            if self._pending is not None or self._cal is None:  # confirm / learn: one by one
                c = self.update(vals[i], None if tags is None else tags[i])
                if c is not None:
                    changes.append(c)
                i += 1
                continue
            j = min(size, i + _BLOCK)
            quiet, s, last_zero = self._scan(arr[i:j])
            if quiet:
                x = arr[i : i + quiet]
                self._absorb(vals, i, i + quiet)
                self._count(x)
                self._s = s
                if last_zero >= 0:
                    self._seg_ones = int(x[last_zero + 1 :].sum())
                    self._seg_n = quiet - last_zero - 1
                else:
                    self._seg_ones += int(x.sum())
                    self._seg_n += quiet
            if i + quiet < j:  # an alarm candidate: let update() decide
                c = self.update(vals[i + quiet], None if tags is None else tags[i + quiet])
                if c is not None:
                    changes.append(c)
                i += quiet + 1
            else:
                i = j
        return changes

    def _scan(self, x: npt.NDArray[np.float64]) -> tuple[int, int, int]:
        """Length of the quiet prefix of ``x`` (the sum stays below H), the sum after it, and
        the index of the prefix's last 0 of the sum (-1: none)."""
        cal = self._cal
        assert cal is not None
        v = counter_uniforms(self.seed, self._n_total + 1, x.size)
        ones_before = np.cumsum(x) - x  # ones of the block before each value
        idx = np.arange(x.size)
        n1 = self._n1 + ones_before
        n0 = self._n0 + (idx - ones_before)
        m1 = self._n0 + self._n1 + 1 + idx
        u = np.where(x == 1.0, (n0 + v * (n1 + 1)) / m1, v * (n0 + 1) / m1)
        inc = np.where(u > self._tail, cal.up, -cal.down).astype(np.int64)
        s = lindley(self._s, inc)
        hit = s >= cal.threshold
        quiet = int(hit.argmax()) if hit.any() else x.size
        zeros = np.flatnonzero(s[:quiet] == 0)
        last_zero = int(zeros[-1]) if zeros.size else -1
        return quiet, (int(s[quiet - 1]) if quiet else self._s), last_zero

    def _count(self, x: npt.NDArray[np.float64]) -> None:
        """Count a quiet stretch into the conformal history."""
        ones = int(x.sum())
        self._n1 += ones
        self._n0 += x.size - ones
