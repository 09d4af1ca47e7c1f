"""Thresholds for a target false-alarm rate: CUSUM calibration by Markov chain and simulation.

The detectors in :mod:`detectors.cusum` run a two-sided CUSUM on *normal scores*
(:mod:`detectors.reference`): with no change, the scores are i.i.d. N(0, 1) whatever the
signal, so the threshold ``h`` that gives an in-control average run length ``ARL0`` depends on
``(k, ARL0)`` only and one table serves every detector. How it is computed:

* **ARL of a given h: Markov chain** (Brook & Evans 1972). The one-sided CUSUM
  ``S = max(0, S + z - k)`` on ``[0, h)`` is discretised into ``N`` states; the ARL from 0 is
  one linear solve. The error is O(1/N^2); two grids (N, 2N) and Richardson extrapolation
  give about 6 significant digits in milliseconds, for any target (500 or 10^9 alike),
  where direct simulation of an ARL of 10^7 would need ~10^10 draws. The two sides combine
  as ``1/ARL = 1/ARL+ + 1/ARL-`` (Lucas & Crosier 1982; checked against direct two-sided
  simulation to about 1 %, see tests).
* **h for a target**: Siegmund's approximation seeds a secant search on ``log ARL(h)``
  (nearly linear in h), 4-6 chain solves.
* **A reference estimated from n values** (an anchored detector's profile) is not the truth:
  its cell masses are off by O(1/sqrt(n)) and the scores are only nearly N(0, 1). The
  calibration draws plausible true cell masses (the Dirichlet posterior of the counts) and
  sets ``h`` so that the *alarm rate* averaged over those draws is ``1 / target``:
  ``E[1/ARL0_r] = 1/target``. The alarm rate, not the run length, is what a fleet budget
  counts (averaging run lengths instead would let ``E[1/ARL0_r]`` exceed ``1/E[ARL0_r]`` by
  the Jensen factor ``E[r] E[1/r]``: 2.4 at ARL0 2.5e8 with 1,000 values). ``conditional_arl0``
  reports the spread (10/50/90 %) of the ARL0 of the one fixed reference. Prefer references
  of thousands of values.
* **A reference learned by the detector itself** needs no correction: the self-learning
  :class:`~detectors.cusum.CUSUMDetector` scores every value against all the values counted
  before it (smoothed conformal p-values), which are exactly i.i.d. U(0, 1) while the stream
  is i.i.d., so the exact table applies to it whatever it learned.
* **Achieved ARL0, measured**: the threshold is then checked by simulation. Importance
  sampling on the CUSUM's regeneration cycles (Siegmund 1976: exponential tilting, likelihood
  ratio ``exp(-2k S)`` bounded by ``exp(-2kh)``) gives the one-sided ARL with a 95 % interval
  of about +-1 % in ~0.05 s at any target; the estimated-reference factor comes from the same
  posterior draws as above (its own Monte Carlo interval is folded into the CI): the achieved
  ARL0 of an anchored calibration is the reciprocal of its expected alarm rate.

:func:`calibrate_bootstrap` calibrates a CUSUM on *raw* standardised values instead, by
importance-sampled bootstrap of the reference sample (for comparison: it is exact for the
reference sample, but needs one calibration per reference, inherits its estimation error
without correction, and pays for skew: a lognormal(sigma = 1) signal needs h = 16.5 instead
of 8.05 at ARL0 10^4; on 0/1 data ARL(h) is a step function and the target is met to ~10 %).

:func:`cusum_first_alarms` is the vectorised two-sided CUSUM itself, in the fixed-point
arithmetic the detector uses, for simulations and the fleet benchmark.

>>> cal = calibrate(10_000)
>>> round(cal.threshold, 2), cal.k
(8.05, 0.5)
>>> cal.ci95[0] < cal.target_arl0 < cal.ci95[1] and 0.95 < cal.achieved_arl0 / 1e4 < 1.05
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.linalg import solve_toeplitz

from detectors.memo import Memo

__all__ = [
    "CALIBRATIONS",
    "Calibration",
    "arl",
    "calibrate",
    "calibrate_bootstrap",
    "cusum_first_alarms",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: CUSUM sums are kept in fixed point, 2**-32 of a score unit: integer addition is
#: associative, so the vectorised closed form and the per-event recursion agree bit for bit.
SCALE = 2.0**32
_MAX_ABS_SCORE = 1e4  # |z| bound for the fixed-point kernel (no int64 overflow in a chunk)
_CHUNK = 4096
_STEP = 0.05  # Markov-chain state width (score units), before Richardson extrapolation
_COARSE_STEP = 0.1  # state width for the batched reference-draw chains ...
_COARSE_STATES = 240  # ... and at most this many states (wider beyond h = 24)
_ARL_CEILING = 1e15  # chain ARLs past this are numerically meaningless
_MAX_EXTRA_H = 8.0  # cap on how far a small reference may raise h (about e^8 in ARL0)
_SQRT2 = math.sqrt(2.0)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _phi(t: FloatArray) -> FloatArray:
    """Standard normal CDF, vectorised (via math.erfc: full precision in both tails)."""
    return np.asarray(0.5 * _erfc(-np.asarray(t, dtype=np.float64) / _SQRT2), dtype=np.float64)


# -- the CUSUM kernel ------------------------------------------------------------------------


def threshold_fixed(h: float) -> int:
    """The fixed-point alarm level: a sum fires when it is >= this integer.

    >>> threshold_fixed(1.5) == 3 * 2**31
    True
    """
    return math.ceil(h * SCALE)


def fixed_increments(z: FloatArray, k: float) -> tuple[IntArray, IntArray]:
    """Upper and lower CUSUM increments ``z - k`` and ``-z - k`` in fixed point.

    >>> up, down = fixed_increments(np.array([1.5, -0.25]), 0.5)
    >>> (up / SCALE).tolist(), (down / SCALE).tolist()
    ([1.0, -0.75], [-2.0, -0.25])
    """
    up = np.floor((z - k) * SCALE + 0.5).astype(np.int64)
    down = np.floor((-z - k) * SCALE + 0.5).astype(np.int64)
    return up, down


def lindley(s0: IntArray | int, x: IntArray) -> IntArray:
    """``S_t = max(0, S_{t-1} + x_t)`` from ``S_0 = s0`` along the last axis, in closed form.

    ``S_t = C_t - min(0, min_{j<=t} C_j)`` with ``C_t = s0 + x_1 + ... + x_t``: one cumulative
    sum and one running minimum instead of a Python loop; exact in integers.

    >>> lindley(2, np.array([1, -5, 3, -1, 4])).tolist()
    [3, 0, 3, 2, 6]
    """
    c = np.cumsum(x, axis=-1)
    c += np.asarray(s0, dtype=np.int64)[..., None] if np.ndim(s0) else s0
    return c - np.minimum(np.minimum.accumulate(c, axis=-1), 0)


def cusum_first_alarms(z: FloatArray, k: float, h: float) -> IntArray:
    """Index of the first alarm of a two-sided CUSUM on each row of ``z``, or -1.

    Each row is one stream of normal scores; both sums start at 0 and the row alarms at the
    first ``t`` with ``max(S+_t, S-_t) >= h``. Runs in chunks of 4,096 columns (memory stays
    small for long rows) and drops rows that have alarmed. Same fixed-point arithmetic as
    :class:`detectors.cusum.CUSUMDetector`, so on the same scores the alarm indices agree.

    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((2000, 3000))
    >>> z[:1000, 1000:] += 1.0  # half of the streams shift by 1 sigma at t = 1000
    >>> first = cusum_first_alarms(z, 0.5, calibrate(10_000).threshold)
    >>> delay = first[:1000][first[:1000] >= 1000] - 1000
    >>> int(np.median(delay)), int((first[1000:] >= 0).sum())  # 1-sigma delay; false alarms
    (13, 274)
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"z must be 2-D (rows = streams), got shape {z.shape}")
    if not (k >= 0 and h > 0):
        raise ValueError(f"need k >= 0 and h > 0, got k={k}, h={h}")
    if z.size and not np.abs(z).max() <= _MAX_ABS_SCORE:
        raise ValueError(f"scores must be finite with |z| <= {_MAX_ABS_SCORE:g}")
    rows, cols = z.shape
    out = np.full(rows, -1, dtype=np.int64)
    live = np.arange(rows)
    sp = np.zeros(rows, dtype=np.int64)
    sm = np.zeros(rows, dtype=np.int64)
    hh = threshold_fixed(h)
    for start in range(0, cols, _CHUNK):
        if live.size == 0:
            break
        up, down = fixed_increments(z[live, start : start + _CHUNK], k)
        a = lindley(sp[live], up)
        b = lindley(sm[live], down)
        hit = (a >= hh) | (b >= hh)
        any_hit = hit.any(axis=1)
        out[live[any_hit]] = start + hit[any_hit].argmax(axis=1)
        sp[live] = a[:, -1]
        sm[live] = b[:, -1]
        live = live[~any_hit]
    return out


