"""The detectors of one segment: one detector per signal, created on first sight."""

from __future__ import annotations

import pickle
from enum import StrEnum

from detectors.base import Change, Detector, DetectorSpec

__all__ = ["DetectorBank", "SignalKind"]


class SignalKind(StrEnum):
    """How a signal's values are distributed, which sets how a shift is scaled."""

    NUMERIC = "numeric"
    RATE = "rate"  # 0/1 observations: refusals, errors, safety flags, boolean features
    CATEGORY = "category"  # text values: string features, the predicted class


class DetectorBank:
    """Detectors for every signal of one segment.

    >>> import random
    >>> rng = random.Random(11)
    >>> bank = DetectorBank(DetectorSpec("adwin"))
    >>> changes = []
    >>> for i in range(3000):
    ...     c = bank.update("latency_ms", rng.gauss(100 if i < 2000 else 160, 10))
    ...     if c:
    ...         changes.append((i, round(c.effect)))
    >>> changes[0][0] >= 2000, changes[0][1] >= 4
    (True, True)
    >>> restored = DetectorBank.from_state(bank.state())
    >>> restored.signals() == bank.signals()
    True
    """

    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec
        self._detectors: dict[str, Detector] = {}

    def update(
        self,
        signal: str,
        x: float | str,
        kind: SignalKind = SignalKind.NUMERIC,
        tag: object = None,
    ) -> Change | None:
        """Feed ``x`` to the detector of ``signal`` (creating it on first use)."""
        if isinstance(x, str):
            return None  # categories: only in calibrated mode (categorical detectors)
        det = self._detectors.get(signal)
        if det is None:
            det = self._detectors[signal] = self.spec.build(binary=kind is SignalKind.RATE)
        return det.update(x, tag)

    def signals(self) -> list[str]:
        """Names of the signals this bank watches."""
        return sorted(self._detectors)

    def state(self) -> bytes:
        """Serialize the whole bank; :meth:`from_state` restores it exactly."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_state(cls, blob: bytes) -> DetectorBank:
        """Restore a bank serialized by :meth:`state` (trusted input: our own store)."""
        bank = pickle.loads(blob)
        if not isinstance(bank, cls):
            raise TypeError(f"state blob holds {type(bank).__name__}, not DetectorBank")
        return bank
