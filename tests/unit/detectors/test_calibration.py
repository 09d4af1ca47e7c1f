"""CUSUM calibration: thresholds hit their ARL0 target, checked by independent simulation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from detectors.calibration import (
    arl,
    calibrate,
    calibrate_bootstrap,
    cusum_first_alarms,
)
from detectors.cusum import CUSUMDetector


def naive_first_alarms(z: np.ndarray, k: float, h: float) -> np.ndarray:
    out = np.full(z.shape[0], -1)
    for r in range(z.shape[0]):
        sp = sm = 0.0
        for t, v in enumerate(z[r]):
            sp = max(0.0, sp + v - k)
            sm = max(0.0, sm - v - k)
            if sp >= h or sm >= h:
                out[r] = t
                break
    return out


def mean_run_length(first: np.ndarray, horizon: int) -> float:
    """Mean run length (1-based), with the few censored rows handled as exponential tails."""
    done = first >= 0
    return float(((first[done] + 1).sum() + (~done).sum() * horizon) / done.sum())


def test_first_alarms_match_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 9000)) * 1.3
    z[::3, 5000:] += 1.5
    fast = cusum_first_alarms(z, 0.5, 12.0)
    assert np.array_equal(fast, naive_first_alarms(z, 0.5, 12.0))
    assert (fast >= 0).any()
    assert (fast < 0).any()
    assert np.array_equal(cusum_first_alarms(np.zeros((3, 0)), 0.5, 5.0), [-1, -1, -1])


def test_first_alarms_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        cusum_first_alarms(np.zeros(5), 0.5, 5.0)
    with pytest.raises(ValueError, match="finite"):
        cusum_first_alarms(np.array([[0.0, np.inf]]), 0.5, 5.0)
    with pytest.raises(ValueError, match="h > 0"):
        cusum_first_alarms(np.zeros((1, 5)), 0.5, 0.0)


def test_markov_chain_matches_published_and_simulated_arl() -> None:
    # Montgomery's table for the tabular CUSUM, k = 0.5: h = 4 -> 168, h = 5 -> 465.
    assert round(arl(4.0)) == 168
    assert round(arl(5.0)) == 465
    # Two-sided ARL0 at h for a target of 1,000, by direct simulation (Lucas-Crosier check).
    h = calibrate(1_000).threshold
    z = np.random.default_rng(1).standard_normal((3000, 12_000))
    sim = mean_run_length(cusum_first_alarms(z, 0.5, h), 12_000)
    assert abs(sim / 1_000 - 1) < 0.06  # standard error 1.8 %
    # ARL1: expected delay of a 1-sigma shift present from the start.
    z = np.random.default_rng(2).standard_normal((4000, 400)) + 1.0
    delay = mean_run_length(cusum_first_alarms(z, 0.5, calibrate(10_000).threshold), 400)
    assert abs(delay / arl(calibrate(10_000).threshold, shift=1.0) - 1) < 0.03


@pytest.mark.parametrize("target", [500, 1e3, 1e4, 1e5, 1e6, 1e7, 1e9])
def test_calibration_hits_its_target_across_seven_decades(target: float) -> None:
    cal = calibrate(target)
    assert cal.seconds < 1.0
    assert abs(cal.achieved_arl0 / target - 1) < 0.04  # simulated, independently of the chain
    lo, hi = cal.ci95
    assert lo < cal.achieved_arl0 < hi
    assert hi / lo < 1.1
    assert lo < target < hi
    assert math.isclose(arl(cal.threshold), target, rel_tol=1e-4)


def test_threshold_grows_with_target_and_k_trades_delay() -> None:
    hs = [calibrate(t).threshold for t in (1e3, 1e4, 1e5, 1e6)]
    assert hs == sorted(hs)
    # log ARL0 is close to linear in h with slope 2k = 1 (Siegmund)
    steps = np.diff(hs)
    assert np.allclose(steps, math.log(10), atol=0.1)
    small_k = calibrate(1e4, k=0.25)
    assert small_k.threshold > hs[1]
    assert arl(small_k.threshold, 0.25, shift=0.5) < arl(hs[1], 0.5, shift=0.5)


def test_calibration_is_cached() -> None:
    calibrate(3_333)
    t0 = time.perf_counter()
    again = calibrate(3_333)
    assert time.perf_counter() - t0 < 0.01
    assert again is calibrate(3_333)


def test_estimated_references_raise_h_and_report_the_spread() -> None:
    exact = calibrate(10_000)
    assert exact.reference_size is None
    assert exact.conditional_arl0 is None
    for n in (300, 2000):
        learned = calibrate(10_000, learn=n)
        assert learned.reference_size == n
        assert learned.seconds < 1.0
        assert abs(learned.achieved_arl0 / 10_000 - 1) < 0.1
        p10, p50, p90 = learned.conditional_arl0 or (0, 0, 0)
        assert p10 < p50 < p90
    spread_small = calibrate(10_000, learn=300).conditional_arl0
    spread_large = calibrate(10_000, learn=2000).conditional_arl0
    assert spread_small is not None
    assert spread_large is not None
    assert spread_small[2] / spread_small[0] > spread_large[2] / spread_large[0]
    assert calibrate(10_000, learn=300).threshold > exact.threshold
    counts = calibrate(10_000, counts=[500] * 64)
    assert counts.reference_size == 32_000
    assert abs(counts.threshold - exact.threshold) < 0.05  # a big reference is nearly exact


def test_learned_reference_detectors_meet_the_target_end_to_end() -> None:
    """Fresh self-learning detectors: the mean run length after learning is the target."""
    warmup, target, trials = 300, 500, 400
    rng = np.random.default_rng(12)
    lengths = []
    for seed in range(trials):
        det = CUSUMDetector(target_arl0=target, warmup=warmup, seed=seed)
        x = rng.standard_normal(warmup + 8 * target)
        changes = det.update_many(x, tags=list(range(x.size)))
        tag = changes[0].tag if changes else x.size
        assert isinstance(tag, int)
        lengths.append(tag - warmup + 1)
    assert abs(np.mean(lengths) / target - 1) < 0.15  # standard error about 6 %


def test_bootstrap_calibration_on_raw_values() -> None:
    rng = np.random.default_rng(4)
    normal = calibrate_bootstrap(rng.standard_normal(5000), 1_000)
    assert abs(normal.threshold - calibrate(1_000).threshold) < 0.25
    skewed_sample = rng.lognormal(0.0, 1.0, 3000)
    skewed = calibrate_bootstrap(skewed_sample, 1_000)
    assert skewed.threshold > normal.threshold + 1.0
    assert skewed.seconds < 2.0
    assert abs(skewed.achieved_arl0 / 1_000 - 1) < 0.1
    # direct check: streams resampled from the sample, standardised, through the kernel
    xs = (skewed_sample - skewed_sample.mean()) / skewed_sample.std(ddof=1)
    z = xs[rng.integers(0, xs.size, (2500, 12_000))]
    sim = mean_run_length(cusum_first_alarms(z, 0.5, skewed.threshold), 12_000)
    assert abs(sim / 1_000 - 1) < 0.08


def test_bad_calibration_requests_are_rejected() -> None:
    with pytest.raises(ValueError, match="target_arl0"):
        calibrate(5)
    with pytest.raises(ValueError, match="k must"):
        calibrate(1000, k=0.0)
    with pytest.raises(ValueError, match="not both"):
        calibrate(1000, counts=[1, 2], learn=100)
    with pytest.raises(ValueError, match="learn"):
        calibrate(1000, learn=1)
    with pytest.raises(ValueError, match="constant"):
        calibrate_bootstrap([1.0] * 20, 1000)
    with pytest.raises(ValueError, match="h > 0"):
        arl(0.0)


@pytest.mark.parametrize(("k", "h"), [(0.5, 3.0), (0.5, 8.05), (0.25, 12.0), (0.5, 20.9)])
def test_toeplitz_chain_solve_matches_the_dense_solve(k: float, h: float) -> None:
    """The O(n^2) Levinson + Sherman-Morrison path gives the dense solve's ARL."""
    from detectors.calibration import _arl_chain, _phi

    n = max(24, math.ceil(h / 0.05))
    fast = float(_arl_chain(_phi, k, h, n))  # 1-D cdf: the Toeplitz path
    dense = float(_arl_chain(lambda t: _phi(t)[None, :], k, h, n, dense=True)[0])
    assert fast == pytest.approx(dense, rel=1e-5)
