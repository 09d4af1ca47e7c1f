"""Delayed labels → performance drift.

Ground truth often arrives minutes to days after a prediction (a support ticket is resolved,
a loan defaults). The joiner remembers each prediction's request id, segments and output for
``window_ms`` of event time (at most ``max_pending`` of them), and when a label for that
request arrives it yields an observation for the segment's detectors:

* ``label_error_rate`` (0/1) when prediction and label are classes (strings, bools, ints);
* ``label_abs_error`` when both are real numbers (regression).

Predictions that are never labelled (expired past the window or evicted by the memory cap)
are counted, so the share of predictions never labelled is reported.

>>> from monitor.schema import LabelRecord
>>> from monitor.segments import Segmenter
>>> segments = Segmenter(["region"]).segments_for(("eu",))
>>> j = LabelJoiner(window_ms=60_000, max_pending=10)
>>> j.expect("r1", 0, "approve", segments)
>>> out = j.join(LabelRecord(request_id="r1", timestamp=1_000, label="deny"))
>>> [s.key for s in out.segments], out.signal, out.value
(['region=eu', '*'], 'label_error_rate', 1.0)
>>> j.expect("r2", 2_000, "approve", segments)
>>> j.advance(200_000)
>>> j.stats()["unlabelled"], round(j.stats()["share_unlabelled"], 2)
(1, 0.5)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from monitor.schema import LabelRecord
from monitor.segments import Segment

__all__ = ["LabelJoiner", "Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One joined label: which segments it belongs to and the observation to feed."""

    segments: list[Segment]
    signal: str
    value: float
    binary: bool


def _class_of(prediction: Any) -> Any:
    if isinstance(prediction, dict):
        for key in ("label", "class", "value"):
            if key in prediction:
                return prediction[key]
    return prediction


class LabelJoiner:
    """Bounded in-memory join of labels to predictions by request id (event time)."""

    def __init__(self, window_ms: int, max_pending: int) -> None:
        if window_ms <= 0:
            raise ValueError(f"window_ms must be > 0, got {window_ms}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.window_ms = window_ms
        self.max_pending = max_pending
        self._pending: OrderedDict[str, tuple[int, Any, list[Segment]]] = OrderedDict()
        self._watermark = 0
        self.predictions = 0
        self.labelled = 0
        self.unlabelled = 0
        self.unmatched_labels = 0
        self.late_labels = 0

    def expect(self, request_id: str, ts_ms: int, prediction: Any, segments: list[Segment]) -> None:
        """Remember a prediction until its label arrives or the window passes."""
        self.predictions += 1
        self._pending[request_id] = (ts_ms, _class_of(prediction), segments)
        if len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.unlabelled += 1
        self.advance(ts_ms)

    def advance(self, ts_ms: int) -> None:
        """Move event time forward; predictions older than the window expire unlabelled."""
        if ts_ms <= self._watermark:
            return
        self._watermark = ts_ms
        horizon = ts_ms - self.window_ms
        pending = self._pending
        while pending:
            rid, (ts, _, _) = next(iter(pending.items()))
            if ts >= horizon:
                break
            del pending[rid]
            self.unlabelled += 1

    def join(self, label: LabelRecord) -> Outcome | None:
        """The observation this label yields, or None (unknown request, or too late)."""
        hit = self._pending.pop(label.request_id, None)
        if hit is None:
            self.unmatched_labels += 1
            self.advance(label.ts_ms)
            return None
        ts, predicted, segments = hit
        if label.ts_ms - ts > self.window_ms:
            self.late_labels += 1
            self.unlabelled += 1
            return None
        self.labelled += 1
        self.advance(label.ts_ms)
        truth = label.label
        numeric = (
            isinstance(truth, int | float)
            and not isinstance(truth, bool)
            and isinstance(predicted, int | float)
            and not isinstance(predicted, bool)
        )
        if numeric and (isinstance(truth, float) or isinstance(predicted, float)):
            return Outcome(segments, "label_abs_error", abs(float(predicted) - float(truth)), False)
        return Outcome(segments, "label_error_rate", 0.0 if predicted == truth else 1.0, True)

    def stats(self) -> dict[str, float]:
        """Counts so far and the share of predictions never labelled (of those decided)."""
        decided = self.labelled + self.unlabelled
        return {
            "predictions": self.predictions,
            "labelled": self.labelled,
            "unlabelled": self.unlabelled,
            "pending": len(self._pending),
            "unmatched_labels": self.unmatched_labels,
            "late_labels": self.late_labels,
            "share_unlabelled": self.unlabelled / decided if decided else 0.0,
        }
