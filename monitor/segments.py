"""Segments: the slices of traffic that are watched one by one.

A leaf segment is one value per configured dimension (default ``region`` and ``cohort``),
written ``region=eu-west,cohort=free``. Roll-ups are watched too: one per value of each
dimension (``region=eu-west``) and the global one (``*``). A cardinality cap sends new
segments beyond it to an overflow bucket (``region=~overflow`` etc.), with one warning
and a counter.

>>> seg = Segmenter(["region", "cohort"], max_segments=100)
>>> [s.key for s in seg.segments_for(("eu-west", "free"))]
['region=eu-west,cohort=free', 'region=eu-west', 'cohort=free', '*']
>>> s = seg.segments_for(("eu-west", "free"))[0]
>>> s.scope, s.labels
('segment', {'region': 'eu-west', 'cohort': 'free'})
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = ["GLOBAL_KEY", "OVERFLOW", "Segment", "Segmenter"]

GLOBAL_KEY = "*"
OVERFLOW = "~overflow"
MISSING = "~unknown"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Segment:
    """One watched slice of traffic.

    ``scope`` is ``segment`` for a leaf, the dimension name for a one-dimension roll-up
    (``region``, ``cohort``…), or ``global``.
    """

    key: str
    scope: str
    labels: dict[str, str] = field(hash=False)


def _key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or GLOBAL_KEY


class Segmenter:
    """Maps a record's dimension values to the segments that watch it (memoized)."""

    def __init__(self, dimensions: list[str], *, max_segments: int = 1000, rollups: bool = True):
        if not dimensions:
            raise ValueError("at least one segment dimension is needed")
        self.dimensions = list(dimensions)
        self.max_segments = max_segments
        self.rollups = rollups
        self._cache: dict[tuple[str, ...], list[Segment]] = {}
        self._leaves: set[tuple[str, ...]] = set()
        self._values: dict[str, set[str]] = {d: set() for d in self.dimensions}
        self.overflowed = 0
        self._warned = False

    @property
    def n_segments(self) -> int:
        """Distinct leaf segments seen so far (overflow counted once)."""
        return len(self._leaves)

    def segments_for(self, values: tuple[str | None, ...]) -> list[Segment]:
        """Segments watching a record whose dimension values are ``values`` (in order)."""
        clean = tuple(v if v else MISSING for v in values)
        hit = self._cache.get(clean)
        if hit is not None:
            return hit
        leaf = clean
        if leaf not in self._leaves and len(self._leaves) >= self.max_segments:
            leaf = tuple(OVERFLOW for _ in self.dimensions)
            self._overflow(clean)
        self._leaves.add(leaf)
        labels = dict(zip(self.dimensions, leaf, strict=True))
        out = [Segment(_key(labels), "segment", labels)]
        if self.rollups:
            if len(self.dimensions) > 1:
                for dim, value in labels.items():
                    vals = self._values[dim]
                    if value not in vals and len(vals) >= self.max_segments:
                        value = OVERFLOW
                    vals.add(value)
                    out.append(Segment(f"{dim}={value}", dim, {dim: value}))
            out.append(Segment(GLOBAL_KEY, "global", {}))
        if leaf == clean:  # overflowed records are not memoized, so they are counted each time
            self._cache[clean] = out
        return out

    def _overflow(self, values: tuple[str, ...]) -> None:
        self.overflowed += 1
        if not self._warned:
            self._warned = True
            log.warning(
                "segment cap reached (%d segments): %s and later new segments go to the "
                "overflow bucket; raise segments.max_segments to watch them one by one",
                self.max_segments,
                _key(dict(zip(self.dimensions, values, strict=True))),
            )
