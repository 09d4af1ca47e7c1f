"""Reference summaries and normal scores: any signal, compared with its baseline, as N(0, 1).

A :class:`Reference` summarises a sample of one signal (the validated canary, or a detector's
own first observations) as a table of *cells*: sorted cut points ``edges`` and the number of
sample values in each right-closed cell ``(-inf, e1], (e1, e2], ..., (e_last, +inf)``. The cut
points are sample quantiles, so a continuous signal gets cells of nearly equal mass; a value
repeated in the sample (a 0/1 flag, an integer token count) is a cut point whose whole mass
lands in one cell, so discrete signals keep the exact masses of their repeated values.

The *randomized probability integral transform* maps an observation ``x`` in cell ``c`` to

    u = P(cells before c) + v * P(c),   z = Phi^-1(u),   v ~ U(0, 1)

with ``P`` the reference's cell masses. If the stream's distribution is the reference's, ``u``
is exactly uniform and ``z`` exactly N(0, 1), i.i.d., whatever the signal looks like
(lognormal latencies, counts, 0/1 refusals). That is what lets one CUSUM calibration serve
every signal. A rise of the signal moves ``x`` to higher cells, so ``z`` rises with it:
polarity is right by construction.

Cell masses are *smoothed* counts, ``(count + 1/C) / (n + 1)`` for ``C`` cells: one
pseudo-observation spread evenly. For continuous data this is the exact predictive mass of a
cell between order statistics (to O(1/(nC))), and a value never seen in the reference (beyond
the sample's range, or a new category of a discrete signal) still gets a finite score.

The uniforms ``v`` come from a counter-based generator (:func:`counter_uniforms`): the
``t``-th uniform of a key is a hash of ``(key, t)``. A detector's randomness is therefore a
pure function of its seed and the observation index: the per-event path and the vectorised
path draw the very same numbers, and the state holds no generator.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = Reference.from_sample(rng.lognormal(3.0, 0.5, size=5000))
>>> len(ref.edges), ref.n
(63, 5000)
>>> z = ref.scores(rng.lognormal(3.0, 0.5, size=20000), counter_uniforms(1, 0, 20000))
>>> round(float(z.mean()), 1), round(float(z.std()), 1)
(0.0, 1.0)
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Reference",
    "counter_uniform",
    "counter_uniforms",
    "normal_quantile",
    "normal_quantiles",
]

FloatArray = npt.NDArray[np.float64]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_ONE_BELOW = 1.0 - 2.0**-53  # largest double below 1: u is clamped to it


def _mix64(z: int) -> int:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014) on a 64-bit integer."""
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _stream_key(seed: int) -> int:
    return _mix64((seed * _GOLDEN + 0x632BE59BD9B4E019) & _MASK)


def counter_uniform(seed: int, t: int) -> float:
    """Uniform number ``t`` of the stream of ``seed``: ``counter_uniforms(seed, t, 1)[0]``.

    >>> counter_uniform(7, 3) == counter_uniform(7, 3) != counter_uniform(8, 3)
    True
    """
    r = _mix64((_stream_key(seed) + t * _GOLDEN) & _MASK)
    return ((r >> 12) + 0.5) * 2.0**-52


def counter_uniforms(seed: int, start: int, count: int) -> FloatArray:
    """Uniforms number ``start .. start+count-1`` of the stream of ``seed``, in (0, 1).

    SplitMix64 outputs: the ``t``-th value hashes ``key + t * golden``. Values lie on the grid
    ``(j + 0.5) / 2**52``, never 0 or 1.

    >>> u = counter_uniforms(7, 0, 100_000)
    >>> bool(abs(u.mean() - 0.5) < 0.005), bool(u.min() > 0.0), bool(u.max() < 1.0)
    (True, True, True)
    >>> counter_uniform(7, 41) == float(counter_uniforms(7, 41, 1)[0])
    True
    """
    key = _stream_key(seed)
    t = np.arange(start, start + count, dtype=np.uint64)
    z = np.uint64(key) + t * np.uint64(_GOLDEN)  # uint64 arrays wrap modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(12)).astype(np.float64) + 0.5) * 2.0**-52


