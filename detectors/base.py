"""The detector contract and the registry of detector families.

A :class:`Detector` watches one univariate stream (one signal of one segment). The caller
feeds every observation to :meth:`Detector.update`, which returns a :class:`Change` on the
observation that triggers a detection and ``None`` otherwise. After a detection the detector
keeps watching: it restarts its reference from the post-change data.

Every detector keeps the same summary of the stream it watches, so that a :class:`Change` can
say *how much* moved, not only *that* something moved:

* ``before`` / ``scale``: mean and standard deviation of the stream since the last
  detection (the regime that was in force before the change);
* ``after``: the mean of the ``confirm`` observations that follow the firing one.

A detector of the *spread* (``measure = "spread"``, :mod:`detectors.scale`) reports standard
deviations instead: ``before`` / ``scale`` the spread before the change, ``after`` that of
the ``confirm`` observations; :attr:`Change.measure` says which a report holds.

The contract every detector keeps (checked by one contract test over all of them):

* hyper-parameters are public attributes named like the ``__init__`` arguments and
  validated there (``ValueError`` naming the bad value);
* ``update(x, tag)`` returns a :class:`Change` when a detection is confirmed, else ``None``;
* ``drift_detected`` is true right after the update that returned a :class:`Change`;
  ``warning_detected`` while a firing is being confirmed (or the family's own warning zone);
  ``statistic`` is the current value of the change test's statistic;
* ``state()`` / ``from_state()`` round-trip exactly: a restored detector makes the same
  decisions as one that never stopped.
"""

from __future__ import annotations

import math
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

__all__ = ["Change", "Detector", "DetectorSpec", "Stateful", "make_detector", "registered"]


@dataclass(frozen=True, slots=True)
class Change:
    """What a detector saw when it fired.

    ``tag`` is whatever the caller passed with the observation that fired (the monitor passes
    the record's source position); ``after`` is the mean of the ``confirm`` observations that
    followed, so the report arrives ``confirm`` observations after the firing one.
    ``measure`` is ``"mean"`` (``before`` / ``after`` are means) or ``"spread"`` (they are
    standard deviations).

    >>> c = Change(detector="adwin", before=10.0, after=13.0, scale=1.5, n=500, tag="line 9")
    >>> c.effect
    2.0
    >>> Change("scale", before=2.0, after=0.5, scale=2.0, n=900, measure="spread").effect
    -3.0
    """

    detector: str
    before: float
    after: float
    scale: float
    n: int
    tag: object = None
    measure: str = "mean"

    @property
    def effect(self) -> float:
        """Signed size of the change. ``mean``: the shift of the mean in units of the
        pre-change spread (a z-like effect size). ``spread``: ``+(r - 1)`` for a spread that
        rose ``r``-fold, ``-(r - 1)`` for one that fell ``r``-fold (so ``+-1`` is a doubling
        or a halving, the size a 1-sigma mean shift has)."""
        if self.measure == "spread":
            up = self.after / self.before
            return up - 1.0 if up >= 1.0 else 1.0 - 1.0 / up
        return (self.after - self.before) / self.scale


