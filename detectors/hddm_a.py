"""HDDM_A (Hoeffding-bound drift detection, moving average) from River, wrapped."""

from __future__ import annotations

from river.drift import binary as river_binary

from detectors.base import register
from detectors.rate import RateDetector

__all__ = ["HDDMADetector"]


@register
class HDDMADetector(RateDetector):
    """River's ``HDDMA`` (Frias-Blanco et al. 2014): a Hoeffding-bound test between the mean
    since the last (re)start and the mean up to the cut point where it was lowest.

    Run one-sided (River's ``two_sided_test=False``): only a *rising* 0/1 rate fires, so a
    falling error rate is never reported as a change (the decision engine halts on
    ``|effect|``). Takes 0/1 observations only. About 0.2M updates/s; its false-alarm rate at
    the defaults is low (no alarm in 10 x 20k stationary 5 % observations), but it is not
    calibrated to a target.

    Parameters
    ----------
    drift_confidence
        Hoeffding confidence of a drift, in (0, 1); smaller means fewer false alarms.
    warning_confidence
        Confidence of the warning zone, in [``drift_confidence``, 1).

    >>> import random
    >>> rng = random.Random(4)
    >>> errors = [float(rng.random() < 0.05) for _ in range(3000)]  # 5 % errors ...
    >>> errors += [float(rng.random() < 0.30) for _ in range(1000)]  # ... rise to 30 %
    >>> det = HDDMADetector()
    >>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
    [(3073, 1.3)]
    """

    name = "hddm_a"
    hyper = ("drift_confidence", "warning_confidence")

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = True,
    ) -> None:
        if not 0.0 < drift_confidence < 1.0:
            raise ValueError(f"drift_confidence must be in (0, 1), got {drift_confidence}")
        if not drift_confidence <= warning_confidence < 1.0:
            raise ValueError(
                f"warning_confidence must be in [drift_confidence={drift_confidence}, 1), "
                f"got {warning_confidence}"
            )
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        super().__init__(warmup=warmup, confirm=confirm)
        self._hddm = river_binary.HDDMA(
            drift_confidence=drift_confidence,
            warning_confidence=warning_confidence,
            two_sided_test=False,
        )

    def _test(self, x: float) -> bool:
        self._hddm.update(x)
        return bool(self._hddm.drift_detected)

    def _warning(self) -> bool:
        return bool(self._hddm.warning_detected)

    def _statistic(self) -> float:
        """Mean since (re)start minus the mean at the low cut point (the estimated rise)."""
        hddm = self._hddm  # River keeps its cut point privately
        if hddm._z.n == 0 or hddm._x_min.n == 0:
            return 0.0
        return float(hddm._z.get()) - float(hddm._x_min.get())
