"""How long a run will take, from this server's own history: the rows per second of earlier runs of the same
waterfall, enrichment or flow (the same endpoint), read from the ledger's finished tasks.

Databar states no duration, so the only honest figure is what runs here took; with no history there is no
figure. A run's time is from its submission to when this server first saw it finished, so a run nobody
looked at for a while reads slow: the median rate of the recent runs keeps one such run from skewing it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from databar_mcp.core.ledger.backend import LedgerConn
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.core.users import current_owner

RUNS_READ = 20  # the most recent finished runs the rate is taken from
FINISHED = ("completed", "partially_completed")  # runs that did their rows (failed or cancelled ones did not)


@dataclass(frozen=True)
class Expected:
    seconds: float
    runs: int  # how many earlier runs the figure comes from

    def words(self) -> str:
        """'expected about 40 s, from 3 earlier runs here' (minutes past two minutes)."""
        if self.seconds >= 120:
            took = f"about {round(self.seconds / 60):,} min"
        else:
            took = f"about {max(1, round(self.seconds)):,} s"
        return f"expected {took}, from {self.runs} earlier run{'s' if self.runs != 1 else ''} here"


async def expected_duration(ledger: Ledger, endpoint: str, rows: int) -> Expected | None:
    """The expected time for `rows` rows at the median rows per second of the caller's recent finished runs of
    `endpoint` (None: no such run yet)."""
    owner = current_owner()
    who, params = ("", ()) if owner is None else (" AND s.owner = ?", (owner,))

    async def work(conn: LedgerConn) -> list[tuple[int, float]]:
        found = await conn.all(
            "SELECT s.rows AS rows, t.completed_at - s.created_at AS seconds FROM submissions s "  # noqa: S608 - fixed SQL, values bound
            f"JOIN tasks t ON t.submission_id = s.id WHERE s.endpoint = ? AND t.status IN (?, ?){who} "
            "AND t.completed_at IS NOT NULL AND s.rows > 0 ORDER BY s.created_at DESC LIMIT ?",
            (endpoint, *FINISHED, *params, RUNS_READ),
        )
        return [(int(r["rows"]), float(r["seconds"])) for r in found]

    history = [(n, s) for n, s in await ledger.call(work) if s > 0]
    if not history or rows <= 0:
        return None
    rate = statistics.median(n / s for n, s in history)  # rows per second
    return Expected(seconds=rows / rate, runs=len(history))
