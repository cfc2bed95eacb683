"""Sliding one-second windows, the way the API counts requests per key and per table."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted request leaves the window; also Retry-After

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


class SlidingWindow:
    """Counts accepted requests in the last second (real monotonic time; callers hold a lock)."""

    WINDOW = 1.0

    def __init__(self) -> None:
        self._hits: deque[float] = deque()

    def check(self, per_second: float) -> Verdict:
        now = time.monotonic()
        while self._hits and self._hits[0] <= now - self.WINDOW:
            self._hits.popleft()
        limit = max(1, math.floor(per_second * self.WINDOW))
        allowed = len(self._hits) < limit
        if allowed:
            self._hits.append(now)
        reset = self._hits[0] + self.WINDOW - now if self._hits else 0.0
        return Verdict(allowed, limit, max(0, limit - len(self._hits)), max(1, math.ceil(reset)))
