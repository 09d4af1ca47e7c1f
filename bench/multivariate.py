"""Calibration and delay of :class:`detectors.multivariate.MultivariateDetector`.

``measure_arl0`` runs fresh detectors (default parameters, warm-up 1,000, block 50) on
stationary streams of three N(0, 1) features (``x``, ``y`` with correlation 0.8, ``z``
independent) until their first alarm; each run is capped at 5x the target (a censored run
counts its exposure). Run lengths count observations after the warm-up.

``measure_delay`` flips the correlation of ``x`` and ``y`` from 0.8 to -0.8 at observation
3,000 (marginals unchanged) and measures the delay from the flip to the firing (the
``Change.tag``, i.e. the observation that completed the firing block).

Run ``python -m bench.multivariate`` to print both for targets 1e4 and 1e5.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Protocol

from detectors.base import Change
from detectors.multivariate import MultivariateDetector

__all__ = ["measure_arl0", "measure_delay", "measure_throughput", "stream"]

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


def stream(rng: random.Random, rho: float) -> dict[str, float]:
    """One vector: ``x``, ``y`` standard normal with correlation ``rho``; ``z`` independent."""
    a = rng.gauss(0.0, 1.0)
    b = rho * a + math.sqrt(1.0 - rho * rho) * rng.gauss(0.0, 1.0)
    return {"x": a, "y": b, "z": rng.gauss(0.0, 1.0)}


def _run_length(det: VectorDetector, rng: random.Random, cap: int) -> tuple[int, bool]:
    for _ in range(WARMUP):
        det.update(stream(rng, RHO))
    for t in range(1, cap + 1):
        change = det.update(stream(rng, RHO), t)
        if change is not None:  # reported ``confirm`` later; the alarm is the firing itself
            assert isinstance(change.tag, int)
            return min(change.tag, cap), True
    return cap, False


def measure_arl0(
    target_arl0: float, runs: int, seed: int, factory: Factory = default_factory
) -> dict[str, float]:
    """Run lengths to the first false alarm of ``runs`` fresh detectors.

    ``mean_run_length`` counts censored runs at the cap (a lower bound when any are
    censored); ``alarm_rate_arl0`` is exposure / alarms (the exponential MLE with censoring);
    its 95 % CI is the exact Poisson interval of the alarm count.
    """
    cap = int(CAP_FACTOR * target_arl0)
    lengths: list[int] = []
    alarms = 0
    t0 = time.perf_counter()
    for r in range(runs):
        rng = random.Random(seed * 1_000_003 + r)
        n, alarmed = _run_length(factory(target_arl0, seed * 7919 + r), rng, cap)
        lengths.append(n)
        alarms += alarmed
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


def measure_delay(
    target_arl0: float, runs: int, seed: int, factory: Factory = default_factory
) -> dict[str, float]:
    """Delay to detect the correlation flip 0.8 -> -0.8 at observation 3,000.

    A run that fires before the flip (false alarm) or not within 5,000 observations after it
    counts as missed; delays are ``tag - 3000`` (observation index of the firing block end).
    """
    horizon = 5000
    delays: list[float] = []
    early = missed = 0
    t0 = time.perf_counter()
    for r in range(runs):
        rng = random.Random(seed * 1_000_003 + r + 500_000)
        det = factory(target_arl0, seed * 7919 + r + 500_000)
        hit: float | None = None
        for i in range(FLIP_AT + horizon):
            c = det.update(stream(rng, RHO if i < FLIP_AT else -RHO), i)
            if c is not None:
                tag = c.tag
                assert isinstance(tag, int)
                hit = float(tag - FLIP_AT)
                break
        if hit is None:
            missed += 1
        elif hit < 0:
            early += 1
        else:
            delays.append(hit)
    return {
        "target_arl0": float(target_arl0),
        "runs": float(runs),
        "mean_delay": statistics.fmean(delays) if delays else math.nan,
        "median_delay": float(statistics.median(delays)) if delays else math.nan,
        "max_delay": max(delays) if delays else math.nan,
        "missed_share": missed / runs,
        "false_alarm_share": early / runs,
        "seconds": time.perf_counter() - t0,
    }


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
    return {"updates_per_s": n / dt, "state_bytes": float(len(det.state()))}


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
        print(f"correlation flip delay, target {target:g}:")
        _print(measure_delay(target, max(20, runs // 3), seed=2))


if __name__ == "__main__":
    main(sys.argv[1:])
