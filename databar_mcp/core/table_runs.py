"""Table-enrichment runs: Databar runs them inside the table and gives no task id, so their progress is read
from the table itself.

An enrichment (or waterfall, or exporter) attached to a table owns columns marked with its id
(`data_processor_id`): a status column named after it, whose cells say per row whether the row is
processing, completed (found), no_data or "error: ...", and one column per output field. Counting rows by
status needs one filtered page of one row per status (its total_count), never the rows themselves, so
watching a 50,000-row run costs one request per poll. Reads of one table are paced below the API's
per-table limit and slow down further on a 429 instead of failing.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import anyio

from databar_mcp import config
from databar_mcp.api import DatabarClient, deadline
from databar_mcp.api.errors import APIConnectionError, DatabarError, DeadlineReached, RateLimited, SubmissionUnknown
from databar_mcp.api.models import RunStrategy, TableColumn, TableRunStarted, Task, TaskProgress
from databar_mcp.api.runs import RunRequest
from databar_mcp.core.ledger.store import Ledger, Submission
from databar_mcp.core.runner import DuplicateRunUnknown, PollPlan, TaskRunner

T = TypeVar("T")
STATUS_TYPES = ("enrichment", "waterfall", "exporter")
PROCESSING = "processing"


@dataclass(frozen=True)
class ProcessorColumns:
    """The columns one table enrichment fills: its status column and its output columns (by name)."""

    status: str
    outputs: tuple[str, ...]


def processor_columns(columns: Sequence[TableColumn], processor_id: int) -> ProcessorColumns | None:
    owned = [c for c in columns if c.data_processor_id == processor_id]
    if not owned:
        return None
    status = next((c for c in owned if c.type_of_value in STATUS_TYPES), owned[0])
    return ProcessorColumns(status.name, tuple(c.name for c in owned if c is not status))


@dataclass(frozen=True)
class RowStates:
    """Rows of the whole table by the enrichment's status (never_run: the status cell is empty)."""

    total: int
    processing: int
    completed: int
    no_data: int
    errors: int
    never_run: int
    breakdown: bool = True  # False: only total and processing were read (the others are 0, not counted)


_FILTERS: dict[str, dict[str, Any]] = {
    "processing": {"equals": PROCESSING},
    "completed": {"equals": "completed"},
    "errors": {"contains": "error"},
    "never_run": {"is_empty": True},
}


