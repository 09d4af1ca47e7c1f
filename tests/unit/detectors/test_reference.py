"""Reference summaries and normal scores: exact N(0, 1) under no change, for any signal."""

from __future__ import annotations

import json
import math
import pickle
from statistics import NormalDist

import numpy as np
import pytest

from detectors.reference import (
    Reference,
    counter_uniform,
    counter_uniforms,
    normal_quantile,
    normal_quantiles,
)

SIGNALS = {
    "lognormal_latency": lambda rng, n: rng.lognormal(4.0, 0.7, n),
    "poisson_tokens": lambda rng, n: rng.poisson(3.0, n).astype(float),
    "refusal_flag": lambda rng, n: (rng.random(n) < 0.05).astype(float),
    "rounded_ms": lambda rng, n: np.round(rng.gamma(2.0, 20.0, n)),
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_scores_are_standard_normal_when_nothing_changes(signal: str) -> None:
    rng = np.random.default_rng(11)
    draw = SIGNALS[signal]
    ref = Reference.from_sample(draw(rng, 200_000))
    z = ref.scores(draw(rng, 100_000), counter_uniforms(3, 0, 100_000))
    assert abs(z.mean()) < 0.015
    assert abs(z.std() - 1.0) < 0.015
    # tails too: the alarm rate of a CUSUM lives there
    for q in (0.01, 0.05, 0.5, 0.95, 0.99):
        assert abs(np.mean(z <= NormalDist().inv_cdf(q)) - q) < 0.004 + 0.02 * q * (1 - q)


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_a_rise_gives_positive_scores(signal: str) -> None:
    rng = np.random.default_rng(2)
    draw = SIGNALS[signal]
    ref = Reference.from_sample(draw(rng, 20_000))
    if signal == "refusal_flag":
        risen = (rng.random(20_000) < 0.15).astype(float)
    else:
        risen = draw(rng, 20_000) * 1.3 + 1.0
    z = ref.scores(risen, counter_uniforms(4, 0, risen.size))
    assert z.mean() > 0.2


def test_discrete_values_keep_their_exact_masses() -> None:
    xs = [0.0] * 90 + [1.0] * 7 + [3.0] * 3
    ref = Reference.from_sample(xs)
    assert ref.edges == (0.0, 1.0, 3.0)
    assert ref.counts == (90, 7, 3, 0)
    assert math.isclose(sum(ref.masses), 1.0)
    lo, hi = ref.cell_bounds(1.0)
    assert math.isclose(hi - lo, (7 + 0.25) / 101)
    assert ref.cell_bounds(2.0) == ref.cell_bounds(3.0)  # (1, 3] is one cell
    # a value never seen above the sample still gets a finite, high score
    assert 2.0 < ref.score(10.0, 0.5) < 9.0


def test_quantile_cells_hold_equal_counts_for_continuous_data() -> None:
    ref = Reference.from_sample(np.random.default_rng(0).standard_normal(6400), cells=64)
    assert len(ref.counts) == 64
    assert max(ref.counts) - min(ref.counts) <= 2
    assert ref.n == 6400
    assert abs(ref.mean) < 0.05
    assert abs(ref.std - 1) < 0.05


def test_serialization_round_trips_through_json_and_pickle() -> None:
    ref = Reference.from_sample(np.random.default_rng(1).lognormal(size=3000))
    blob = json.dumps(ref.to_dict())
    back = Reference.from_dict(json.loads(blob))
    assert back == ref
    assert hash(back) == hash(ref)
    assert back.fingerprint == ref.fingerprint
    assert len(blob) < 2600
    clone = pickle.loads(pickle.dumps(ref))
    assert clone == ref
    assert len(pickle.dumps(ref)) < 1024
    xs = np.linspace(0.0, 5.0, 50)
    v = counter_uniforms(1, 0, 50)
    assert np.array_equal(clone.scores(xs, v), ref.scores(xs, v))


def test_fingerprint_tracks_content() -> None:
    a = Reference.from_sample(np.arange(100.0))
    b = Reference.from_sample(np.arange(100.0) + 0.5)
    assert a.fingerprint != b.fingerprint
    assert len(a.fingerprint) == 16
    assert "fingerprint=" in repr(a)


def test_scalar_and_vector_scores_are_bit_identical() -> None:
    rng = np.random.default_rng(8)
    ref = Reference.from_sample(rng.gamma(1.5, size=5000))
    xs = np.concatenate([rng.gamma(1.5, size=20_000), [-1.0, 0.0, 1e12]])
    v = counter_uniforms(9, 100, xs.size)
    vec = ref.scores(xs, v)
    assert all(vec[i] == ref.score(float(xs[i]), float(v[i])) for i in range(xs.size))


def test_normal_quantile_matches_the_standard_library() -> None:
    nd = NormalDist()
    ps = np.concatenate([np.linspace(1e-6, 1 - 1e-6, 2001), [1e-300, 1e-20, 1 - 2**-53]])
    ours = normal_quantiles(ps)
    for p, z in zip(ps.tolist(), ours.tolist(), strict=True):
        assert z == normal_quantile(p)
        assert math.isclose(z, nd.inv_cdf(p), rel_tol=1e-14, abs_tol=1e-14)


def test_counter_uniforms_are_deterministic_uniform_and_seeded() -> None:
    u = counter_uniforms(5, 0, 200_000)
    assert np.array_equal(u, counter_uniforms(5, 0, 200_000))
    assert np.array_equal(u[1000:1010], counter_uniforms(5, 1000, 10))
    assert counter_uniform(5, 77) == u[77]
    assert not np.array_equal(u[:100], counter_uniforms(6, 0, 100))
    assert abs(u.mean() - 0.5) < 0.003
    assert abs(u.var() - 1 / 12) < 0.002
    assert u.min() > 0.0
    assert u.max() < 1.0
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Reference.from_sample([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="cells"):
        Reference.from_sample([1.0, 2.0], cells=1)
    with pytest.raises(ValueError, match="at least 2"):
        Reference.from_sample([1.0])
    with pytest.raises(ValueError, match="increasing"):
        Reference([2.0, 1.0], [1, 1, 1], 0.0, 1.0)
    with pytest.raises(ValueError, match="counts"):
        Reference([1.0], [1], 0.0, 1.0)
    with pytest.raises(ValueError, match="version"):
        Reference.from_dict({"version": 2})
    ref = Reference.from_sample([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        ref.score(float("nan"), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        ref.scores(np.array([1.0, np.nan]), np.array([0.5, 0.5]))
