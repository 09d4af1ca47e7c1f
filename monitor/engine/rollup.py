"""The roll-ups' detectors: one :class:`~detectors.window.WindowWatcher` per scope and signal,
fed closed event-time windows in window order.

A roll-up's state is keyed by its scope (``region=eu-west``, ``cohort=pro``, ``*``) and
checkpointed as the ``~rollup:<scope>`` state row. Changes are tagged with the window's
completing record (position and event time), like a leaf's with its firing record.

>>> import numpy as np
>>> from detectors import SignalKind
>>> from detectors.window import Summary
>>> from monitor.engine.windows import ClosedWindow
>>> from monitor.events import Position
>>> from monitor.segments import Segment
>>> stage = RollupStage(target_arl0=1e6)
>>> rng, g = np.random.default_rng(1), Segment("*", "global", {})
>>> found = []
>>> for t in range(40):
...     xs = rng.normal(50.0 if t < 30 else 56.0, 5.0, size=300)
...     w = ClosedWindow(g, t * 1000, (t + 1) * 1000, {"latency_ms": Summary.of(xs)},
...                      {"latency_ms": SignalKind.NUMERIC}, t * 1000 + 999, Position("t", 0, t))
...     found += [(t, name, c.detector) for name, kind, c in stage.judge(w)]
>>> found
[(32, 'latency_ms', 'window')]
"""

from __future__ import annotations

import pickle

from detectors import Change, SignalKind
from detectors.window import SignalKindName, WindowWatcher
from monitor.engine.windows import ClosedWindow

__all__ = ["ROLLUP_STATE_PREFIX", "RollupStage"]

ROLLUP_STATE_PREFIX = "~rollup:"  # detector_state rows of the roll-ups: ~rollup:<scope key>

_KINDS = {
    SignalKind.NUMERIC: SignalKindName.NUMERIC,
    SignalKind.RATE: SignalKindName.RATE,
    SignalKind.CATEGORY: SignalKindName.CATEGORY,
}


class RollupStage:
    """Window watchers of every roll-up scope (restored per scope from state rows)."""

    def __init__(
        self, target_arl0: float, *, k: float = 0.5, warmup: int = 10, top_k: int = 8
    ) -> None:
        self.target_arl0 = target_arl0
        self.k = k
        self.warmup = warmup
        self.top_k = top_k
        WindowWatcher(SignalKindName.NUMERIC, target_arl0, k=k, warmup=warmup)  # validate now
        self._scopes: dict[str, dict[str, WindowWatcher]] = {}

    def restore(self, states: dict[str, bytes]) -> None:
        """Take the ``~rollup:`` rows of ``states`` (and remove them from it)."""
        for key in [k for k in states if k.startswith(ROLLUP_STATE_PREFIX)]:
            watchers = pickle.loads(states.pop(key))
            if not isinstance(watchers, dict):
                raise TypeError(f"state row {key} holds {type(watchers).__name__}")
            self._scopes[key[len(ROLLUP_STATE_PREFIX) :]] = watchers

    def state(self, scope_key: str) -> tuple[str, bytes]:
        """The state row of one scope: (row key, blob)."""
        blob = pickle.dumps(self._scopes.get(scope_key, {}), protocol=pickle.HIGHEST_PROTOCOL)
        return ROLLUP_STATE_PREFIX + scope_key, blob

    def judge(self, window: ClosedWindow) -> list[tuple[str, SignalKind, Change]]:
        """Feed one closed window to its scope's watchers: (signal, kind, change) found, in
        signal order; each change is tagged ``(completing position, its event time)``."""
        watchers = self._scopes.setdefault(window.segment.key, {})
        tag = (window.last_position, window.last_ts_ms)
        out: list[tuple[str, SignalKind, Change]] = []
        for name in sorted(window.summaries):
            kind = window.kinds[name]
            wk = _KINDS.get(kind)
            if wk is None:
                continue
            w = watchers.get(name)
            if w is None:
                w = watchers[name] = WindowWatcher(
                    wk, self.target_arl0, k=self.k, warmup=self.warmup, top_k=self.top_k
                )
            out += [(name, kind, c) for c in w.update(window.summaries[name], tag)]
        return out
