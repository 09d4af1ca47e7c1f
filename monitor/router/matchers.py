"""Label matchers, the one predicate behind routes, silences and inhibition.

Syntax as in Alertmanager: ``label=value``, ``label!=value``, ``label=~regex``,
``label!~regex`` (regexes are anchored). A missing label matches as the empty string.

>>> m = parse_matchers(["region=eu-west", "severity=~critical|warning", "cohort!=internal"])
>>> matches(m, {"region": "eu-west", "severity": "critical", "cohort": "free"})
True
>>> matches(m, {"region": "eu-west", "severity": "info"})
False
>>> parse_matchers(["region"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
monitor.errors.ConfigError: bad matcher 'region': use label=value, label!=value, ...
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from monitor.errors import ConfigError

__all__ = ["Matcher", "matches", "parse_matcher", "parse_matchers"]

_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ConfigError(f"bad matcher operator {self.op!r} for label {self.label!r}")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ConfigError(f"bad regex in matcher {self}: {exc}") from None

    def __call__(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.label, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = re.fullmatch(self.value, v) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Matcher:
        return cls(str(d["label"]), str(d["op"]), str(d["value"]))


def parse_matcher(text: str) -> Matcher:
    m = _RE.match(text)
    if m is None:
        raise ConfigError(
            f"bad matcher {text!r}: use label=value, label!=value, label=~regex or label!~regex"
        )
    value = m.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return Matcher(m.group(1), m.group(2), value)


def parse_matchers(texts: Iterable[str]) -> list[Matcher]:
    return [parse_matcher(t) for t in texts]


def matches(matchers: Iterable[Matcher], labels: dict[str, str]) -> bool:
    """True when every matcher matches (an empty list matches everything)."""
    return all(m(labels) for m in matchers)
