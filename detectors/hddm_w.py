"""HDDM_W (Hoeffding-bound drift detection, weighted average) from River, wrapped."""

from __future__ import annotations

from river.drift import binary as river_binary

from detectors.base import register
from detectors.rate import RateDetector

__all__ = ["HDDMWDetector"]


@register
class HDDMWDetector(RateDetector):
    """River's ``HDDMW`` (Frias-Blanco et al. 2014): McDiarmid-bound test between two
    exponentially weighted means (before and after the cut point where the EWMA was lowest).

    Run one-sided (River's ``two_sided_test=False``): only a *rising* 0/1 rate fires, so a
    falling error rate is never reported as a change. Takes 0/1 observations only. Slow to
    catch small rises (it missed most 10 % -> 15 % rises within 5,000 observations in the
    team's measurements); a larger ``lambda_val`` weighs recent data more.

    Parameters
    ----------
    drift_confidence
        McDiarmid confidence of a drift, in (0, 1); smaller means fewer false alarms.
    warning_confidence
        Confidence of the warning zone, in [``drift_confidence``, 1).
    lambda_val
        EWMA weight of the newest observation, in (0, 1].

    >>> import random
    >>> rng = random.Random(4)
    >>> errors = [float(rng.random() < 0.05) for _ in range(3000)]  # 5 % errors ...
    >>> errors += [float(rng.random() < 0.30) for _ in range(1000)]  # ... rise to 30 %
    >>> det = HDDMWDetector()
    >>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
    [(3078, 1.1)]
    """

    name = "hddm_w"
    hyper = ("drift_confidence", "warning_confidence", "lambda_val")

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        lambda_val: float = 0.05,
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
        if not 0.0 < lambda_val <= 1.0:
            raise ValueError(f"lambda_val must be in (0, 1], got {lambda_val}")
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.lambda_val = lambda_val
        super().__init__(warmup=warmup, confirm=confirm)
        self._hddm = river_binary.HDDMW(
            drift_confidence=drift_confidence,
            warning_confidence=warning_confidence,
            lambda_val=lambda_val,
            two_sided_test=False,
        )

    def _test(self, x: float) -> bool:
        self._hddm.update(x)
        return bool(self._hddm.drift_detected)

    def _warning(self) -> bool:
        return bool(self._hddm.warning_detected)

    def _statistic(self) -> float:
        """EWMA after the low cut point minus the EWMA at it (the estimated rise)."""
        hddm = self._hddm  # River keeps its samples privately
        s1, s2 = hddm._s1_incr, hddm._s2_incr
        if not (s1.is_init and s2.is_init):
            return 0.0
        return float(s2.ewma) - float(s1.ewma)
