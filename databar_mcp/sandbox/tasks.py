"""Asynchronous task records: outcomes fixed at submit time, revealed row by row by the clock."""

from __future__ import annotations

from dataclasses import dataclass

from databar_mcp.sandbox.errors import Json
from databar_mcp.sandbox.providers import RowOutcome

EXPIRED_MESSAGE = "Task data has expired."
TERMINAL = frozenset({"completed", "partially_completed", "failed", "cancelled"})


@dataclass
class Task:
    """One run. Row i finishes at created + base_seconds + i * row_seconds on the sandbox clock."""

    task_id: str
    bulk: bool
    created: float
    base_seconds: float
    row_seconds: float
    outcomes: list[RowOutcome]
    charged: int = 0  # rows whose cost has been taken from the balance
    cancelled_at: float | None = None
    frozen_done: int | None = None  # rows finished when the task was cancelled
    single_as_list: bool = (
        False  # a single waterfall run's data is a list of one entry (Databar's MCP server reads data[0])
    )
    status_synonyms: bool = False  # report "success" for completed, as Databar's clients also accept
    reads: int = 0  # GETs of this task so far (the first few may not see it: config.fresh_task_unseen_reads)
    partial_reads: int = 0  # GETs with include_partial (costly for the API: tests check our server rations them)
    read_at: float | None = None  # the clock when the latest GET counted its rows (benchmarks date detection by it)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def done_count(self, now: float) -> int:
        if self.frozen_done is not None:
            return self.frozen_done
        elapsed = now - self.created - self.base_seconds
        if elapsed < 0:
            return 0
        if self.row_seconds <= 0:
            return self.total
        return min(self.total, int(elapsed // self.row_seconds) + 1)

    def finished_at(self) -> float:
        if self.cancelled_at is not None:
            return self.cancelled_at
        return self.created + self.base_seconds + (self.total - 1) * self.row_seconds

    def cost_of(self, start: int, stop: int) -> float:
        return sum(o.cost for o in self.outcomes[start:stop])

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.done_count(now) < self.total:
            return "processing"
        failed = sum(o.failed for o in self.outcomes)
        if failed == self.total:
            return "failed"
        return "partially_completed" if failed else "completed"

    def is_expired(self, now: float, retention: float) -> bool:
        return self.status(now) in TERMINAL and now >= self.finished_at() + retention

    def view(self, now: float, include_partial: bool = False) -> dict[str, Json]:
        """The GET /v1/tasks/{id} body for this moment."""
        status = self.status(now)
        done = self.outcomes[: self.done_count(now)]
        rows: list[Json] = [*(o.reply for o in done), *([None] * (self.total - len(done)))]
        data: Json = None
        if status != "processing" or (include_partial and self.bulk):
            data = rows if self.bulk or self.single_as_list else rows[0]
        errors: list[Json] = [o.error for o in done if o.failed and o.error]
        body: dict[str, Json] = {
            "task_id": self.task_id,
            "request_id": self.task_id,
            "status": "success" if self.status_synonyms and status == "completed" else status,
            "data": data,
            "error": errors or None,
            "credits_spent": float(round(self.cost_of(0, len(done)), 6)),
        }
        if self.bulk:
            failed = sum(o.failed for o in done)
            found = sum(o.data is not None for o in done)
            body["progress"] = {
                "total": self.total,
                "completed": found,
                "no_data": len(done) - found - failed,
                "failed": failed,
                "processing": 0 if status == "cancelled" else self.total - len(done),
            }
        return body

    def gone_view(self, now: float) -> dict[str, Json]:
        return {
            "task_id": self.task_id,
            "request_id": self.task_id,
            "status": "gone",
            "data": None,
            "error": EXPIRED_MESSAGE,
            "credits_spent": float(round(self.cost_of(0, self.done_count(now)), 6)),
        }
