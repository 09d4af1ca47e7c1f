"""Rate-limit: at most N notifications per receiver per minute (token bucket).

A notification over the limit is not dropped: it stays unplanned and the next router pass
(after the next batch) plans it again, since notification ids are deterministic.

>>> rl = RateLimiter(per_minute=2)
>>> [rl.allow("slack", 0) for _ in range(3)], rl.allow("slack", 30_000)
([True, True, False], True)
"""

from __future__ import annotations

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, int]] = {}  # receiver -> (tokens, at_ms)

    def allow(self, receiver: str, now_ms: int) -> bool:
        tokens, at = self._buckets.get(receiver, (float(self.per_minute), now_ms))
        tokens = min(float(self.per_minute), tokens + (now_ms - at) * self.per_minute / 60_000)
        if tokens < 1.0:
            self._buckets[receiver] = (tokens, now_ms)
            return False
        self._buckets[receiver] = (tokens - 1.0, now_ms)
        return True
