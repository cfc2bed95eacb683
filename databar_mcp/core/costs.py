"""What a run without a Databar task cost (a table enrichment or exporter run): Databar states no figure for it,
so it is measured from the account's balance before and after the run when no other run of this server could
have moved the balance meanwhile; otherwise it is counted at its estimate, and says so (issue 23: every
billable act counted, never silently missing).
"""

from __future__ import annotations

import logging
import time

from databar_mcp.api import DatabarClient
from databar_mcp.api.errors import DatabarError
from databar_mcp.core.ledger.store import CreditsBasis, Ledger, Submission

logger = logging.getLogger("databar_mcp.costs")

# Balances are floats: a measurement this far above the estimate is still within it.
TOLERANCE = 1e-6


async def balance_or_none(client: DatabarClient) -> float | None:
    """The balance now, or None when it cannot be read: a cost figure must never fail the run it describes."""
    try:
        return (await client.get_user()).balance
    except DatabarError as exc:
        logger.info("the balance could not be read (%s): the run is counted at its estimate", type(exc).__name__)
        return None


def measured(before: float | None, after: float | None, estimate: float | None) -> float | None:
    """The balance's drop, when it is a plausible cost of this run alone: not negative (a top-up), not above
    the run's worst case (spending outside this server)."""
    if before is None or after is None:
        return None
    drop = round(before - after, 6)
    if drop < 0 or (estimate is not None and drop > estimate + TOLERANCE):
        return None
    return drop


async def settle_run(ledger: Ledger, client: DatabarClient, run: Submission) -> Submission:
    """Settle a finished run without a task once: measured when its balance before is known and no other run of
    this server overlapped it, else its estimate. The record as settled (the first settlement stands)."""
    if run.settled_at is not None:
        return run
    credits: float | None = run.estimated_credits
    basis: CreditsBasis = "estimate"
    if run.balance_before is not None:
        now = time.time()
        if await ledger.overlapping(run.id, run.created_at, now) == 0:
            drop = measured(run.balance_before, await balance_or_none(client), run.estimated_credits)
            if drop is not None:
                credits, basis = drop, "measured"
    return await ledger.settle(run.id, credits, basis) or run


def credits_words(credits: float | None, basis: CreditsBasis | None, estimate: float | None) -> str:
    """One sentence on what a run spent, saying how the figure is known."""
    most = "" if estimate is None else f" (estimated at most {estimate:g})"
    if basis == "databar" and credits is not None:
        return f"Credits spent: {credits:g} (Databar's figure){most}."
    if basis == "measured" and credits is not None:
        return (
            f"Credits spent: {credits:g} (measured from the balance before and after; no other run overlapped){most}."
        )
    if basis == "estimate":
        counted = "its estimate" if credits is None else f"its estimate, at most {credits:g}"
        return (
            "Credits spent: not measurable (another run of this server overlapped, or the balance could not be "
            f"read); counted at {counted}."
        )
    if estimate is None:
        return "Credits spent: not known yet (the run's cost could not be estimated)."
    if estimate == 0:
        return "Credits spent: none (estimated at 0)."
    return f"Credits spent: not known until the run finishes; at most {estimate:g}."
