"""Page-Hinkley test from River, wrapped in the driftgate detector contract."""

from __future__ import annotations

from typing import Any

from river import drift

from detectors.base import Detector, register

__all__ = ["PageHinkleyDetector"]


@register
class PageHinkleyDetector(Detector):
    """River's Page-Hinkley cumulative test (both directions by default).

    Its default threshold is not calibrated to a false-alarm rate (it alarms about every
    1,400 observations on N(0, 1) noise); prefer ADWIN in basic mode.

    >>> import random
    >>> rng = random.Random(3)
    >>> det = PageHinkleyDetector(threshold=50.0)
    >>> data = [rng.gauss(0, 1) for _ in range(500)] + [rng.gauss(5, 1) for _ in range(200)]
    >>> next(i for i, x in enumerate(data) if det.update(x)) >= 500
    True
    """

    name = "page_hinkley"

    def __init__(
        self,
        threshold: float = 50.0,
        delta: float = 0.005,
        alpha: float = 0.9999,
        min_instances: int = 30,
        mode: str = "both",
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = False,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if mode not in ("up", "down", "both"):
            raise ValueError(f"mode must be 'up', 'down' or 'both', got {mode!r}")
        self.threshold = threshold
        self.delta = delta
        self.alpha = alpha
        self.min_instances = min_instances
        self.mode = mode
        super().__init__(warmup=warmup, confirm=confirm, binary=binary)
        self._ph = drift.PageHinkley(
            min_instances=min_instances, delta=delta, threshold=threshold, alpha=alpha, mode=mode
        )

    def _test(self, x: float) -> bool:
        self._ph.update(x)
        return bool(self._ph.drift_detected)

    def _statistic(self) -> float:
        ph = self._ph  # River keeps the cumulative sums privately
        up = float(ph._sum_increase - ph._min_increase)
        down = float(ph._max_decrease - ph._sum_decrease)
        return max(up, down)

    def _params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "confirm": self.confirm,
            "threshold": self.threshold,
            "mode": self.mode,
        }
