"""ADWIN (adaptive windowing) from River, wrapped in the driftgate detector contract."""

from __future__ import annotations

from typing import Any

from river import drift

from detectors.base import Detector, register

__all__ = ["ADWINDetector"]


@register
class ADWINDetector(Detector):
    """River's ADWIN: fires when two sub-windows of the adaptive window differ in mean.

    Parameters
    ----------
    delta
        Confidence of the cut test; smaller means fewer false alarms and longer delays.
    clock
        How often (in observations) ADWIN checks for a cut.

    >>> import random
    >>> rng = random.Random(1)
    >>> det = ADWINDetector(delta=0.002)
    >>> data = [rng.gauss(0, 1) for _ in range(2000)] + [rng.gauss(1, 1) for _ in range(500)]
    >>> next(i for i, x in enumerate(data) if det.update(x)) > 2000
    True
    """

    name = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = False,
    ) -> None:
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1:
            raise ValueError(f"clock must be >= 1, got {clock}")
        self.delta = delta
        self.clock = clock
        super().__init__(warmup=warmup, confirm=confirm, binary=binary)
        self._adwin = drift.ADWIN(delta=delta, clock=clock)

    def _test(self, x: float) -> bool:
        self._adwin.update(x)
        return bool(self._adwin.drift_detected)

    def _statistic(self) -> float:
        return float(self._adwin.estimation)

    def _params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "confirm": self.confirm,
            "delta": self.delta,
            "clock": self.clock,
        }
