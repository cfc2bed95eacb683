"""Background tracking: keep polling unfinished tasks so their results reach the ledger.

A tool call that was cancelled, timed out or crashed leaves its task running at Databar; without this, the
result would be lost after 24 hours unless someone happened to call get_task again.
"""

from __future__ import annotations

import logging

import anyio

from databar_mcp.api.errors import DatabarError, NotFoundError, ResultExpired
from databar_mcp.core.ledger_backend import LedgerError
from databar_mcp.core.runner import TaskRunner
from databar_mcp.core.store import UNKNOWN_TO_DATABAR, Ledger
from databar_mcp.core.users import acting_as

logger = logging.getLogger("databar_mcp.core.tracker")

BATCH = 50


async def track_once(runner: TaskRunner, ledger: Ledger) -> int:
    """One pass over the unfinished tasks no tool call is waiting on; returns how many were polled."""
    unfinished, _ = await ledger.recent(limit=BATCH, offset=0, unfinished_only=True)
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


async def track_forever(runner: TaskRunner, ledger: Ledger, *, interval_s: float) -> None:
    """Every `interval_s`, poll what is unfinished; never lets an error end the server."""
    while True:
        await anyio.sleep(interval_s)
        try:
            async with ledger.tracking_turn() as mine:  # replicas sharing a ledger take turns
                if mine:
                    await track_once(runner, ledger)
        except LedgerError as exc:  # the database restarting, the disk full: the next pass tries again
            logger.warning("task tracking pass skipped: %s", exc)
        except Exception:  # a broken pass must not take the server down; the next one may work
            logger.exception("task tracking pass failed")
