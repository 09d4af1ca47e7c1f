"""Calibrated detection plan: which calibrated detectors watch each signal of a segment.

For every numeric or rate signal of every segment:

* a detector against the segment's **own past**: for numeric signals a
  :class:`~detectors.cusum.CUSUMDetector` (normal scores, ``k``), for 0/1 rates a
  :class:`~detectors.bernoulli.BernoulliCUSUMDetector` (a rise by ``rate_ratio``); both
  learn from their first ``warmup`` observations, keep counting every value into their
  reference (self-starting, exact ARL0) and learn anew after each detection;
* for numeric signals, a :class:`~detectors.scale.ScaleCUSUMDetector` against the same own
  past (a CUSUM on the squared self-starting scores, tuned for a spread change by
  ``spread_ratio``; ``None`` turns it off): a change of spread with the mean unchanged
  (added noise, a unit mix-up, a stuck or clipped feature) is invisible to the location
  CUSUM; its changes have ``measure="spread"`` and the detector name ``scale``;
* when a reference profile is in force, a second CUSUM **anchored** to the validated
  baseline ("is this new context like the one we validated?"); its changes are reported
  with the profile's mean and spread as ``before`` / ``scale`` and the detector name
  ``cusum@<profile>``.

Categories (string features, the predicted class) are watched by whatever the
``categorical`` factory returns: :class:`CategoricalWatchers` gives a
:class:`~detectors.categorical.CategoricalDetector` against the segment's own past and, when
the profile holds the signal's category counts, one anchored to them
(``categorical@<profile>``), calibrated to the same ``target_arl0``.

An anchored rate CUSUM uses a smaller ``rate_k``: on normal scores a rate change is a small
shift, which a CUSUM tuned for smaller shifts catches sooner. Every detector is calibrated
to the same ``target_arl0`` (from the fleet budget) and gets its own seed, a stable hash of
its stream id, so discrete signals never share their randomisation.

>>> import random
>>> from detectors.reference import Reference
>>> rng = random.Random(4)
>>> ref = Reference.from_sample([rng.gauss(100, 10) for _ in range(3000)])
>>> plan = CalibratedPlan(target_arl0=1e5, references={"latency_ms": ref}, profile="canary")
>>> [w.name for w in plan.watchers("latency_ms", SignalKind.NUMERIC, "region=eu|latency_ms")]
['cusum', 'scale', 'cusum@canary']
>>> [w.name for w in plan.watchers("error_rate", SignalKind.RATE, "region=eu|error_rate")]
['bernoulli']
>>> anchored = plan.watchers("latency_ms", SignalKind.NUMERIC, "s")[2]
>>> hits = [c for i in range(3000) if (c := anchored.update(rng.gauss(130, 10), i))]
>>> hits[0].tag < 150, hits[0].detector, round(hits[0].effect)  # warm-up: 100
(True, 'cusum@canary', 3)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from detectors.bank import SignalKind, Watcher
from detectors.base import Change
from detectors.bernoulli import BernoulliCUSUMDetector
from detectors.categorical import CategoricalDetector
from detectors.cusum import CUSUMDetector
from detectors.reference import Reference
from detectors.scale import ScaleCUSUMDetector

__all__ = ["Anchored", "CalibratedPlan", "CategoricalWatchers", "stream_seed"]

#: ``(signal, stream, seed) -> watchers`` of a categorical signal.
CategoricalFactory = Callable[[str, str, int], "list[Watcher]"]


def stream_seed(stream: str) -> int:
    """A stable 63-bit seed from a stream id (segment|signal).

    >>> stream_seed("region=eu|latency_ms") == stream_seed("region=eu|latency_ms")
    True
    """
    return int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "big") >> 1


class Anchored:
    """A reference-anchored detector whose changes are stated against the reference."""

    def __init__(self, det: CUSUMDetector, profile: str) -> None:
        ref = det.reference
        if ref is None:
            raise ValueError("an anchored detector needs a reference")
        self.det = det
        self.name = f"{det.name}@{profile}"
        self._before = ref.mean
        if det.binary:
            p = min(max(ref.mean, 1.0 / (ref.n + 2)), 1.0 - 1.0 / (ref.n + 2))
            self._scale = math.sqrt(p * (1.0 - p))
        else:
            self._scale = max(ref.std, 1e-9, abs(ref.mean) * 1e-6)

    def update(self, x: Any, tag: object = None) -> Change | None:
        c = self.det.update(x, tag)
        if c is None:
            return None
        return replace(c, detector=self.name, before=self._before, scale=self._scale)

    def update_many(self, xs: Any, tags: Sequence[object] | None = None) -> list[Change]:
        return [
            replace(c, detector=self.name, before=self._before, scale=self._scale)
            for c in self.det.update_many(xs, tags)
        ]


class CalibratedPlan:
    """Per signal: an own-past detector (numeric: CUSUM on normal scores; 0/1 rates:
    Bernoulli CUSUM for a rise), + a spread CUSUM (numeric), + an anchored CUSUM with a
    profile, + categorical and multivariate detectors."""

    def __init__(
        self,
        target_arl0: float,
        *,
        k: float = 0.3,
        rate_k: float = 0.25,
        rate_ratio: float = 1.5,
        spread_ratio: float | None = 1.5,
        warmup: int = 1000,
        confirm: int = 30,
        references: dict[str, Reference] | None = None,
        profile: str | None = None,
        categorical: CategoricalFactory | None = None,
        multivariate: Callable[[str, int], Watcher] | None = None,
    ) -> None:
        self.target_arl0 = target_arl0
        self.k = k
        self.rate_k = rate_k
        self.rate_ratio = rate_ratio
        self.spread_ratio = spread_ratio
        self.warmup = warmup
        self.confirm = confirm
        self.references = references or {}
        self.profile = profile or "reference"
        self.categorical = categorical
        self.multivariate = multivariate
        CUSUMDetector(target_arl0, k, warmup=warmup, confirm=confirm)  # validate now
        BernoulliCUSUMDetector(target_arl0, rate_ratio, warmup=max(warmup, 10), confirm=confirm)
        if spread_ratio is not None:
            ScaleCUSUMDetector(
                target_arl0, spread_ratio, warmup=max(warmup, 10), confirm=max(confirm, 2)
            )

    def watchers(self, signal: str, kind: SignalKind, stream: str = "") -> list[Watcher]:
        seed = stream_seed(stream or signal)
        if kind is SignalKind.VECTOR:
            return [self.multivariate(stream, seed)] if self.multivariate is not None else []
        if kind is SignalKind.CATEGORY:
            if self.categorical is None:
                return []
            return self.categorical(signal, stream, seed)
        binary = kind is SignalKind.RATE
        k = self.rate_k if binary else self.k
        own: Watcher
        if binary:  # a rising 0/1 rate: the Bernoulli likelihood-ratio CUSUM
            own = BernoulliCUSUMDetector(
                self.target_arl0,
                self.rate_ratio,
                seed=seed,
                warmup=self.warmup,
                confirm=self.confirm,
            )
        else:
            own = CUSUMDetector(
                self.target_arl0, k, seed=seed, warmup=self.warmup, confirm=self.confirm
            )
        out: list[Watcher] = [own]
        if not binary and self.spread_ratio is not None:
            # its own seed: its false alarms do not coincide with the location CUSUM's
            out.append(
                ScaleCUSUMDetector(
                    self.target_arl0,
                    self.spread_ratio,
                    seed=seed ^ 0x5CA1E5CA1E,
                    warmup=max(self.warmup, 10),
                    confirm=max(self.confirm, 2),
                )
            )
        ref = self.references.get(signal)
        if ref is not None:
            anchored = CUSUMDetector(
                self.target_arl0,
                k,
                reference=ref,
                seed=seed ^ 0x5A5A5A5A,
                confirm=self.confirm,
                binary=binary,
            )
            out.append(Anchored(anchored, self.profile))
        return out


class CategoricalWatchers:
    """The categorical factory of a :class:`CalibratedPlan`: own past (+ anchored).

    ``references`` maps a signal to its baseline category counts (a stored profile's
    ``counts``, with :data:`~detectors.categorical.OTHER` for the rest). Every detector of a
    signal uses the calibration seed 0, not the stream's seed: the calibration is keyed by
    the (rounded) expected mix, so segments with similar mixes share one (cached).

    >>> make = CategoricalWatchers(1e6, references={"prediction": {"yes": 7000, "no": 3000}},
    ...                            profile="canary")
    >>> [w.name for w in make("prediction", "region=eu|prediction", 1)]
    ['categorical', 'categorical@canary']
    >>> [w.name for w in make("feature:lang", "region=eu|feature:lang", 2)]
    ['categorical']
    """

    def __init__(
        self,
        target_arl0: float,
        *,
        top_k: int = 8,
        window: int = 100,
        warmup: int = 5000,
        references: dict[str, dict[str, float]] | None = None,
        profile: str | None = None,
    ) -> None:
        self.target_arl0 = target_arl0
        self.top_k = top_k
        self.window = window
        self.warmup = warmup
        self.references = references or {}
        self.profile = profile or "reference"
        CategoricalDetector(target_arl0, top_k, window, warmup=warmup)  # validate now
        for ref in self.references.values():  # and calibrate the anchored ones (cached)
            CategoricalDetector(target_arl0, top_k, window, reference=ref)

    def __call__(self, signal: str, stream: str, seed: int) -> list[Watcher]:
        out: list[Watcher] = [
            CategoricalDetector(self.target_arl0, self.top_k, self.window, warmup=self.warmup)
        ]
        ref = self.references.get(signal)
        if ref:
            out.append(
                CategoricalDetector(
                    self.target_arl0,
                    self.top_k,
                    self.window,
                    reference=ref,
                    profile=self.profile,
                )
            )
        return out
