"""The task service: the one owner of task state, for every tool that submits, reads, waits for or cancels tasks.

State lives in the ledger; Databar is reached only through the runner, which pairs every GET (and every cancel)
with a ledger write. So a tool never reads the ledger piecemeal or calls the client for a task itself: it asks
here, and only shapes the answer.
"""

from __future__ import annotations

from typing import Any

from databar_mcp.api.models import Task
from databar_mcp.core.runner import ProgressCallback, RunOrder, Submitted, TaskRunner
from databar_mcp.core.store import Ledger, Submission, TaskRecord


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
