"""Decisions: drift events become scoped WARN / HALT scaling-halt signals.

Rules, per scope (a leaf segment, a roll-up, or global):

* an event whose shift is smaller than ``warn_effect`` pre-change sigmas is kept in the
  history as evidence but raises no signal;
* a shift of at least ``halt_effect`` sigmas raises HALT at once;
* a 0/1 rate (errors, refusals, safety flags, boolean features) is judged by how many times
  it rose instead: ``rate_warn_ratio`` (1.25x) for WARN, ``rate_halt_ratio`` (2x) for HALT
  at once; a falling rate raises nothing (a sigma scale is meaningless here: 5 % -> 10 %
  errors is only 0.23 sigma of a Bernoulli);
* a change of the *spread* of a numeric signal (``measure == "spread"``, from the spread
  CUSUM) is judged by the ratio of standard deviations, ``max(after / before, before /
  after)``: ``spread_warn_ratio`` (1.3x) for WARN, ``spread_halt_ratio`` (2x) for HALT at
  once, a rise and a fall alike (added noise and a stuck feature are both broken inputs).
  The new spread is read from the ``confirm`` values after the firing (30: about +-13 %),
  so a true 1.5x change, the size the detector is tuned for, clears 1.3x ~85 % of the time;
* a smaller shift raises WARN; the ``halt_after``-th WARN-level event within
  ``halt_within_s`` of record time in a scope that is already at WARN escalates it to HALT
  (persistent drift, even if moderate);
* with a confirmation rule (``detection.budget.confirm_alarms`` alarms of one stream within
  ``confirm_within`` observations, the rule the fleet budget assumes), a HALT-size event
  that is not yet confirmed raises WARN instead;
* a scope at HALT stays there: more events add evidence to the history, not new signals.
  A HALT is lifted only by a person.

>>> from monitor.config import DecisionSettings
>>> from monitor.events import DriftEvent, Position
>>> engine = DecisionEngine(DecisionSettings(warn_effect=0.5, halt_effect=1.0, halt_after=2))
>>> def ev(effect, n):
...     return DriftEvent("region=eu", "region", {"region": "eu"}, "latency_ms", "adwin",
...                       effect, 100.0, 100.0 + effect * 10, 10.0, 1000, 0, Position("demo", 0, n))
>>> engine.decide(ev(0.2, 1)) is None
True
>>> engine.decide(ev(0.7, 2)).level.value
'WARN'
>>> engine.decide(ev(-0.6, 3)).level.value
'HALT'
>>> engine.decide(ev(3.0, 4)) is None
True
>>> errors = DriftEvent("region=us", "region", {"region": "us"}, "error_rate", "bernoulli",
...                     0.2, 0.05, 0.11, 0.22, 5000, 0, Position("demo", 0, 9), rate=True)
>>> describe(errors), engine.decide(errors).level.value
('error_rate rose ×2.2 (5.00% → 11.00%) [bernoulli]', 'HALT')
>>> noisy = DriftEvent("region=ap", "region", {"region": "ap"}, "feature:x", "scale",
...                    2.0, 1.2, 3.6, 1.2, 4000, 0, Position("demo", 0, 12), measure="spread")
>>> describe(noisy), engine.decide(noisy).level.value
('feature:x spread rose ×3.0 (σ 1.2 → 3.6) [scale]', 'HALT')
"""

from __future__ import annotations

import math
import pickle
from collections import deque
from dataclasses import dataclass, field

from detectors.budget import Persistence
from monitor.config import DecisionSettings
from monitor.events import DriftEvent, Level, Signal

__all__ = ["ActiveScope", "DecisionEngine", "describe", "rate_ratio", "spread_ratio"]


@dataclass(slots=True)
class ActiveScope:
    """The signal in force for one scope and the events behind it."""

    level: Level
    signal_id: str
    evidence: list[str] = field(default_factory=list)
    evidence_ms: list[int] = field(default_factory=list)  # record time of each event


