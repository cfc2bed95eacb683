"""TaskRunner: submit a billable run exactly once, then wait for it within a deadline.

Polling is adaptive: quick at first (short tasks are detected fast), backing off to a cap; once a bulk task
reports progress counts, the completion rate predicts the end and the next poll is aimed just after it,
so long tasks cost few requests and are still noticed promptly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from databar_mcp import config
from databar_mcp.api import DatabarClient
from databar_mcp.api.models import BulkWaterfallRequest, Task, TaskHandle

ProgressCallback = Callable[[Task], Awaitable[None]]

# When the end is predictable, never sleep longer than this, so progress keeps flowing to the client.
ETA_POLL_CAP_S = 5.0


@dataclass
class PollPlan:
    """Decides how long to sleep before the next poll from what the polls so far have shown."""

    first_s: float = config.POLL_FIRST_S
    cap_s: float = config.POLL_CAP_S
    growth: float = config.POLL_GROWTH
    min_s: float = config.POLL_MIN_S
    polls: int = 0
    samples: list[tuple[float, int]] = field(default_factory=lambda: list[tuple[float, int]]())

    def observe(self, now: float, task: Task) -> None:
        self.polls += 1
        if task.progress is not None and task.progress.total > 0:
            self.samples.append((now, task.progress.finished))

    def next_delay(self, total: int | None) -> float:
        backoff = min(self.cap_s, self.first_s * self.growth ** max(0, self.polls - 1))
        eta = self.eta(total)
        if eta is None:
            return backoff
        return max(self.min_s, min(eta, ETA_POLL_CAP_S))

    def eta(self, total: int | None) -> float | None:
        """Seconds until every row is finished, from the rate seen since rows started finishing."""
        moving = [s for s in self.samples if s[1] > 0]
        if not total or len(moving) < 2:
            return None
        (t0, f0), (t1, f1) = moving[0], moving[-1]
        if f1 <= f0 or t1 <= t0:
            return None
        rate = (f1 - f0) / (t1 - t0)
        return max(0.0, (total - f1) / rate)


class TaskRunner:
    """Submits runs and waits for tasks; holds no per-task state beyond one wait."""

    def __init__(self, client: DatabarClient, *, poll_first_s: float, poll_cap_s: float) -> None:
        self._client = client
        self._poll_first_s = poll_first_s
        self._poll_cap_s = poll_cap_s

    async def submit_bulk_waterfall(self, identifier: str, body: BulkWaterfallRequest) -> TaskHandle:
        """Send the run once. Shielded: a cancelled tool call must not abandon a POST that may bill."""
        handle: TaskHandle | None = None
        with anyio.CancelScope(shield=True):
            handle = await self._client.bulk_run_waterfall(identifier, body)
        assert handle is not None  # a shielded scope cannot be cancelled before the call returns
        return handle

    async def poll_once(self, task_id: str) -> Task:
        return await self._client.get_task(task_id)

    async def wait(
        self,
        task_id: str,
        *,
        timeout_s: float,
        first: Task | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Task | None:
        """Poll until the task is terminal or `timeout_s` passes; return the last state seen (None if none).

        Never blocks past the timeout: a poll still in flight at the deadline is abandoned (polls are
        idempotent GETs, so nothing is lost).
        """
        plan = PollPlan(first_s=self._poll_first_s, cap_s=max(self._poll_first_s, self._poll_cap_s))
        deadline = time.monotonic() + max(0.0, timeout_s)
        last = first
        if last is not None:
            plan.observe(time.monotonic(), last)
            if last.is_terminal:
                return last
        with anyio.move_on_after(max(0.0, timeout_s)):
            delay = 0.0 if last is None else plan.next_delay(self._total(last))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await anyio.sleep(min(delay, remaining))
                task = await self._client.get_task(task_id)
                plan.observe(time.monotonic(), task)
                last = task
                if on_progress is not None:
                    await on_progress(task)
                if task.is_terminal:
                    break
                delay = plan.next_delay(self._total(task))
        return last

    @staticmethod
    def _total(task: Task) -> int | None:
        return task.progress.total if task.progress is not None else None
