"""Smoke tests of the detection benchmark's measuring code, on tiny sizes (no timing)."""

from __future__ import annotations

import doctest
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from river import drift

from bench import detection, plots, report, runs, windows
from bench.detection import (
    Contender,
    change_streams,
    driftgate_arl0,
    fleet_pass,
    kswin_pvalue_paths,
    kswin_rl,
    normal_draw,
    poisson_p,
    river_arl0,
)
from bench.report import Section, Table, write_markdown
from bench.runs import delay_stats, tune_log
from detectors.budget import Persistence
from detectors.calibration import calibrate, cusum_first_alarms
from detectors.cusum import CUSUMDetector


@pytest.mark.parametrize("module", [runs, report, detection])
def test_docstring_examples_pass(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0


def test_measured_arl0_of_a_calibrated_cusum_is_finite_and_positive() -> None:
    rl = driftgate_arl0(
        lambda i: CUSUMDetector(200, 0.5, seed=i, warmup=50), normal_draw, 20, 200, 1, warmup=50
    )
    assert rl.lengths.size == 20
    assert rl.alarms > 0
    assert 0 < rl.arl < math.inf
    lo, hi = rl.ci95()
    assert lo < rl.arl < hi
    assert (rl.lengths >= 1).all()


def test_oracle_detects_a_3_sigma_shift_quickly() -> None:
    x = change_streams(40, 300, 200, seed=3, shift=3.0)
    first = cusum_first_alarms(x, 1.5, calibrate(10_000, 1.5).threshold)
    d = delay_stats(first, 300, 200)
    assert d.missed == 0
    assert d.delays.size == d.valid >= 30
    assert d.delays.max() <= 10


def test_delay_stats_separates_pre_change_alarms_and_misses() -> None:
    d = delay_stats(np.array([-1, 10, 100, 150, 299, 300]), change=100, horizon=200)
    assert (d.pre_change, d.valid, d.missed) == (1, 5, 2)
    assert d.delays.tolist() == [1, 51, 200]
    assert math.isclose(d.missed_rate, 0.4)


def test_dummy_run_length_is_its_period() -> None:
    c = Contender("dummy", "t_0=50", lambda i: drift.DummyDriftDetector(t_0=50), "river")
    rl = river_arl0(c, np.zeros((3, 400)))
    assert rl.lengths.tolist() == [50, 50, 50]
    assert rl.arl == 50.0


def test_censored_runs_use_exposure_over_alarms() -> None:
    c = Contender("never", "", lambda i: drift.NoDrift(), "river")
    rl = river_arl0(c, np.zeros((2, 100)))
    assert rl.alarms == 0
    assert rl.arl == math.inf
    assert rl.exposure == 200


def test_kswin_pvalue_paths_give_the_same_first_alarm_as_kswin_itself() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 500))
    x[:, 300:] += 1.5
    paths = kswin_pvalue_paths(x, seed=11)
    for alpha in (1e-3, 1e-6):
        measured = kswin_rl(paths, alpha)
        for i, row in enumerate(x):
            det = drift.KSWIN(alpha=alpha, seed=11 + i)
            want = next(
                (t for t, v in enumerate(row.tolist()) if det.update(v) or det.drift_detected), -1
            )
            got = -1 if measured.censored[i] else int(measured.lengths[i]) - 1
            assert got == want


def test_tune_log_finds_the_parameter_of_a_monotone_arl() -> None:
    p, v = tune_log(lambda q: 10.0 / q, 1_000.0, 1e-6, 1.0, increasing=False, iters=40, tol=1e-3)
    assert math.isclose(p, 0.01, rel_tol=2e-3)
    assert math.isclose(v, 1_000.0, rel_tol=2e-3)


def test_fleet_pass_counts_alarms_and_halts() -> None:
    sz = replace(detection.QUICK, fleet_signals=2, fleet_rate_signals=0, fleet_events=3_000)
    fc = fleet_pass(sz, 2, 300.0, Persistence(2, 1_000), seed=5)
    assert fc.obs == 2 * 2 * 3_000
    assert fc.alarms > 0
    assert fc.rate_alarms == 0  # no rate signals in this fleet
    assert 0 <= fc.halts <= fc.alarms
    assert fc.alarmed <= 4


def test_poisson_tails() -> None:
    below, above = poisson_p(0, 2.0)
    assert math.isclose(below, math.exp(-2.0))
    assert above == pytest.approx(1.0)
    assert poisson_p(5, 2.0)[1] == pytest.approx(
        1 - sum(math.exp(-2.0) * 2.0**j / math.factorial(j) for j in range(5))
    )


def test_markdown_writer_produces_the_tables(tmp_path: Path) -> None:
    sec = Section(
        "1. ARL0",
        "text",
        [Table("T", ["detector", "ARL0"], [["cusum", "1,000"]])],
        [("plot", "detection-arl0.png")],
    )
    out = tmp_path / "bench" / "detection.md"
    write_markdown(out, "# Detection benchmark", [sec])
    text = out.read_text()
    assert text.startswith("# Detection benchmark")
    assert "## 1. ARL0" in text
    assert "| detector | ARL0 |\n|---|---|\n| cusum | 1,000 |" in text
    assert "![plot](detection-arl0.png)" in text
    assert [p.name for p in out.parent.iterdir()] == ["detection.md"]  # no temp file left
    assert out.stat().st_mode & 0o777 == 0o644


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    plots.plot_delays(
        [plots.DelayCurve("a", [0.5, 1.0], [40.0, math.nan], [0.0, 1.0])], "t", tmp_path / "d.png"
    )
    plots.plot_arl([plots.ArlPoint("numeric", 1e3, 1.05e3, 0.9e3, 1.2e3)], "t", tmp_path / "a.png")
    for name in ("d.png", "a.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "d.png"]


def test_spread_oracle_is_the_z2_cusum_on_true_values_and_detects_a_tripled_spread() -> None:
    """The per-feature spread oracle: both sides of ``max(0, S +- (x² - k))`` on the true
    standardised values; its ARL0 at the spread CUSUM's own thresholds is the chain's."""
    from detectors.scale import calibrate_scale

    cal = calibrate_scale(500)
    both = ((cal.k_up, cal.h_up), (cal.k_down, cal.h_down))
    x = change_streams(60, 300, 200, seed=4, scale=3.0)
    first = detection._scale_first_alarms(x, *both)
    up = detection._scale_first_alarms(x, both[0], None)
    down = detection._scale_first_alarms(x, None, both[1])
    never = np.iinfo(np.int64).max
    expect = np.minimum(np.where(up >= 0, up, never), np.where(down >= 0, down, never))
    assert (first == np.where(expect == never, -1, expect)).all()  # the earlier side
    d = delay_stats(first, 300, 200)
    assert d.missed == 0
    assert d.delays.max() <= 15
    rl = detection._scale_oracle_arl0(*both, runs=400, length=8000, seed=2)
    lo, hi = rl.ci95()
    assert lo < 500 < hi


def test_the_window_benchmark_runs_and_writes_its_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Smoke: `make bench-windows` at 2 runs per row writes a table of every statistic."""
    monkeypatch.setattr("sys.argv", ["bench.windows", "--out", str(tmp_path), "--runs", "2"])
    windows.main()
    page = (tmp_path / "windows.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and "target" not in line]
    assert len(rows) == 3 * len(windows.STATISTICS)
    assert all(float(r.split("|")[4].split("±")[0]) > 0 for r in rows)
