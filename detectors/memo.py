"""Calibrations computed once per key, in memory; what a persistent cache saves and reloads.

Every calibrated family (CUSUM thresholds, categorical window CUSUMs, Bernoulli lattices)
keeps one :class:`Memo`: a threshold is computed the first time its key is asked for and
reused after that. The monitor writes :meth:`Memo.known` to disk and seeds a new process with
:meth:`Memo.preload` (``monitor.detection``); nothing here does I/O.

>>> memo: Memo[int, str] = Memo()
>>> memo.get(3, lambda: "computed"), memo.get(3, lambda: "again")
('computed', 'computed')
>>> memo.preload({4: "from disk"}); sorted(memo.known().items())
[(3, 'computed'), (4, 'from disk')]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A dictionary of computed values with get-or-compute, export and preload."""

    def __init__(self) -> None:
        self._known: dict[K, V] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value for ``key``: the one known, else ``compute()`` (then remembered)."""
        hit = self._known.get(key)
        if hit is None:
            hit = self._known[key] = compute()
        return hit

    def known(self) -> dict[K, V]:
        """Every value computed or preloaded in this process (a copy)."""
        return dict(self._known)

    def preload(self, entries: Mapping[K, V]) -> None:
        """Seed the memo with values computed earlier (e.g. loaded from disk)."""
        self._known.update(entries)
