"""Calibrated two-sided CUSUM on normal scores: a target ARL0 that holds for any signal.

Each observation becomes a normal score ``z`` by the randomized probability integral
transform against a :class:`~detectors.reference.Reference` (exactly N(0, 1) while the stream
matches the reference, whatever the signal's distribution), and a two-sided CUSUM with
reference value ``k`` (in score sigmas) watches the scores:

    S+ = max(0, S+ + z - k),   S- = max(0, S- - z - k),   alarm when max(S+, S-) >= h.

``h`` comes from :func:`detectors.calibration.calibrate` for ``target_arl0`` (the expected
number of observations between false alarms), so every detector of every signal has the same,
known false-alarm rate, and a fleet budget (:mod:`detectors.budget`) can split a global one.
Why a CUSUM: for a shift of the mean it is optimal (Moustakides 1986: least worst-case delay
at a given ARL0). ``k`` is half the shift it is tuned for; the default ``k = 0.3`` keeps the
delay within ~1.3x of the best possible for shifts from 0.5 to 1 sigma (measured in
``docs/benchmarks/detection.md``; ``k = 0.5`` is best at 1 sigma but ~2x slower at 0.5
sigma). A shift of the scores much smaller than ``k`` is caught only slowly: choose ``k``
about half the smallest shift that matters.

**Rates (0/1 signals).** Normal scores make a rate change from ``p0`` to ``p1`` a score shift
of only ``phi(Phi^-1(1 - p0)) (p1 - p0) / (p0 (1 - p0))`` sigmas: doubling a 5 % error rate is
0.11 sigma, 5 % -> 20 % is 0.33 sigma. The randomization keeps the calibration exact but a
linear score is not the likelihood ratio of a rate change (a Bernoulli CUSUM is, and detects
a doubling of a small rate 3-10x sooner). For rates use ``k`` = 0.1-0.25, or a binary family.

Two modes:

* **anchored** (``reference`` given): the stream is tested against that reference forever
  (the validated baseline). After an alarm the sums restart from 0; a stream that stays off
  the reference keeps alarming, at most once per ``warmup + confirm`` observations.
* **self-learned** (no reference): the detector learns cut points from its first values
  (``min(cells - 1, warmup // 2)`` of them) and counts every later value into those cells;
  it starts testing after ``warmup`` values, and learns anew from the post-change data after
  each confirmed detection (change detection against its own past). It is *self-starting*
  (Hawkins 1987, here distribution-free): each value is scored against all the values
  counted before it, ``u = (#below + v (#same + 1)) / (m + 1)``, and then counted. These
  are smoothed conformal p-values, exactly i.i.d. U(0, 1) while the stream is i.i.d. (Vovk,
  Nouretdinov & Gammerman 2003), so the exact threshold gives the target ARL0 whatever
  reference the detector happened to learn: no correction for estimation error, and no
  spread of false-alarm rates across a fleet of detectors. The price: values after a change
  join the reference too, which slows the detection of small shifts (measured at k 0.5 on
  the same 200 streams, against a frozen reference: mean delay of a 0.5-sigma shift 100 ->
  119 observations, of a 1-sigma shift 16.0 -> 16.3), and lets a slow drift pass into the
  reference.

State: the two sums (integers: fixed point, 2**-32 of a score unit), the cut points and
counts (``cells - 1`` floats and ``cells`` integers), the base summary: about 1.1 KiB pickled
with 64 cells. Randomness: the ``t``-th observation's uniform is a hash of ``(seed, t)``
(:func:`detectors.reference.counter_uniforms`), never the global RNG; give every stream its
own ``seed`` so that streams with identical discrete data do not share their randomization.

>>> import numpy as np
>>> rng = np.random.default_rng(5)
>>> latency = rng.lognormal(4.0, 0.6, size=8000)  # ms, skewed
>>> latency[5000:] *= 1.5  # a 50 % slowdown at t = 5000
>>> det = CUSUMDetector(target_arl0=100_000, warmup=1000)
>>> changes = det.update_many(latency, tags=list(range(latency.size)))
>>> [(c.tag, round(c.effect, 1)) for c in changes]
[(5040, 0.5)]
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import Change, Detector, register
from detectors.calibration import (
    SCALE,
    Calibration,
    calibrate,
    cusum_first_alarms,
    fixed_increments,
    lindley,
    threshold_fixed,
)
from detectors.reference import (
    _ONE_BELOW,
    Reference,
    counter_uniform,
    counter_uniforms,
    normal_quantile,
    normal_quantiles,
)

__all__ = ["CUSUMDetector", "cusum_first_alarms"]

_FIRST_BLOCK = 256
_MAX_BLOCK = 65_536
_MAX_COUNTED_BLOCK = 8_192  # self-starting blocks build a (block x cells) table


@register
class CUSUMDetector(Detector):
    """Two-sided CUSUM on normal scores, thresholded for ``target_arl0``.

    Parameters
    ----------
    target_arl0
        Expected number of observations between false alarms with no change (10 .. 1e12).
    k
        Reference value in score sigmas (half the shift it is tuned for), in (0, 3].
        Default 0.3: tuned for shifts of 0.5 to 1 sigma.
    reference
        Anchor: test against this reference forever. ``None``: learn it from the first
        ``warmup`` observations, keep counting every value into it, and re-learn after each
        detection.
    seed
        Key of the detector's uniforms (randomized PIT).
    cells
        Cells of a learned reference (2 .. 128).
    warmup
        Observations before a detection may be reported; also the learning window of a
        self-learned reference. Default: 1,000 self-learned, 100 anchored.

    >>> import random
    >>> rng = random.Random(2)
    >>> errors = [float(rng.random() < 0.05) for _ in range(6000)]  # 5 % error rate ...
    >>> errors += [float(rng.random() < 0.20) for _ in range(2000)]  # ... rises to 20 %
    >>> det = CUSUMDetector(target_arl0=50_000, k=0.25, warmup=2000, binary=True)
    >>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
    [(6076, 0.8)]
    """

    name = "cusum"

    def __init__(
        self,
        target_arl0: float = 10_000,
        k: float = 0.3,
        reference: Reference | None = None,
        seed: int = 0,
        cells: int = 64,
        *,
        warmup: int | None = None,
        confirm: int = 30,
        binary: bool = False,
    ) -> None:
        if not 10 <= target_arl0 <= 1e12:
            raise ValueError(f"target_arl0 must be in [10, 1e12], got {target_arl0}")
        if not 0 < k <= 3:
            raise ValueError(f"k must be in (0, 3], got {k}")
        if reference is not None and not isinstance(reference, Reference):
            raise ValueError(f"reference must be a Reference or None, got {reference!r}")
        if not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not 2 <= cells <= 128:
            raise ValueError(f"cells must be in [2, 128], got {cells}")
        if warmup is None:
            warmup = 1000 if reference is None else 100
        if reference is None and warmup < 10:
            raise ValueError(
                f"warmup must be >= 10 without a reference (it is the learning window), "
                f"got {warmup}"
            )
        self.target_arl0 = target_arl0
        self.k = k
        self.reference = reference
        self.seed = seed
        self.cells = cells
        super().__init__(warmup=warmup, confirm=confirm, binary=binary)
        self._h = self.calibration.threshold
        self._hh = threshold_fixed(self._h)
        self._sp = 0
        self._sm = 0
        self._restart_learning()

    # -- public read-outs ----------------------------------------------------------------

    @property
    def calibration(self) -> Calibration:
        """How the threshold was set (cached per reference size/counts and target)."""
        if self.reference is not None:
            return calibrate(self.target_arl0, self.k, counts=self.reference.counts)
        return calibrate(self.target_arl0, self.k)  # self-starting scores: exactly N(0, 1)

    @property
    def threshold(self) -> float:
        """The CUSUM threshold ``h`` in force (score sigmas)."""
        return self._h

    @property
    def reference_in_force(self) -> Reference | None:
        """The anchor, or the learned reference: the cut points and every value counted since
        the last detection (``None`` while learning)."""
        if self.reference is not None:
            return self.reference
        if self._edges is None or self._learned < self.warmup or self._m < 1:
            return None
        std = math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0
        return Reference(self._edges, self._counts, self._mean, std)

    # -- the change test -----------------------------------------------------------------

    def update(self, x: float, tag: object = None) -> Change | None:
        """Feed one observation (finite); return a :class:`Change` when one is confirmed."""
        if not math.isfinite(x):
            raise ValueError(f"observations must be finite, got {x}")
        return super().update(x, tag)

    def _test(self, x: float) -> bool:
        v = counter_uniform(self.seed, self._n_total)
        if self.reference is not None:
            z = self.reference.score(x, v)
        elif self._learning:
            self._learn(x)
            return False
        else:
            z = self._self_starting_score(x, v)
        self._sp = max(0, self._sp + math.floor((z - self.k) * SCALE + 0.5))
        self._sm = max(0, self._sm + math.floor((-z - self.k) * SCALE + 0.5))
        fired = self._sp >= self._hh or self._sm >= self._hh
        # Detector.update accepts a firing when no confirmation is pending and the warm-up is
        # over; only then does the test restart (an ignored firing keeps its evidence).
        if fired and self._pending is None and self._n > self.warmup:
            self._sp = self._sm = 0
            if self.reference is None:
                self._restart_learning()
        return fired

    def _self_starting_score(self, x: float, v: float) -> float:
        """Conformal normal score of ``x`` against every counted value before it, then count
        it: ``u = (#below + v (#same + 1)) / (m + 1)`` is exactly U(0, 1), independently of
        all earlier scores, while the stream is i.i.d. (smoothed conformal p-values)."""
        assert self._edges is not None
        c = bisect_left(self._edges, x)
        counts = self._counts
        u = (sum(counts[:c]) + v * (counts[c] + 1)) / (self._m + 1)
        counts[c] += 1
        self._m += 1
        return normal_quantile(u if u < _ONE_BELOW else _ONE_BELOW)

    def _statistic(self) -> float:
        return max(self._sp, self._sm) / SCALE

    def _warning(self) -> bool:
        return 2 * max(self._sp, self._sm) > self._hh

    # -- learning a reference ------------------------------------------------------------

    def _restart_learning(self) -> None:
        self._buf: list[float] = []
        self._edges: list[float] | None = None
        self._counts: list[int] = []
        self._m = 0
        self._learned = 0

    def _fix_edges(self) -> None:
        # the cut points' own values are not counted: the values counted after them are
        # i.i.d. given the cut points, which is what makes the conformal scores exact
        self._edges = sorted(set(self._buf))
        self._counts = [0] * (len(self._edges) + 1)
        self._buf = []

    def _learn(self, x: float) -> None:
        if self._edges is None:
            self._buf.append(x)
            if len(self._buf) >= self._cut_values:
                self._fix_edges()
        else:
            self._counts[bisect_left(self._edges, x)] += 1
            self._m += 1
        self._learned += 1

    # -- vectorised path -----------------------------------------------------------------

    def update_many(self, xs: npt.ArrayLike, tags: Sequence[object] | None = None) -> list[Change]:
        """Feed a batch; same changes, same state as calling :meth:`update` on each value.

        Quiet stretches are vectorised: scores by numpy, both sums by the closed form of the
        Lindley recursion (a cumulative sum and a running minimum, exact in fixed point);
        only alarm candidates and confirmation windows go through :meth:`update` one by one.
        The running mean/variance summary is the same Welford recursion as
        :meth:`Detector.update` (a tight loop), so results are bit-identical.

        >>> import numpy as np
        >>> data = np.random.default_rng(3).normal(0.0, 1.0, 20_000)
        >>> data[12_000:] += 1.0
        >>> a, b = CUSUMDetector(1e5, seed=1), CUSUMDetector(1e5, seed=1)
        >>> one = [c for i, x in enumerate(data) if (c := a.update(float(x), i))]
        >>> many = b.update_many(data, tags=list(range(data.size)))
        >>> one == many, a.state() == b.state(), [c.tag for c in many]
        (True, True, [12023])
        """
        arr = np.asarray(xs, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"xs must be 1-D, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError("observations must be finite")
        if tags is not None and len(tags) != arr.size:
            raise ValueError(f"tags has {len(tags)} items for {arr.size} observations")
        vals: list[float] = arr.tolist()
        changes: list[Change] = []
        i, size, block = 0, arr.size, _FIRST_BLOCK
        while i < size:
            if self._pending is not None:  # confirmation window: event by event
                j = min(size, i + self._confirm_left)
                for t in range(i, j):
                    c = self.update(vals[t], None if tags is None else tags[t])
                    if c is not None:
                        changes.append(c)
                i = j
            elif self._learning:  # learning: never fires
                j = min(size, i + self.warmup - self._learned)
                self._absorb(vals, i, j)
                self._learn_many(arr[i:j], vals, i)
                i = j
            else:
                j = min(size, i + block)
                quiet, sp, sm, cells = self._scan(arr[i:j])
                if quiet:
                    self._absorb(vals, i, i + quiet)
                    self._sp, self._sm = sp, sm
                    if cells is not None:
                        self._count(cells[:quiet])
                if i + quiet < j:  # an alarm candidate: let update() decide
                    c = self.update(vals[i + quiet], None if tags is None else tags[i + quiet])
                    if c is not None:
                        changes.append(c)
                    # a sum still above h (a firing ignored during warm-up) fires again at
                    # once: scan short blocks until it is accepted and restarts
                    i, block = i + quiet + 1, _FIRST_BLOCK if quiet else 8
                else:
                    top = _MAX_BLOCK if self.reference is not None else _MAX_COUNTED_BLOCK
                    i, block = j, min(2 * block, top)
        return changes

    @property
    def _cut_values(self) -> int:
        """Learning values that set the cut points (not counted): at most half the window."""
        return min(self.cells - 1, self.warmup // 2)

    @property
    def _learning(self) -> bool:
        return self.reference is None and (self._edges is None or self._learned < self.warmup)

    def _scan(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[int, int, int, npt.NDArray[np.intp] | None]:
        """Length of the quiet prefix of ``x`` (no sum reaches h), the sums after it, and
        (self-learned) the cells of ``x``, to count the quiet prefix."""
        v = counter_uniforms(self.seed, self._n_total + 1, x.size)
        cells = None
        if self.reference is not None:
            z = self.reference.scores(x, v)
        else:
            z, cells = self._self_starting_scores(x, v)
        up, down = fixed_increments(z, self.k)
        a = lindley(self._sp, up)
        b = lindley(self._sm, down)
        hit = (a >= self._hh) | (b >= self._hh)
        quiet = int(hit.argmax()) if hit.any() else x.size
        if quiet == 0:
            return 0, self._sp, self._sm, cells
        return quiet, int(a[quiet - 1]), int(b[quiet - 1]), cells

    def _self_starting_scores(
        self, x: npt.NDArray[np.float64], v: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
        """Vectorised :meth:`_self_starting_score` over a block (counts not updated): the
        values of the block before each one are counted by a cumulative one-hot table."""
        assert self._edges is not None
        size, ncells = x.size, len(self._counts)
        cells = np.searchsorted(np.asarray(self._edges), x, side="left")
        rows = np.arange(size)
        seen = np.zeros((size, ncells), dtype=np.int32)
        seen[rows, cells] = 1
        np.cumsum(seen, axis=0, out=seen)  # values of the block up to and including row t
        same = seen[rows, cells] - 1  # ... before t, in t's cell
        np.cumsum(seen, axis=1, out=seen)  # ... up to t, in cells <= j
        below = np.where(cells > 0, seen[rows, np.maximum(cells - 1, 0)], 0)
        base = np.asarray(self._counts, dtype=np.int64)
        base_below = np.concatenate(([0], np.cumsum(base)))
        below = base_below[cells] + below
        same = base[cells] + same
        u = (below + v * (same + 1)) / (self._m + 1 + rows)
        return normal_quantiles(np.minimum(u, _ONE_BELOW)), cells

    def _count(self, cells: npt.NDArray[np.intp]) -> None:
        add = np.bincount(cells, minlength=len(self._counts)).tolist()
        self._counts = [a + b for a, b in zip(self._counts, add, strict=True)]
        self._m += int(cells.size)

    def _learn_many(self, x: npt.NDArray[np.float64], vals: list[float], i: int) -> None:
        start = 0
        if self._edges is None:
            start = min(x.size, self._cut_values - len(self._buf))
            self._buf.extend(vals[i : i + start])
            if len(self._buf) >= self._cut_values:
                self._fix_edges()
        if start < x.size:
            assert self._edges is not None
            self._count(np.searchsorted(np.asarray(self._edges), x[start:], side="left"))
        self._learned += x.size

    def _params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "confirm": self.confirm,
            "target_arl0": self.target_arl0,
            "k": self.k,
            "seed": self.seed,
            "cells": self.cells,
            "reference": self.reference,
        }
