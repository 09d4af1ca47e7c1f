"""Dead letters appended to a JSON Lines file (the file source's dead-letter sink)."""

from __future__ import annotations

from pathlib import Path

import orjson

from monitor.sinks.base import DeadLetter
from monitor.sinks.jsonl import append_jsonl

__all__ = ["FileDeadLetters"]


class FileDeadLetters:
    """Buffers letters of a batch and appends them, fsynced, on :meth:`flush`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._buf: list[bytes] = []

    def add(self, letter: DeadLetter) -> None:
        self._buf.append(orjson.dumps(letter.as_dict()))

    def flush(self) -> None:
        if self._buf:
            append_jsonl(self.path, self._buf)
            self._buf.clear()

    def close(self) -> None:
        self.flush()
