"""KSWIN (Kolmogorov-Smirnov windowing) from River, wrapped in the detector contract."""

from __future__ import annotations

from typing import Any

from river import drift

from detectors.base import Detector, register

__all__ = ["KSWINDetector"]


@register
class KSWINDetector(Detector):
    """River's KSWIN: a two-sample KS test between old and recent window samples.

    Sensitive to changes in shape, not only mean, but slow (about 2k updates/s) and not
    calibrated (about one false alarm per 700 observations at defaults). Seeded for
    reproducibility.

    >>> import random
    >>> rng = random.Random(5)
    >>> det = KSWINDetector(alpha=0.0001, seed=5)
    >>> data = [rng.gauss(0, 1) for _ in range(300)] + [rng.gauss(4, 1) for _ in range(200)]
    >>> next(i for i, x in enumerate(data) if det.update(x)) >= 300
    True
    """

    name = "kswin"

    def __init__(
        self,
        alpha: float = 0.005,
        window_size: int = 100,
        stat_size: int = 30,
        seed: int = 42,
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = False,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if stat_size >= window_size:
            raise ValueError(f"stat_size ({stat_size}) must be < window_size ({window_size})")
        self.alpha = alpha
        self.window_size = window_size
        self.stat_size = stat_size
        self.seed = seed
        super().__init__(warmup=warmup, confirm=confirm, binary=binary)
        self._ks = drift.KSWIN(alpha=alpha, window_size=window_size, stat_size=stat_size, seed=seed)

    def _test(self, x: float) -> bool:
        self._ks.update(x)
        return bool(self._ks.drift_detected)

    def _params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "confirm": self.confirm,
            "alpha": self.alpha,
            "window_size": self.window_size,
        }