# -- ARL by Markov chain ---------------------------------------------------------------------


def _arl_chain(
    cdf: Callable[[FloatArray], FloatArray], k: float, h: float, n: int, *, dense: bool = False
) -> FloatArray:
    """Zero-state ARL of ``S = max(0, S + y - k)``, ``y ~ cdf``, absorbing at ``S >= h``.

    Brook & Evans: state ``i`` stands for ``S`` in ``[(i - 1/2) w, (i + 1/2) w)`` with
    ``w = 2h / (2n - 1)``, state 0 also holding the atom at 0. ``cdf`` maps a 1-D array of
    points to ``(..., points)``: a batch of distributions is solved at once. The solve is
    :func:`_arl_toeplitz` per distribution, or the dense ``np.linalg.solve`` with ``dense``
    (small batches, tests).
    """
    w = 2.0 * h / (2 * n - 1)
    d = np.arange(-(n - 1), n, dtype=np.float64)  # j - i
    hi = cdf((d + 0.5) * w + k)
    lo = cdf((d - 0.5) * w + k)
    i = np.arange(n)
    if hi.ndim == 1 and not dense:
        return _arl_toeplitz(hi, lo, n)
    if n >= 64 and not dense:  # a batch: one O(n^2) solve each beats one O(n^3) batch solve
        flat_hi = hi.reshape(-1, hi.shape[-1])
        flat_lo = lo.reshape(-1, lo.shape[-1])
        out = np.array([_arl_toeplitz(a, b, n) for a, b in zip(flat_hi, flat_lo, strict=True)])
        return out.reshape(hi.shape[:-1])
    p = (hi - lo)[..., (i[None, :] - i[:, None]) + (n - 1)]
    p[..., :, 0] = hi[..., (n - 1) - i]
    a = np.eye(n) - p
    ones = np.ones((*a.shape[:-1], 1))
    return np.asarray(np.linalg.solve(a, ones)[..., 0, 0], dtype=np.float64)


