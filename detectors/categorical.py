"""Calibrated drift detection for categories: the class mix, string features.

A :class:`CategoricalDetector` keeps the ``top_k`` most frequent categories of a signal plus
one "other" cell, and tests the mix of every **tumbling window** of ``window`` observations
against an expected distribution ``p``:

* **own past** (no ``reference``): ``p`` is learned from the first ``warmup`` observations
  (and again from the post-change data after each detection). While learning, the first
  ``4 * top_k`` distinct categories are counted; when learning ends the ``top_k`` most
  frequent of them form the table, frozen until the next re-learning: a category first seen
  later (or not among the top ``top_k``) counts as "other";
* **anchored** (``reference``: category -> probability or count, e.g. a stored profile's
  category counts): the table is the reference's ``top_k`` categories, ``p`` their smoothed
  frequencies, everything else (and the profile's own rest, :data:`OTHER`) is "other".

**The test.** Each closed window of counts ``w`` gives the Freeman-Tukey statistic
``T = 4 sum (sqrt(w_i) - sqrt(W p_i))^2`` (chi-square with ``C - 1`` degrees of freedom
asymptotically, like Pearson's, but it stays well behaved for cells with expected counts far
below 1, where one stray observation would make Pearson's ``X^2`` jump by ``1 / (W p_i)``),
standardised by its simulated null mean and spread, ``z = (T - m0) / s0`` (``s0 >= 1``); a
one-sided CUSUM ``S = max(0, S + z - k)`` accumulates the evidence of windows that fit worse
than chance and fires at ``S >= h``. A big change fires in one or two windows; a small
persistent one after several. Cells are smoothed, ``p_i = (c_i + 1/2) / (n + C/2)``, so a
category never seen in the baseline has a small, finite expected count.

**Calibration** (:func:`calibrate_categorical`, cached): ``h`` is set so that the
false-alarm *rate* is ``1 / target_arl0`` per observation. The null is simulated by numpy
multinomial draws from ``p`` (no asymptotic chi-square: windows of 100 observations with
1 % categories are far from it): ``refs`` baselines are re-drawn as the detector would
learn them (``learn`` observations; the estimation error of a learned baseline is part of
the null), ``windows`` windows are drawn and scored against each, and each baseline's run
length follows from the Markov chain of the CUSUM on its empirical score distribution
(Brook-Evans, batched over baselines, as in :mod:`detectors.calibration`). ``h`` makes the
*mean rate* over baselines, ``E[1 / ARL0]``, equal ``W / target_arl0``: the expected number of
false alarms of a fleet of detectors, each with its own baseline, is what the fleet budget
(:mod:`detectors.budget`) splits. Measured: ARL0 within -8 % .. +10 % of targets of
5,000-20,000 observations (100-200 false alarms per check); 0.01-0.4 s per calibration on
an idle core (ARL0 2e9, 8 categories: h = 20.4); the key is the sorted ``p`` rounded to ~9 %
(1/8 octave), so segments of one signal share it (in-process cache, 4,096 entries).

**Effect** (what the decision engine reads). After a firing, the next ``confirm``
observations are counted and the shift is reported as the *Mahalanobis length of the change
of the category frequencies*: ``effect = sqrt(D)``, ``D = sum (q_i - p_i)^2 / max(p_i, 1/n)``
(the chi-square divergence of the new mix ``q`` from ``p``; a share below ``1/n`` cannot be
told from 0 in ``n`` observations), minus its sampling bias ``(C - 1)(1/n + 1/L)``. For two
categories this is exactly ``|q - p| / sqrt(p (1 - p))``,
the shift in Bernoulli sigmas a rate detector reports, so WARN (0.5) and HALT (1.0) mean the
same for a class mix as for an error rate: 50/50 -> 75/25 warns, 50/50 -> 100/0 halts, and
a category the baseline never saw warns at 5 % of the traffic and halts from about 8 % (the
default ``confirm`` of 200: ``0.08^2 / (1/200) ~ 1``; measured 0.7 and 0.8-1.5). For small
shifts ``D`` ~ PSI, so WARN ~ PSI 0.25 and HALT ~ PSI 1 (the usual PSI bands, 0.1 / 0.25,
would be effects 0.32 / 0.5). ``Change(before=0, after=sqrt(D), scale=1)``.

>>> import random
>>> rng = random.Random(7)
>>> classes, weights = ["cat", "dog", "bird"], [0.6, 0.3, 0.1]
>>> stream = rng.choices(classes, weights, k=6000) + rng.choices(classes, [0.3, 0.3, 0.4], k=2000)
>>> det = CategoricalDetector(target_arl0=1e6, window=100, warmup=2000)
>>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(stream) if (c := det.update(x, i))]
[(6099, 1.0)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import Change, Stateful
from detectors.calibration import _arl_chain, _phi, _siegmund_h
from detectors.memo import Memo

__all__ = [
    "CATEGORICAL_CALIBRATIONS",
    "OTHER",
    "CategoricalCalibration",
    "CategoricalDetector",
    "calibrate_categorical",
    "window_cusum_threshold",
]

FloatArray = npt.NDArray[np.float64]

#: Key of the "everything else" count in a stored profile (``monitor.profiles.OTHER``).
OTHER = "~other"
_SMOOTH = 0.5  # pseudo-count per cell
# Floor of the score scale (FT units; one chi-square degree of freedom has sd 1.41): the
# statistic of a near-constant signal barely varies, and standardising by that would turn
# one stray category into a huge score and the baselines' small offsets into drifts > k.
_MIN_STD = 1.0
_EXACT_SIZE = 1000
_MAX_STATES = 100  # Markov-chain states (score step h / 100 at most)
_MAX_H = 400.0


def _solve_increasing(f: Callable[[float], float], goal: float, h0: float, factor: float) -> float:
    """Root of the increasing ``f(h) = goal``: bracket by ``factor`` steps, then Illinois."""
    a, fa = h0, f(h0) - goal
    b = a * factor if fa < 0 else a / factor
    fb = f(b) - goal
    while fa * fb > 0:
        if b >= _MAX_H:
            raise ValueError(
                f"no threshold up to {_MAX_H} reaches the target: the baseline is too small "
                "for this ARL0 (raise warmup / reference_size, or lower target_arl0)"
            )
        a, fa = b, fb
        b = min(_MAX_H, b * factor) if fb < 0 else b / factor
        fb = f(b) - goal
    side = 0
    for _ in range(60):
        c = b - fb * (b - a) / (fb - fa)
        fc = f(c) - goal
        if abs(fc) < 0.01 or abs(b - a) < 5e-3 * abs(b):  # ARL within 1 %, h within 0.5 %
            return c
        if fc * fb < 0:
            a, fa = b, fb
            side = 0
        else:
            fa = fa / 2.0 if side == 1 else fa
            side = 1
        b, fb = c, fc
    return b


def _smoothed(counts: FloatArray, n: float) -> FloatArray:
    return np.asarray((counts + _SMOOTH) / (n + _SMOOTH * counts.shape[-1]), dtype=np.float64)


# -- calibration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CategoricalCalibration:
    """The CUSUM threshold of a categorical detector, and the null it was computed on.

    ``mean`` / ``std`` standardise a window's ``X^2``; ``threshold`` is ``h`` in those units;
    ``probs`` is the (rounded, sorted) distribution it was simulated from; ``seconds`` the time
    spent (cache hits are free).
    """

    target_arl0: float
    window: int
    learn: int | None
    k: float
    probs: tuple[float, ...]
    threshold: float
    mean: float
    std: float
    seconds: float
    method: str = (
        "multinomial null (re-drawn baselines) -> batched Markov chain of the one-sided "
        "CUSUM on each baseline's empirical scores; h for mean rate E[1/ARL0] = 1/target"
    )


def _key_probs(probs: Sequence[float]) -> tuple[float, ...]:
    """Sorted, rounded to 1/8 octave (~9 %) and renormalised: the cache key."""
    p = np.sort(np.asarray(probs, dtype=np.float64))[::-1]
    p = np.exp2(np.round(np.log2(np.maximum(p, 1e-12)) * 8.0) / 8.0)
    p /= p.sum()
    return tuple(float(f"{v:.6g}") for v in p)


def calibrate_categorical(
    probs: Sequence[float],
    window: int,
    target_arl0: float,
    *,
    learn: int | None = None,
    k: float = 0.5,
    refs: int = 16,
    windows: int = 2000,
    seed: int = 0,
) -> CategoricalCalibration:
    """Threshold of the window CUSUM for a target ARL0 (observations), cached.

    ``probs``: the expected cell probabilities (top categories + other); ``learn``: size of
    the sample the baseline is estimated from (``None``: exact); ``refs`` x ``windows``
    multinomial draws simulate the null.

    >>> cal = calibrate_categorical([0.5, 0.3, 0.2], window=100, target_arl0=1e5, learn=2000)
    >>> round(cal.threshold, 1), round(cal.mean, 1), cal.seconds < 1.0
    (8.0, 2.1, True)
    >>> calibrate_categorical([0.3, 0.5, 0.2], 100, 1e5, learn=2000) is cal  # cached
    True
    """
    if not 2 <= len(probs) <= 1024:
        raise ValueError(f"probs must have 2 .. 1024 cells, got {len(probs)}")
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    if not 10 * window <= target_arl0 <= 1e13:
        raise ValueError(
            f"target_arl0 must be in [10 * window = {10 * window}, 1e13], got {target_arl0}"
        )
    if learn is not None and learn < 1:
        raise ValueError(f"learn must be >= 1 or None, got {learn}")
    if not 0.0 < k <= 3.0:
        raise ValueError(f"k must be in (0, 3], got {k}")
    key = (_key_probs(probs), window, float(target_arl0), learn, k, refs, windows, seed)
    return CATEGORICAL_CALIBRATIONS.get(key, lambda: _calibrate(*key))


CategoricalKey = tuple[tuple[float, ...], int, float, int | None, float, int, int, int]
#: every categorical calibration of this process (the monitor persists it)
CATEGORICAL_CALIBRATIONS: Memo[CategoricalKey, CategoricalCalibration] = Memo()


def window_cusum_threshold(null_scores: FloatArray, k: float, target_windows: float) -> float:
    """``h`` of a one-sided CUSUM ``S = max(0, S + z - k)`` on i.i.d. window scores.

    ``null_scores`` holds draws of the score under no change: one row per possible baseline
    (``(R, M)``; a 1-D array is one baseline). Each row's empirical distribution (with one
    pseudo-draw spread as N(0, 2^2), so no score beyond the draws is impossible and the chain
    stays solvable for lumpy statistics) gives that baseline's ARL by the Brook-Evans chain;
    ``h`` makes the mean alarm rate over rows, ``E[1 / ARL]``, ``1 / target_windows``.

    >>> z = np.random.default_rng(1).standard_normal(50_000)
    >>> round(window_cusum_threshold(z, 0.5, 10_000), 1)  # two-sided h = 8.05 (exact N(0,1))
    7.3
    """
    z = np.sort(np.atleast_2d(np.asarray(null_scores, dtype=np.float64)), axis=1)
    r, m = z.shape
    lo, hi = float(z.min()) - 1.0, float(z.max()) + 1.0
    offsets = np.arange(r)[:, None] * (hi - lo + 1.0)
    flat = (z + offsets).ravel()
    base_idx = np.arange(r)[:, None] * m
    eps = 1.0 / (m + 1)

    def cdf(t: FloatArray) -> FloatArray:
        tc = np.clip(t, lo, hi)[None, :] + offsets
        emp = (np.searchsorted(flat, tc, side="right") - base_idx) / m
        return np.asarray((1.0 - eps) * emp + eps * _phi(t / 2.0)[None, :])

    pooled = np.sort(z.ravel())

    def pooled_cdf(t: FloatArray) -> FloatArray:
        emp = np.searchsorted(pooled, t, side="right") / pooled.size
        return np.asarray((1.0 - eps) * emp + eps * _phi(t / 2.0))

    def log_arl(h: float, f: Callable[[FloatArray], FloatArray] = cdf) -> float:
        states = min(_MAX_STATES, max(24, math.ceil(h / 0.1)))
        rate = float(np.mean(1.0 / _arl_chain(f, k, h, states)))
        return -math.log(rate)

    # the pooled scores (one chain) give a cheap first guess; the rows' spread only raises h
    goal = math.log(target_windows)
    h0 = _solve_increasing(
        lambda h: log_arl(h, pooled_cdf), goal, _siegmund_h(target_windows / 2.0, k), 2.0
    )
    return h0 if r == 1 else _solve_increasing(log_arl, goal, h0 * 1.1, 1.25)


def _calibrate(
    probs: tuple[float, ...],
    window: int,
    target: float,
    learn: int | None,
    k: float,
    refs: int,
    windows: int,
    seed: int,
) -> CategoricalCalibration:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    p = np.asarray(probs)
    if learn is None:  # one exact baseline: spend the whole budget of draws on its windows
        base = p[None, :]
        windows *= refs
    else:
        base = _smoothed(rng.multinomial(learn, p, size=refs).astype(np.float64), learn)
    drawn = rng.multinomial(window, p, size=windows).astype(np.float64)
    root_expected = np.sqrt(window * base)  # (R, C)
    x2 = 4.0 * ((np.sqrt(drawn)[None, :, :] - root_expected[:, None, :]) ** 2).sum(axis=2)
    mean, std = float(x2.mean()), max(float(x2.std()), _MIN_STD)
    h = window_cusum_threshold((x2 - mean) / std, k, target / window)
    return CategoricalCalibration(
        target_arl0=target,
        window=window,
        learn=learn,
        k=k,
        probs=probs,
        threshold=h,
        mean=mean,
        std=std,
        seconds=time.perf_counter() - t0,
    )


# -- the detector ----------------------------------------------------------------------------


def _trimmed(reference: Mapping[str, float], top_k: int) -> dict[str, float]:
    """The part of a reference the detector uses: its ``top_k`` categories and the rest."""
    items = sorted(
        ((c, float(v)) for c, v in reference.items() if c != OTHER), key=lambda cv: -cv[1]
    )
    out = dict(items[:top_k])
    rest = sum(reference.values()) - sum(out.values())
    if rest > 0:
        out[OTHER] = rest
    return out


class CategoricalDetector(Stateful):
    """Top-k categories + other, tumbling-window chi-square CUSUM, calibrated to an ARL0.

    Parameters
    ----------
    target_arl0
        Expected observations between false alarms with no change (>= 10 * ``window``).
    top_k
        Categories with their own cell (2 .. 64); the rest is "other".
    window
        Observations per tumbling window (one test per window), >= 10. Small windows make
        a lumpy statistic; at 50-100 the calibration lands within ~10 % of its target.
    reference
        Anchor: category -> probability (or count) of a validated baseline; ``None`` learns
        the baseline from the segment's own past.
    reference_size
        How many observations ``reference`` was estimated from (smoothing and estimation
        error); ``None``: its sum if it holds counts (> 1), else probabilities taken as exact
        (smoothed as if from 1,000 observations).
    profile
        Name of the anchor, reported as ``categorical@<profile>``.
    k
        CUSUM reference value, in standardised window scores.
    seed
        Seed of the calibration's simulation.
    warmup
        Own past: the learning window (>= 20 * ``window``; default 5,000). A learned baseline
        is off by its estimation error and a detector keeps it until it alarms, so the
        threshold must rise with ``window / warmup`` (at ARL0 2e9 and 8 categories:
        h = 20.8 exact, 20-21 at 100 / 5,000-10,000, 30 at 100 / 2,000): keep it >= 50
        windows.
        Anchored: observations before a detection may be reported (default 0).
    confirm
        Observations counted after a firing to measure the new mix (default ``2 * window``).

    >>> det = CategoricalDetector(target_arl0=1e5, reference={"yes": 0.7, "no": 0.3},
    ...                           reference_size=5000, profile="canary", window=100)
    >>> hits = [c for i in range(2000) if (c := det.update("maybe" if i % 2 else "no", i))]
    >>> hits[0].detector, hits[0].tag, round(hits[0].effect)
    ('categorical@canary', 99, 7)
    >>> restored = CategoricalDetector.from_state(det.state())
    >>> restored.update("yes") == det.update("yes"), restored.statistic == det.statistic
    (True, True)
    """

    _table: dict[str, int] | None
    _other: int
    _p: list[float]
    _wroot: list[float]
    _learn_n: float
    _win: list[int]
    _win_n: int
    _since: int
    _conf: list[int]
    _h: float
    _m0: float
    _s0: float

    def __init__(
        self,
        target_arl0: float = 10_000,
        top_k: int = 8,
        window: int = 100,
        reference: Mapping[str, float] | None = None,
        reference_size: int | None = None,
        profile: str | None = None,
        k: float = 0.5,
        seed: int = 0,
        *,
        warmup: int | None = None,
        confirm: int | None = None,
    ) -> None:
        if not isinstance(top_k, int) or not 2 <= top_k <= 64:
            raise ValueError(f"top_k must be an int in [2, 64], got {top_k!r}")
        if not isinstance(window, int) or window < 10:
            raise ValueError(f"window must be an int >= 10, got {window!r}")
        if not 10 * window <= target_arl0 <= 1e13:
            raise ValueError(
                f"target_arl0 must be in [10 * window = {10 * window}, 1e13], got {target_arl0}"
            )
        if not 0.0 < k <= 3.0:
            raise ValueError(f"k must be in (0, 3], got {k}")
        if reference is not None:
            if not reference or any(not (v >= 0 and math.isfinite(v)) for v in reference.values()):
                raise ValueError(
                    f"reference must map categories to finite values >= 0, got "
                    f"{dict(list(reference.items())[:5])!r}"
                )
            if sum(reference.values()) <= 0:
                raise ValueError("reference must have a positive total")
        if reference_size is not None and reference_size < 1:
            raise ValueError(f"reference_size must be >= 1 or None, got {reference_size}")
        if warmup is None:
            warmup = 5000 if reference is None else 0
        if warmup < 0 or (reference is None and warmup < 20 * window):
            raise ValueError(
                f"warmup must be >= 20 * window = {20 * window} without a reference (it is the "
                f"learning window), and >= 0 with one; got {warmup}"
            )
        if confirm is None:
            confirm = 2 * window
        if confirm < 1:
            raise ValueError(f"confirm must be >= 1, got {confirm}")
        self.target_arl0 = target_arl0
        self.top_k = top_k
        self.window = window
        self.reference = _trimmed(reference, top_k) if reference is not None else None
        self.reference_size = reference_size
        self.profile = profile
        self.k = k
        self.seed = seed
        self.warmup = warmup
        self.confirm = confirm
        self.name = "categorical" if reference is None else f"categorical@{profile or 'reference'}"
        self._n_total = 0
        self._fired = False
        self._confirming = False
        self._pending: object = None  # tag of the firing window, while confirming
        self._confirm_left = 0
        self._cusum = 0.0
        if self.reference is None:
            self._start_learning()
        else:
            self._anchor(self.reference)

    # -- public read-outs ----------------------------------------------------------------

    @property
    def drift_detected(self) -> bool:
        """True right after the update that returned a :class:`Change`."""
        return self._fired

    @property
    def warning_detected(self) -> bool:
        """True while a firing is being confirmed, or when the CUSUM is past ``h / 2``."""
        return self._confirming or (self._table is not None and 2.0 * self._cusum > self._h)

    @property
    def statistic(self) -> float:
        """The CUSUM of standardised window scores (fires at ``threshold``)."""
        return self._cusum

    @property
    def threshold(self) -> float:
        """``h`` in force (``inf`` while learning)."""
        return self._h

    @property
    def expected(self) -> dict[str, float]:
        """The expected mix in force (category -> probability, ``OTHER`` for the rest)."""
        if self._table is None:
            return {}
        names = [*sorted(self._table, key=self._table.__getitem__), OTHER]
        return dict(zip(names, self._p, strict=True))

    # -- feeding -------------------------------------------------------------------------

    def update(self, x: str, tag: object = None) -> Change | None:
        """Feed one category; return a :class:`Change` when a detection is confirmed."""
        if not isinstance(x, str):
            raise ValueError(f"{self.name} takes str categories, got {x!r}")
        self._fired = False
        self._n_total += 1
        table = self._table
        if table is None:
            self._learn(x)
            return None
        cell = table.get(x, self._other)
        if self._confirming:
            self._conf[cell] += 1
            self._confirm_left -= 1
            return self._report() if self._confirm_left == 0 else None
        self._win[cell] += 1
        self._win_n += 1
        self._since += 1
        if self._win_n < self.window:
            return None
        x2 = 4.0 * sum((math.sqrt(w) - r) ** 2 for w, r in zip(self._win, self._wroot, strict=True))
        self._win = [0] * len(self._win)
        self._win_n = 0
        self._cusum = max(0.0, self._cusum + (x2 - self._m0) / self._s0 - self.k)
        if self._cusum >= self._h and (self.reference is None or self._since > self.warmup):
            self._confirming = True
            self._pending = tag
            self._confirm_left = self.confirm
            self._conf = [0] * len(self._win)
            self._cusum = 0.0
        return None

    def _report(self) -> Change:
        n = self.confirm
        floor = 1.0 / n  # a share below 1/n cannot be told from 0 in n observations
        d = sum((c / n - p) ** 2 / max(p, floor) for c, p in zip(self._conf, self._p, strict=True))
        bias = (len(self._p) - 1) * (1.0 / n + 1.0 / self._learn_n)
        effect = math.sqrt(max(0.0, d - bias))
        change = Change(
            detector=self.name,
            before=0.0,
            after=effect,
            scale=1.0,
            n=self._n_total,
            tag=self._pending,
        )
        self._confirming = False
        self._pending = None
        self._fired = True
        if self.reference is None:
            self._start_learning()
        else:
            self._start_testing()
        return change

    # -- baselines -----------------------------------------------------------------------

    def _start_learning(self) -> None:
        self._table = None
        self._cand: dict[str, int] = {}
        self._cand_rest = 0
        self._learned = 0
        self._h = math.inf

    def _learn(self, x: str) -> None:
        cand = self._cand
        if x in cand:
            cand[x] += 1
        elif len(cand) < 4 * self.top_k:
            cand[x] = 1
        else:
            self._cand_rest += 1
        self._learned += 1
        if self._learned >= self.warmup:
            top = sorted(cand, key=lambda c: -cand[c])[: self.top_k]  # stable: first seen wins
            kept = set(top)
            rest = self._cand_rest + sum(v for c, v in cand.items() if c not in kept)
            counts = [cand[c] for c in top] + [rest]
            self._fix(top, counts, self._learned, learn=self._learned)

    def _anchor(self, reference: Mapping[str, float]) -> None:
        items = [(c, float(v)) for c, v in reference.items() if c != OTHER]
        items.sort(key=lambda cv: -cv[1])
        top = [c for c, _ in items[: self.top_k]]
        total = sum(reference.values())
        size = self.reference_size
        if size is None and total > 1.0 + 1e-9:
            size = round(total)
        rest = total - sum(v for _, v in items[: self.top_k])
        weights = [v / total for _, v in items[: self.top_k]] + [max(rest, 0.0) / total]
        # probabilities without a size: smoothed as if estimated from _EXACT_SIZE observations
        # (a category absent from the baseline keeps a small but finite expected count)
        n = float(size) if size is not None else float(_EXACT_SIZE)
        self._fix(top, [w * n for w in weights], n, learn=size)

    def _fix(self, top: list[str], counts: Sequence[float], n: float, learn: int | None) -> None:
        """Freeze the table and the expected mix; calibrate; start testing."""
        self._table = {c: i for i, c in enumerate(top)}
        self._other = len(top)
        p = _smoothed(np.asarray(counts, dtype=np.float64), n)
        self._p = p.tolist()
        self._learn_n = float(learn) if learn is not None else math.inf
        try:
            cal = calibrate_categorical(
                self._p, self.window, self.target_arl0, learn=learn, k=self.k, seed=self.seed
            )
            self._h, self._m0, self._s0 = cal.threshold, cal.mean, cal.std
            self.calibration_error: str | None = None
        except ValueError as exc:  # a baseline too poor for the target: never fire on it
            self._h, self._m0, self._s0 = math.inf, 0.0, 1.0
            self.calibration_error = str(exc)
        self._wroot = [math.sqrt(self.window * v) for v in self._p]
        self._cand, self._cand_rest, self._learned = {}, 0, 0
        self._start_testing()

    def _start_testing(self) -> None:
        self._win = [0] * (self._other + 1)
        self._win_n = 0
        self._since = 0
        self._cusum = 0.0

    # -- repr ----------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {
            "target_arl0": self.target_arl0,
            "top_k": self.top_k,
            "window": self.window,
            "warmup": self.warmup,
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"
