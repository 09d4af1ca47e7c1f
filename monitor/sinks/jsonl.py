"""Signals appended to a JSON Lines file, fsynced before delivery counts as done."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from monitor.errors import SinkError
from monitor.events import Signal
from monitor.router.model import DeliveryError, Notification

__all__ = ["JsonlNotifier", "JsonlSink", "append_jsonl"]


def append_jsonl(path: Path, lines: list[bytes]) -> None:
    """Append JSON lines to ``path`` and fsync; raise SinkError with the reason on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(b"".join(line + b"\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise SinkError(
            f"cannot append to {path}: {exc.strerror} (check the path is writable)"
        ) from None


class JsonlSink:
    """Appends one JSON object per signal to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.name = "jsonl"
        self.path = Path(path)

    def deliver(self, signals: list[Signal]) -> None:
        if signals:
            append_jsonl(self.path, [orjson.dumps(s.as_dict()) for s in signals])

    def close(self) -> None:
        pass


class JsonlNotifier:
    """A router receiver (``kind: jsonl``): appends each notification as one JSON line.

    A write failure is retryable (a full disk may be freed); the notification id in each
    line lets a reader drop the duplicate a crash between append and record may leave.

    >>> import tempfile
    >>> from monitor.sinks.notifier import example_notification
    >>> path = Path(tempfile.mkdtemp()) / "notes.jsonl"
    >>> JsonlNotifier("file", path).notify(example_notification())
    >>> orjson.loads(path.read_bytes())["group_key"]
    'pager:{segment=region=eu-west}'
    """

    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.path = Path(path)

    def notify(self, n: Notification) -> None:
        try:
            append_jsonl(self.path, [orjson.dumps(n.as_dict())])
        except SinkError as exc:
            raise DeliveryError(f"receiver {self.name!r}: {exc}", retryable=True) from None

    def close(self) -> None:
        pass