def _arl_toeplitz(hi: FloatArray, lo: FloatArray, n: int) -> FloatArray:
    """The same solve in O(n^2): ``I - P`` is Toeplitz but for its first column.

    ``P[i, j] = g[j - i]`` for ``j >= 1`` (``g`` the cell masses of one step) while column 0
    holds the mass of ``S <= w/2``; so ``I - P = T + u e0'`` with ``T`` Toeplitz. Two Levinson
    solves of ``T`` (``scipy.linalg.solve_toeplitz``) and Sherman-Morrison give the ARL from
    state 0; agrees with the dense solve to ~1e-6 relative up to ARL ~1e12 (tests), 100x
    faster at the n of large targets (h = 40: n = 1,600).
    """
    g = hi - lo  # g[(j - i) + (n - 1)]
    i = np.arange(n)
    col = -g[(n - 1) - i]
    col[0] += 1.0
    row = -g[(n - 1) + i]
    row[0] += 1.0
    # Sherman-Morrison: ARL(0) = x0 / (1 + e0' T^-1 u) with T x = 1. The denominator is
    # ~1/ARL: computed as e0' T^-1 (T e0 + u) = e0' T^-1 (e0 - hi_rev), it avoids the
    # cancellation of 1 + y0 (y0 ~ -1), which lost all digits beyond ARL ~1e9
    rhs = -hi[(n - 1) - i]
    rhs[0] += 1.0
    with np.errstate(all="ignore"):
        x = solve_toeplitz((col, row), np.ones(n))
        denom = solve_toeplitz((col, row), rhs)[0]
        out = x[0] / denom if denom > 0 else math.nan
    if math.isfinite(out) and out > 0:
        return np.asarray(out, dtype=np.float64)
    if np.isfinite(x).all() and abs(denom) < 1e-14 * abs(x[0]):
        # Levinson went through; only 1/ARL is below the solve's resolution (ARL > ~1e15):
        # a dense solve would not resolve it either
        return np.asarray(math.inf, dtype=np.float64)
    # Levinson needs nonsingular leading minors; when a distribution breaks that (rare:
    # a near-degenerate distorted reference), solve this one chain densely
    p = g[(i[None, :] - i[:, None]) + (n - 1)]
    p[:, 0] = hi[(n - 1) - i]
    return np.asarray(np.linalg.solve(np.eye(n) - p, np.ones(n))[0], dtype=np.float64)


