"""Calibration and delay of :class:`detectors.multivariate.MultivariateDetector`.

``measure_arl0`` runs fresh detectors (default parameters, warm-up 1,000, block 50) on
stationary streams of three N(0, 1) features (``x``, ``y`` with correlation 0.8, ``z``
independent) until their first alarm; each run is capped at 5x the target (a censored run
counts its exposure). Run lengths count observations after the warm-up.

``measure_delay`` changes the stream at observation 3,000 and measures the delay from the
change to the firing (the ``Change.tag``, i.e. the observation that completed the firing
block). The changes (``SHIFTS``): the correlation of ``x`` and ``y`` flips from 0.8 to -0.8
or weakens to 0.5 (marginals unchanged), ``x`` and ``y`` both move by 0.3 sigma (a diagonal
shift, 0.3 sigma per marginal), or ``z``'s spread grows 1.5x. ``marginal_delay`` gives the
same for a bank of self-learned CUSUMs, one per feature, each at 3x the target (so the bank
has the target ARL0): what per-feature detection sees of the same change.

Run ``python -m bench.multivariate`` to print them for targets 1e4 and 1e5.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol

import numpy as np

from detectors.base import Change
from detectors.cusum import CUSUMDetector
from detectors.multivariate import MultivariateDetector, grid_levels

__all__ = [
    "SHIFTS",
    "marginal_delay",
    "measure_arl0",
    "measure_delay",
    "measure_throughput",
    "stream",
]

WARMUP = 1000
BLOCK = 50
RHO = 0.8
FLIP_AT = 3000
CAP_FACTOR = 5.0


class VectorDetector(Protocol):
    def update(self, x: dict[str, float], tag: object = None) -> Change | None: ...


Factory = Callable[[float, int], VectorDetector]


def default_factory(target_arl0: float, seed: int) -> VectorDetector:
    return MultivariateDetector(target_arl0=target_arl0, block=BLOCK, warmup=WARMUP, seed=seed)


def stream(
    rng: random.Random, rho: float, shift: float = 0.0, spread: float = 1.0
) -> dict[str, float]:
    """One vector: ``x``, ``y`` normal with correlation ``rho`` and mean ``shift``; ``z``
    independent with sd ``spread``."""
    a = rng.gauss(0.0, 1.0)
    b = rho * a + math.sqrt(1.0 - rho * rho) * rng.gauss(0.0, 1.0)
    return {"x": a + shift, "y": b + shift, "z": spread * rng.gauss(0.0, 1.0)}


#: the changes of ``measure_delay``: name -> (label, stream arguments after the change)
SHIFTS: dict[str, tuple[str, tuple[float, float, float]]] = {
    "flip": ("correlation of x, y 0.8 -> -0.8", (-RHO, 0.0, 1.0)),
    "weaken": ("correlation of x, y 0.8 -> 0.5", (0.5, 0.0, 1.0)),
    "diagonal": ("x and y +0.3 sigma together", (RHO, 0.3, 1.0)),
    "spread": ("sd of z 1 -> 1.5", (RHO, 0.0, 1.5)),
}


def _run_length(det: VectorDetector, rng: random.Random, cap: int) -> tuple[int, bool]:
    for _ in range(WARMUP):
        det.update(stream(rng, RHO))
    for t in range(1, cap + 1):
        change = det.update(stream(rng, RHO), t)
        if change is not None:  # reported ``confirm`` later; the alarm is the firing itself
            assert isinstance(change.tag, int)
            return min(change.tag, cap), True
    return cap, False


def _one_run(job: tuple[float, int, int, int, Factory]) -> tuple[int, bool]:
    target_arl0, seed, r, cap, factory = job
    rng = random.Random(seed * 1_000_003 + r)
    return _run_length(factory(target_arl0, seed * 7919 + r), rng, cap)


def measure_arl0(
    target_arl0: float,
    runs: int,
    seed: int,
    factory: Factory = default_factory,
    workers: int = 1,
) -> dict[str, float]:
    """Run lengths to the first false alarm of ``runs`` fresh detectors (run ``r`` has its
    own seeds, so ``workers`` processes give the same figures as one).

    ``mean_run_length`` counts censored runs at the cap (a lower bound when any are
    censored); ``alarm_rate_arl0`` is exposure / alarms (the exponential MLE with censoring);
    its 95 % CI is the exact Poisson interval of the alarm count.
    """
    cap = int(CAP_FACTOR * target_arl0)
    t0 = time.perf_counter()
    jobs = [(target_arl0, seed, r, cap, factory) for r in range(runs)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            done = list(pool.map(_one_run, jobs, chunksize=max(1, runs // (4 * workers))))
    else:
        done = [_one_run(job) for job in jobs]
    lengths = [n for n, _ in done]
    alarms = sum(alarmed for _, alarmed in done)
    exposure = float(sum(lengths))
    mean = statistics.fmean(lengths)
    sd = statistics.stdev(lengths) if runs > 1 else math.nan
    half = 1.96 * sd / math.sqrt(runs)
    rate_arl = exposure / alarms if alarms else math.inf
    lo_a, hi_a = _poisson_ci(alarms)
    return {
        "target_arl0": float(target_arl0),
        "runs": float(runs),
        "mean_run_length": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "ratio": mean / target_arl0,
        "median_run_length": float(statistics.median(lengths)),
        "alarms": float(alarms),
        "censored": float(runs - alarms),
        "exposure": exposure,
        "alarm_rate_arl0": rate_arl,
        "alarm_rate_ratio": rate_arl / target_arl0,
        "alarm_rate_ci_low": exposure / hi_a,
        "alarm_rate_ci_high": exposure / lo_a if lo_a > 0 else math.inf,
        "seconds": time.perf_counter() - t0,
    }


def _changed(kind: str) -> Callable[[random.Random, int], dict[str, float]]:
    after = SHIFTS[kind][1]

    def draw(rng: random.Random, i: int) -> dict[str, float]:
        return stream(rng, *after) if i >= FLIP_AT else stream(rng, RHO)

    return draw


def _delays(hits: list[float | None], runs: int, t0: float) -> dict[str, float]:
    delays = [h for h in hits if h is not None and h >= 0]
    early = sum(1 for h in hits if h is not None and h < 0)
    missed = sum(1 for h in hits if h is None)
    return {
        "runs": float(runs),
        "mean_delay": statistics.fmean(delays) if delays else math.nan,
        "median_delay": float(statistics.median(delays)) if delays else math.nan,
        "max_delay": max(delays) if delays else math.nan,
        "missed_share": missed / runs,
        "false_alarm_share": early / runs,
        "seconds": time.perf_counter() - t0,
    }


HORIZON = 5000


def measure_delay(
    target_arl0: float,
    runs: int,
    seed: int,
    kind: str = "flip",
    factory: Factory = default_factory,
) -> dict[str, float]:
    """Delay to detect the change ``kind`` (a key of :data:`SHIFTS`) at observation 3,000.

    A run that fires before the change (false alarm) or not within 5,000 observations after
    it counts as missed; delays are ``tag - 3000`` (observation index of the firing block end).
    """
    draw = _changed(kind)
    hits: list[float | None] = []
    t0 = time.perf_counter()
    for r in range(runs):
        rng = random.Random(seed * 1_000_003 + r + 500_000)
        det = factory(target_arl0, seed * 7919 + r + 500_000)
        hit: float | None = None
        for i in range(FLIP_AT + HORIZON):
            c = det.update(draw(rng, i), i)
            if c is not None:
                assert isinstance(c.tag, int)
                hit = float(c.tag - FLIP_AT)
                break
        hits.append(hit)
    return {"target_arl0": float(target_arl0)} | _delays(hits, runs, t0)


def marginal_delay(
    target_arl0: float, runs: int, seed: int, kind: str = "flip"
) -> dict[str, float]:
    """The same streams as :func:`measure_delay`, watched by one self-learned
    :class:`~detectors.cusum.CUSUMDetector` per feature at ``3 * target_arl0`` each (the
    bank's ARL0 is then the target); the delay is the first firing of any of them."""
    draw = _changed(kind)
    hits: list[float | None] = []
    t0 = time.perf_counter()
    for r in range(runs):
        rng = random.Random(seed * 1_000_003 + r + 500_000)
        rows = [draw(rng, i) for i in range(FLIP_AT + HORIZON)]
        first: float | None = None
        for j, name in enumerate(("x", "y", "z")):
            det = CUSUMDetector(target_arl0=3 * target_arl0, warmup=WARMUP, seed=seed + 31 * r + j)
            values = np.array([v[name] for v in rows])
            changes = det.update_many(values, tags=list(range(values.size)))
            if changes:
                tag = changes[0].tag
                assert isinstance(tag, int)
                at = float(tag - FLIP_AT)
                first = at if first is None else min(first, at)
        hits.append(first)
    return {"target_arl0": float(target_arl0)} | _delays(hits, runs, t0)


def measure_throughput(n: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Updates per second after the warm-up, and the pickled state size in bytes."""
    rng = random.Random(seed)
    data = [stream(rng, RHO) for _ in range(WARMUP + n)]
    det = MultivariateDetector(target_arl0=1e9, block=BLOCK, warmup=WARMUP, seed=seed)
    for v in data[:WARMUP]:
        det.update(v)
    t0 = time.perf_counter()
    for v in data[WARMUP:]:
        det.update(v)
    dt = time.perf_counter() - t0
    levels, watched = grid_levels(len(data[0]), det.cells)
    return {
        "updates_per_s": n / dt,
        "state_bytes": float(len(det.state())),
        "cells": float(levels**watched),
    }


def _poisson_ci(k: int) -> tuple[float, float]:
    """Exact 95 % interval of a Poisson mean given ``k`` events (chi-square via bisection)."""

    def cdf(mu: float, upto: int) -> float:
        term = total = math.exp(-mu)
        for i in range(1, upto + 1):
            term *= mu / i
            total += term
        return total

    def solve(level: float, upto: int) -> float:
        """The mean at which ``P(X <= upto) = level`` (the CDF falls as the mean grows)."""
        lo, hi = 0.0, 10.0 * k + 20.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if cdf(mid, upto) > level else (lo, mid)
        return 0.5 * (lo + hi)

    low = 0.0 if k == 0 else solve(0.975, k - 1)
    high = solve(0.025, k)
    return low, high


def _print(d: dict[str, float]) -> None:
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in d.items()))


def main(argv: list[str]) -> None:
    runs_by_target = {1e4: 100, 1e5: 30}
    if argv:
        runs_by_target = {float(t): int(r) for t, r in (a.split(":") for a in argv)}
    print("throughput / state:")
    _print(measure_throughput())
    for target, runs in runs_by_target.items():
        print(f"ARL0, target {target:g}, {runs} runs:")
        _print(measure_arl0(target, runs, seed=1))
        for kind, (label, _) in SHIFTS.items():
            print(f"{label}: delay, target {target:g}:")
            _print(measure_delay(target, max(20, runs // 3), seed=2, kind=kind))
            print("  per-feature CUSUMs:")
            _print(marginal_delay(target, max(20, runs // 3), seed=2, kind=kind))


if __name__ == "__main__":
    main(sys.argv[1:])
