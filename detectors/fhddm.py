"""FHDDM (fast Hoeffding drift detection) from River, wrapped with its polarity fixed."""

from __future__ import annotations

from river.drift import binary as river_binary

from detectors.base import register
from detectors.rate import RateDetector

__all__ = ["FHDDMDetector"]


@register
class FHDDMDetector(RateDetector):
    """River's FHDDM (Pesaranghader & Viktor 2016): a sliding window of the last
    ``sliding_window_size`` observations; fires when the window mean has dropped more than
    the Hoeffding bound ``eps = sqrt(ln(1 / confidence_level) / (2 n))`` below its maximum.

    **Polarity.** The method (as in MOA) watches a *correct-prediction* rate and fires when it
    falls; River 0.26 documents its input as 1 = error but implements ``u_max - u > eps``,
    so fed errors it fires on a *falling* error rate and misses rises (team measurement: a
    0.1 -> 0.3 rise caught in 1 of 5 seeds). This wrapper feeds River ``1 - x``: a rise of
    the 0/1 rate is a fall of River's input and fires; a fall of the rate only raises
    River's maximum and is never reported. ``before`` / ``after`` / ``effect`` are stated on
    the rate itself (1 = error), like every other detector.

    Parameters
    ----------
    sliding_window_size
        Window length ``n``; River fires only once it is full.
    confidence_level
        Hoeffding confidence, in (0, 1); smaller means a wider bound, fewer false alarms.
    short_window_size
        Also test the last ``short_window_size`` observations (River's stacking FHDDM-S,
        faster on abrupt rises); ``None`` for plain FHDDM.

    >>> import random
    >>> rng = random.Random(4)
    >>> errors = [float(rng.random() < 0.05) for _ in range(3000)]  # 5 % errors ...
    >>> errors += [float(rng.random() < 0.30) for _ in range(1000)]  # ... rise to 30 %
    >>> det = FHDDMDetector()
    >>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(errors) if (c := det.update(x, i))]
    [(3076, 1.3)]
    """

    name = "fhddm"
    hyper = ("sliding_window_size", "confidence_level", "short_window_size")

    def __init__(
        self,
        sliding_window_size: int = 100,
        confidence_level: float = 1e-6,
        short_window_size: int | None = None,
        *,
        warmup: int = 100,
        confirm: int = 30,
        binary: bool = True,
    ) -> None:
        if not isinstance(sliding_window_size, int) or sliding_window_size < 2:
            raise ValueError(
                f"sliding_window_size must be an int >= 2, got {sliding_window_size!r}"
            )
        if not 0.0 < confidence_level < 1.0:
            raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level}")
        if short_window_size is not None and not (
            isinstance(short_window_size, int) and 1 <= short_window_size < sliding_window_size
        ):
            raise ValueError(
                f"short_window_size must be None or an int in [1, sliding_window_size="
                f"{sliding_window_size}), got {short_window_size!r}"
            )
        self.sliding_window_size = sliding_window_size
        self.confidence_level = confidence_level
        self.short_window_size = short_window_size
        super().__init__(warmup=warmup, confirm=confirm)
        self._fhddm = river_binary.FHDDM(
            sliding_window_size=sliding_window_size,
            confidence_level=confidence_level,
            short_window_size=short_window_size,
        )

    def _test(self, x: float) -> bool:
        self._fhddm.update(1 - int(x))  # River fires on a falling mean: feed "correct"
        return bool(self._fhddm.drift_detected)

    def _statistic(self) -> float:
        """Rise of the windowed rate above its minimum (River: ``u_max - u``); fires above
        the Hoeffding bound. 0 until the window first fills."""
        f = self._fhddm  # River keeps its window privately
        window = f._sliding_window
        if not f._u_max or not window:
            return 0.0
        return float(f._u_max) - f.n_one / len(window)
