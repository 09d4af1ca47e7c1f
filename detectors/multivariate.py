"""Multivariate drift: a River classifier learns "reference vs now"; its AUC is the test.

Single-feature detectors miss changes of the *joint* distribution whose marginals stay put
(two features whose correlation flips, a cluster that moves along a diagonal). A
:class:`MultivariateDetector` watches a feature vector (``dict[str, float]``) per segment:

1. **Reference.** The first ``warmup`` vectors are kept (standardised by their own mean and
   spread) and split in two halves: *train* (what the classifier learns as label 0) and
   *held out* (what it is scored on as label 0, never learned, so a reference point and a
   fresh point are alike to the model when nothing changed).
2. **Prequential domain classifier.** For each new vector ``x`` (label 1) and one held-out
   reference vector drawn at random (label 0), River's ``LogisticRegression`` on the
   standardised features and, by default, their pairwise products (a correlation change is
   a change of the mean of ``x_i x_j``, which a linear model then sees) scores both *before*
   learning ``x`` (label 1) and a random train reference vector (label 0).
3. **Test.** Every ``block`` pairs give one AUC (Mann-Whitney: the share of (now, reference)
   score pairs ranked the right way). With no change it is the AUC of two samples from one
   distribution, mean 0.5, sd ``sqrt((2B + 1) / (12 B^2))``, whatever the features; a
   one-sided CUSUM on the standardised block AUCs fires at ``h``.
4. **Calibration.** The null of the block AUC is simulated by permutation (uniform scores,
   ``2B`` per block, 20,000 blocks) and ``h`` set by the Markov chain of the CUSUM on that
   empirical null (:func:`detectors.categorical.window_cusum_threshold`) so the expected
   observations between false alarms is ``target_arl0``; cached per ``(block, target, k)``.
5. **Effect.** The AUC of the ``confirm`` pairs after the firing, mapped to the shift of two
   equal-variance normal samples with that AUC: ``effect = sqrt(2) Phi^-1(AUC)`` (AUC 0.76
   is effect 1, a one-sigma shift along the best direction). ``Change(before=0, after=effect,
   scale=1)``. After the report the detector collects a new reference (the post-change data).

Cost: four River calls per observation (~10k observations/s): meant for one vector per
segment (a handful of numeric features), not for every signal.

>>> import random
>>> rng = random.Random(3)
>>> def pair(rho):
...     a, b = rng.gauss(0, 1), rng.gauss(0, 1)
...     return {"x": a, "y": rho * a + (1 - rho * rho) ** 0.5 * b}
>>> data = [pair(0.8) for _ in range(3000)] + [pair(-0.8) for _ in range(1000)]
>>> det = MultivariateDetector(target_arl0=1e5, warmup=1000, seed=1)
>>> [(c.tag, round(c.effect, 1)) for i, x in enumerate(data) if (c := det.update(x, i))]
[(3099, 1.4)]
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

import numpy as np
from river import linear_model, optim

from detectors.base import Change, Stateful
from detectors.categorical import window_cusum_threshold
from detectors.reference import normal_quantile

__all__ = ["MultivariateDetector", "block_auc_threshold"]

_NULL_BLOCKS = 20_000


@lru_cache(maxsize=256)
def block_auc_threshold(block: int, target_arl0: float, k: float = 0.5) -> float:
    """``h`` of the CUSUM on standardised block AUCs for ``target_arl0`` observations.

    >>> h = block_auc_threshold(50, 1e5)
    >>> 5 < h < 9
    True
    """
    rng = np.random.default_rng(block)
    scores = rng.random((_NULL_BLOCKS, 2 * block))
    now, ref = scores[:, :block], scores[:, block:]
    auc = (now[:, :, None] > ref[:, None, :]).mean(axis=(1, 2))
    z = (auc - 0.5) / _auc_sd(block)
    return window_cusum_threshold(z, k, target_arl0 / block)


def _auc_sd(block: int) -> float:
    return math.sqrt((2 * block + 1) / (12.0 * block * block))


def _auc(now: list[float], ref: list[float]) -> float:
    a, b = np.asarray(now), np.asarray(ref)
    gt = (a[:, None] > b[None, :]).mean()
    eq = (a[:, None] == b[None, :]).mean()
    return float(gt + 0.5 * eq)


class MultivariateDetector(Stateful):
    """Domain-classifier drift test on feature vectors, calibrated to ``target_arl0``.

    Parameters
    ----------
    target_arl0
        Expected observations between false alarms with no change (>= 10 * ``block``).
    block
        Observation pairs per AUC (one test per block), 10 .. 1000.
    warmup
        Reference vectors collected before testing (half learned, half held out), >= 100.
    interactions
        Also feed the pairwise products of the standardised features (needed for changes
        of correlation; ``d (d + 1) / 2`` extra inputs for ``d`` features).
    learning_rate
        SGD step of the logistic regression.
    k
        CUSUM reference value, in standardised block AUCs.
    seed
        Seed of the detector's own RNG (which reference vectors are drawn).
    confirm
        Pairs scored after a firing to measure the effect (default ``2 * block``).
    """

    name = "multivariate"

    _sample: list[list[float]]
    _model: Any  # River's LogisticRegression (untyped)
    _train: list[list[float]]
    _eval: list[list[float]]
    _now: list[float]
    _ref: list[float]
    _cusum: float
    _confirming: bool
    _pending: object
    _mu: list[float]
    _sd_f: list[float]

    def __init__(
        self,
        target_arl0: float = 100_000,
        block: int = 50,
        warmup: int = 1000,
        interactions: bool = True,
        learning_rate: float = 0.05,
        k: float = 0.5,
        seed: int = 0,
        *,
        confirm: int | None = None,
    ) -> None:
        if not isinstance(block, int) or not 10 <= block <= 1000:
            raise ValueError(f"block must be an int in [10, 1000], got {block!r}")
        if not 10 * block <= target_arl0 <= 1e13:
            raise ValueError(
                f"target_arl0 must be in [10 * block = {10 * block}, 1e13], got {target_arl0}"
            )
        if not isinstance(warmup, int) or warmup < 100:
            raise ValueError(f"warmup must be an int >= 100, got {warmup!r}")
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate}")
        if not 0.0 < k <= 3.0:
            raise ValueError(f"k must be in (0, 3], got {k}")
        if confirm is None:
            confirm = 2 * block
        if confirm < 10:
            raise ValueError(f"confirm must be >= 10, got {confirm}")
        self.target_arl0 = target_arl0
        self.block = block
        self.warmup = warmup
        self.interactions = interactions
        self.learning_rate = learning_rate
        self.k = k
        self.seed = seed
        self.confirm = confirm
        self._h = block_auc_threshold(block, float(target_arl0), k)
        self._sd = _auc_sd(block)
        self._rng = random.Random(seed)
        self._features: list[str] | None = None
        self._n_total = 0
        self._fired = False
        self._restart()

    # -- read-outs -----------------------------------------------------------------------

    @property
    def drift_detected(self) -> bool:
        """True right after the update that returned a :class:`Change`."""
        return self._fired

    @property
    def warning_detected(self) -> bool:
        """True while a firing is being confirmed, or when the CUSUM is past ``h / 2``."""
        return self._confirming or 2.0 * self._cusum > self._h

    @property
    def statistic(self) -> float:
        """The CUSUM of standardised block AUCs (fires at :attr:`threshold`)."""
        return self._cusum

    @property
    def threshold(self) -> float:
        """``h`` in force."""
        return float(self._h)

    @property
    def features(self) -> list[str] | None:
        """The watched feature names (fixed by the first vector; later new ones ignored)."""
        return self._features

    # -- feeding -------------------------------------------------------------------------

    def update(self, x: dict[str, float], tag: object = None) -> Change | None:
        """Feed one feature vector; return a :class:`Change` when a drift is confirmed.

        Missing features count as the reference mean; features first seen after the first
        vector are ignored.
        """
        self._fired = False
        self._n_total += 1
        if self._features is None:
            self._features = sorted(x)
            if not self._features:
                raise ValueError("the first feature vector is empty")
        vec = [float(x[f]) if f in x else math.nan for f in self._features]
        if any(math.isinf(v) for v in vec):
            raise ValueError(f"feature values must be finite, got {x!r}")
        if self._model is None:
            self._collect(vec)
            return None
        now = self._expand(vec)
        held_out = self._expand(self._rng.choice(self._eval))
        s_now = self._model.predict_proba_one(now).get(True, 0.5)
        s_ref = self._model.predict_proba_one(held_out).get(True, 0.5)
        self._model.learn_one(now, True)
        self._model.learn_one(self._expand(self._rng.choice(self._train)), False)
        self._now.append(float(s_now))
        self._ref.append(float(s_ref))
        if self._confirming:
            if len(self._now) < self.confirm:
                return None
            return self._report()
        if len(self._now) < self.block:
            return None
        z = (_auc(self._now, self._ref) - 0.5) / self._sd
        self._now, self._ref = [], []
        self._cusum = max(0.0, self._cusum + z - self.k)
        if self._cusum >= self._h:
            self._confirming = True
            self._pending = tag
            self._cusum = 0.0
        return None

    def _report(self) -> Change:
        auc = min(max(_auc(self._now, self._ref), 0.5), 1.0 - 1e-6)
        effect = math.sqrt(2.0) * normal_quantile(auc)
        change = Change(
            detector=self.name,
            before=0.0,
            after=effect,
            scale=1.0,
            n=self._n_total,
            tag=self._pending,
        )
        self._fired = True
        self._restart()
        return change

    # -- reference -----------------------------------------------------------------------

    def _restart(self) -> None:
        self._sample = []
        self._model = None
        self._train = []
        self._eval = []
        self._now = []
        self._ref = []
        self._cusum = 0.0
        self._confirming = False
        self._pending = None

    def _collect(self, vec: list[float]) -> None:
        self._sample.append(vec)
        if len(self._sample) < self.warmup:
            return
        a = np.asarray(self._sample, dtype=np.float64)
        self._mu = np.nan_to_num(np.nanmean(a, axis=0)).tolist()
        sd = np.nan_to_num(np.nanstd(a, axis=0, ddof=1), nan=1.0)
        self._sd_f = np.where(sd > 0, sd, 1.0).tolist()
        self._train, self._eval = self._sample[0::2], self._sample[1::2]
        self._sample = []
        self._model = linear_model.LogisticRegression(optimizer=optim.SGD(self.learning_rate))

    def _expand(self, vec: list[float]) -> dict[str, float]:
        assert self._features is not None
        z = [
            0.0 if math.isnan(v) else max(-10.0, min(10.0, (v - m) / s))
            for v, m, s in zip(vec, self._mu, self._sd_f, strict=True)
        ]
        out = dict(zip(self._features, z, strict=True))
        if self.interactions:
            names = self._features
            for i in range(len(z)):
                for j in range(i, len(z)):
                    out[f"{names[i]}*{names[j]}"] = z[i] * z[j]
        return out

    # -- repr ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(target_arl0={self.target_arl0!r}, block={self.block}, "
            f"warmup={self.warmup}, interactions={self.interactions})"
        )