def describe(event: DriftEvent) -> str:
    """One line a person can act on: what moved, by how much, where."""
    direction = "rose" if event.effect > 0 else "fell"
    if event.measure == "spread":
        ratio = spread_ratio(event)
        times = f"×{ratio:.1f}" if ratio < 1e3 else "to ~0" if direction == "fell" else "from ~0"
        return (
            f"{event.signal} spread {direction} {times} "
            f"(σ {event.before:.3g} → {event.after:.3g}) [{event.detector}]"
        )
    if event.rate:
        ratio = rate_ratio(event)
        times = f"×{ratio:.2g} " if math.isfinite(ratio) else "from zero "
        return (
            f"{event.signal} {direction} {times}"
            f"({event.before:.2%} → {event.after:.2%}) [{event.detector}]"
        )
    return (
        f"{event.signal} {direction} {abs(event.effect):.1f}σ "
        f"({event.before:.4g} → {event.after:.4g}) [{event.detector}]"
    )


def spread_ratio(event: DriftEvent) -> float:
    """How many times the spread of a numeric signal changed, up or down (>= 1).

    >>> from monitor.events import Position
    >>> fell = DriftEvent("*", "global", {}, "feature:x", "scale", -3.0, 2.0, 0.5, 2.0, 9, 0,
    ...                   Position("demo", 0, 1), measure="spread")
    >>> spread_ratio(fell)
    4.0
    """
    a, b = event.after, event.before
    return max(a / b, b / a) if a > 0 and b > 0 else math.inf


def rate_ratio(event: DriftEvent) -> float:
    """How many times the rate of a 0/1 signal rose (``inf`` from a rate of exactly 0)."""
    if event.before > 0:
        return event.after / event.before
    return math.inf if event.after > 0 else 1.0


