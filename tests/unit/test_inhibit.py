"""Inhibition and explained roll-ups: who gets paged when scopes overlap."""

from __future__ import annotations

from monitor.router.inhibit import explained, inhibited
from monitor.router.model import Alert, AlertState


def halt(seg: str, t: int, signal: str = "latency_ms", level: str = "HALT") -> Alert:
    labels = {"segment": seg, "signal": signal, "severity": "critical"}
    return Alert(seg, seg, level, AlertState.FIRING, labels, {}, t)


def test_a_broader_halt_mutes_narrower_alerts_raised_with_or_after_it() -> None:
    alerts = [halt("region=eu", 10), halt("region=eu,cohort=a", 10), halt("region=eu,cohort=b", 20)]
    assert inhibited(alerts) == {
        "region=eu,cohort=a": "region=eu",
        "region=eu,cohort=b": "region=eu",
    }


def test_one_narrower_halt_that_fired_first_keeps_paging_and_explains_the_later_rollup() -> None:
    alerts = [halt("region=eu,cohort=a", 10), halt("region=eu", 20)]
    echoes = explained(alerts)
    assert echoes == {"region=eu": "region=eu,cohort=a"}
    assert inhibited(alerts, exclude=echoes) == {}


def test_a_later_rollup_over_several_narrower_halts_is_the_cause_and_mutes_them() -> None:
    """A regional incident: its cohorts halt before the region's event-time window closes;
    the region HALT is not an echo of any one of them, and mutes them all."""
    alerts = [
        halt("region=eu,cohort=a", 10),
        halt("region=eu,cohort=b", 12),
        halt("region=eu", 20),
        halt("*", 30),  # the global roll-up echoes the region (its cohorts count as it)
    ]
    echoes = explained(alerts)
    assert echoes == {"*": "region=eu"}
    assert inhibited(alerts, exclude=echoes) == {
        "region=eu,cohort=a": "region=eu",
        "region=eu,cohort=b": "region=eu",
    }


def test_a_later_rollup_on_the_same_signal_is_explained_by_the_child() -> None:
    child, rollup = halt("region=eu,cohort=a", 10), halt("cohort=a", 20)
    assert explained([child, rollup]) == {"cohort=a": "region=eu,cohort=a"}
    # a different signal, or a roll-up that fired first, is its own alert
    assert explained([child, halt("cohort=a", 20, signal="error_rate")]) == {}
    assert explained([halt("region=eu,cohort=a", 30), halt("cohort=a", 20)]) == {}


def test_resolved_and_warn_alerts_never_mute_others() -> None:
    resolved = Alert("region=eu", "f", "HALT", AlertState.RESOLVED, {"segment": "region=eu"}, {}, 0)
    warn = halt("region=us", 0, level="WARN")
    assert (
        inhibited([resolved, warn, halt("region=eu,cohort=a", 5), halt("region=us,cohort=a", 5)])
        == {}
    )
