"""Calibrations persist between runs: CUSUM and categorical thresholds alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import detectors.bernoulli as bern_cal
import detectors.calibration as cusum_cal
import detectors.categorical as cat_cal
from monitor.detection import calibration_cache_path, load_calibrations, save_calibrations

MEMOS = (
    cusum_cal.CALIBRATIONS,
    cat_cal.CATEGORICAL_CALIBRATIONS,
    bern_cal.BERNOULLI_CALIBRATIONS,
)


def test_cusum_and_categorical_calibrations_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for memo in MEMOS:
        monkeypatch.setattr(memo, "_known", {})
    cusum = cusum_cal.calibrate(12_345, 0.3, counts=[20] * 32)
    mix = cat_cal.calibrate_categorical([0.6, 0.3, 0.1], 100, 1e5, learn=3000)
    rate = bern_cal.calibrate_bernoulli(1e7, 0.01)
    save_calibrations()
    doc = json.loads(calibration_cache_path().read_text())
    assert len(doc["cusum"]) == 1
    assert len(doc["categorical"]) == 1
    assert len(doc["bernoulli"]) == 1

    # a new process: empty caches, then the file
    for memo in MEMOS:
        monkeypatch.setattr(memo, "_known", {})
    load_calibrations()
    again = cusum_cal.calibrate(12_345, 0.3, counts=[20] * 32)
    mix_again = cat_cal.calibrate_categorical([0.6, 0.3, 0.1], 100, 1e5, learn=3000)
    assert again == cusum  # loaded from disk, not recomputed
    assert again is not cusum
    assert mix_again == mix
    assert mix_again is not mix
    assert mix_again.seconds == mix.seconds  # the stored record, not a fresh computation
    rate_again = bern_cal.calibrate_bernoulli(1e7, 0.01)
    assert rate_again == rate
    assert rate_again is not rate


def test_an_unreadable_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = calibration_cache_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"cusum": [["not a key"]]}')
    monkeypatch.setattr(cusum_cal.CALIBRATIONS, "_known", {})
    load_calibrations()  # no exception: computed afresh when needed
    assert cusum_cal.CALIBRATIONS.known() == {}