# Wichura's AS241 (PPND16), as in CPython's statistics.NormalDist.inv_cdf: relative error
# about 1e-16. Written twice (scalar and numpy) with the same operations in the same order, so
# both give bit-identical results; numpy's own log may differ from libm's in the last bit, so
# the vector version takes its logarithms from math.log too.
_A = (
    2.5090809287301226727e3,
    3.3430575583588128105e4,
    6.7265770927008700853e4,
    4.5921953931549871457e4,
    1.3731693765509461125e4,
    1.9715909503065514427e3,
    1.3314166789178437745e2,
    3.3871328727963666080e0,
)
_B = (
    5.2264952788528545610e3,
    2.8729085735721942674e4,
    3.9307895800092710610e4,
    2.1213794301586595867e4,
    5.3941960214247511077e3,
    6.8718700749205790830e2,
    4.2313330701600911252e1,
    1.0,
)
_C = (
    7.7454501427834140764e-4,
    2.2723844989269184583e-2,
    2.4178072517745061177e-1,
    1.2704582524523683826e0,
    3.6478483247632046050e0,
    5.7694972214606914055e0,
    4.6303378461565452959e0,
    1.4234371107496835773e0,
)
_D = (
    1.0507500716444168432e-9,
    5.4759380849953449460e-4,
    1.5198666563616457197e-2,
    1.4810397642748007459e-1,
    6.8976733498510000455e-1,
    1.6763848301838038494e0,
    2.0531916266377588219e0,
    1.0,
)
_E = (
    2.0103343992922881327e-7,
    2.7115555687434875782e-5,
    1.2426609473880784386e-3,
    2.6532189526576123093e-2,
    2.9656057182850489123e-1,
    1.7848265399172913358e0,
    5.4637849111641143699e0,
    6.6579046435011037772e0,
)
_F = (
    2.0442631033899397856e-15,
    1.4215117583164458887e-7,
    1.8463183175100546818e-5,
    7.8686913114561325910e-4,
    1.4875361290850614852e-2,
    1.3692988092273580531e-1,
    5.9983220655588793769e-1,
    1.0,
)


def _horner(coef: Sequence[float], r: float) -> float:
    acc = coef[0]
    for c in coef[1:]:
        acc = acc * r + c
    return acc


def normal_quantile(p: float) -> float:
    """Phi^-1(p) for 0 < p < 1 (AS241); bit-identical to :func:`normal_quantiles`.

    >>> round(normal_quantile(0.975), 6), normal_quantile(0.5)
    (1.959964, 0.0)
    """
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return _horner(_A, r) * q / _horner(_B, r)
    r = p if q <= 0.0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r = r - 1.6
        x = _horner(_C, r) / _horner(_D, r)
    else:
        r = r - 5.0
        x = _horner(_E, r) / _horner(_F, r)
    return -x if q < 0.0 else x


def _horner_v(coef: Sequence[float], r: FloatArray) -> FloatArray:
    acc = np.full_like(r, coef[0])
    for c in coef[1:]:
        acc = acc * r + c
    return acc


def normal_quantiles(p: FloatArray) -> FloatArray:
    """Vectorised Phi^-1 (AS241), element for element equal to :func:`normal_quantile`.

    >>> p = np.array([1e-12, 0.01, 0.3, 0.5, 0.9, 1 - 1e-9])
    >>> bool(all(normal_quantiles(p) == [normal_quantile(float(v)) for v in p]))
    True
    """
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    qc = q[central]
    rc = 0.180625 - qc * qc
    out[central] = _horner_v(_A, rc) * qc / _horner_v(_B, rc)
    tail = ~central
    if tail.any():
        qt = q[tail]
        pt = np.where(qt <= 0.0, p[tail], 1.0 - p[tail])
        logs = np.fromiter((math.log(v) for v in pt.tolist()), np.float64, count=pt.size)
        r = np.sqrt(-logs)
        x = np.empty_like(r)
        mid = r <= 5.0
        rm = r[mid] - 1.6
        x[mid] = _horner_v(_C, rm) / _horner_v(_D, rm)
        rf = r[~mid] - 5.0
        x[~mid] = _horner_v(_E, rf) / _horner_v(_F, rf)
        out[tail] = np.where(qt < 0.0, -x, x)
    return out