def _arl_one_sided(
    cdf: Callable[[FloatArray], FloatArray], k: float, h: float, fine: bool = True
) -> FloatArray:
    """Chain ARL: ``fine`` extrapolates two grids (relative error ~1e-6); otherwise one coarse
    grid (~1 %, errors that cancel in ratios of ARLs computed on the same grid)."""
    if not fine:
        return _arl_chain(cdf, k, h, max(24, min(_COARSE_STATES, math.ceil(h / _COARSE_STEP))))
    n = max(24, math.ceil(h / _STEP))
    coarse = _arl_chain(cdf, k, h, n)
    finer = _arl_chain(cdf, k, h, 2 * n)
    return finer + (finer - coarse) / 3.0  # Richardson: the error is O(1/n^2)


def arl(h: float, k: float = 0.5, shift: float = 0.0) -> float:
    """Zero-state ARL of the two-sided CUSUM on scores ``z ~ N(shift, 1)`` (Markov chain).

    ``shift = 0`` gives the in-control ARL0; a shift gives the expected detection delay of a
    change present from the start (ARL1).

    >>> round(arl(5.0)), round(arl(8.0, shift=1.0), 1)
    (465, 16.4)
    """
    if not (h > 0 and k >= 0):
        raise ValueError(f"need h > 0 and k >= 0, got h={h}, k={k}")
    up = _arl_one_sided(lambda t: _phi(t - shift), k, h)
    down = _arl_one_sided(lambda t: _phi(t + shift), k, h)
    return float(1.0 / (1.0 / up + 1.0 / down))


def _siegmund_h(target: float, k: float) -> float:
    """h from Siegmund's approximation of the two-sided ARL0 (seed of the search)."""
    if k < 1e-3:
        return math.sqrt(2.0 * target) - 1.166
    lo, hi = 1e-3, 200.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        b = 2.0 * k * (mid + 1.166)
        val = (math.expm1(b) - b) / (2.0 * k * k) / 2.0
        lo, hi = (mid, hi) if val < target else (lo, mid)
    return 0.5 * (lo + hi)


def _solve_h(
    log_arl: Callable[[float], float], target: float, h0: float, tol: float = 1e-6
) -> float:
    """Secant search for ``log_arl(h) = log(target)``; log ARL is close to linear in h.

    Stops when ``log_arl`` is within ``tol`` of the goal, or when a step moves h by less than
    1e-5 (ARL0 then moves by ~1e-5 relative; the chain's own digits at ARL0 ~1e12 are about
    that: asking for more only jitters)."""
    goal = math.log(target)
    a, fa = h0, log_arl(h0) - goal
    b = h0 + (0.5 if fa < 0 else -0.5)
    b = max(b, 0.05)
    fb = log_arl(b) - goal
    for _ in range(40):
        if abs(fb) < tol or fb == fa or abs(b - a) < 1e-5:
            break
        c = b - fb * (b - a) / (fb - fa)
        c = min(max(c, b - 5.0, 0.02), b + 5.0)
        a, fa, b = b, fb, c
        fb = log_arl(b) - goal
    return b


# -- references estimated from a sample ------------------------------------------------------


