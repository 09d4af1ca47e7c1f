"""JSON Lines from a file or standard input; one record per line, 1-based line positions.

A file source resumes after the last line the history store has checkpointed for that file
(by absolute path), so re-running on a growing log processes only the new lines. Standard
input (``-``) always reads from its start. Blank lines are skipped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

from monitor.errors import SourceError
from monitor.events import FILE_PREFIX, Position
from monitor.sources.base import RawRecord

__all__ = ["FileSource"]


class FileSource:
    """Reads ``path`` line by line (``-`` for stdin)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path == "-":
            self.name = FILE_PREFIX + "<stdin>"
            self._fh: BinaryIO = sys.stdin.buffer
            self._total: int | None = None
        else:
            p = Path(path)
            if p.is_dir():
                raise SourceError(f"input {path} is a directory; pass a JSON Lines file")
            try:
                self._fh = p.open("rb")
            except FileNotFoundError:
                raise SourceError(f"input file not found: {path}") from None
            except OSError as exc:
                raise SourceError(f"cannot open input file {path}: {exc.strerror}") from None
            self.name = FILE_PREFIX + str(p.resolve())
            self._total = os.fstat(self._fh.fileno()).st_size
        self.label_sources: set[str] = set()
        self._line = 0  # lines consumed so far
        self._bytes = 0
        self._eof = False
        self._skip_to = 0  # resume: lines before this one were already processed

    @property
    def exhausted(self) -> bool:
        return self._eof

    @property
    def progress(self) -> int:
        return self._bytes

    @property
    def total(self) -> int | None:
        return self._total

    @property
    def resumed_from(self) -> int:
        """The first line this run reads (1 unless resuming)."""
        return self._skip_to or 1

    def resume(self, offsets: dict[tuple[str, int], int]) -> None:
        if self.path == "-":
            return
        self._skip_to = offsets.get((self.name, 0), 0)

    def poll(self, max_records: int) -> list[RawRecord]:
        out: list[RawRecord] = []
        readline = self._fh.readline
        while len(out) < max_records:
            line = readline()
            if not line:
                self._eof = True
                break
            self._line += 1
            self._bytes += len(line)
            if self._line < self._skip_to:
                continue
            body = line.rstrip(b"\r\n")
            if not body.strip():
                continue
            out.append(RawRecord(body, Position(self.name, 0, self._line)))
        return out

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        pass

    def close(self) -> None:
        if self.path != "-":
            self._fh.close()
