"""Signals to standard output: one JSON object per line, or one readable line each."""

from __future__ import annotations

import sys
from typing import TextIO

import orjson

from monitor.events import Signal
from monitor.router.model import Notification

__all__ = ["StdoutNotifier", "StdoutSink", "format_signal"]


def format_signal(s: Signal) -> str:
    """One line for a person.

    >>> from monitor.events import Level, Position
    >>> s = Signal(Level.HALT, "region=eu", "region", {"region": "eu"}, "latency_ms rose 2.0σ",
    ...            ("e1",), 0, Position("demo", 0, 9))
    >>> format_signal(s)
    'HALT  region=eu  latency_ms rose 2.0σ'
    """
    return f"{s.level.value:<5} {s.segment}  {s.reason}"


class StdoutSink:
    """Writes each signal as it is delivered; ``as_json`` for programs, text for people."""

    def __init__(self, as_json: bool = False, stream: TextIO | None = None) -> None:
        self.name = "stdout"
        self.as_json = as_json
        self._stream = stream

    def deliver(self, signals: list[Signal]) -> None:
        out = self._stream or sys.stdout
        for s in signals:
            line = orjson.dumps(s.as_dict()).decode() if self.as_json else format_signal(s)
            out.write(line + "\n")
        out.flush()

    def close(self) -> None:
        pass


class StdoutNotifier:
    """A router receiver (``kind: stdout``): one line per notification.

    >>> import io
    >>> from monitor.sinks.notifier import example_notification
    >>> buf = io.StringIO()
    >>> StdoutNotifier("console", stream=buf).notify(example_notification())
    >>> buf.getvalue().split()[:3]
    ['[console]', 'firing', 'pager:{segment=region=eu-west}:']
    """

    def __init__(self, name: str, *, as_json: bool = False, stream: TextIO | None = None) -> None:
        self.name = name
        self.as_json = as_json
        self._stream = stream

    def notify(self, n: Notification) -> None:
        out = self._stream or sys.stdout
        if self.as_json:
            out.write(orjson.dumps(n.as_dict()).decode() + "\n")
        else:
            members = "; ".join(
                f"{a.level} {a.labels.get('segment', '')} ({a.state.value})" for a in n.alerts
            )
            out.write(f"[{self.name}] {n.status} {n.group_key}: {members}\n")
        out.flush()

    def close(self) -> None:
        pass
