"""Signals: the numbers driftgate watches in every record.

* ``feature:<name>`` for every feature: numbers as numeric signals, booleans as 0/1 rates,
  strings as categories (nulls are skipped);
* behaviour: ``prediction`` (the class mix, a category; ``prediction_value`` for numeric
  outputs), ``confidence``, ``latency_ms``, ``refusal_rate``, ``safety_flag_rate`` (any flag)
  and ``safety_flag:<flag>`` per flag seen (up to ``max_flags``), ``error_rate``.
* from delayed labels (``monitor.labels``): ``label_error_rate``, ``label_abs_error``.

>>> from monitor.schema import InferenceLog
>>> rec = InferenceLog.model_validate({"schema_version": 1, "request_id": "r",
...     "timestamp": 0, "model": "m", "model_version": "1", "region": "eu", "cohort": "a",
...     "features": {"tokens": 12, "vip": True, "lang": "de"}, "prediction": "x",
...     "confidence": 0.8, "latency_ms": 40.0, "refused": False, "safety_flags": ["pii"]})
>>> for name, x, kind in Observer().observe(rec):
...     print(name, x, kind.value)
feature:tokens 12.0 numeric
feature:vip 1.0 rate
feature:lang de category
prediction x category
confidence 0.8 numeric
latency_ms 40.0 numeric
refusal_rate 0.0 rate
safety_flag_rate 1.0 rate
safety_flag:pii 1.0 rate
error_rate 0.0 rate
"""

from __future__ import annotations

import logging

from detectors import SignalKind
from monitor.schema import InferenceLog

__all__ = ["BEHAVIOUR_SIGNALS", "Observation", "Observer"]

log = logging.getLogger(__name__)

BEHAVIOUR_SIGNALS = ("confidence", "latency_ms", "refusal_rate", "safety_flag_rate", "error_rate")
NUM = SignalKind.NUMERIC
RATE = SignalKind.RATE
CAT = SignalKind.CATEGORY
Observation = tuple[str, float | str, SignalKind]


class Observer:
    """Extracts (signal, value, kind) triples from a record.

    ``features`` limits the watched features (None: every numeric feature, up to
    ``max_features`` distinct names; later names are ignored with one warning).
    """

    def __init__(
        self, features: list[str] | None = None, max_features: int = 64, max_flags: int = 16
    ) -> None:
        self.allowed = set(features) if features is not None else None
        self.max_features = max_features
        self.max_flags = max_flags
        self._flags: dict[str, str] = {}  # safety flag -> signal name, in order of first sight
        self._names: dict[str, str] = {}  # feature -> signal name, for the admitted ones
        self._refused: set[str] = set()

    def _signal_name(self, feature: str) -> str | None:
        name = self._names.get(feature)
        if name is not None:
            return name
        if feature in self._refused:
            return None
        if (self.allowed is not None and feature not in self.allowed) or len(
            self._names
        ) >= self.max_features:
            if self.allowed is None and not self._refused:
                log.warning(
                    "feature cap reached (%d): feature %r and later new ones are not watched; "
                    "raise detection.max_features or list detection.features",
                    self.max_features,
                    feature,
                )
            self._refused.add(feature)
            return None
        name = self._names[feature] = "feature:" + feature
        return name

    def observe(self, rec: InferenceLog) -> list[Observation]:
        out: list[Observation] = []
        for feature, value in rec.features.items():
            if value is None:
                continue
            name = self._signal_name(feature)
            if name is None:
                continue
            if isinstance(value, str):
                out.append((name, value, CAT))
            elif isinstance(value, bool):
                out.append((name, 1.0 if value else 0.0, RATE))
            else:
                out.append((name, float(value), NUM))
        pred = _class_of(rec.prediction)
        if pred is not None:
            out.append(("prediction", pred, CAT))
        elif isinstance(rec.prediction, int | float):
            out.append(("prediction_value", float(rec.prediction), NUM))
        if rec.confidence is not None:
            out.append(("confidence", rec.confidence, NUM))
        out.append(("latency_ms", rec.latency_ms, NUM))
        out.append(("refusal_rate", 1.0 if rec.refused else 0.0, RATE))
        out.append(("safety_flag_rate", 1.0 if rec.safety_flags else 0.0, RATE))
        for flag in rec.safety_flags:
            if flag not in self._flags and len(self._flags) < self.max_flags:
                self._flags[flag] = "safety_flag:" + flag
        for flag, name in self._flags.items():
            out.append((name, 1.0 if flag in rec.safety_flags else 0.0, RATE))
        out.append(("error_rate", 1.0 if rec.error else 0.0, RATE))
        return out


def _class_of(prediction: object) -> str | None:
    """The predicted class as text, or None for numeric (regression) outputs."""
    if isinstance(prediction, dict):
        for key in ("label", "class"):
            if key in prediction:
                return str(prediction[key])
        return None
    if isinstance(prediction, str):
        return prediction
    if isinstance(prediction, bool):
        return "true" if prediction else "false"
    return None
