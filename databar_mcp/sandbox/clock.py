"""A wall clock that tests can move forward, so 24 h expiry is testable in milliseconds."""

from __future__ import annotations

import threading
import time


class Clock:
    """Epoch seconds = real time + an offset that only grows."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def set_offset(self, offset: float) -> None:
        """Restore a saved offset (never backwards: tasks and expiry only move forward)."""
        with self._lock:
            self._offset = max(self._offset, offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
