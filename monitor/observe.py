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

A feature keeps the kind of its first value (number, bool or string) for good: its
detectors are built for that kind. A record that gives it another kind is refused with a
:class:`~monitor.schema.BadRecord` (and nothing of that record is taken in); the kinds are
part of the checkpoint (:meth:`Observer.state`), so a restart keeps them.

>>> obs = Observer()
>>> _ = obs.observe(rec)
>>> obs.observe(rec.model_copy(update={"features": {"tokens": "twelve"}}))
Traceback (most recent call last):
...
monitor.schema.BadRecord: features.tokens: a string, but this feature has been a number; ...
"""

from __future__ import annotations

import logging

import orjson

from detectors import SignalKind
from monitor.schema import BadRecord, InferenceLog

__all__ = ["BEHAVIOUR_SIGNALS", "Observation", "Observer"]

log = logging.getLogger(__name__)

BEHAVIOUR_SIGNALS = ("confidence", "latency_ms", "refusal_rate", "safety_flag_rate", "error_rate")
NUM = SignalKind.NUMERIC
RATE = SignalKind.RATE
CAT = SignalKind.CATEGORY
Observation = tuple[str, float | str, SignalKind]
_KIND_WORDS = {NUM: "a number", RATE: "a bool", CAT: "a string"}


class Observer:
    """Extracts (signal, value, kind) triples from a record.

    ``features`` limits the watched features (None: every feature, up to ``max_features``
    distinct names; later names are ignored with one warning). ``max_flags`` caps the
    ``safety_flag:<flag>`` signals the same way.
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
        self._kinds: dict[str, SignalKind] = {}  # feature -> its one kind (checkpointed)

    def state(self) -> bytes:
        """The feature kinds, for the checkpoint (JSON: name -> kind)."""
        return orjson.dumps({k: v.value for k, v in self._kinds.items()})

    def restore(self, blob: bytes) -> None:
        """Take the feature kinds of an earlier run (from :meth:`state`)."""
        self._kinds = {k: SignalKind(v) for k, v in orjson.loads(blob).items()}

    @property
    def n_kinds(self) -> int:
        """Features whose kind is fixed (it only grows: a changed count means a new state)."""
        return len(self._kinds)

    def _admit(self, feature: str, pending: dict[str, SignalKind]) -> bool:
        """Whether a feature seen for the first time in this run is watched."""
        if self.allowed is not None:
            return feature in self.allowed
        return len(self._names) + len(pending) < self.max_features

    def _refuse(self, features: list[str]) -> None:
        if self.allowed is None and not self._refused:
            log.warning(
                "feature cap reached (%d): feature %r and later new ones are not watched; "
                "raise detection.max_features or list detection.features",
                self.max_features,
                features[0],
            )
        self._refused.update(features)

    def observe(self, rec: InferenceLog) -> list[Observation]:
        """The record's observations; :class:`BadRecord` if a feature changed its kind.

        Nothing is remembered of a refused record (new features, flags, kinds)."""
        out: list[Observation] = []
        names, kinds = self._names, self._kinds
        new: dict[str, SignalKind] = {}  # features admitted by this record
        refused: list[str] = []
        for feature, value in rec.features.items():
            if value is None:
                continue
            x: float | str
            if isinstance(value, str):
                kind, x = CAT, value
            elif isinstance(value, bool):
                kind, x = RATE, 1.0 if value else 0.0
            else:
                kind, x = NUM, float(value)
            name = names.get(feature)
            if name is None:
                if feature in self._refused or feature in refused:
                    continue
                if not self._admit(feature, new):
                    refused.append(feature)
                    continue
                new[feature] = kind
                name = "feature:" + feature
            known = kinds.get(feature)
            if known is not None and known is not kind:
                raise BadRecord(
                    f"features.{feature}: {_KIND_WORDS[kind]}, but this feature has been "
                    f"{_KIND_WORDS[known]}; a feature keeps one type (rename it to change it)"
                )
            out.append((name, x, kind))
        pred = _class_of(rec.prediction)
        if pred is not None:
            out.append(("prediction", pred, CAT))
        elif isinstance(rec.prediction, int | float):
            out.append(("prediction_value", float(rec.prediction), NUM))
        if rec.confidence is not None:
            out.append(("confidence", rec.confidence, NUM))
        out.append(("latency_ms", rec.latency_ms, NUM))
        out.append(("refusal_rate", 1.0 if rec.refused else 0.0, RATE))
        flags = rec.safety_flags
        out.append(("safety_flag_rate", 1.0 if flags else 0.0, RATE))
        known_flags = self._flags
        new_flags: dict[str, str] = {}
        if flags:
            room = self.max_flags - len(known_flags)
            for flag in flags:
                if room > 0 and flag not in known_flags and flag not in new_flags:
                    new_flags[flag] = "safety_flag:" + flag
                    room -= 1
            present = set(flags)
            for flag, name in known_flags.items():
                out.append((name, 1.0 if flag in present else 0.0, RATE))
            for name in new_flags.values():
                out.append((name, 1.0, RATE))
        else:
            for name in known_flags.values():
                out.append((name, 0.0, RATE))
        out.append(("error_rate", 1.0 if rec.error else 0.0, RATE))
        # the record is good: remember what it introduced
        for feature, kind in new.items():
            names[feature] = "feature:" + feature
            kinds.setdefault(feature, kind)
        if refused:
            self._refuse(refused)
        known_flags.update(new_flags)
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
