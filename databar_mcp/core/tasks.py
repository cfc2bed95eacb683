"""The task service: the one owner of task state, for every tool that submits, reads, waits for or cancels tasks.

State lives in the ledger; Databar is reached only through the runner, which pairs every GET (and every cancel)
with a ledger write. So a tool never reads the ledger piecemeal or calls the client for a task itself: it asks
here, and only shapes the answer.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from databar_mcp.api.errors import DatabarError
from databar_mcp.api.models import Task
from databar_mcp.core.ledger.store import Ledger, Submission, TaskRecord
from databar_mcp.core.runner import ProgressCallback, RunOrder, Submitted, TaskRunner

STOP_CANCEL_S = 10.0  # how long a Stop's cancel may take at Databar before the call lets go
logger = logging.getLogger("databar_mcp.core.tasks")


class TaskService:
    """Tasks as one thing: read (state, run, estimate and stored result at once), submit, wait, cancel, observe."""

    def __init__(self, runner: TaskRunner, ledger: Ledger) -> None:
        self._runner = runner
        self._ledger = ledger

    async def read(self, task_id: str, *, with_data: bool = True) -> TaskRecord | None:
        """Everything the ledger knows of a task, in one query (None: unknown here, or another user's)."""
        return await self._ledger.read(task_id, with_data=with_data)

    async def earlier(self, endpoint: str, request: dict[str, Any]) -> Submission | None:
        """The identical earlier run that submitting now would return instead of sending (read-only)."""
        return await self._runner.earlier(endpoint, request)

    async def submit(self, order: RunOrder) -> Submitted:
        """Send a billable run exactly once (or return the identical earlier one): see TaskRunner.submit."""
        return await self._runner.submit(order)

    async def poll(self, task_id: str) -> Task:
        """One GET of the task at Databar, recorded."""
        return await self._runner.poll(task_id)

    async def poll_partial(self, task_id: str) -> Task | None:
        """One GET with the rows finished so far, at most once per task per interval (None: not now)."""
        return await self._runner.poll_partial(task_id)

    async def wait(
        self, task_id: str, *, timeout_s: float, first: Task | None = None, on_progress: ProgressCallback | None = None
    ) -> Task | None:
        """Poll until the task finishes or `timeout_s` passes (the last state seen; None if none)."""
        return await self._runner.wait(task_id, timeout_s=timeout_s, first=first, on_progress=on_progress)

    async def cancel(self, task_id: str) -> Task:
        """Cancel at Databar; the state it answers with is recorded like a poll's."""
        return await self._runner.cancel(task_id)

    async def observe(self, task: Task) -> None:
        """Record a task state learnt some other way (e.g. that Databar does not know the task)."""
        await self._runner.observe(task)

    async def cancel_on_stop(self, task_id: str) -> Task | None:
        """The user stopped the call that runs this task (the client cancelled it): cancel the run at Databar too,
        so it stops billing (unfinished work is refunded) and the finished rows stay readable. Shielded from the
        call's own cancellation and bounded; a task that already finished (409) or a cancel that fails is logged,
        never raised, since the call is ending anyway. Our own deadline never comes here: the run goes on."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_CANCEL_S):
            try:
                task = await self._runner.cancel(task_id)
            except DatabarError as exc:
                logger.warning(
                    "the call running task %s was stopped; cancelling it at Databar failed: %s", task_id, exc
                )
                return None
            logger.warning("the call running task %s was stopped by the client: cancelled at Databar", task_id)
            return task
        logger.warning("the call running task %s was stopped; Databar did not answer the cancel in time", task_id)
        return None
