"""DDM (drift detection method) from River, wrapped in the driftgate detector contract."""

from __future__ import annotations

import math

from river.drift import binary as river_binary

from detectors.base import register
from detectors.rate import RateDetector

__all__ = ["DDMDetector"]


@register
class DDMDetector(RateDetector):
    """River's DDM (Gama et al. 2004): the error rate ``p`` since the last (re)start and its
    binomial spread ``s``; fires when ``p + s`` exceeds its running minimum ``p_min + s_min``
    by ``drift_threshold * s_min`` (warning zone from ``warning_threshold * s_min``).

    Takes 0/1 observations only (1 = error, refusal, flag). DDM is one-sided by construction:
    a *rising* rate fires, a falling one only lowers ``p_min``, so it never reports a fall.
    Uncalibrated: its false alarms cluster right after every (re)start, and when the first
    ``warm_start`` observations hold no error at all (a rare event) ``s_min`` is 0 and the
    next error fires; the base ``warmup`` discards those early firings.

    Parameters
    ----------
    warm_start
        Observations River needs after each (re)start before it may fire.
    warning_threshold
        Multiple of ``s_min`` above ``p_min`` that opens the warning zone.
    drift_threshold
        Multiple of ``s_min`` above ``p_min`` that fires (>= ``warning_threshold``).

    >>> import random
    >>> rng = random.Random(4)
    >>> errors = [float(rng.random() < 0.05) for _ in range(3000)]  # 5 % errors ...
    >>> errors += [float(rng.random() < 0.30) for _ in range(1000)]  # ... rise to 30 %
    >>> det = DDMDetector()
    >>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
    [(3060, 1.6)]
    """

    name = "ddm"
    hyper = ("warm_start", "warning_threshold", "drift_threshold")

    def __init__(
        self,
        warm_start: int = 30,
        warning_threshold: float = 2.0,
        drift_threshold: float = 3.0,
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = True,
    ) -> None:
        if not isinstance(warm_start, int) or warm_start < 1:
            raise ValueError(f"warm_start must be an int >= 1, got {warm_start!r}")
        if not warning_threshold > 0:
            raise ValueError(f"warning_threshold must be > 0, got {warning_threshold}")
        if not drift_threshold >= warning_threshold:
            raise ValueError(
                f"drift_threshold must be >= warning_threshold ({warning_threshold}), "
                f"got {drift_threshold}"
            )
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold
        super().__init__(warmup=warmup, confirm=confirm)
        self._ddm = river_binary.DDM(
            warm_start=warm_start,
            warning_threshold=warning_threshold,
            drift_threshold=drift_threshold,
        )

    def _test(self, x: float) -> bool:
        self._ddm.update(x)
        return bool(self._ddm.drift_detected)

    def _warning(self) -> bool:
        return bool(self._ddm.warning_detected)

    def _statistic(self) -> float:
        """``(p + s - p_min) / s_min``: compare with ``drift_threshold`` (0 before warm start)."""
        ddm = self._ddm  # River keeps its running minimum privately
        n, p_min, s_min = ddm._p.n, ddm._p_min, ddm._s_min
        if n == 0 or p_min is None or not s_min:
            return 0.0
        p = float(ddm._p.get())
        return (p + math.sqrt(p * (1.0 - p) / n) - float(p_min)) / float(s_min)