def _draws_for_counts(
    counts: tuple[int, ...], draws: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Nominal cell masses of a reference, and true masses drawn from their posterior."""
    c = np.asarray(counts, dtype=np.float64)
    cells, n = c.size, c.sum()
    nominal = (c + 1.0 / cells) / (n + 1.0)
    true = rng.gamma(np.broadcast_to(c + 1.0 / cells, (draws, cells)))
    true /= true.sum(axis=1, keepdims=True)
    return np.broadcast_to(nominal, (draws, cells)), true


def _distorted_cdfs(
    nominal: FloatArray, true: FloatArray
) -> tuple[Callable[[FloatArray], FloatArray], Callable[[FloatArray], FloatArray]]:
    """CDFs of ``z`` and ``-z`` when the reference's cell masses are ``nominal`` but the
    stream's are ``true``: ``P(z <= t) = G(Phi(t))`` with ``G`` piecewise linear."""
    zero = np.zeros((nominal.shape[0], 1))
    pc = np.concatenate([zero, np.cumsum(nominal, axis=1)], axis=1)
    tc = np.concatenate([zero, np.cumsum(true, axis=1)], axis=1)
    pc[:, -1] = 1.0
    tc[:, -1] = 1.0

    def g(v: FloatArray) -> FloatArray:
        return np.stack([np.interp(v, pc[r], tc[r]) for r in range(pc.shape[0])])

    def up(t: FloatArray) -> FloatArray:
        return g(_phi(t))

    def down(t: FloatArray) -> FloatArray:
        return 1.0 - g(_phi(-t))

    return up, down


class _Linearised:
    """Each reference draw's log ratio, linear in h around ``at``, and log ARL_exact(h) as
    the line through ``exact`` (its value at ``h0`` and its slope per unit of h)."""

    def __init__(
        self,
        nominal: FloatArray,
        true: FloatArray,
        k: float,
        at: float,
        exact: tuple[float, float, float],
        slope_r: FloatArray | None = None,
    ) -> None:
        self.at = at
        self.log_r = np.log(_factor(nominal, true, k, at)[0])
        if slope_r is None:  # the slopes barely move with h: later passes reuse the first's
            slope_r = np.log(_factor(nominal, true, k, at + 1.0)[0]) - self.log_r
        self.slope_r = slope_r
        self.h0, self.le, self.slope_e = exact

    def log_exact(self, h: float) -> float:
        return self.le + self.slope_e * (h - self.h0)

    def ratios(self, h: float) -> FloatArray:
        return np.asarray(np.exp(self.log_r + self.slope_r * (h - self.at)))

    def log_arl0(self, h: float) -> float:
        """log of 1 / (the alarm rate averaged over the draws)."""
        return self.log_exact(h) - float(np.log(np.mean(1.0 / self.ratios(h))))


def _factor(nominal: FloatArray, true: FloatArray, k: float, h: float) -> tuple[FloatArray, float]:
    """ARL0 of each drawn reference, relative to exact scores (same coarse chain)."""
    up, down = _distorted_cdfs(nominal, true)
    # beyond ~1e15 the chain's solve loses its digits (even its sign): such a side is
    # practically never alarming, take 1e15
    a = _arl_one_sided(up, k, h, fine=False)
    b = _arl_one_sided(down, k, h, fine=False)
    a = np.where((a > 0) & (a < _ARL_CEILING), a, _ARL_CEILING)
    b = np.where((b > 0) & (b < _ARL_CEILING), b, _ARL_CEILING)
    exact = float(_arl_one_sided(_phi, k, h, fine=False)) / 2.0
    return 1.0 / (1.0 / a + 1.0 / b) / exact, exact


# -- ARL by simulation -----------------------------------------------------------------------


def _regenerative_arl(
    draw_p: Callable[[int], FloatArray],
    draw_q: Callable[[int], FloatArray],
    theta: float,
    h: float,
    cycles: int,
) -> tuple[float, float]:
    """One-sided zero-state ARL and its relative standard error, by regenerative IS.

    A cycle runs ``S += y`` from 0 until ``S <= 0`` (the CUSUM is back at 0) or ``S >= h``
    (alarm). With ``D`` the cycle length and ``p`` the chance a cycle alarms, the ARL is
    ``E[D] / p`` (Wald). ``E[D]`` is plain Monte Carlo under the in-control law (``draw_p``);
    ``p`` is estimated under the exponentially tilted law (``draw_q``, increments with density
    ``exp(theta y)`` times the original, ``E exp(theta y) = 1``), where alarms are common, each
    weighted by the likelihood ratio ``exp(-theta S_alarm) <= exp(-theta h)``.
    """
    lengths = np.zeros(cycles)
    s = np.zeros(cycles)
    live = np.arange(cycles)
    t = 0
    while live.size and t < 1_000_000:
        t += 1
        s[live] += draw_p(live.size)
        done = (s[live] <= 0.0) | (s[live] >= h)
        lengths[live[done]] = t
        live = live[~done]
    lengths[live] = t  # (never reached in practice)
    weight = np.zeros(cycles)
    s[:] = 0.0
    live = np.arange(cycles)
    t = 0
    while live.size and t < 1_000_000:
        t += 1
        s[live] += draw_q(live.size)
        alarm = s[live] >= h
        weight[live[alarm]] = np.exp(-theta * s[live[alarm]])
        live = live[~(alarm | (s[live] <= 0.0))]
    p = float(weight.mean())
    d = float(lengths.mean())
    if p <= 0.0:
        return math.inf, 0.0
    rel = math.hypot(float(lengths.std()) / d, float(weight.std()) / p) / math.sqrt(cycles)
    return d / p, rel


def _two_sided(up: tuple[float, float], down: tuple[float, float]) -> tuple[float, float]:
    """Lucas-Crosier combination of one-sided ARLs, with the relative standard error."""
    ra, rb = 1.0 / up[0], 1.0 / down[0]
    if ra + rb == 0.0:
        return math.inf, 0.0
    rate = ra + rb
    rel = math.hypot(ra * up[1], rb * down[1]) / rate
    return 1.0 / rate, rel


def _simulate_normal(h: float, k: float, cycles: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    one = _regenerative_arl(
        lambda m: rng.standard_normal(m) - k,
        lambda m: rng.standard_normal(m) + k,
        2.0 * k,
        h,
        cycles,
    )
    return one[0] / 2.0, one[1]  # both sides alike: ARL0 = ARL+ / 2


# -- calibration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calibration:
    """A CUSUM threshold for a target ARL0, and what was measured at it.

    ``achieved_arl0`` and ``ci95`` are measured by simulation at ``threshold``;
    ``conditional_arl0`` (10 %, 50 %, 90 % quantiles) is the spread of the ARL0 of one fixed
    reference of ``reference_size`` values (``None`` when the reference is taken as exact);
    ``seconds`` is the time spent computing it (cache hits are free).

    >>> cal = calibrate(1_000, k=0.5)
    >>> cal.method
    'markov chain (Brook-Evans, Richardson) + Lucas-Crosier; achieved: regenerative IS'
    >>> bool(abs(cal.achieved_arl0 / cal.target_arl0 - 1) < 0.05)
    True
    """

    target_arl0: float
    k: float
    threshold: float
    achieved_arl0: float
    ci95: tuple[float, float]
    seconds: float
    method: str
    reference_size: int | None = None
    conditional_arl0: tuple[float, float, float] | None = None


_METHOD = "markov chain (Brook-Evans, Richardson) + Lucas-Crosier; achieved: regenerative IS"


def _validate(target_arl0: float, k: float) -> None:
    if not 10.0 <= target_arl0 <= 1e12:
        raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
    if not 0.0 < k <= 3.0:
        raise ValueError(f"k must be in (0, 3], got {k}")


def calibrate(
    target_arl0: float,
    k: float = 0.5,
    *,
    counts: Sequence[int] | None = None,
    draws: int = 256,
    cycles: int = 100_000,
    seed: int = 0,
) -> Calibration:
    """Threshold ``h`` of a two-sided CUSUM on normal scores for a target ARL0 (cached).

    * no ``counts``: the scores are exactly N(0, 1) (a self-learning detector, or a known
      reference);
    * ``counts``: the cell counts of a :class:`~detectors.reference.Reference` (anchored
      detector); the false-alarm rate averaged over the reference's estimation error is
      ``1 / target_arl0``.

    ``draws`` reference draws and ``cycles`` simulated regeneration cycles set the Monte Carlo
    precision; ``seed`` makes it reproducible.

    >>> exact, anchored = calibrate(10_000), calibrate(10_000, counts=[8] * 64)
    >>> anchored.threshold > exact.threshold, anchored.reference_size
    (True, 512)
    >>> p10, p50, p90 = anchored.conditional_arl0
    >>> p10 < p50 < p90 and p10 < 10_000 < p90
    True
    """
    _validate(target_arl0, k)
    key_counts = tuple(int(c) for c in counts) if counts is not None else None
    if key_counts is not None and (sum(key_counts) < 1 or min(key_counts) < 0):
        raise ValueError("counts must be >= 0 with a positive total")
    key = (float(target_arl0), float(k), key_counts, draws, cycles, seed)
    return CALIBRATIONS.get(key, lambda: _calibrate(*key))


CalibrationKey = tuple[float, float, tuple[int, ...] | None, int, int, int]
#: every CUSUM calibration of this process (the monitor persists it)
CALIBRATIONS: Memo[CalibrationKey, Calibration] = Memo()


def _calibrate(
    target: float,
    k: float,
    counts: tuple[int, ...] | None,
    draws: int,
    cycles: int,
    seed: int,
) -> Calibration:
    t0 = time.perf_counter()
    h_exact = _solve_h(
        lambda h: math.log(float(_arl_one_sided(_phi, k, h)) / 2.0),
        target,
        _siegmund_h(target, k),
    )
    if counts is None:
        arl_sim, rel = _simulate_normal(h_exact, k, cycles, seed)
        return Calibration(
            target_arl0=target,
            k=k,
            threshold=h_exact,
            achieved_arl0=arl_sim,
            ci95=(arl_sim * math.exp(-1.96 * rel), arl_sim * math.exp(1.96 * rel)),
            seconds=time.perf_counter() - t0,
            method=_METHOD,
        )
    rng = np.random.default_rng(seed)
    nominal, true = _draws_for_counts(counts, draws, rng)
    size = sum(counts)
    # alarm rate E[1/ARL0_r](h) = mean_r (1 / ratio_r(h)) / ARL_exact(h). log ARL_exact and
    # each draw's log ratio are smooth and nearly linear in h: take them at two thresholds
    # (same draws), solve on the linear interpolation, and re-linearise around the solution
    # until it settles. A small reference may ask for a huge h (a draw far off the nominal
    # masses barely slows down with h): h is capped at h_exact + _MAX_EXTRA_H, and the
    # achieved ARL0 then says the target is not met.
    h_cap = h_exact + _MAX_EXTRA_H
    # log ARL_exact is linear in h to a few 1e-3 beyond h_exact (Siegmund: slope ~2k), and
    # the chain itself loses its digits past ARL ~1e12: take the line at h_exact
    le = math.log(target)
    exact = (h_exact, le, math.log(float(_arl_one_sided(_phi, k, h_exact + 1.0)) / 2.0) - le)
    h = h_exact
    slope: FloatArray | None = None
    for _ in range(4):
        lin = _Linearised(nominal, true, k, h, exact, slope)
        slope = lin.slope_r
        h_new = min(_solve_h(lin.log_arl0, target, h), h_cap)
        settled = abs(h_new - h) < 0.25 or h == h_cap  # h to ~0.02: ARL0 to ~1 %
        h = h_new
        if settled:
            break
    ratios = lin.ratios(h)
    rates = 1.0 / ratios
    factor = 1.0 / float(rates.mean())
    factor_rel = float(rates.std()) * factor / math.sqrt(ratios.size)
    # the posterior factor's Monte Carlo error (~10 %) dwarfs the simulation's: a quarter of
    # the cycles (+-2 %) is plenty here
    arl_sim, rel = _simulate_normal(h, k, max(cycles // 4, 10_000), seed)
    achieved = arl_sim * factor
    rel = math.hypot(rel, factor_rel)
    exact_at_h = math.exp(lin.log_exact(h))
    q10, q50, q90 = (float(v) for v in np.quantile(ratios * exact_at_h, [0.1, 0.5, 0.9]))
    return Calibration(
        target_arl0=target,
        k=k,
        threshold=h,
        achieved_arl0=achieved,
        ci95=(achieved * math.exp(-1.96 * rel), achieved * math.exp(1.96 * rel)),
        seconds=time.perf_counter() - t0,
        method=_METHOD + " x reference posterior draws",
        reference_size=size,
        conditional_arl0=(q10, q50, q90),
    )


# -- bootstrap calibration on raw values ---------------------------------------------------


def _tilt(y: FloatArray) -> float:
    """theta > 0 with mean(exp(theta y)) = 1 (y has negative mean, some y > 0); else inf."""
    if y.max() <= 0.0:
        return math.inf
    lo, hi = 0.0, 1.0
    while np.mean(np.exp(hi * y)) < 1.0:
        lo, hi = hi, 2.0 * hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.mean(np.exp(mid * y)) < 1.0 else (lo, mid)
    return hi


def _bootstrap_side(
    y: FloatArray, h: float, cycles: int, seed: int, negligible: float
) -> tuple[float, float]:
    """One side's ARL; ``inf`` when provably above ``negligible`` (Lundberg: ``exp(theta S)``
    is a martingale, so a cycle alarms with probability <= ``exp(-theta h)``)."""
    theta = _tilt(y)
    if theta * h > math.log(negligible):
        return math.inf, 0.0
    rng = np.random.default_rng(seed)
    w = np.exp(theta * (y - y.max()))
    cum = np.cumsum(w / w.sum())
    cum[-1] = 1.0

    def draw_p(m: int) -> FloatArray:
        return y[rng.integers(0, y.size, m)]

    def draw_q(m: int) -> FloatArray:
        pick = np.searchsorted(cum, rng.random(m), side="right").clip(0, y.size - 1)
        return np.asarray(y[pick], dtype=np.float64)

    return _regenerative_arl(draw_p, draw_q, theta, h, cycles)


def calibrate_bootstrap(
    sample: Sequence[float] | FloatArray,
    target_arl0: float,
    k: float = 0.5,
    *,
    cycles: int = 50_000,
    seed: int = 0,
) -> Calibration:
    """Threshold of a two-sided CUSUM on the raw values standardised by the sample's mean and
    standard deviation, calibrated by bootstrap: streams resampled from ``sample``.

    No normal scores: the run length depends on the sample's shape (skew, atoms), so every
    reference needs its own calibration, and the estimation error of the sample is ignored.
    Kept for comparison with :func:`calibrate`. Each side is simulated by regenerative
    importance sampling with the exponentially tilted empirical distribution.

    >>> rng = np.random.default_rng(1)
    >>> skewed = rng.lognormal(0.0, 1.0, size=2000)  # a latency-like signal
    >>> boot = calibrate_bootstrap(skewed, 10_000)
    >>> boot.threshold > calibrate(10_000).threshold  # the heavy right tail needs a higher h
    True
    >>> bool(abs(boot.achieved_arl0 / 10_000 - 1) < 0.15)
    True
    """
    _validate(target_arl0, k)
    t0 = time.perf_counter()
    x = np.asarray(sample, dtype=np.float64).ravel()
    if x.size < 10 or not np.isfinite(x).all():
        raise ValueError("the bootstrap needs at least 10 finite values")
    sd = float(x.std(ddof=1))
    if sd <= 0:
        raise ValueError("the sample is constant: a raw CUSUM has no scale")
    xs = (x - x.mean()) / sd
    up, down = xs - k, -xs - k

    negligible = 1e6 * target_arl0  # a side this quiet changes the ARL0 by < 1e-6

    def log_arl(h: float) -> float:
        a = _bootstrap_side(up, h, cycles, seed, negligible)
        b = _bootstrap_side(down, h, cycles, seed + 1, negligible)
        return math.log(min(_two_sided(a, b)[0], negligible))

    # simulated ARLs are noisy (common random numbers keep them smooth in h): stop at 0.2 %
    h = _solve_h(log_arl, float(target_arl0), _siegmund_h(float(target_arl0), k), tol=2e-3)
    achieved, rel = _two_sided(
        _bootstrap_side(up, h, 2 * cycles, seed + 2, negligible),
        _bootstrap_side(down, h, 2 * cycles, seed + 3, negligible),
    )
    return Calibration(
        target_arl0=float(target_arl0),
        k=float(k),
        threshold=h,
        achieved_arl0=achieved,
        ci95=(achieved * math.exp(-1.96 * rel), achieved * math.exp(1.96 * rel)),
        seconds=time.perf_counter() - t0,
        method="bootstrap of raw standardised values: regenerative IS, exponential tilting",
        reference_size=int(x.size),
    )
