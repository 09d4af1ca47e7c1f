"""The detector contract, over *every* detector driftgate has: the registered univariate
families (numeric and rate), the categorical detector and the multivariate detector.

What each must do (``detectors/base.py``): hyper-parameters are public attributes named like
the ``__init__`` arguments and validated there; ``update(x, tag)`` returns a ``Change`` when a
detection is confirmed; ``drift_detected`` is true exactly after that update;
``warning_detected`` is on while a firing is being confirmed; ``statistic`` is a number; and
``state()`` / ``from_state()`` round-trip exactly: a detector restored in the middle of a
stream makes the same decisions as one that never stopped.
"""

from __future__ import annotations

import inspect
import math
import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from detectors import CategoricalDetector, make_detector, registered
from detectors.base import Change
from detectors.multivariate import MultivariateDetector


@dataclass(frozen=True)
class Case:
    build: Callable[[], Any]
    data: Callable[[random.Random], list[Any]]  # stationary, then a change at ``change``
    change: int
    bad: dict[str, Any]  # one invalid hyper-parameter


def _numeric(rng: random.Random) -> list[float]:
    return [rng.gauss(0, 1) for _ in range(1500)] + [rng.gauss(4, 1) for _ in range(500)]


def _spread(rng: random.Random) -> list[float]:
    return [rng.gauss(5, 1) for _ in range(1500)] + [rng.gauss(5, 4) for _ in range(500)]


def _rate(rng: random.Random) -> list[float]:
    return [float(rng.random() < 0.05) for _ in range(1500)] + [
        float(rng.random() < 0.6) for _ in range(500)
    ]


def _categories(rng: random.Random) -> list[str]:
    before = rng.choices("abcd", weights=[50, 30, 15, 5], k=6000)
    return before + rng.choices("abcd", weights=[10, 20, 30, 40], k=2000)


def _vectors(rng: random.Random) -> list[dict[str, float]]:
    def pair(rho: float) -> dict[str, float]:
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        return {"x": a, "y": rho * a + math.sqrt(1 - rho * rho) * b}

    return [pair(0.8) for _ in range(2500)] + [pair(-0.8) for _ in range(1500)]


# uncalibrated River families get the parameters the registry contract test gives them
_PARAMS: dict[str, dict[str, float]] = {
    "cusum": {"target_arl0": 1e6},
    "eddm": {"alpha": 0.8, "beta": 0.7},
    "kswin": {"alpha": 0.0001, "window_size": 300, "stat_size": 100},
    "page_hinkley": {"threshold": 150.0},
    "scale": {"target_arl0": 1e6},
}


def _family(kind: str) -> Case:
    probe = make_detector(kind)
    binary = probe.binary_only
    return Case(
        build=lambda: make_detector(kind, binary=binary, **_PARAMS.get(kind, {})),
        data=_rate if binary else _spread if probe.measure == "spread" else _numeric,
        change=1500,
        bad={"warmup": -1},
    )


CASES: dict[str, Case] = {kind: _family(kind) for kind in registered()}
CASES["categorical"] = Case(
    build=lambda: CategoricalDetector(target_arl0=1e5, window=100, seed=1),
    data=_categories,
    change=6000,
    bad={"top_k": 1},
)
CASES["multivariate"] = Case(
    build=lambda: MultivariateDetector(target_arl0=1e5, warmup=1000, seed=1),
    data=_vectors,
    change=2500,
    bad={"block": 5},
)


def test_every_detector_is_covered() -> None:
    assert set(CASES) == {*registered(), "categorical", "multivariate"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_contract(name: str) -> None:
    case = CASES[name]
    data = case.data(random.Random(21))
    det = case.build()
    assert det.drift_detected is False
    # hyper-parameters: public attributes named like the __init__ arguments, validated there
    params = [p for p in inspect.signature(type(det).__init__).parameters if p != "self"]
    for p in params:
        if p not in ("binary",):
            assert hasattr(det, p), f"{name}: hyper-parameter {p!r} is not a public attribute"
    bad_name = next(iter(case.bad))
    build_bad = type(det) if name in ("categorical", "multivariate") else make_detector
    args = () if build_bad is type(det) else (name,)
    with pytest.raises(ValueError, match=bad_name):
        build_bad(*args, **case.bad)

    half = case.change // 2
    restored = None
    seen_warning = False
    fired: list[tuple[str, int, Change]] = []
    for i, x in enumerate(data):
        if i == half:  # snapshot mid-stream: from here both must decide alike
            restored = type(det).from_state(det.state())
            assert repr(restored) == repr(det)
            assert restored.statistic == det.statistic
        for who, d in (("live", det), ("restored", restored)):
            if d is None:
                continue
            change = d.update(x, i)
            assert d.drift_detected is (change is not None)
            assert isinstance(d.statistic, float | int)
            assert d.statistic == d.statistic  # never NaN
            if who == "live":
                seen_warning |= d.warning_detected
            if change is not None:
                fired.append((who, i, change))
        if any(who == "live" and i >= case.change for who, i, _ in fired):
            break
    live = [(i, c) for who, i, c in fired if who == "live"]
    again = [(i, c) for who, i, c in fired if who == "restored"]
    assert again == [(i, c) for i, c in live if i >= half]  # same decisions after the restore
    detections = [i for i, _ in live if i >= case.change]
    assert detections, f"{name}: the change at {case.change} was not detected"
    assert seen_warning, f"{name}: the confirmation window is a warning state"
    with pytest.raises(TypeError):
        type(det).from_state(pickle.dumps([1, 2]))