class TableReader:
    """Counts rows through filtered one-row pages: at most `per_second` reads of a table in any second (a
    burst, then a pause), and fewer after each 429 (never below one read per `cap_s`)."""

    def __init__(
        self,
        client: DatabarClient,
        *,
        per_second: float = config.TABLE_READS_PER_SECOND,
        slowdown: float = config.TABLE_READ_SLOWDOWN,
        cap_s: float = config.TABLE_READ_INTERVAL_CAP_S,
    ) -> None:
        self._client = client
        self._per_second = per_second
        self._slowdown = slowdown
        self._cap = cap_s
        self._rate: dict[str, float] = {}
        self._recent: dict[str, deque[float]] = {}
        self.rate_limited = 0  # 429s absorbed by slowing down

    def rate(self, table_uuid: str) -> float:
        """Reads per second allowed on this table now."""
        return self._rate.get(table_uuid, self._per_second)

    async def _turn(self, table_uuid: str) -> None:
        rate = self.rate(table_uuid)
        window = max(1.0, 1.0 / rate)
        allowed = max(1, math.floor(rate * window))
        recent = self._recent.setdefault(table_uuid, deque())
        while True:
            now = time.monotonic()
            while recent and recent[0] <= now - window:
                recent.popleft()
            if len(recent) < allowed:
                recent.append(now)
                return
            await self._sleep(recent[0] + window - now)

    @staticmethod
    async def _sleep(seconds: float) -> None:
        """Pause between reads, unless that would outlast the tool call's deadline (nothing is sent then)."""
        left = deadline.remaining()
        if left is not None and seconds >= left:
            raise DeadlineReached(
                "The tool call's deadline came before the next read of the table.", reached_server=False
            )
        await anyio.sleep(seconds)

    async def _paced(self, table_uuid: str, read: Callable[[], Awaitable[T]]) -> T:
        while True:
            await self._turn(table_uuid)
            try:
                return await read()
            except RateLimited as exc:
                self.rate_limited += 1
                self._rate[table_uuid] = max(1.0 / self._cap, self.rate(table_uuid) / self._slowdown)
                await self._sleep(min(exc.retry_after or 0.0, self._cap))

    async def count(self, table_uuid: str, column: str, condition: dict[str, Any] | None) -> int:
        filter_json = json.dumps({column: condition}) if condition is not None else None
        return await self._paced(table_uuid, lambda: self._client.count_table_rows(table_uuid, filter_json))

    async def states(self, table_uuid: str, status_column: str, *, breakdown: bool = True) -> RowStates:
        """The table's rows by status: one read per status, or for a table that fits one page, that page.

        `breakdown=False` (a run over the whole table, which needs only how many rows there are and how many
        are busy): two reads, where the whole breakdown takes five and, under the per-table pace, a second more.
        """
        total = await self.count(table_uuid, status_column, None)
        if 0 < total <= config.TABLE_PAGE_MAX:
            page = await self._paced(
                table_uuid, lambda: self._client.list_table_rows(table_uuid, page=1, per_page=total)
            )
            if not page.has_next_page and len(page.data) == total:
                return tally(total, [row.get(status_column) for row in page.data])
        if not breakdown:
            processing = await self.count(table_uuid, status_column, _FILTERS["processing"])
            return RowStates(total, processing, completed=0, no_data=0, errors=0, never_run=0, breakdown=False)
        counts = {name: await self.count(table_uuid, status_column, cond) for name, cond in _FILTERS.items()}
        return _states(total, counts)

    async def outcome(self, scope: RunScope) -> RowStates:
        """The table after `scope`'s run finished (no row processing), read as far as run_counts needs it.

        A run over the whole table counts found and errors as the table has them now, and no data as the rest
        of its rows: two reads instead of five, right when the agent is waiting for the answer."""
        if not whole_table(scope.strategy, scope.row_ids) or scope.before.total <= config.TABLE_PAGE_MAX:
            return await self.states(scope.table_uuid, scope.status_column)
        completed = await self.count(scope.table_uuid, scope.status_column, _FILTERS["completed"])
        errors = await self.count(scope.table_uuid, scope.status_column, _FILTERS["errors"])
        no_data = max(0, scope.rows - min(scope.rows, completed) - min(scope.rows, errors))
        return RowStates(
            scope.before.total, 0, completed=completed, no_data=no_data, errors=errors, never_run=0, breakdown=False
        )


def whole_table(strategy: RunStrategy, row_ids: int | Sequence[str] | None) -> bool:
    """A run of every row: its counts are the table's own once it is done, whatever the table held before."""
    return strategy == "run_all" and row_ids is None


def tally(total: int, statuses: Sequence[object]) -> RowStates:
    """Status cells counted as the API's filters count them (equals is case-insensitive; blank is empty)."""
    counts: dict[str, int] = dict.fromkeys(("processing", "completed", "errors", "never_run"), 0)
    for raw in statuses:
        text = "" if raw is None else str(raw).strip().lower()
        if not text:
            counts["never_run"] += 1
        elif text == PROCESSING:
            counts["processing"] += 1
        elif text == "completed":
            counts["completed"] += 1
        elif "error" in text:
            counts["errors"] += 1
    return _states(total, counts)


def _states(total: int, counts: Mapping[str, int]) -> RowStates:
    """The breakdown from the four counted statuses: no data is every other row."""
    return RowStates(
        total=total,
        processing=counts["processing"],
        completed=counts["completed"],
        no_data=max(0, total - sum(counts.values())),
        errors=counts["errors"],
        never_run=counts["never_run"],
    )


