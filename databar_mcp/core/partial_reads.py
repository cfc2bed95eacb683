"""How often a running task's finished rows may be read: Databar's `include_partial` is costly for the API.

A results view polls every few seconds while a run works. Its progress comes from plain GETs (cheap); the rows
finished so far come from `include_partial`, which this gate allows at most once per interval per task, however
many views (or agents) ask, so no client can hammer Databar with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PartialReads:
    """Grants a task's next `include_partial` read once `interval_s` has passed since its last one."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, task_id: str) -> bool:
        """True (and the read counted now) when this task's last partial read is at least an interval old."""
        now = self._clock()
        with self._lock:
            last = self._last.get(task_id)
            if last is not None and now - last < self._interval_s:
                return False
            # Entries older than an interval decide nothing any more: drop them, so the map stays small.
            self._last = {t: at for t, at in self._last.items() if now - at < self._interval_s}
            self._last[task_id] = now
            return True