class Stateful:
    """``state()`` / ``from_state()`` by pickling the whole object: hyper-parameters and
    running state alike, so a restored detector makes the same decisions as one that never
    stopped. Shared by every detector (the :class:`Detector` families, the categorical and
    multivariate detectors)."""

    def state(self) -> bytes:
        """Serialize everything, hyper-parameters and running state alike."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_state(cls, blob: bytes) -> Self:
        """Restore a detector serialized by :meth:`state` (trusted input: our own store)."""
        det = pickle.loads(blob)
        if not isinstance(det, cls):
            raise TypeError(f"state blob holds {type(det).__name__}, not {cls.__name__}")
        return det


class Detector(Stateful, ABC):
    """Base class of every detector: running pre-change summary plus a change test.

    Subclasses implement :meth:`_test` (update the underlying test with ``x`` and say whether
    it fires).

    * ``warmup`` observations are absorbed before any detection is reported: a change test
      against a reference of a handful of points is noise.
    * ``confirm`` observations after a firing are averaged to measure the new mean; the
      :class:`Change` is returned after them. A change test fires as soon as the evidence is
      enough, when its own window still mixes old and new data, so its estimate of the new
      mean is biased toward the old one; the confirmation window is not.
    """

    name: ClassVar[str]
    #: True for families that only take 0/1 observations (error, refusal, flag rates).
    binary_only: ClassVar[bool] = False
    #: What the family's changes measure: ``"mean"`` (location) or ``"spread"``.
    measure: ClassVar[str] = "mean"

    def __init__(self, *, warmup: int = 100, confirm: int = 30, binary: bool = False) -> None:
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        if confirm < 1:
            raise ValueError(f"confirm must be >= 1, got {confirm}")
        self.warmup = warmup
        self.confirm = confirm
        self.binary = binary
        self._n_total = 0
        self._fired = False
        self._pending: tuple[float, float, object] | None = None
        self._confirm_left = 0
        self._confirm_sum = 0.0
        self._reset_summary()

    def _reset_summary(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0

    @property
    def n(self) -> int:
        """Observations since the last detection (or since start)."""
        return self._n

    @property
    def drift_detected(self) -> bool:
        """True right after the update that returned a :class:`Change`."""
        return self._fired

    @property
    def warning_detected(self) -> bool:
        """True while a firing is being confirmed, or in the family's own warning zone."""
        return self._pending is not None or self._warning()

    @property
    def statistic(self) -> float:
        """Current value of the change test's statistic (family-specific scale)."""
        return self._statistic()

    def _warning(self) -> bool:
        return False

    def _statistic(self) -> float:
        return 0.0

    def update(self, x: float, tag: object = None) -> Change | None:
        """Feed one observation; return a :class:`Change` when a detection is confirmed."""
        self._fired = False
        self._n_total += 1
        n = self._n + 1
        delta = x - self._mean
        self._mean += delta / n
        self._m2 += delta * (x - self._mean)
        self._n = n
        fired = self._test(x)
        if self._pending is not None:
            self._confirm_sum += x
            self._confirm_left -= 1
            if self._confirm_left > 0:
                return None
            before, scale, first_tag = self._pending
            self._pending = None
            self._fired = True
            return Change(
                detector=self.name,
                before=before,
                after=self._confirm_sum / self.confirm,
                scale=scale,
                n=self._n_total,
                tag=first_tag,
            )
        if fired and n > self.warmup:
            self._pending = (self._mean, self._scale(), tag)
            self._confirm_left = self.confirm
            self._confirm_sum = 0.0
            self._reset_summary()
        return None

    def _absorb(self, vals: list[float], i: int, j: int) -> None:
        """Base bookkeeping of observations ``vals[i:j]`` that neither fire nor confirm: the
        same Welford recursion as :meth:`update` (bit-identical), for vectorised paths."""
        n, mean, m2 = self._n, self._mean, self._m2
        for x in vals[i:j]:
            n += 1
            delta = x - mean
            mean += delta / n
            m2 += delta * (x - mean)
        self._n, self._mean, self._m2 = n, mean, m2
        self._n_total += j - i
        self._fired = False

    def _scale(self) -> float:
        if self.binary:
            # Laplace-smoothed Bernoulli spread: a rate that was exactly 0 still has a scale.
            p = (self._mean * self._n + 1.0) / (self._n + 2.0)
            return math.sqrt(p * (1.0 - p))
        var = self._m2 / (self._n - 1) if self._n > 1 else 0.0
        return max(math.sqrt(var), 1e-9, abs(self._mean) * 1e-6)

    @abstractmethod
    def _test(self, x: float) -> bool:
        """Update the change test with ``x``; return True when it detects a change."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "confirm": self.confirm}


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """Which detector family to build, with its hyper-parameters.

    >>> DetectorSpec("adwin", {"delta": 0.001}).build()
    ADWINDetector(warmup=100, confirm=30, delta=0.001, clock=32)
    """

    kind: str
    params: dict[str, Any] | None = None
    warmup: int = 100
    confirm: int = 30

    def build(self, *, binary: bool = False) -> Detector:
        return make_detector(
            self.kind,
            warmup=self.warmup,
            confirm=self.confirm,
            binary=binary,
            **(self.params or {}),
        )


_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make a detector family selectable by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> list[str]:
    """Names of the detector families that :func:`make_detector` knows.

    >>> {"adwin", "cusum", "kswin", "page_hinkley"} <= set(registered())
    True
    """
    import detectors  # noqa: F401  (importing the package registers every family)

    return sorted(_REGISTRY)


def make_detector(kind: str, **params: Any) -> Detector:
    """Build a detector by family name, validating its parameters.

    >>> make_detector("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown detector 'nope'; choose one of: adwin, bernoulli, cusum, ...
    """
    names = registered()
    if kind not in _REGISTRY:
        raise ValueError(f"unknown detector {kind!r}; choose one of: {', '.join(names)}")
    try:
        return _REGISTRY[kind](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for detector {kind!r}: {exc}") from None
