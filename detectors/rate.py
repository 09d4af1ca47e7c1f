"""What every wrapped River rate detector shares: 0/1 input, and only *rises* are changes.

River's rate detectors (DDM, EDDM, HDDM_A, HDDM_W, FHDDM) watch a 0/1 stream — an error,
refusal or safety-flag indicator. :class:`RateDetector` is their common base:

* observations must be 0 or 1 (anything else is a ``ValueError`` before any state changes);
* a firing whose confirmation window shows a rate not above the pre-change rate is refuted
  (a false alarm, or the rate fell meanwhile): reporting it would be a fall, which the
  decision engine would halt on as well, since it acts on ``|effect|``;
* ``hyper`` names the hyper-parameters, which are public attributes and appear in ``repr``.

Subclasses validate and store their hyper-parameters, build the River detector, and
implement ``_test`` (plus ``_warning`` / ``_statistic`` where River exposes them).
"""

from __future__ import annotations

from typing import Any, ClassVar

from detectors.base import Change, Detector

__all__ = ["RateDetector"]


class RateDetector(Detector):
    """Base of the River rate-detector wrappers (0/1 observations, rises only)."""

    binary_only = True
    #: names of the hyper-parameters (public attributes), in ``__init__`` order
    hyper: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, warmup: int = 100, confirm: int = 30) -> None:
        # 0/1 observations whatever ``binary`` says: subclasses accept the flag for
        # DetectorSpec and always pass binary=True here.
        super().__init__(warmup=warmup, confirm=confirm, binary=True)

    def update(self, x: float, tag: object = None) -> Change | None:
        """Feed one 0/1 observation; return a :class:`Change` when a rise is confirmed."""
        if x != 0.0 and x != 1.0:
            raise ValueError(f"{self.name} takes 0/1 observations, got {x!r}")
        change = super().update(x, tag)
        if change is not None and change.after <= change.before:
            self._fired = False
            return None
        return change

    def _params(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "confirm": self.confirm,
            **{name: getattr(self, name) for name in self.hyper},
        }
