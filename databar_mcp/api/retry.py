"""Backoff arithmetic and the Retry-After parser, kept pure so they are easy to test exhaustively."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime

# Statuses with which the API refuses a request without acting on it (bad input, auth, credits, limits). After a
# billable POST, every other reply (a 3xx, a 408, a 5xx, a 2xx we cannot read) may have followed the work.
REFUSALS = frozenset({400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429})


def is_refusal(status: int) -> bool:
    """True when a billable request answered `status` certainly did not start anything."""
    return status in REFUSALS


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or junk."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: base·2^attempt, at most `cap`, shortened by up to 25 %."""
    raw = min(cap, base * (2 ** min(attempt, 30)))
    jitter = (rng or random).random()
    return raw * (1 - 0.25 * jitter)
