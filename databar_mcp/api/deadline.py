"""The deadline of the tool call in progress, carried in a context variable.

Every tool call must answer by its deadline whatever the upstream does. Setting the deadline once, where the
call starts, bounds every request, retry wait, Retry-After pause and poll beneath it, without each function
passing a timeout along (and without one forgetting to).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("databar_mcp_deadline", default=None)


@contextmanager
def deadline_in(seconds: float, *, restart: bool = False) -> Generator[None]:
    """Everything inside must finish within `seconds` (or within an enclosing deadline, if sooner).

    `restart` replaces the enclosing deadline: for work that starts after the user answered a question,
    which may have taken longer than any deadline.
    """
    at = time.monotonic() + max(0.0, seconds)
    current = _deadline.get()
    token = _deadline.set(at if restart or current is None else min(current, at))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (never negative), or None when no deadline is set."""
    at = _deadline.get()
    return None if at is None else max(0.0, at - time.monotonic())


def bounded(seconds: float) -> float:
    """`seconds`, shortened to what is left of the current deadline."""
    left = remaining()
    return seconds if left is None else min(seconds, left)
