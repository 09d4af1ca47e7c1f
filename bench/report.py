"""The benchmark's output: Markdown tables, the machine it ran on, plots, an atomic write.

>>> t = Table("Demo", ["detector", "ARL0"], [["cusum", "1,000"]], note="one row")
>>> print(t.markdown())
### Demo
<BLANKLINE>
| detector | ARL0 |
|---|---|
| cusum | 1,000 |
<BLANKLINE>
one row
<BLANKLINE>
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ["Section", "Table", "fmt", "machine", "write_markdown"]


def fmt(v: float, digits: int = 3) -> str:
    """A number for a table: thousands separators, ``digits`` significant digits, inf/nan.

    >>> fmt(12345.6), fmt(0.01234), fmt(float("inf")), fmt(float("nan")), fmt(3.0)
    ('12,346', '0.0123', '∞', '-', '3')
    """
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10 ** (digits - 1):
        return f"{round(v):,}"
    s = f"{v:.{digits}g}"
    if "e" in s:
        return f"{v:.2e}"
    return s


@dataclass
class Table:
    """A Markdown table with a title and an optional note under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |"]
        out.append("|" + "---|" * len(self.headers))
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        out.append("")
        if self.note:
            out += [self.note, ""]
        return "\n".join(out)


@dataclass
class Section:
    """A numbered section: prose, tables, images (relative paths)."""

    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (alt, relative path)
    seconds: float = 0.0

    def markdown(self) -> str:
        out = [f"## {self.title}", ""]
        if self.text:
            out += [self.text.strip(), ""]
        out += [t.markdown() for t in self.tables]
        out += [f"![{alt}]({path})\n" for alt, path in self.images]
        out.append(f"*Section wall time: {self.seconds:.0f} s.*\n")
        return "\n".join(out)


def machine() -> dict[str, str]:
    """Where and with what the benchmark ran."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def ver(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "absent"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count() or 0),
        "affinity": str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "?",
        "cpu": cpu,
        "python": platform.python_version(),
        "river": ver("river"),
        "numpy": ver("numpy"),
        "matplotlib": ver("matplotlib"),
        "platform": platform.platform(),
    }


def write_markdown(path: Path, header: str, sections: Sequence[Section]) -> None:
    """Write the report atomically: a temporary file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = header.rstrip() + "\n\n" + "\n".join(s.markdown() for s in sections)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a doc is world-readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