class DecisionEngine:
    """Turns drift events into signals; remembers the active signal of every scope."""

    def __init__(
        self,
        settings: DecisionSettings,
        active: dict[str, ActiveScope] | None = None,
        confirm: Persistence | None = None,
    ) -> None:
        self.settings = settings
        self.active: dict[str, ActiveScope] = dict(active or {})
        self.confirm = confirm if confirm is not None and confirm.alarms > 1 else None
        # recent alarm positions (detector observation counts) per stream, for ``confirm``
        self._alarms: dict[tuple[str, str, str], deque[int]] = {}
        #: scopes whose decision state (evidence, alarms) changed since :meth:`scope_state`
        self.changed: set[str] = set()

    @classmethod
    def from_signals(
        cls,
        settings: DecisionSettings,
        signals: list[Signal],
        confirm: Persistence | None = None,
    ) -> DecisionEngine:
        """Rebuild the engine from the active signals kept in the history store.

        Evidence times are taken as the signal's time, and the confirmation rule's alarm
        history starts empty: after a restart a stream needs its confirming alarms again."""
        active: dict[str, ActiveScope] = {}
        for s in sorted(signals, key=lambda s: (s.ts_ms, s.level.rank)):
            cur = active.get(s.segment)
            if cur is None or s.level.rank >= cur.level.rank:
                active[s.segment] = ActiveScope(
                    s.level, s.id, list(s.evidence), [s.ts_ms] * len(s.evidence)
                )
        return cls(settings, active, confirm)

    def sync(self, in_force: list[Signal]) -> None:
        """Align with the signals in force in the store (a person may have resumed a scope)."""
        ids = {s.segment: s for s in in_force}
        for seg in [
            k for k, cur in self.active.items() if ids.get(k) is None or ids[k].id != cur.signal_id
        ]:
            del self.active[seg]
        for seg, s in ids.items():
            if seg not in self.active:
                self.active[seg] = ActiveScope(
                    s.level, s.id, list(s.evidence), [s.ts_ms] * len(s.evidence)
                )

    def scope_state(self, segment: str) -> bytes:
        """What this engine remembers of one scope beyond its stored signal: the evidence
        gathered since (WARN-level drifts counting towards ``halt_after``) and the recent
        alarms of its streams (``confirm_alarms``). Checkpointed by the scope's owner, so a
        member that takes the scope over decides as this one would have.

        >>> from monitor.config import DecisionSettings
        >>> a = DecisionEngine(DecisionSettings())
        >>> a.active["x"] = ActiveScope(Level.WARN, "s1", ["e1", "e2"], [1, 2])
        >>> b = DecisionEngine(DecisionSettings(), {"x": ActiveScope(Level.WARN, "s1", ["e1"])})
        >>> b.restore_scopes({"x": a.scope_state("x")})
        >>> b.active["x"].evidence
        ['e1', 'e2']
        """
        alarms = {k: list(v) for k, v in self._alarms.items() if k[0] == segment}
        return pickle.dumps((self.active.get(segment), alarms), protocol=pickle.HIGHEST_PROTOCOL)

    def restore_scopes(self, states: dict[str, bytes]) -> None:
        """Take the :meth:`scope_state` of scopes; a scope's evidence only while the signal
        it was gathered under is still the one in force."""
        for segment, blob in states.items():
            scope, alarms = pickle.loads(blob)
            cur = self.active.get(segment)
            if scope is not None and cur is not None and cur.signal_id == scope.signal_id:
                self.active[segment] = scope
            if self.confirm is not None:
                for key, seen in alarms.items():
                    self._alarms[key] = deque(seen, maxlen=self.confirm.alarms)

    def _confirmed(self, event: DriftEvent) -> bool:
        """Is this alarm confirmed by the rule (``confirm_alarms`` within ``confirm_within``)?"""
        rule = self.confirm
        if rule is None:
            return True
        key = (event.segment, event.signal, event.detector)
        self.changed.add(event.segment)
        seen = self._alarms.setdefault(key, deque(maxlen=rule.alarms))
        seen.append(event.observations)
        return rule.halts(list(seen))[-1:] == [event.observations]

    def decide(self, event: DriftEvent) -> Signal | None:
        """The signal this event raises, or None (below WARN, or scope already at HALT)."""
        s = self.settings
        if event.rate:  # a 0/1 rate: its relative rise; a falling rate is good news
            ratio = rate_ratio(event)
            warn, halt = ratio >= s.rate_warn_ratio, ratio >= s.rate_halt_ratio
        elif event.measure == "spread":  # up or down: noise and a stuck feature alike
            ratio = spread_ratio(event)
            warn, halt = ratio >= s.spread_warn_ratio, ratio >= s.spread_halt_ratio
        else:
            size = abs(event.effect)
            warn, halt = size >= s.warn_effect, size >= s.halt_effect
        if not warn:
            return None
        cur = self.active.get(event.segment)
        if cur is not None and cur.level is Level.HALT:
            return None
        if halt:
            if self._confirmed(event):
                return self._raise(Level.HALT, event, cur, describe(event))
            if cur is None:
                reason = f"{describe(event)}; HALT once confirmed"
                return self._raise(Level.WARN, event, None, reason)
        if cur is None:
            return self._raise(Level.WARN, event, None, describe(event))
        cur.evidence.append(event.id)
        cur.evidence_ms.append(event.ts_ms)
        self.changed.add(event.segment)
        window = self.settings.halt_within_s
        if window is not None:
            horizon = event.ts_ms - int(window * 1000)
            recent = sum(1 for t in cur.evidence_ms if t >= horizon)
        else:
            recent = len(cur.evidence)
        if recent >= self.settings.halt_after:
            reason = f"{len(cur.evidence)} WARN-level drifts in a row; latest: {describe(event)}"
            return self._raise(Level.HALT, event, cur, reason)
        return None

    def _raise(
        self, level: Level, event: DriftEvent, cur: ActiveScope | None, reason: str
    ) -> Signal:
        evidence = list(cur.evidence) if cur else []
        evidence_ms = list(cur.evidence_ms) if cur else []
        if event.id not in evidence:
            evidence.append(event.id)
            evidence_ms.append(event.ts_ms)
        sig = Signal(
            level=level,
            segment=event.segment,
            scope=event.scope,
            labels=event.labels,
            reason=reason,
            evidence=tuple(evidence),
            ts_ms=event.ts_ms,
            position=event.position,
            signal=event.signal,
        )
        self.active[event.segment] = ActiveScope(level, sig.id, evidence, evidence_ms)
        self.changed.add(event.segment)
        return sig
