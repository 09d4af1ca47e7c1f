"""Signals appended to a JSON Lines file, fsynced before delivery counts as done."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from monitor.errors import SinkError
from monitor.events import Signal

__all__ = ["JsonlSink", "append_jsonl"]


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