def rows_to_run(states: RowStates, strategy: RunStrategy, row_ids: Sequence[str] | None) -> int:
    """How many rows a run would process: the strategy's rows, at most the ids given (an upper bound then)."""
    if strategy == "run_empty":
        rows = states.never_run
    elif strategy == "run_errors":
        rows = states.errors
    else:
        rows = states.total - states.processing
    return min(rows, len(row_ids)) if row_ids is not None else rows


@dataclass(frozen=True)
class RunScope:
    """What the ledger keeps of a table run, to report its own counts later (the table's before the run)."""

    table_uuid: str
    processor_id: int
    name: str
    status_column: str
    output_columns: tuple[str, ...]
    strategy: RunStrategy
    row_ids: int | None  # how many row ids narrowed it
    rows: int  # rows the run processes (Databar's processing_rows once it answered)
    before: RowStates

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunScope:
        return cls(
            table_uuid=str(raw["table_uuid"]),
            processor_id=int(raw["processor_id"]),
            name=str(raw["name"]),
            status_column=str(raw["status_column"]),
            output_columns=tuple(str(c) for c in raw["output_columns"]),
            strategy=raw["strategy"],
            row_ids=raw["row_ids"],
            rows=int(raw["rows"]),
            before=RowStates(**raw["before"]),
        )


@dataclass(frozen=True)
class RunCounts:
    rows: int
    done: int
    still_processing: int
    found: int | None = None
    no_data: int | None = None
    errors: int | None = None
    exact: bool = True  # False: found/no_data/errors are table deltas that other runs of these rows may blur


def run_counts(scope: RunScope, processing: int, after: RowStates | None) -> RunCounts:
    done = max(0, scope.rows - processing)
    if after is None:
        return RunCounts(scope.rows, done, processing)
    before = scope.before
    whole = whole_table(scope.strategy, scope.row_ids)

    def in_run(now: int, earlier: int, earlier_in_scope: int) -> int:
        return max(0, min(scope.rows, now - (earlier - earlier_in_scope)))

    errors_in_scope = before.errors if scope.strategy == "run_errors" and scope.row_ids is None else 0
    return RunCounts(
        rows=scope.rows,
        done=done,
        still_processing=processing,
        found=in_run(after.completed, before.completed, before.completed if whole else 0),
        no_data=in_run(after.no_data, before.no_data, before.no_data if whole else 0),
        errors=in_run(after.errors, before.errors, before.errors if whole else errors_in_scope),
        exact=scope.row_ids is None or scope.strategy != "run_all",
    )


ProgressCallback = Callable[[int, int], Awaitable[None]]
TABLE_POLL_MIN_S = 0.25


async def wait_for_rows(
    reader: TableReader,
    scope: RunScope,
    *,
    timeout_s: float,
    poll_first_s: float,
    poll_cap_s: float,
    on_progress: ProgressCallback | None = None,
    processing: int | None = None,
) -> int | None:
    """Poll the count of rows still processing until it is 0 or `timeout_s` passes; the last count seen.

    The polling plan is the task runner's: with counts moving it aims just past the predicted end.
    """
    # One count read per poll, never more than 1 / TABLE_POLL_MIN_S a second: a table allows 5 reads a second.
    first_s = max(poll_first_s, TABLE_POLL_MIN_S)
    plan = PollPlan(first_s=first_s, cap_s=max(first_s, poll_cap_s), min_s=TABLE_POLL_MIN_S)
    if processing == 0:
        return 0
    last = processing
    deadline = time.monotonic() + max(0.0, timeout_s)
    with anyio.move_on_after(max(0.0, timeout_s)):
        delay = plan.first_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await anyio.sleep(min(delay, remaining))
            asked = time.monotonic()
            last = await reader.count(scope.table_uuid, scope.status_column, {"equals": PROCESSING})
            done = max(0, scope.rows - last)
            progress = TaskProgress(total=scope.rows, completed=done, processing=last)
            task = Task(task_id="table-run", status=PROCESSING, progress=progress)
            plan.observe(time.monotonic(), task, asked=asked)
            if on_progress is not None:
                await on_progress(done, scope.rows)
            if last == 0:
                break
            delay = max(TABLE_POLL_MIN_S, plan.next_at(scope.rows, time.monotonic()) - time.monotonic())
    return last


