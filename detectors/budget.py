"""A fleet-wide false-alarm budget, split into one ARL0 target per detector.

"At most ``B`` false HALTs per week across every segment x signal, at the configured event
rate": with ``R`` observations per second over all detector streams, a week brings
``R * 604,800`` observations, so each observation may raise a false HALT with probability
``B / (R * 604,800)``. Every detector gets the same per-observation rate, hence the same
``target_arl0``, whatever its own traffic: a quiet segment spends less of the budget, a busy
roll-up more, and the total is exact.

**Why an additive (Bonferroni) split of the expected count, not Sidak.** The expected number
of false HALTs is a sum over streams, so splitting it additively is exact under *any*
dependence between streams, and streams here are strongly dependent: a roll-up sees the
records of its leaf segments. Sidak's ``1 - (1 - a)^(1/S)`` is exact only for independent
streams and, at per-stream rates of 1e-6 per week, differs from the additive split by a
relative ``a / 2``: nothing to gain. The budget also bounds the probability of any false
HALT in a week: ``P(N >= 1) <= E[N] = B`` (Markov), dependence or not.

**Confirmation (persistence).** A HALT may require ``alarms`` alarms of one stream within
``within`` of its observations (:class:`Persistence`). False alarms of a calibrated CUSUM are
nearly a Poisson process of rate ``1/ARL0`` (its run length is close to geometric), so the
rate of confirmed false HALTs is ``lam * P(Poisson(lam * within) >= alarms - 1)`` per
observation; the split solves this for ``lam``. A detector cannot re-alarm during its
warm-up after an alarm, which only lowers the real rate: the split is conservative.

>>> b = FleetBudget(false_halts_per_week=1, events_per_second=500, streams=20_000,
...                 streams_per_event=40)
>>> f"{b.target_arl0:.3g}"
'1.21e+10'
>>> two = FleetBudget(1, 500, 20_000, Persistence(alarms=2, within=10_000), streams_per_event=40)
>>> f"{two.target_arl0:.3g}"
'1.1e+07'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FleetBudget", "Persistence"]

SECONDS_PER_WEEK = 604_800.0


def _poisson_tail(mu: float, m: int) -> float:
    """P(Poisson(mu) >= m)."""
    if m <= 0:
        return 1.0
    term = math.exp(-mu)
    below = term
    for j in range(1, m):
        term *= mu / j
        below += term
    if below > 0.999:  # small mu: sum the upper tail instead (no cancellation)
        term = math.exp(-mu) * mu**m / math.factorial(m)
        tail = 0.0
        j = m
        while term > 1e-300 and (tail == 0.0 or term > tail * 1e-17):
            tail += term
            j += 1
            term *= mu / j
        return tail
    return 1.0 - below


@dataclass(frozen=True, slots=True)
class Persistence:
    """HALT rule: ``alarms`` alarms of one stream within ``within`` of its observations.

    ``alarms=1`` (the default) halts on every alarm. The monitor applies the same rule with
    :meth:`halts` when it turns a stream's alarms into HALTs.

    >>> rule = Persistence(alarms=2, within=1000)
    >>> rule.halts([100, 5000, 5600, 5900, 9000])  # the 2nd alarm within 1000 observations
    [5600, 5900]
    >>> f"{rule.halt_rate(1e-4):.2e}"  # per observation, at one false alarm per 10k
    '9.52e-06'
    """

    alarms: int = 1
    within: int = 0

    def __post_init__(self) -> None:
        if self.alarms < 1:
            raise ValueError(f"alarms must be >= 1, got {self.alarms}")
        if self.alarms > 1 and self.within < 1:
            raise ValueError(f"within must be >= 1 when alarms > 1, got {self.within}")

    def halt_rate(self, alarm_rate: float) -> float:
        """Confirmed-HALT rate per observation for Poisson alarms at ``alarm_rate``."""
        if self.alarms == 1:
            return alarm_rate
        return alarm_rate * _poisson_tail(alarm_rate * self.within, self.alarms - 1)

    def halts(self, alarm_at: list[int]) -> list[int]:
        """Which of a stream's alarms (observation indices, increasing) raise a HALT."""
        need = self.alarms - 1
        return [
            t
            for i, t in enumerate(alarm_at)
            if i >= need and (need == 0 or t - alarm_at[i - need] <= self.within)
        ]


