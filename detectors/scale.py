"""Calibrated CUSUM for a change of *spread* on self-starting normal scores: exact ARL0.

A broken upstream feature often keeps its mean and changes its spread: added noise, a unit
mix-up that averages out, a clipped or stuck value. The location CUSUM
(:class:`~detectors.cusum.CUSUMDetector`) watches ``z`` and does not see it. This detector
scores every value the same way (a self-starting randomized PIT: exactly i.i.d. N(0, 1)
scores while the stream is i.i.d.) and runs a two-sided CUSUM on ``z**2``:

    S+ = max(0, S+ + z**2 - k+),   S- = max(0, S- + k- - z**2),   alarm at S+ >= h+ or S- >= h-.

**Why z².** For a change of the standard deviation from 1 to ``r`` with the mean unchanged,
the log-likelihood ratio of one score is linear in ``z**2``; the CUSUM of that ratio is the
fastest test at a given false-alarm rate (Moustakides 1986). Scaled to score units, the
reference values are ``k+ = 2 ln r / (1 - 1/r**2)`` for a rise to ``r`` sigma and
``k- = 2 ln r / (r**2 - 1)`` for a fall to ``1/r`` (``ratio`` 1.5: ``k+ = 1.46``, ``k- =
0.65``). The PIT keeps ``z**2`` tame: a value beyond every counted value gets a score drawn
from the normal tail past the outermost cut point, so an outlier weighs like one draw of that
tail, not like its raw size (``|z| < 11`` always: u is a rank, never exactly 0 or 1).

**Exact calibration.** With no change ``z**2`` is chi-squared with one degree of freedom,
``P(z**2 <= t) = 2 Phi(sqrt t) - 1``, so each side's ARL0 for a threshold is one Markov
chain solve (:func:`detectors.calibration._arl_chain`, Brook & Evans, Richardson); the
target is split evenly between the sides (``1/ARL0 = 1/ARL+ + 1/ARL-``, as the location
CUSUM splits it), and the achieved ARL0 is checked by regenerative importance sampling
(tilting ``z**2`` is rescaling ``z``: the tilted law of ``z`` is N(0, 1/(1 - 2 theta))). The
chi-squared density is singular at 0, so the chain is good to ~1-2 % here (not 1e-6 as for
the location CUSUM), on the safe side: the simulation measures 1.00-1.02 x target from 1e4
to 1e12. One table per ``(target, ratio)`` serves every signal, cached in
:data:`SCALE_CALIBRATIONS`; 0.1-0.5 s uncached.

**Reports.** A :class:`~detectors.base.Change` with ``measure="spread"``: ``before`` is the
standard deviation of the stream since the last detection, ``after`` that of the
``confirm`` observations after the firing one (30 values: about +-13 % relative error),
``scale = before``; its ``effect`` is ``+-(ratio - 1)`` with ``ratio`` the larger of
after/before and before/after (``+2.0``: the spread tripled; ``-2.0``: it fell to a third).
A shift of the mean also raises ``z**2`` (by the square of the shift), so a large mean shift
may fire this detector too; its report then shows an unchanged spread, and the shift is the
location CUSUM's to report.

**Its price** (``docs/benchmarks/detection.md``, ARL0 1e4, 300 streams): against the same
CUSUM run on the true standardised values (sigma0 known), falls cost nothing (sigma / 1.5:
mean delay 54 vs 52; / 3: 20 vs 20) and rises 1.6-2.2x (x1.5: 49 vs 30; x3: 11 vs 4.9): a
rank sees a value far beyond the learned range only as "in the outermost cell". The
likelihood-ratio oracle that also knows the direction and size of the change (its own
``k``, the whole ARL0 on one side) needs 27 and 3.9 for the rises, 46 and 12 for the falls.

Learning, self-starting scores, the vectorised path and the state are those of the
self-learned :class:`~detectors.cusum.CUSUMDetector` (one learned reference per detector;
it learns anew after each of its own detections); about 1.1 KiB pickled with 64 cells.

**Its own scores, not the location CUSUM's.** Sharing one reference would save one PIT per
value, but a detection must relearn the reference, so the two tests would restart together:
a 4-sigma mean shift fires the z² CUSUM first (or on the same value) in 7 of 20 streams at
ARL0 1e9 (z² grows with the square of the shift), and a shared restart would then report
the mean shift as a spread event with an unchanged spread and blind the location CUSUM for
its learning window. Two detectors restart independently; the price is a second PIT per
numeric value (update_many: ~1.9M values/s each on this machine).

>>> import numpy as np
>>> rng = np.random.default_rng(4)
>>> latency = rng.lognormal(4.0, 0.3, size=8000)
>>> latency[5000:] = np.exp(4.0 + 3 * (np.log(latency[5000:]) - 4.0))  # log-spread x3
>>> det = ScaleCUSUMDetector(target_arl0=100_000)
>>> [(c.tag, c.measure, round(c.after / c.before, 1)) for c in
...  det.update_many(latency, tags=list(range(latency.size)))]
[(5016, 'spread', 4.8)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import erf, erfc

from detectors.base import Change, Detector, register
from detectors.calibration import (
    SCALE,
    FloatArray,
    _arl_chain,
    _regenerative_arl,
    _solve_h,
    _two_sided,
    lindley,
    threshold_fixed,
)
from detectors.cusum import CUSUMDetector
from detectors.memo import Memo
from detectors.reference import counter_uniform, counter_uniforms

__all__ = [
    "SCALE_CALIBRATIONS",
    "ScaleCUSUMDetector",
    "ScaleCalibration",
    "calibrate_scale",
    "one_sided_threshold",
    "reference_values",
    "scale_arl",
]

_STEP = 0.05  # chain state width (score units), before Richardson extrapolation
_METHOD = (
    "markov chain on chi2(1) increments (Brook-Evans, Richardson on a fixed grid), target "
    "split evenly "
    "between the sides; achieved: regenerative IS"
)


def reference_values(ratio: float) -> tuple[float, float]:
    """``(k+, k-)``: the likelihood-ratio reference values of ``z**2`` for a spread rise to
    ``ratio`` sigma and a fall to ``1 / ratio`` sigma.

    >>> [round(k, 3) for k in reference_values(1.5)]
    [1.46, 0.649]
    """
    if not 1.0 < ratio <= 10.0:
        raise ValueError(f"ratio must be in (1, 10], got {ratio}")
    two_log = 2.0 * math.log(ratio)
    return two_log / (1.0 - ratio**-2), two_log / (ratio**2 - 1.0)


def _rise_cdf(rho: float) -> Callable[[FloatArray], FloatArray]:
    """CDF of ``z**2`` for ``z ~ N(0, rho**2)``: ``erf(sqrt(t / 2) / rho)``."""

    def cdf(t: FloatArray) -> FloatArray:
        return np.asarray(erf(np.sqrt(np.maximum(t, 0.0) / 2.0) / rho), dtype=np.float64)

    return cdf


def _fall_cdf(rho: float) -> Callable[[FloatArray], FloatArray]:
    """CDF of ``-z**2`` for ``z ~ N(0, rho**2)``: ``erfc(sqrt(-t / 2) / rho)`` below 0."""

    def cdf(t: FloatArray) -> FloatArray:
        tail = erfc(np.sqrt(np.maximum(-t, 0.0) / 2.0) / rho)
        return np.asarray(np.where(t < 0.0, tail, 1.0), dtype=np.float64)

    return cdf


def _states(h: float) -> int:
    return max(24, math.ceil(h / _STEP))


def _chain_arl(cdf: Callable[[FloatArray], FloatArray], k: float, h: float, n: int) -> float:
    arl = float(_arl_chain(cdf, k, h, n))
    # a side that practically never alarms loses the chain's digits (even its sign): inf
    return arl if 0 < arl < 1e15 else math.inf


def _side_arl(cdf: Callable[[FloatArray], FloatArray], k: float, h: float, n: int) -> float:
    """One side's zero-state ARL on ``n`` and ``2n`` chain states, Richardson-extrapolated
    (the chi-squared density is singular at 0: good to ~1-2 %, not the 1e-6 of the location
    CUSUM's chain)."""
    coarse = _chain_arl(cdf, k, h, n)
    finer = _chain_arl(cdf, k, h, 2 * n)
    arl = finer + (finer - coarse) / 3.0
    return arl if 0 < arl < 1e15 else math.inf


def _side_arls(
    k_up: float, k_down: float, h_up: float, h_down: float, rho: float
) -> tuple[float, float]:
    up = _side_arl(_rise_cdf(rho), k_up, h_up, _states(h_up))
    down = _side_arl(_fall_cdf(rho), -k_down, h_down, _states(h_down))
    return up, down


def scale_arl(
    h_up: float, h_down: float, ratio: float = 1.5, *, sigma: float = 1.0
) -> tuple[float, float, float]:
    """Zero-state ARLs ``(two-sided, rise side, fall side)`` of the z² CUSUM when the scores
    are N(0, sigma²), by Markov chain: ``sigma = 1`` gives the ARL0, another ``sigma`` the
    expected delay of a spread change present from the start (ARL1).

    >>> cal = calibrate_scale(10_000)
    >>> both, up, down = scale_arl(cal.h_up, cal.h_down, sigma=1.0)
    >>> [int(round(v, -2)) for v in (both, up, down)]  # the chain of the search: 0.1 %
    [10000, 20000, 20000]
    >>> [round(scale_arl(cal.h_up, cal.h_down, sigma=s)[0], 1) for s in (1.5, 3.0, 1 / 3)]
    [32.7, 5.1, 23.0]
    """
    if not (h_up > 0 and h_down > 0 and sigma > 0):
        raise ValueError(f"need h_up, h_down, sigma > 0, got {h_up}, {h_down}, {sigma}")
    k_up, k_down = reference_values(ratio)
    up, down = _side_arls(k_up, k_down, h_up, h_down, sigma)
    return 1.0 / (1.0 / up + 1.0 / down), up, down


def one_sided_threshold(target_arl0: float, k: float, *, rise: bool = True) -> float:
    """Threshold of ONE side of the z² CUSUM, ``max(0, S + z**2 - k)`` (``rise``) or
    ``max(0, S + k - z**2)``, for a one-sided ARL0 of ``target_arl0`` on N(0, 1) scores (the
    chain, as :func:`calibrate_scale`): e.g. an oracle that knows the direction and size of
    the change and uses its likelihood-ratio ``k``.

    >>> h = one_sided_threshold(20_000, reference_values(1.5)[0])
    >>> round(h, 2) == round(calibrate_scale(10_000).h_up, 2)  # the rise side at 2 x 10,000
    True
    """
    if not 10.0 <= target_arl0 <= 1e12:
        raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
    if (rise and not k > 1.0) or (not rise and not 0.0 < k < 1.0):
        raise ValueError(
            f"k must be > 1 (rise) or in (0, 1) (fall): both sides drift down, got {k}"
        )
    if rise:
        return _solve_side(_rise_cdf(1.0), k, _tilt_rise(k), float(target_arl0))
    return _solve_side(_fall_cdf(1.0), -k, _tilt_fall(k), float(target_arl0))


def _solve_side(
    cdf: Callable[[FloatArray], FloatArray], k: float, theta: float, side: float
) -> float:
    """h with one-sided chain ARL ``side`` (Richardson-extrapolated), in ~10 coarse-solve
    units: the search runs on one coarse grid (``n`` states, fixed so that log ARL(h) is
    smooth in h), and one extrapolated solve at its answer corrects it along the slope of
    log ARL in h, which is ``theta`` (Lundberg: ARL ~ exp(theta h))."""
    h = math.log(side) / theta
    h += (math.log(side) - math.log(_chain_arl(cdf, k, h, _states(h)))) / theta
    n = _states(h)
    h = _solve_h(lambda h: math.log(_chain_arl(cdf, k, h, n)), side, h, tol=1e-4)
    return h - (math.log(_side_arl(cdf, k, h, n)) - math.log(side)) / theta


def _tilt_rise(k: float) -> float:
    """theta in (0, 1/2) with E exp(theta (z**2 - k)) = 1, i.e. -ln(1 - 2 theta) / 2 = theta k."""
    lo, hi = 1e-12, 0.5 - 1e-15
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if -0.5 * math.log1p(-2.0 * mid) < mid * k else (lo, mid)
    return 0.5 * (lo + hi)


def _tilt_fall(k: float) -> float:
    """theta > 0 with E exp(theta (k - z**2)) = 1, i.e. theta k = ln(1 + 2 theta) / 2."""
    lo, hi = 1e-12, 1.0
    while hi * k < 0.5 * math.log1p(2.0 * hi):
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid * k < 0.5 * math.log1p(2.0 * mid) else (lo, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True, slots=True)
class ScaleCalibration:
    """Thresholds of the two-sided z² CUSUM for a target ARL0, and what was measured at them.

    ``h_up`` / ``h_down`` fire the rise / fall side (each side's ARL0 is twice the target);
    ``achieved_arl0`` and ``ci95`` are measured by simulation at those thresholds.
    """

    target_arl0: float
    ratio: float
    k_up: float
    k_down: float
    h_up: float
    h_down: float
    achieved_arl0: float
    ci95: tuple[float, float]
    seconds: float
    method: str = _METHOD


ScaleKey = tuple[float, float, int, int]
#: every spread calibration of this process (the monitor persists it)
SCALE_CALIBRATIONS: Memo[ScaleKey, ScaleCalibration] = Memo()


def calibrate_scale(
    target_arl0: float, ratio: float = 1.5, *, cycles: int = 50_000, seed: int = 0
) -> ScaleCalibration:
    """Thresholds of the spread CUSUM for ``target_arl0`` (cached per key).

    >>> cal = calibrate_scale(1e6)
    >>> round(cal.h_up, 2), round(cal.h_down, 2)
    (41.77, 19.43)
    >>> bool(cal.ci95[0] < 1e6 < cal.ci95[1]), bool(abs(cal.achieved_arl0 / 1e6 - 1) < 0.05)
    (True, True)
    """
    if not 10.0 <= target_arl0 <= 1e12:
        raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
    reference_values(ratio)  # validates ratio
    key = (float(target_arl0), float(ratio), int(cycles), int(seed))
    return SCALE_CALIBRATIONS.get(key, lambda: _calibrate(*key))


def _calibrate(target: float, ratio: float, cycles: int, seed: int) -> ScaleCalibration:
    t0 = time.perf_counter()
    k_up, k_down = reference_values(ratio)
    side = 2.0 * target  # each side gets half the false-alarm rate
    th_up, th_down = _tilt_rise(k_up), _tilt_fall(k_down)
    h_up = _solve_side(_rise_cdf(1.0), k_up, th_up, side)
    h_down = _solve_side(_fall_cdf(1.0), -k_down, th_down, side)
    rng = np.random.default_rng(seed)
    sd_up = 1.0 / math.sqrt(1.0 - 2.0 * th_up)  # the tilted law of z: N(0, sd**2)
    sd_down = 1.0 / math.sqrt(1.0 + 2.0 * th_down)
    up = _regenerative_arl(
        lambda m: rng.standard_normal(m) ** 2 - k_up,
        lambda m: (sd_up * rng.standard_normal(m)) ** 2 - k_up,
        th_up,
        h_up,
        cycles,
    )
    down = _regenerative_arl(
        lambda m: k_down - rng.standard_normal(m) ** 2,
        lambda m: k_down - (sd_down * rng.standard_normal(m)) ** 2,
        th_down,
        h_down,
        cycles,
    )
    achieved, rel = _two_sided(up, down)
    return ScaleCalibration(
        target_arl0=target,
        ratio=ratio,
        k_up=k_up,
        k_down=k_down,
        h_up=h_up,
        h_down=h_down,
        achieved_arl0=achieved,
        ci95=(achieved * math.exp(-1.96 * rel), achieved * math.exp(1.96 * rel)),
        seconds=time.perf_counter() - t0,
    )


def _fixed(q: npt.NDArray[np.float64], k: float, sign: float) -> npt.NDArray[np.int64]:
    """Increments ``sign * (q - k)`` in the detector's fixed point (same rounding as the
    per-event path)."""
    return np.floor(sign * (q - k) * SCALE + 0.5).astype(np.int64)


@register
class ScaleCUSUMDetector(CUSUMDetector):
    """Two-sided CUSUM on the squares of self-starting normal scores: a change of spread.

    Parameters
    ----------
    target_arl0
        Expected number of observations between false alarms with no change (10 .. 1e12).
    ratio
        The spread change it is tuned for: a rise to ``ratio`` sigma and a fall to
        ``1 / ratio`` sigma, in (1, 10]. Default 1.5.
    seed
        Key of the detector's uniforms (randomized PIT).
    cells
        Cells of the learned reference (2 .. 128).
    warmup
        Observations before a detection may be reported; also the learning window.
    confirm
        Observations after a firing that measure the new spread (>= 2).

    >>> import random
    >>> rng = random.Random(3)
    >>> stuck = [rng.gauss(20.0, 2.0) for _ in range(3000)]
    >>> stuck += [round(rng.gauss(20.0, 0.5), 1) for _ in range(1000)]  # spread / 4
    >>> det = ScaleCUSUMDetector(target_arl0=1e6)
    >>> [(c.tag, round(c.before, 1), round(c.after, 1), round(c.effect, 1))
    ...  for i, x in enumerate(stuck) if (c := det.update(x, i))]
    [(3024, 2.0, 0.5, -2.7)]
    """

    name = "scale"
    measure = "spread"

    def __init__(
        self,
        target_arl0: float = 10_000,
        ratio: float = 1.5,
        seed: int = 0,
        cells: int = 64,
        *,
        warmup: int = 1000,
        confirm: int = 30,
        binary: bool = False,
    ) -> None:
        if not 10 <= target_arl0 <= 1e12:
            raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
        if not 1.0 < ratio <= 10.0:
            raise ValueError(f"ratio must be in (1, 10], got {ratio}")
        if not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not 2 <= cells <= 128:
            raise ValueError(f"cells must be in [2, 128], got {cells}")
        if warmup < 10:
            raise ValueError(f"warmup must be >= 10 (it is the learning window), got {warmup}")
        if confirm < 2:
            raise ValueError(f"confirm must be >= 2 (it measures the new spread), got {confirm}")
        if binary:
            raise ValueError(
                "binary=True: the spread detector watches numeric signals; watch 0/1 rates "
                "with 'bernoulli'"
            )
        self.target_arl0 = target_arl0
        self.ratio = ratio
        self.seed = seed
        self.cells = cells
        self.reference = None  # self-learned only (the score machinery of CUSUMDetector)
        Detector.__init__(self, warmup=warmup, confirm=confirm, binary=False)
        cal = self.calibration
        self.k = cal.k_up  # CUSUMDetector's attribute; the fall side uses cal.k_down
        self._k_down = cal.k_down
        self._h = cal.h_up
        self._hh = threshold_fixed(cal.h_up)
        self._hd = threshold_fixed(cal.h_down)
        self._sp = 0  # rise side (CUSUMDetector's S+ slot)
        self._sm = 0  # fall side
        self._cn = 0  # the confirmation window's own Welford summary: the new spread
        self._cmean = 0.0
        self._cm2 = 0.0
        self._restart_learning()

    @property
    def calibration(self) -> ScaleCalibration:  # type: ignore[override]
        """Both thresholds and the ARL0 achieved at them (cached per target and ratio)."""
        return calibrate_scale(self.target_arl0, self.ratio)

    @property
    def threshold(self) -> float:
        """The rise side's threshold ``h+`` (``calibration.h_down`` is the fall side's)."""
        return self._h

    def update(self, x: float, tag: object = None) -> Change | None:
        """Feed one observation (finite); return a spread :class:`Change` when confirmed."""
        if not math.isfinite(x):
            raise ValueError(f"observations must be finite, got {x}")
        confirming = self._pending is not None
        if confirming:
            n = self._cn + 1
            delta = x - self._cmean
            self._cmean += delta / n
            self._cm2 += delta * (x - self._cmean)
            self._cn = n
        change = Detector.update(self, x, tag)
        if not confirming and self._pending is not None:  # a firing: a new window opens
            self._cn, self._cmean, self._cm2 = 0, 0.0, 0.0
        if change is None:
            return None
        sd = math.sqrt(self._cm2 / (self._cn - 1))
        after = max(sd, 1e-9, abs(self._cmean) * 1e-6)
        return replace(change, before=change.scale, after=after, measure="spread")

    def _test(self, x: float) -> bool:
        v = counter_uniform(self.seed, self._n_total)
        if self._learning:
            self._learn(x)
            return False
        z = self._self_starting_score(x, v)
        q = z * z
        self._sp = max(0, self._sp + math.floor((q - self.k) * SCALE + 0.5))
        self._sm = max(0, self._sm + math.floor(-(q - self._k_down) * SCALE + 0.5))
        fired = self._sp >= self._hh or self._sm >= self._hd
        if fired and self._pending is None and self._n > self.warmup:
            self._sp = self._sm = 0
            self._restart_learning()
        return fired

    def _statistic(self) -> float:
        """The larger side's sum as a fraction of its threshold (fires at 1)."""
        return max(self._sp / self._hh, self._sm / self._hd)

    def _warning(self) -> bool:
        return 2 * self._sp > self._hh or 2 * self._sm > self._hd

    def _scan(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[int, int, int, npt.NDArray[np.intp] | None]:
        v = counter_uniforms(self.seed, self._n_total + 1, x.size)
        z, cells = self._self_starting_scores(x, v)
        q = z * z
        a = lindley(self._sp, _fixed(q, self.k, 1.0))
        b = lindley(self._sm, _fixed(q, self._k_down, -1.0))
        hit = (a >= self._hh) | (b >= self._hd)
        quiet = int(hit.argmax()) if hit.any() else x.size
        if quiet == 0:
            return 0, self._sp, self._sm, cells
        return quiet, int(a[quiet - 1]), int(b[quiet - 1]), cells

    def _params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "confirm": self.confirm,
            "target_arl0": self.target_arl0,
            "ratio": self.ratio,
            "seed": self.seed,
            "cells": self.cells,
        }
