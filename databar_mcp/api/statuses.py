"""Task statuses and the one definition of "finished", apart from the models: the ledger builds its SQL from them
at import, and a start imports the ledger but none of the ~60 API models (issue 14). api.models re-exports them."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Every status a task can have here: Databar's, plus two of ours (GONE, UNKNOWN_TO_DATABAR)."""

    CREATED = "created"
    PROCESSING = "processing"
    NO_DATA = "no_data"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    GONE = "gone"  # Databar deleted the result (410 after its 24-hour retention)
    # Databar answers 404 for a task we were given (another key or account, or an id it never showed): nothing
    # more can be learnt about it, so it is finished for us; its run may still have billed.
    UNKNOWN_TO_DATABAR = "unknown_to_databar"


# Databar's SDK and MCP server also accept these spellings of a finished task.
STATUS_SYNONYMS = {"success": TaskStatus.COMPLETED, "error": TaskStatus.FAILED, "created": TaskStatus.PROCESSING}

# The one definition of "finished": polled no more, by a tool call, the tracker or an MCP task watcher.
TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.PARTIALLY_COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.GONE,
        TaskStatus.UNKNOWN_TO_DATABAR,
    }
)
# Finished without a result an identical run could be answered with: the duplicate guard does not reuse them.
NOT_REUSABLE_STATUSES = frozenset(
    {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.GONE, TaskStatus.UNKNOWN_TO_DATABAR}
)