class Reference:
    """A compact, serializable summary of a reference sample of one signal.

    ``edges`` are the sorted distinct cut points, ``counts[i]`` the number of sample values
    in cell ``i`` (right-closed: ``x`` belongs to the first cell whose upper edge is >= x).
    ``mean`` and ``std`` are the sample's (display only: scores use the cells).

    With ``cells`` quantile cells the summary is ``cells - 1`` floats and ``cells`` counts
    (64 cells: about 1.6 KB as JSON, 0.7 KB pickled), whatever the sample size.

    >>> ref = Reference.from_sample([0, 0, 1, 0, 0, 0, 1, 0, 0, 0])  # a 0/1 refusal flag
    >>> ref.edges, ref.counts
    ((0.0, 1.0), (8, 2, 0))
    >>> [round(b, 3) for b in ref.cell_bounds(1.0)]  # a refusal: u drawn in [0.758, 0.970)
    [0.758, 0.97]
    >>> ref.score(1.0, 0.5) > 1.0
    True
    >>> Reference.from_dict(ref.to_dict()) == ref
    True
    """

    __slots__ = ("_cum", "_cum_a", "_mass", "_mass_a", "counts", "edges", "mean", "std")

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    mean: float
    std: float

    def __init__(
        self, edges: Sequence[float], counts: Sequence[int], mean: float, std: float
    ) -> None:
        e = tuple(float(v) for v in edges)
        c = tuple(int(v) for v in counts)
        if len(c) != len(e) + 1:
            raise ValueError(f"counts must have len(edges) + 1 = {len(e) + 1} items, got {len(c)}")
        if any(not math.isfinite(v) for v in e) or any(b <= a for a, b in pairwise(e)):
            raise ValueError(f"edges must be finite and strictly increasing, got {e[:8]}...")
        if any(v < 0 for v in c) or sum(c) < 1:
            raise ValueError(f"counts must be >= 0 with a positive total, got {c[:8]}...")
        if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
            raise ValueError(f"mean/std must be finite (std >= 0), got {mean}, {std}")
        self.edges = e
        self.counts = c
        self.mean = float(mean)
        self.std = float(std)
        n, cells = sum(c), len(c)
        mass = [(v + 1.0 / cells) / (n + 1.0) for v in c]
        cum = [0.0]
        for m in mass:
            cum.append(cum[-1] + m)
        self._mass = tuple(mass)
        self._cum = tuple(cum)
        self._mass_a = np.array(mass)
        self._cum_a = np.array(cum)

    @classmethod
    def from_sample(cls, xs: Sequence[float] | FloatArray, cells: int = 64) -> Reference:
        """Summarise a sample with ``cells`` quantile cells (fewer if values repeat).

        The cut points are the order statistics of ranks ``round(j (n+1) / cells)``,
        ``j = 1 .. cells-1``: every cell holds about ``n / cells`` values and a new value from
        the same distribution falls in each with probability about ``1 / cells``.

        >>> import numpy as np
        >>> ref = Reference.from_sample(np.arange(1000.0), cells=4)
        >>> ref.edges, ref.counts
        ((249.0, 499.0, 750.0), (250, 250, 251, 249))
        """
        if not 2 <= cells <= 1024:
            raise ValueError(f"cells must be in [2, 1024], got {cells}")
        a = np.sort(np.asarray(xs, dtype=np.float64).ravel())
        n = a.size
        if n < 2:
            raise ValueError(f"a reference needs at least 2 values, got {n}")
        if not np.isfinite(a).all():
            raise ValueError("reference sample holds NaN or infinite values")
        ranks = np.clip(np.rint(np.arange(1, cells) * (n + 1) / cells).astype(np.int64), 1, n)
        edges = np.unique(a[ranks - 1])
        counts = np.bincount(np.searchsorted(edges, a, side="left"), minlength=edges.size + 1)
        return cls(edges.tolist(), counts.tolist(), float(a.mean()), float(a.std(ddof=1)))

    @property
    def n(self) -> int:
        """Size of the sample the reference summarises."""
        return sum(self.counts)

    @property
    def masses(self) -> tuple[float, ...]:
        """Smoothed probability of each cell, ``(count + 1/C) / (n + 1)``; sums to 1."""
        return self._mass

    def cell(self, x: float) -> int:
        """Index of the cell holding ``x``."""
        return bisect_left(self.edges, x)

    def cell_bounds(self, x: float) -> tuple[float, float]:
        """``(F(x-), F(x))`` of the smoothed reference distribution, at the cell of ``x``."""
        c = bisect_left(self.edges, x)
        return self._cum[c], self._cum[c + 1]

    def score(self, x: float, v: float) -> float:
        """Normal score of ``x`` given the uniform ``v`` (randomized PIT); NaN raises."""
        if x != x:
            raise ValueError("cannot score NaN")
        c = bisect_left(self.edges, x)
        u = self._cum[c] + v * self._mass[c]
        return normal_quantile(u if u < _ONE_BELOW else _ONE_BELOW)

    def scores(self, xs: FloatArray, v: FloatArray) -> FloatArray:
        """Vectorised :meth:`score`: element for element the same floats.

        >>> ref = Reference.from_sample(np.arange(100.0))
        >>> xs, v = np.array([-5.0, 10.0, 50.5, 1e9]), counter_uniforms(3, 0, 4)
        >>> bool(all(ref.scores(xs, v) == [ref.score(x, u) for x, u in zip(xs, v)]))
        True
        """
        xs = np.asarray(xs, dtype=np.float64)
        if np.isnan(xs).any():
            raise ValueError("cannot score NaN")
        c = np.searchsorted(np.asarray(self.edges), xs, side="left")
        u = self._cum_a[c] + v * self._mass_a[c]
        return normal_quantiles(np.minimum(u, _ONE_BELOW))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (floats round-trip exactly through JSON)."""
        return {
            "version": 1,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reference:
        """Inverse of :meth:`to_dict`."""
        if d.get("version") != 1:
            raise ValueError(f"unsupported reference version {d.get('version')!r}")
        return cls(d["edges"], d["counts"], d["mean"], d["std"])

    @property
    def fingerprint(self) -> str:
        """Stable 16-hex-digit digest of the summary (cache key, audit trail)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reference):
            return NotImplemented
        return (self.edges, self.counts, self.mean, self.std) == (
            other.edges,
            other.counts,
            other.mean,
            other.std,
        )

    def __hash__(self) -> int:
        return hash((self.edges, self.counts, self.mean, self.std))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle the summary only (edges as raw bytes: 8 bytes per cut point); the masses
        # and their numpy twins are rebuilt on load.
        return (
            _restore_reference,
            (np.asarray(self.edges).tobytes(), self.counts, self.mean, self.std),
        )

    def __repr__(self) -> str:
        return (
            f"Reference(n={self.n}, cells={len(self.counts)}, mean={self.mean:.4g}, "
            f"std={self.std:.4g}, fingerprint={self.fingerprint!r})"
        )


def _restore_reference(edges: bytes, counts: tuple[int, ...], mean: float, std: float) -> Reference:
    return Reference(np.frombuffer(edges, dtype=np.float64).tolist(), counts, mean, std)
