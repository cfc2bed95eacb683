"""Keep one table's requests inside the limit the API states, instead of learning it from 429s.

Databar limits requests per table (5 a second in its reference) and says so in every reply's
`X-RateLimit-Limit`. A request over the limit is refused with 429 and a Retry-After of whole seconds, so a
reader that pages as fast as it can loses a second here and there. Once a table's limit is known, each request
to it waits, if need be, until the one `limit` requests earlier left the one-second window.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass

import anyio

WINDOW_S = 1.0
# A request still unanswered is counted as having arrived this long after it was sent.
MARGIN_S = 0.02
_TABLE = re.compile(r"^/?(?:v1/)?table/([^/]+)/")


def table_of(path: str) -> str | None:
    """The table a request path is about (`table/{uuid}/...`), or None."""
    match = _TABLE.match(path)
    return match[1] if match else None


@dataclass
class Turn:
    """One request's place in its table's window: sent at `sent`; answered at `answered` (when it was)."""

    sent: float
    answered: float | None = None

    def arrived_by(self) -> float:
        """The latest the API can have counted it: when its answer came (or a little after sending)."""
        return self.answered if self.answered is not None else self.sent + MARGIN_S


class TableWindows:
    """Per table: the stated limit and our latest requests (one shared client per process)."""

    def __init__(self) -> None:
        self._limits: dict[str, int] = {}
        self._turns: dict[str, deque[Turn]] = {}

    def take(self, table: str, now: float) -> Turn:
        """The next request's turn: now, or when the request `limit` before it has left the window."""
        limit = self._limits.get(table)
        turns = self._turns.setdefault(table, deque(maxlen=64))
        at = now
        if limit is not None and len(turns) >= limit:
            at = max(now, turns[-limit].arrived_by() + WINDOW_S)
        turn = Turn(at)
        turns.append(turn)
        return turn

    async def wait_turn(self, table: str, *, longest_s: float | None) -> Turn:
        """Sleep until this request's turn (never longer than `longest_s`: a deadline decides then)."""
        now = time.monotonic()
        turn = self.take(table, now)
        delay = turn.sent - now
        if longest_s is not None:
            delay = min(delay, longest_s)
        if delay > 0:
            await anyio.sleep(delay)
        return turn

    def answered(self, table: str, turn: Turn, limit_header: str | None) -> None:
        """A reply came: when, and the limit it stated (a missing or unreadable header changes nothing)."""
        turn.answered = time.monotonic()
        if limit_header is None:
            return
        try:
            limit = int(limit_header.strip())
        except ValueError:
            return
        if 0 < limit <= 64:
            self._limits[table] = limit