@dataclass(frozen=True)
class TableSubmitted:
    """A table run sent now (`started`), or an identical earlier one returned instead (`reused`)."""

    scope: RunScope
    started: TableRunStarted | None = None
    reused: Submission | None = None


async def submit_table_run(
    *,
    runner: TaskRunner,
    ledger: Ledger,
    tool: str,
    call: RunRequest,
    scope: RunScope,
    estimated_credits: float | None,
    force: bool,
    window_s: float,
    settle_s: float,
    send: Callable[[RunRequest], Awaitable[TableRunStarted]],
    balance: Callable[[], Awaitable[float | None]] | None = None,
) -> TableSubmitted:
    """Claim the run in the ledger (or find the identical earlier one), then POST it exactly once: `send(call)`,
    the same value that is fingerprinted.

    The ledger keeps the run's scope beside its body, so a later call can report this run's own counts, and
    the balance (`balance()`) read once the run is claimed, so its cost can be measured when it finishes. The
    user's own caps apply as to every run (UserLimitReached).
    """
    endpoint, body = call.endpoint, call.request
    fp = runner.fingerprint(endpoint, body)
    daily_cap = runner.caps(estimated_credits)
    settle_by = time.monotonic() + deadline.bounded(settle_s)  # never waited for past the call's deadline
    while True:
        claim = await ledger.claim(
            tool=tool,
            endpoint=endpoint,
            fingerprint=fp,
            request={"body": body, "scope": scope.as_json()},
            rows=scope.rows,
            estimated_credits=estimated_credits,
            window_s=window_s,
            force=force,
            daily_cap=daily_cap,
        )
        if claim.committed_today is not None:
            assert daily_cap is not None
            raise runner.over_daily_cap(claim.committed_today, estimated_credits, daily_cap)
        earlier = claim.earlier
        if earlier is None:
            break
        if earlier.outcome == "accepted" and "scope" in earlier.request:
            return TableSubmitted(scope=RunScope.from_json(earlier.request["scope"]), reused=earlier)
        in_flight = time.time() - earlier.created_at < settle_s
        if earlier.outcome == "pending" and in_flight and time.monotonic() < settle_by:
            await anyio.sleep(0.05)
            continue
        raise DuplicateRunUnknown(earlier)
    assert claim.submission_id is not None
    submission_id = claim.submission_id
    if balance is not None and (before := await balance()) is not None:  # after the claim: a later run overlaps
        await ledger.note_balance(submission_id, before)  # Databar states no cost: it is measured (core.costs)
    started: TableRunStarted | None = None
    with anyio.CancelScope(shield=True):  # a cancelled call must not lose a run that may bill
        try:
            started = await send(call)
        except SubmissionUnknown as exc:
            await ledger.failed(submission_id, "unknown", exc.message)
            exc.fingerprint = fp
            raise
        except APIConnectionError as exc:
            await ledger.failed(submission_id, "unknown" if exc.reached_server else "rejected", exc.message)
            raise
        except DatabarError as exc:
            await ledger.failed(submission_id, "rejected", exc.message)
            raise
        except BaseException as exc:  # our own bug: the outcome is unknown, so say so
            await ledger.failed(submission_id, "unknown", type(exc).__name__)
            raise
        if started.processing_rows is not None:
            scope = replace(scope, rows=started.processing_rows)
        await ledger.accepted_without_task(submission_id, {"body": body, "scope": scope.as_json()})
    assert started is not None
    return TableSubmitted(scope=scope, started=started)
