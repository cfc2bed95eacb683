"""Background tracking: keep polling unfinished tasks so their results reach the ledger.

A tool call that was cancelled, timed out or crashed leaves its task running at Databar; without this, the
result would be lost after 24 hours unless someone happened to call get_task again.

Each pass takes a bounded share, oldest-due first (the ledger keeps when each unfinished task's next poll is
due), so every unfinished task comes round however many there are; the replica holding the tracker's turn also
prunes results past the retention period, a small batch at a time (retention.py).
"""

from __future__ import annotations

import logging

import anyio

from databar_mcp import config
from databar_mcp.api.errors import DatabarError, NotFoundError, ResultExpired
from databar_mcp.core.ledger.backend import LedgerError
from databar_mcp.core.ledger.retention import batches_per_pass, prune_some
from databar_mcp.core.ledger.store import UNKNOWN_TO_DATABAR, Ledger, Pruned
from databar_mcp.core.runner import TaskRunner
from databar_mcp.core.users import acting_as

logger = logging.getLogger("databar_mcp.core.tracker")

BATCH = 50  # tasks polled a pass at most: a pass stays short however many runs are unfinished


async def track_once(runner: TaskRunner, ledger: Ledger, *, next_in_s: float = config.TRACKER_INTERVAL_S) -> int:
    """One pass over the due unfinished tasks no tool call is waiting on; returns how many were polled."""
    unfinished = await ledger.due(limit=BATCH, next_in_s=next_in_s)
    polled = 0
    for record in unfinished:
        if record.task_id in runner.waiting:
            continue
        polled += 1
        try:
            with acting_as(record.submission.owner if record.submission is not None else None):  # their key
                await runner.poll(record.task_id)
        except ResultExpired:
            pass  # recorded as gone by the runner
        except NotFoundError:  # past the grace period a fresh task gets (see TaskRunner.poll)
            from databar_mcp.api.models import Task  # (the tracker starts with the server; a Task is rarely made)

            logger.info("tracked task %s is unknown to Databar; no longer tracked", record.task_id)
            await runner.observe(Task(task_id=record.task_id, status=UNKNOWN_TO_DATABAR))
        except DatabarError as exc:
            logger.info("tracking task %s failed: %s", record.task_id, type(exc).__name__)
    return polled


async def track_pass(
    runner: TaskRunner, ledger: Ledger, *, interval_s: float, retention_s: float | None = None
) -> tuple[int, Pruned]:
    """One pass: poll what is due, then prune what is past `retention_s` (None: keep forever) at the steady rate
    of retention.batches_per_pass, so a pruning backlog costs tool calls about 1% of the writer whatever the
    interval. Returns how many tasks were polled and what was pruned."""
    polled = await track_once(runner, ledger, next_in_s=interval_s)
    pruned = Pruned()
    if retention_s is not None:
        pruned = await prune_some(ledger, keep_s=retention_s, batches=batches_per_pass(interval_s))
    return polled, pruned


async def track_forever(
    runner: TaskRunner, ledger: Ledger, *, interval_s: float, retention_s: float | None = None
) -> None:
    """Every `interval_s`, a pass (track_pass) if this replica holds the tracker's turn; never lets an error end
    the server."""
    while True:
        await anyio.sleep(interval_s)
        try:
            async with ledger.tracking_turn() as mine:  # replicas sharing a ledger take turns
                if mine:
                    await track_pass(runner, ledger, interval_s=interval_s, retention_s=retention_s)
        except LedgerError as exc:  # the database restarting, the disk full: the next pass tries again
            logger.warning("task tracking pass skipped: %s", exc)
        except Exception:  # a broken pass must not take the server down; the next one may work
            logger.exception("task tracking pass failed")
