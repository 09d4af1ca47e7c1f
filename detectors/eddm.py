"""EDDM (early drift detection method) from River, wrapped in the detector contract."""

from __future__ import annotations

import math

from river.drift import binary as river_binary

from detectors.base import register
from detectors.rate import RateDetector

__all__ = ["EDDMDetector"]


@register
class EDDMDetector(RateDetector):
    """River's EDDM (Baena-Garcia et al. 2006): watches the *distance between errors*.

    With ``p'`` and ``s'`` the mean and spread of the gaps between consecutive errors, it
    fires when ``(p' + 2 s') / max(p' + 2 s') < beta`` (warning below ``alpha``): errors
    coming closer together, i.e. a *rising* error rate. A falling rate widens the gaps and
    only raises the maximum, so EDDM never reports a fall. Takes 0/1 observations only.

    Uncalibrated and jumpy at River's defaults (about one false alarm per 300-1,000
    observations of a stationary 5-20 % rate, in bursts): lower ``beta`` (e.g. 0.7) for
    fewer false alarms, or use the calibrated CUSUM.

    Parameters
    ----------
    warm_start
        Observations *and* errors needed after each (re)start before it may fire.
    alpha
        Warning level of the ratio, in (0, 1].
    beta
        Drift level of the ratio, in (0, ``alpha``].

    >>> import random
    >>> rng = random.Random(4)
    >>> errors = [float(rng.random() < 0.05) for _ in range(3000)]  # 5 % errors ...
    >>> errors += [float(rng.random() < 0.30) for _ in range(1000)]  # ... rise to 30 %
    >>> det = EDDMDetector(beta=0.7, alpha=0.8)
    >>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
    [(3229, 1.0)]
    """

    name = "eddm"
    hyper = ("warm_start", "alpha", "beta")

    def __init__(
        self,
        warm_start: int = 30,
        alpha: float = 0.95,
        beta: float = 0.9,
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = True,
    ) -> None:
        if not isinstance(warm_start, int) or warm_start < 1:
            raise ValueError(f"warm_start must be an int >= 1, got {warm_start!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 < beta <= alpha:
            raise ValueError(f"beta must be in (0, alpha={alpha}], got {beta}")
        self.warm_start = warm_start
        self.alpha = alpha
        self.beta = beta
        super().__init__(warmup=warmup, confirm=confirm)
        self._eddm = river_binary.EDDM(warm_start=warm_start, alpha=alpha, beta=beta)

    def _test(self, x: float) -> bool:
        self._eddm.update(int(x))  # River tests ``x == 1``
        return bool(self._eddm.drift_detected)

    def _warning(self) -> bool:
        return bool(self._eddm.warning_detected)

    def _statistic(self) -> float:
        """``1 - (p' + 2 s') / max``: fires above ``1 - beta`` (0 before the first gaps)."""
        eddm = self._eddm  # River keeps the gap statistics privately
        top = float(eddm._p2s_prime_max)
        gaps = eddm._error_distances
        if top <= 0.0 or gaps.mean.n == 0:
            return 0.0
        level = float(gaps.mean.get()) + 2.0 * math.sqrt(max(float(gaps.get()), 0.0))
        return 1.0 - level / top