@dataclass(frozen=True, slots=True)
class FleetBudget:
    """A weekly false-HALT budget for a fleet of detector streams, and the ARL0 it implies.

    Parameters
    ----------
    false_halts_per_week
        Expected false HALTs per week over the whole fleet (``B``).
    events_per_second
        The configured record rate.
    streams
        Detector streams (segments x signals x detectors per signal).
    confirmations
        The HALT rule (:class:`Persistence`); default: every alarm.
    streams_per_event
        How many streams one record updates on average (its leaf segment and roll-ups, times
        the signals it carries). ``None``: every record reaches every stream, an upper bound
        that can be orders of magnitude too strict for a large fleet.

    >>> b = FleetBudget(2.0, events_per_second=100, streams=500)
    >>> b.describe()["observations_per_week"], f"{b.target_arl0:.4g}"
    (30240000000.0, '1.512e+10')
    """

    false_halts_per_week: float
    events_per_second: float
    streams: int
    confirmations: Persistence = field(default_factory=Persistence)
    streams_per_event: float | None = None

    def __post_init__(self) -> None:
        if not self.false_halts_per_week > 0:
            raise ValueError(f"false_halts_per_week must be > 0, got {self.false_halts_per_week}")
        if not self.events_per_second > 0:
            raise ValueError(f"events_per_second must be > 0, got {self.events_per_second}")
        if self.streams < 1:
            raise ValueError(f"streams must be >= 1, got {self.streams}")
        spe = self.streams_per_event
        if spe is not None and not 0 < spe <= self.streams:
            raise ValueError(f"streams_per_event must be in (0, streams], got {spe}")

    @property
    def observations_per_week(self) -> float:
        """Observations the whole fleet of streams receives in a week."""
        spe = self.streams if self.streams_per_event is None else self.streams_per_event
        return self.events_per_second * spe * SECONDS_PER_WEEK

    @property
    def halt_rate(self) -> float:
        """Allowed confirmed false-HALT probability per observation of any stream."""
        return self.false_halts_per_week / self.observations_per_week

    @property
    def alarm_rate(self) -> float:
        """Allowed false-alarm rate per observation, before confirmation (``1 / ARL0``)."""
        goal = self.halt_rate
        rule = self.confirmations
        if rule.alarms == 1:
            return goal
        lo, hi = goal, 1.0  # halt_rate(lam) <= lam, increasing in lam
        if rule.halt_rate(hi) <= goal:
            return hi
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if rule.halt_rate(mid) < goal else (lo, mid)
            if hi / lo < 1 + 1e-12:
                break
        return math.sqrt(lo * hi)

    @property
    def target_arl0(self) -> float:
        """The per-detector ARL0 target that meets the budget."""
        return 1.0 / self.alarm_rate

    def describe(self) -> dict[str, Any]:
        """The budget and its split, for configuration display and the API."""
        return {
            "false_halts_per_week": self.false_halts_per_week,
            "events_per_second": self.events_per_second,
            "streams": self.streams,
            "streams_per_event": self.streams_per_event,
            "observations_per_week": self.observations_per_week,
            "confirmation": {
                "alarms": self.confirmations.alarms,
                "within": self.confirmations.within,
            },
            "split": "additive (Bonferroni) split of the expected false-HALT count",
            "halt_rate_per_observation": self.halt_rate,
            "alarm_rate_per_observation": self.alarm_rate,
            "target_arl0": self.target_arl0,
            "expected_false_alarms_per_week": self.observations_per_week * self.alarm_rate,
            "p_any_false_halt_per_week_at_most": min(1.0, self.false_halts_per_week),
        }
