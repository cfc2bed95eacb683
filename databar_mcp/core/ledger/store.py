"""Ledger: a durable record of every submission, task and result.

Databar deletes results after 24 hours and agents lose conversations, time out and restart; the ledger
is what lets us promise that nothing a user paid for is ever lost or paid for twice. Every write happens
before the tool waits or returns. It lives in a SQLite file in the state dir (ledger_sqlite.py) or, for
replicas, in PostgreSQL (ledger_pg.py); the logic here is written once over the seam in ledger_backend.py.

A write that fails after Databar accepted a run (the disk is full or failing, the PostgreSQL server restarts)
must not lose the task id: the write is tried again on a new connection, then the id is logged, kept in memory
(listed by `recent`, honoured by the duplicate guard) and in a spool file in the state dir that survives the
process (spool.py), and written as soon as a later ledger call (the tracker's, at the latest) finds the ledger
writable again.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import anyio.to_thread

from databar_mcp import config
from databar_mcp.api.statuses import NOT_REUSABLE_STATUSES, TERMINAL_STATUSES, TaskStatus
from databar_mcp.core.ledger.backend import LedgerBackend, LedgerConn, LedgerError, Row
from databar_mcp.core.ledger.readiness import ReadinessWatch
from databar_mcp.core.ledger.spool import SPOOL_NAME, Spooled, TaskIdSpool
from databar_mcp.core.ledger.sqlite import SqliteBackend, out_of_space
from databar_mcp.core.users import current_owner

if TYPE_CHECKING:
    from databar_mcp.api.models import Task  # the ledger opens at start, a Task is made when one is read
    from databar_mcp.config import Settings

logger = logging.getLogger("databar_mcp.ledger")

T = TypeVar("T")
DAY_S = 24 * 3600.0
ACCEPT_WRITES = 2  # a task id's write is tried this often (a new connection each time) before it is spooled
Outcome = Literal["pending", "accepted", "rejected", "unknown"]
# How a run's credits are known: Databar's own figure, measured from the balance before and after, or only its
# estimate (no measurement was possible: another run overlapped, or the balance could not be read).
CreditsBasis = Literal["databar", "measured", "estimate"]
COUNT_CAP = 1000  # a list's total is counted this far at most ("more than 1,000"): a count never scans a year
ZLIB_LEVEL = 6  # results are repetitive JSON: level 6 gets nearly all of 9's ratio at a fraction of its time


def compressed_json(data: object, text: str | memoryview | None = None) -> bytes:
    """zlib of json.dumps(data), the same bytes, made a row at a time: a 10,000-row result never exists as one
    string and its bytes beside the rows it came from (issue 28: the server's peak memory on big runs).

    `text`: data's own JSON as Databar sent it (UTF-8 bytes, or text), compressed as it is, a slice at a time,
    instead of written out again."""
    if text is not None:
        packer = zlib.compressobj(ZLIB_LEVEL)
        parts: list[bytes] = []
        for i in range(0, len(text), _TEXT_SLICE):
            piece = text[i : i + _TEXT_SLICE]
            parts.append(packer.compress(piece.encode() if isinstance(piece, str) else piece))
        return b"".join([*parts, packer.flush()])
    if not isinstance(data, list):
        return zlib.compress(json.dumps(data, ensure_ascii=False).encode(), ZLIB_LEVEL)
    rows = cast(list[Any], data)
    packer = zlib.compressobj(ZLIB_LEVEL)
    parts: list[bytes] = []
    for start in range(0, max(1, len(rows)), _ROWS_PER_CHUNK):
        chunk = ", ".join(json.dumps(row, ensure_ascii=False) for row in rows[start : start + _ROWS_PER_CHUNK])
        last = start + _ROWS_PER_CHUNK >= len(rows)
        parts.append(packer.compress((("[" if start == 0 else ", ") + chunk + ("]" if last else "")).encode()))
    parts.append(packer.flush())
    return b"".join(parts)


_ROWS_PER_CHUNK = 500
_TEXT_SLICE = 1 << 18  # characters of a result's JSON text compressed at a time


def _sql_list(statuses: frozenset[TaskStatus]) -> str:
    """Statuses as an SQL list literal in a stable order; from the enum (never input), so SQL and Python agree."""
    return "(" + ", ".join(f"'{status.value}'" for status in sorted(statuses)) + ")"


SUMMARY_ONLY = "request_json = '{}', pruned_at = ?"  # a pruned run keeps all but its request (the input rows)
# The terminal states of an MCP task handle (databar_mcp.mcp_tasks.handles owns them; a test checks they agree).
FINISHED_HANDLES_SQL = "('cancelled', 'completed', 'protocol_error', 'tool_error')"

MIGRATIONS: tuple[str, ...] = (
    # v1
    """
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tool TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        request_json TEXT NOT NULL,
        rows INTEGER,
        estimated_credits REAL,
        created_at REAL NOT NULL,
        outcome TEXT NOT NULL,
        task_id TEXT,
        error TEXT
    );
    CREATE INDEX submissions_by_fingerprint ON submissions(fingerprint, created_at);
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        submission_id INTEGER REFERENCES submissions(id),
        status TEXT NOT NULL,
        progress_json TEXT,
        credits_spent REAL,
        rows_total INTEGER,
        rows_with_data INTEGER,
        errors_json TEXT,
        submitted_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        completed_at REAL
    );
    CREATE INDEX tasks_by_time ON tasks(submitted_at);
    CREATE TABLE results (
        task_id TEXT PRIMARY KEY REFERENCES tasks(task_id),
        data_json TEXT NOT NULL,
        saved_at REAL NOT NULL
    );
    """,
    # v2: MCP task handles (issue 16), each tied to the Databar task it waits on; owned by databar_mcp.mcp_tasks
    """
    CREATE TABLE mcp_tasks (
        handle_id TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        generation TEXT NOT NULL,
        tool TEXT NOT NULL,
        request_json TEXT NOT NULL,
        databar_task_id TEXT,
        state TEXT NOT NULL,
        status_message TEXT,
        progress_json TEXT,
        poll_ms INTEGER,
        ttl_ms INTEGER,
        result_json TEXT,
        input_json TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX mcp_tasks_by_scope ON mcp_tasks(scope, created_at);
    CREATE INDEX mcp_tasks_by_databar_task ON mcp_tasks(databar_task_id)
    """,
    # v3: who a run was for (the OAuth token's subject; NULL without OAuth), so users see only their own
    """
    ALTER TABLE submissions ADD COLUMN owner TEXT;
    CREATE INDEX submissions_by_owner ON submissions(owner, created_at)
    """,
    # v4: each sealed requestState a tools/call answered with, spent once (one confirmation, one run; issue 22);
    # owned by databar_mcp.core.rounds
    """
    CREATE TABLE spent_rounds (
        digest TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    CREATE INDEX spent_rounds_by_expiry ON spent_rounds(expires_at)
    """,
    # v5: what a run without a Databar task (a table run) cost, and the balance around a run (issue 23): the
    # balance before it (read before the POST, or right after a lost reply), what it spent once settled and how
    # that figure was obtained ('measured' from the balance, or 'estimate' when no measurement was possible)
    """
    ALTER TABLE submissions ADD COLUMN balance_before REAL;
    ALTER TABLE submissions ADD COLUMN credits_spent REAL;
    ALTER TABLE submissions ADD COLUMN credits_basis TEXT;
    ALTER TABLE submissions ADD COLUMN settled_at REAL
    """,
    # v6: a file run as one job (issue 25): its parts, each tied to the bulk run that carried it, so the same call
    # resumes where it stopped and never sends a part twice; owned by databar_mcp.core.jobs
    """
    CREATE TABLE file_jobs (
        job_id TEXT PRIMARY KEY,
        owner TEXT,
        tool TEXT NOT NULL,
        input_file TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        rows INTEGER NOT NULL,
        parts INTEGER NOT NULL,
        mapping_json TEXT NOT NULL,
        estimated_credits REAL,
        output_file TEXT,
        output_rows INTEGER,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE file_job_parts (
        job_id TEXT NOT NULL REFERENCES file_jobs(job_id),
        part INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        first_row INTEGER NOT NULL,
        stop_row INTEGER NOT NULL,
        rows_sent INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        sent_at REAL NOT NULL,
        PRIMARY KEY (job_id, part)
    );
    CREATE INDEX file_job_parts_by_fingerprint ON file_job_parts(fingerprint)
    """,
    # v7: a ledger that lasts a year (issue 26). Every query path has an index: a task's owner is copied from its
    # run (the per-user list needs no join), each unfinished task has the time its next poll is due (the tracker
    # takes the oldest-due, and NULL means finished), results are stored compressed (data_z; older rows keep
    # data_json) and a task past the retention period is pruned to a summary (pruned_at says when).
    f"""
    ALTER TABLE tasks ADD COLUMN owner TEXT;
    ALTER TABLE tasks ADD COLUMN next_poll_at REAL;
    ALTER TABLE tasks ADD COLUMN pruned_at REAL;
    ALTER TABLE results ADD COLUMN data_z BLOB;
    UPDATE tasks SET owner = (SELECT s.owner FROM submissions s WHERE s.id = tasks.submission_id)
        WHERE submission_id IS NOT NULL;
    UPDATE tasks SET next_poll_at = updated_at WHERE status NOT IN {_sql_list(TERMINAL_STATUSES)};
    CREATE INDEX tasks_by_owner ON tasks(owner, submitted_at);
    CREATE INDEX tasks_by_submission ON tasks(submission_id);
    CREATE INDEX tasks_due ON tasks(next_poll_at) WHERE next_poll_at IS NOT NULL;
    CREATE INDEX tasks_unfinished ON tasks(owner, submitted_at) WHERE next_poll_at IS NOT NULL;
    CREATE INDEX tasks_prunable ON tasks(completed_at) WHERE pruned_at IS NULL;
    CREATE INDEX submissions_by_task ON submissions(task_id);
    CREATE INDEX submissions_by_time ON submissions(created_at);
    CREATE INDEX submissions_by_outcome ON submissions(outcome, created_at);
    CREATE INDEX submissions_by_endpoint ON submissions(endpoint, created_at)
    """,  # noqa: S608 - the status list is built from the enum
    # v8: what else a year leaves behind goes with the results (issue 26): a run without a Databar task (a table
    # run, a refused run) is pruned to its summary like a task's run (pruned_at says when), and a finished MCP
    # task handle is deleted; each has the index its batches are taken from.
    f"""
    ALTER TABLE submissions ADD COLUMN pruned_at REAL;
    CREATE INDEX submissions_prunable ON submissions(created_at) WHERE pruned_at IS NULL AND task_id IS NULL;
    CREATE INDEX mcp_tasks_finished ON mcp_tasks(updated_at) WHERE state IN {FINISHED_HANDLES_SQL}
    """,
)

# What the migrations build: checked at open, so a damaged ledger is refused before anything is sent.
SCHEMA_TABLES: dict[str, frozenset[str]] = {
    "submissions": frozenset(
        {"id", "tool", "endpoint", "fingerprint", "request_json", "rows", "estimated_credits", "created_at"}
        | {"outcome", "task_id", "error", "owner", "balance_before", "credits_spent", "credits_basis", "settled_at"}
        | {"pruned_at"}
    ),
    "tasks": frozenset(
        {"task_id", "submission_id", "status", "progress_json", "credits_spent", "rows_total", "rows_with_data"}
        | {"errors_json", "submitted_at", "updated_at", "completed_at", "owner", "next_poll_at", "pruned_at"}
    ),
    "results": frozenset({"task_id", "data_json", "data_z", "saved_at"}),
    "mcp_tasks": frozenset(
        {"handle_id", "scope", "generation", "tool", "request_json", "databar_task_id", "state", "status_message"}
        | {"progress_json", "poll_ms", "ttl_ms", "result_json", "input_json", "created_at", "updated_at"}
    ),
    "spent_rounds": frozenset({"digest", "expires_at"}),
    "file_jobs": frozenset(
        {"job_id", "owner", "tool", "input_file", "file_sha256", "rows", "parts", "mapping_json"}
        | {"estimated_credits", "output_file", "output_rows", "state", "created_at", "updated_at"}
    ),
    "file_job_parts": frozenset(
        {"job_id", "part", "fingerprint", "first_row", "stop_row", "rows_sent", "task_id", "sent_at"}
    ),
}


async def _check_schema(conn: LedgerConn, where: str) -> None:
    """Refuse a ledger whose tables are missing or incomplete."""
    for table, columns in SCHEMA_TABLES.items():
        found = await conn.columns(table)
        if not found:
            raise LedgerError(f"the ledger {where} is damaged: table {table} is missing (move it away to start anew)")
        if missing := sorted(columns - found):
            raise LedgerError(f"the ledger {where} is damaged: table {table} lacks column(s) {', '.join(missing)}")


async def _check_integrity(conn: LedgerConn, where: str) -> None:
    """Refuse a ledger that fails the database's own check. It reads the whole file (seconds for a year's
    ledger), so it runs after the migration's transaction: other processes sharing the ledger keep writing."""
    verdict = await conn.integrity()
    if verdict != "ok":
        raise LedgerError(f"the ledger {where} is damaged ({verdict[:200]}): move it away to start a new one")


UNKNOWN_TO_DATABAR = TaskStatus.UNKNOWN_TO_DATABAR

TERMINAL_SQL = _sql_list(TERMINAL_STATUSES)  # e.g. "t.status IN " + TERMINAL_SQL


@dataclass(frozen=True)
class Submission:
    id: int
    tool: str
    endpoint: str
    fingerprint: str
    request: dict[str, Any]
    rows: int | None
    estimated_credits: float | None
    created_at: float
    outcome: Outcome
    task_id: str | None
    error: str | None
    owner: str | None = None
    balance_before: float | None = None  # the balance before the run (or right after its reply was lost)
    credits_spent: float | None = None  # a run without a task: what it spent, once settled
    credits_basis: CreditsBasis | None = None
    settled_at: float | None = None


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    status: str
    progress: dict[str, Any] | None
    credits_spent: float | None
    rows_total: int | None
    rows_with_data: int | None
    errors: list[str]
    submitted_at: float
    updated_at: float
    completed_at: float | None
    has_result: bool
    submission: Submission | None
    data_json: str | None = field(default=None, repr=False)  # the stored result, when read with_data
    pruned_at: float | None = None  # when the retention period removed its result (the summary stays)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def estimated_credits(self) -> float | None:
        """What its run was estimated to cost at most (None when it was not submitted here)."""
        return self.submission.estimated_credits if self.submission is not None else None

    def stored_task(self) -> Task | None:
        """The task as Databar last showed it, with its stored data; None without a local result."""
        if self.data_json is None:
            return None
        return self._as_task(json.loads(self.data_json))

    def stored_summary(self) -> Task | None:
        """The task as stored, without its rows (a record read with_data=False), for a caller that holds them
        already; None without a local result."""
        return self._as_task(None) if self.has_result else None

    def _as_task(self, data: list[Any] | None) -> Task:
        from databar_mcp.api.models import Task, TaskProgress

        return Task(
            task_id=self.task_id,
            status=self.status,
            progress=TaskProgress.model_validate(self.progress) if self.progress else None,
            data=data,
            error=self.errors or None,
            credits_spent=self.credits_spent,
        )


class TaskIdTaken(Exception):
    """Databar gave a run a task id that the ledger already holds for a different submission."""

    def __init__(self, task_id: str, submission_id: int) -> None:
        super().__init__(f"task id {task_id} already belongs to submission {submission_id}")
        self.task_id = task_id
        self.submission_id = submission_id


class TaskNotOurs(Exception):
    """Databar's task under a run's task id holds a different number of rows than the run sent: it is another
    run's task (a duplicate id upstream), so its rows must never be stored or served as this run's."""

    def __init__(self, task_id: str, sent: int, seen: int) -> None:
        super().__init__(f"task {task_id} holds {seen} row(s) but its run sent {sent}")
        self.task_id = task_id
        self.sent = sent
        self.seen = seen


@dataclass(frozen=True)
class Claim:
    """The answer to 'may I submit this run?': a fresh submission id, or the earlier run to reuse."""

    submission_id: int | None
    earlier: Submission | None
    committed_today: float | None = None  # set when the owner's daily cap refused the run: what it had spent


def _rows_with_data(data: object) -> tuple[int | None, int | None]:
    if isinstance(data, list):
        items = cast(list[Any], data)
        return len(items), sum(1 for item in items if item is not None)
    if data is None:
        return None, None
    return 1, 1


class Ledger:
    """The ledger's operations, on SQLite (a path) or another backend (PostgreSQL: see ledger_for)."""

    def __init__(self, where: Path | LedgerBackend, *, spool: Path | None = None) -> None:
        """`spool`: the file that keeps task ids the ledger could not take yet (default: beside a SQLite ledger;
        a PostgreSQL ledger has it in the state dir, see ledger_for; None for another backend: memory only)."""
        self._db: LedgerBackend = SqliteBackend(where) if isinstance(where, Path) else where
        self._ready = False
        if spool is None and isinstance(where, Path):
            spool = where.parent / SPOOL_NAME
        self._spool = None if spool is None else TaskIdSpool(spool, self._db.where)
        self._spool_loaded = False
        # Writes that could not be made, replayed (in this order) before the next ledger call.
        self._unwritten_accepts: dict[int, Spooled] = {}
        self._unwritten_tasks: dict[str, Task] = {}
        # Runs Databar accepted without a task id (table runs) whose record could not be written: their request
        # as the reply completed it. In memory only (the spool holds task ids); the record stays 'pending'.
        self._unwritten_taskless: dict[int, dict[str, Any]] = {}
        self._written: list[int] = []  # spooled submissions the last replay wrote (their slots are freed after)
        self._readiness: ReadinessWatch | None = None

    @property
    def where(self) -> str:
        """The ledger's location for messages (never a password)."""
        return self._db.where

    @property
    def backend(self) -> LedgerBackend:
        """The store itself, for maintenance that differs by backend (sizes, VACUUM: see retention.py)."""
        return self._db

    # ---- plumbing ----------------------------------------------------------------------------------------

    async def _migrate(self, conn: LedgerConn) -> None:
        """Create or upgrade the schema, then check it; any problem is a LedgerError naming the ledger."""
        try:
            await conn.begin_migration()
            try:
                version = await conn.schema_version()
                if version > len(MIGRATIONS):
                    raise LedgerError(
                        f"the ledger {self.where} has schema v{version}, newer than this databar-mcp knows "
                        f"(v{len(MIGRATIONS)}): upgrade databar-mcp, or use another ledger"
                    )
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    await conn.run_script(script)
                    await conn.set_schema_version(number)
                # Written even when nothing changed: a ledger that can be read but not written (a read-only state
                # dir whose ledger is open elsewhere) is refused here, at start, not by every run at its claim.
                await conn.set_schema_version(len(MIGRATIONS))
                await _check_schema(conn, self.where)
                await conn.commit()
            except BaseException:
                await _quiet_rollback(conn)  # e.g. a failed COMMIT already ended it
                raise
            await _check_integrity(conn, self.where)
        except LedgerError:
            raise
        except Exception as exc:
            if (explained := self._db.unusable(exc)) is None:
                raise
            raise explained from None
        self._ready = True

    async def _run(self, fn: Callable[[LedgerConn], Awaitable[T]]) -> T:
        if not self._spool_loaded:
            await anyio.to_thread.run_sync(self._load_spool)

        async def work(conn: LedgerConn) -> T:
            if not self._ready:
                await self._migrate(conn)
            if self._unwritten_accepts or self._unwritten_tasks or self._unwritten_taskless:
                await self._replay(conn)
            return await fn(conn)

        try:
            return await self._db.run(work)
        finally:
            if self._written:
                await anyio.to_thread.run_sync(self._unspool)

    def _load_spool(self) -> None:
        """Make the spool ready, and take up the ids an earlier process kept there (it exited before writing them)."""
        self._spool_loaded = True
        if self._spool is None or not self._spool.open():
            return
        for entry in self._spool.load():
            if entry.submission_id not in self._unwritten_accepts:
                logger.warning(
                    "task %s (submission %d) waits in the spool: writing it", entry.task_id, entry.submission_id
                )
                self._unwritten_accepts[entry.submission_id] = entry

    def _unspool(self) -> None:
        written, self._written = self._written, []
        for submission_id in written:
            if self._spool is not None:
                self._spool.drop(submission_id)

    def _kept_back(self, exc: BaseException) -> bool:
        """A write that failed for want of the ledger (full disk, database gone): kept, never lost."""
        return isinstance(exc, LedgerError) or self._db.out_of_space(exc)

    async def _replay(self, conn: LedgerConn) -> None:
        """Write what an earlier call had to keep back, now that the ledger may take it again."""
        for key, accepted in list(self._unwritten_accepts.items()):
            try:
                await self._write_accepted(conn, accepted.submission_id, accepted.task_id, accepted.status, accepted.at)
            except TaskIdTaken as exc:
                logger.error("unwritten task %s could not be recorded: %s", accepted.task_id, exc)
            except Exception as exc:
                if self._db.out_of_space(exc):
                    return  # still no space: keep everything for the next call
                raise
            if self._unwritten_accepts.pop(key, None) is not None:
                self._written.append(key)
                logger.warning("task %s is now written to the ledger", accepted.task_id)
        for task_id, task in list(self._unwritten_tasks.items()):
            try:
                await self._write_observed(conn, task, time.time())
            except TaskNotOurs as exc:
                logger.error("unwritten state of task %s dropped: %s", task_id, exc)
            except Exception as exc:
                if self._db.out_of_space(exc):
                    return
                raise
            self._unwritten_tasks.pop(task_id, None)
        for submission_id, request in list(self._unwritten_taskless.items()):
            try:
                await self._write_taskless(conn, submission_id, request)
            except Exception as exc:
                if self._db.out_of_space(exc):
                    return
                raise
            self._unwritten_taskless.pop(submission_id, None)
            logger.warning("submission %d is now written to the ledger as accepted", submission_id)

    @property
    def unwritten(self) -> int:
        """How many records wait in memory for space to be written."""
        return len(self._unwritten_accepts) + len(self._unwritten_tasks) + len(self._unwritten_taskless)

    def _unwritten_task_ids(self) -> dict[str, Spooled]:
        return {a.task_id: a for a in self._unwritten_accepts.values()}

    def close(self) -> None:
        """Close a SQLite ledger's connection (a PostgreSQL pool closes in aclose)."""
        self._stop_readiness()
        self._db.close()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._stop_readiness)
        await self._db.aclose()

    def readiness(
        self, *, interval_s: float = config.READY_CHECK_INTERVAL_S, stale_s: float = config.READY_STALE_S
    ) -> ReadinessWatch:
        """What /readyz answers from without awaiting: checked every `interval_s` by a thread of its own, started
        on the first call (whose timings hold). Only for an opened ledger."""
        if self._readiness is None:
            self._readiness = ReadinessWatch(self._db.probe_blocking, interval_s=interval_s, stale_s=stale_s)
            self._readiness.start()
        return self._readiness

    def _stop_readiness(self) -> None:
        watch, self._readiness = self._readiness, None
        if watch is not None:
            watch.stop()

    async def open(self) -> None:
        await self._run(_nothing)

    def check(self) -> None:
        """Open (create or upgrade) and check the ledger now, in this thread: LedgerError says what is wrong."""
        try:
            self._db.run_blocking(self._migrate)
        finally:
            self._db.close()

    async def call(self, fn: Callable[[LedgerConn], Awaitable[T]]) -> T:
        """Run `fn` on a ledger connection (either backend): for modules that own a table of their own."""
        return await self._run(fn)

    @staticmethod
    async def schema_version(conn: LedgerConn) -> int:
        return await conn.schema_version()

    async def version(self) -> int:
        return await self._run(self.schema_version)

    async def probe(self) -> None:
        """Readiness: the store answers (before the first call: it opens and migrates). On SQLite this never waits
        behind the shared connection's query (a reader of its own); PostgreSQL answers from its pool."""
        if not self._ready:
            await self.version()
            return
        await self._db.probe()

    @asynccontextmanager
    async def tracking_turn(self) -> AsyncGenerator[bool]:
        """True when this process does the background tracker's pass now (one replica at a time)."""
        async with self._db.tracking_turn() as mine:
            yield mine

    # ---- submissions -------------------------------------------------------------------------------------

    async def claim(
        self,
        *,
        tool: str,
        endpoint: str,
        fingerprint: str,
        request: dict[str, Any],
        rows: int | None,
        estimated_credits: float | None,
        window_s: float,
        force: bool,
        daily_cap: float | None = None,
    ) -> Claim:
        """Atomically: return an earlier identical run still running or recent, or record a new intent.

        The run is recorded for the current user (users.current_owner); with `daily_cap`, a new run that would
        take that user's last 24 hours past it is refused (committed_today set) in the same transaction, under
        the user's lock, so replicas cannot both let a user's last credits go twice.
        """
        now = time.time()
        owner = current_owner()

        async def work(conn: LedgerConn) -> Claim:
            keys = [f"run:{fingerprint}"] + ([f"owner:{owner}"] if daily_cap is not None else [])
            await conn.begin(*keys)
            try:
                earlier = None if force else await self._earlier(conn, fingerprint, now - window_s)
                if earlier is not None:
                    await conn.commit()
                    return Claim(submission_id=None, earlier=earlier)
                if daily_cap is not None:
                    committed = await self._committed(conn, owner, now - DAY_S)
                    # A run without an estimate could cost anything: under a cap it never goes as free.
                    if estimated_credits is None or committed + estimated_credits > daily_cap:
                        await conn.commit()
                        return Claim(submission_id=None, earlier=None, committed_today=committed)
                row = await conn.one(
                    """INSERT INTO submissions (tool, endpoint, fingerprint, request_json, rows, estimated_credits,
                                                created_at, outcome, owner)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING id""",
                    (tool, endpoint, fingerprint, json.dumps(request), rows, estimated_credits, now, owner),
                )
                await conn.commit()
                assert row is not None
                return Claim(submission_id=int(row[0]), earlier=None)
            except BaseException:
                await conn.rollback()
                raise

        return await self._run(work)

    @staticmethod
    async def _committed(conn: LedgerConn, owner: str | None, since: float) -> float:
        """Credits a user's runs since `since` spent, or may still spend (the estimate until a run has finished)."""
        who = "s.owner IS NULL" if owner is None else "s.owner = ?"
        row = await conn.one(
            f"""SELECT COALESCE(SUM(CASE WHEN t.status IN {TERMINAL_SQL} AND t.credits_spent IS NOT NULL
                                         THEN t.credits_spent ELSE COALESCE(s.estimated_credits, 0) END), 0)
                FROM submissions s LEFT JOIN tasks t ON t.task_id = s.task_id
                WHERE {who} AND s.created_at >= ? AND s.outcome != 'rejected'""",  # noqa: S608
            (since,) if owner is None else (owner, since),
        )
        return 0.0 if row is None else float(row[0])

    async def earlier_run(self, fingerprint: str, *, window_s: float) -> Submission | None:
        """The identical run a claim would return now (read-only: lets a tool skip asking to pay for a reuse)."""
        since = time.time() - window_s
        return await self._run(lambda conn: self._earlier(conn, fingerprint, since))

    async def _earlier(self, conn: LedgerConn, fingerprint: str, since: float) -> Submission | None:
        """An identical run still running, or sent/finished since `since` (rejected runs never count)."""
        row = await conn.one(
            f"""SELECT s.* FROM submissions s LEFT JOIN tasks t ON t.task_id = s.task_id
                WHERE s.fingerprint = ? AND s.outcome IN ('pending', 'accepted', 'unknown')
                  AND (s.created_at >= ? OR (s.outcome = 'accepted' AND t.status NOT IN {TERMINAL_SQL}))
                ORDER BY s.created_at DESC LIMIT 1""",  # noqa: S608 - the list is built from the enum
            (fingerprint, since),
        )
        if row is None:
            return None
        earlier = _submission(row)
        kept = self._unwritten_accepts.get(earlier.id)
        if kept is not None:  # accepted, but the disk was full when it came back: the task id is in memory
            return replace(earlier, outcome="accepted", task_id=kept.task_id)
        if (taskless := self._unwritten_taskless.get(earlier.id)) is not None:  # the same, for a run with no id
            return replace(earlier, outcome="accepted", request=taskless)
        if earlier.outcome == "accepted" and await self._status(conn, earlier.task_id) == UNKNOWN_TO_DATABAR:
            # Databar gave this run a task id and then never showed it: it may have run and billed, so an
            # identical run is not sent again unless the caller forces it.
            return replace(earlier, outcome="unknown", error="Databar never showed the task it returned.")
        # A finished task counts only if it finished inside the window (and did not fail).
        if earlier.outcome != "accepted" or await self._fresh(conn, earlier, since):
            return earlier
        return None

    @staticmethod
    async def _status(conn: LedgerConn, task_id: str | None) -> str | None:
        row = await conn.one("SELECT status FROM tasks WHERE task_id = ?", (task_id,))
        return None if row is None else str(row["status"])

    @staticmethod
    async def _fresh(conn: LedgerConn, earlier: Submission, since: float) -> bool:
        row = await conn.one("SELECT status, completed_at FROM tasks WHERE task_id = ?", (earlier.task_id,))
        if row is None or row["status"] not in TERMINAL_STATUSES:
            return True
        if row["status"] in NOT_REUSABLE_STATUSES:
            return False
        return row["completed_at"] is None or row["completed_at"] >= since

    async def accepted(self, submission_id: int, task_id: str, status: str) -> bool:
        """Record the task id the moment Databar returns it (before any waiting).

        True when written. A failed write (a connection the database closed) is tried again on a new connection;
        when the ledger still cannot take it (full disk, database down) it returns False: the id is logged, kept
        in memory and in the spool file, and written by the first later call the ledger answers. Raises
        TaskIdTaken (nothing written) when the id already belongs to another submission: two runs are never
        merged into one task.
        """
        now = time.time()

        async def work(conn: LedgerConn) -> None:
            await self._write_accepted(conn, submission_id, task_id, status, now)

        failure: Exception | None = None
        for _ in range(ACCEPT_WRITES):
            try:
                await self._run(work)
                return True
            except TaskIdTaken:
                raise
            except Exception as exc:  # whatever it was, the id Databar billed for is not dropped
                failure = exc
                if self._db.out_of_space(exc):
                    break  # no space now is no space a moment later
                logger.warning("writing task %s failed (%s); trying again", task_id, _one_line(exc))
        await self._keep_accepted(Spooled(submission_id, task_id, status, now), failure)
        return False

    async def _keep_accepted(self, entry: Spooled, failure: BaseException | None) -> None:
        self._unwritten_accepts[entry.submission_id] = entry
        spooled = self._spool is not None and await anyio.to_thread.run_sync(self._spool.keep, entry)
        logger.error(
            "the ledger cannot be written (%s): task %s of submission %d is kept %s until it can",
            _one_line(failure) if failure is not None else "?",
            entry.task_id,
            entry.submission_id,
            "in memory and in the spool file" if spooled else "in memory only",
        )

    @staticmethod
    async def _write_accepted(conn: LedgerConn, submission_id: int, task_id: str, status: str, now: float) -> None:
        await conn.begin(f"task:{task_id}")
        try:
            owner = await conn.one(
                """SELECT id FROM submissions WHERE task_id = ? AND id != ?
                   UNION SELECT submission_id FROM tasks WHERE task_id = ? AND submission_id != ?""",
                (task_id, submission_id, task_id, submission_id),
            )
            if owner is not None:
                raise TaskIdTaken(task_id, int(owner[0]))
            await conn.execute(
                "UPDATE submissions SET outcome = 'accepted', task_id = ? WHERE id = ?", (task_id, submission_id)
            )
            await conn.execute(
                """INSERT INTO tasks (task_id, submission_id, status, submitted_at, updated_at, next_poll_at, owner)
                   VALUES (?, ?, ?, ?, ?, ?, (SELECT owner FROM submissions WHERE id = ?))
                   ON CONFLICT(task_id) DO UPDATE SET submission_id = excluded.submission_id, owner = excluded.owner""",
                (task_id, submission_id, status, now, now, None if status in TERMINAL_STATUSES else now, submission_id),
            )
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise

    async def failed(self, submission_id: int, outcome: Outcome, error: str) -> None:
        """'rejected': Databar refused it (nothing started). 'unknown': it may have started.

        With the disk full or the database gone the submission stays 'pending', which the duplicate guard already
        treats as unknown once its sender is gone: the safe reading either way (and the caller's own answer, a
        refusal or submission_unknown, is not replaced by the ledger's trouble).
        """

        async def work(conn: LedgerConn) -> None:
            await conn.execute(
                "UPDATE submissions SET outcome = ?, error = ? WHERE id = ?", (outcome, error[:500], submission_id)
            )

        try:
            await self._run(work)
        except Exception as exc:
            if not self._kept_back(exc):
                raise
            logger.error(
                "the ledger cannot be written (%s): submission %d stays pending", _one_line(exc), submission_id
            )

    async def submission(self, submission_id: int) -> Submission | None:
        async def work(conn: LedgerConn) -> Submission | None:
            row = await conn.one("SELECT * FROM submissions WHERE id = ?", (submission_id,))
            return None if row is None else _submission(row)

        return await self._run(work)

    # ---- tasks and results -------------------------------------------------------------------------------

    async def observe(self, task: Task) -> None:
        """Record what a poll showed; a terminal task's data is stored in full, in the same transaction.

        With the disk full the latest state (a terminal one is never replaced) is kept in memory and written
        by the first later call that finds space.
        """
        now = time.time()

        async def work(conn: LedgerConn) -> None:
            await self._write_observed(conn, task, now)

        try:
            await self._run(work)
        except Exception as exc:
            if not self._kept_back(exc):
                raise
            kept = self._unwritten_tasks.get(task.task_id)
            if kept is None or not kept.is_terminal:
                self._unwritten_tasks[task.task_id] = task
            logger.error("the ledger cannot be written (%s): task %s is kept in memory", _one_line(exc), task.task_id)

    @staticmethod
    async def _check_owner(conn: LedgerConn, task: Task, rows_total: int | None) -> None:
        """Raise TaskNotOurs when a bulk run's finished task holds a number of rows other than the run sent."""
        owner = await conn.one(
            "SELECT s.tool, s.rows FROM tasks t JOIN submissions s ON s.id = t.submission_id WHERE t.task_id = ?",
            (task.task_id,),
        )
        if owner is None or owner["rows"] is None or not str(owner["tool"]).startswith("run_bulk_"):
            return
        # Only the data is checked: a bulk result is documented to hold one entry per input, in order.
        if rows_total is not None and rows_total != owner["rows"]:
            raise TaskNotOurs(task.task_id, int(owner["rows"]), rows_total)

    async def disown(self, task_id: str, reason: str) -> None:
        """Mark a run's task id as not its task at Databar: no longer tracked, its run counted as of unknown
        outcome by the duplicate guard (it may have billed), the reason kept with the task and the run."""
        now = time.time()

        async def work(conn: LedgerConn) -> None:
            await conn.begin(f"task:{task_id}")
            try:
                await conn.execute(
                    """UPDATE tasks SET status = ?, errors_json = ?, updated_at = ?, completed_at = ?,
                                        next_poll_at = NULL WHERE task_id = ?""",
                    (UNKNOWN_TO_DATABAR, json.dumps([reason]), now, now, task_id),
                )
                await conn.execute("UPDATE submissions SET error = ? WHERE task_id = ?", (reason[:500], task_id))
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise

        await self._run(work)

    @staticmethod
    async def _write_observed(conn: LedgerConn, task: Task, now: float) -> None:
        progress = task.progress.model_dump() if task.progress is not None else None
        terminal = task.is_terminal
        with_data = terminal and task.data is not None and task.status != "gone"
        rows_total, rows_found = _rows_with_data(task.data) if with_data else (None, None)
        data_z = compressed_json(task.data, task.data_json) if with_data else None
        await conn.begin(f"task:{task.task_id}")
        try:
            await Ledger._check_owner(conn, task, rows_total if isinstance(task.data, list) else None)
            existing = await conn.one("SELECT status FROM tasks WHERE task_id = ?", (task.task_id,))
            # A task Databar said finished never runs again: a poll answered before it finished but written
            # after (a cancel racing a watcher's poll), or Databar's later 'gone', must not replace what is
            # known. (unknown_to_databar is only our inference: a task Databar then shows running replaces it.)
            revived = not terminal and existing is not None and existing["status"] != UNKNOWN_TO_DATABAR
            if (
                existing is not None
                and existing["status"] in TERMINAL_STATUSES
                and (revived or task.status == TaskStatus.GONE)
            ):
                await conn.execute("UPDATE tasks SET updated_at = ? WHERE task_id = ?", (now, task.task_id))
                await conn.commit()
                return
            await conn.execute(
                """INSERT INTO tasks (task_id, status, progress_json, credits_spent, rows_total, rows_with_data,
                                      errors_json, submitted_at, updated_at, completed_at, next_poll_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(task_id) DO UPDATE SET
                       status = excluded.status,
                       progress_json = COALESCE(excluded.progress_json, tasks.progress_json),
                       credits_spent = COALESCE(excluded.credits_spent, tasks.credits_spent),
                       rows_total = COALESCE(excluded.rows_total, tasks.rows_total),
                       rows_with_data = COALESCE(excluded.rows_with_data, tasks.rows_with_data),
                       errors_json = COALESCE(excluded.errors_json, tasks.errors_json),
                       updated_at = excluded.updated_at,
                       completed_at = COALESCE(tasks.completed_at, excluded.completed_at),
                       next_poll_at = CASE WHEN excluded.next_poll_at IS NULL THEN NULL
                                           ELSE COALESCE(tasks.next_poll_at, excluded.next_poll_at) END""",
                (
                    task.task_id,
                    task.status,
                    json.dumps(progress) if progress is not None else None,
                    task.credits_spent,
                    rows_total,
                    rows_found,
                    json.dumps(task.errors) if task.errors else None,
                    now,
                    now,
                    now if terminal else None,
                    None if terminal else now,
                ),
            )
            if data_z is not None:
                await conn.execute(
                    """INSERT INTO results (task_id, data_json, data_z, saved_at) VALUES (?, '', ?, ?)
                       ON CONFLICT(task_id) DO NOTHING""",
                    (task.task_id, data_z, now),
                )
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise

    async def read(self, task_id: str, *, with_data: bool = True) -> TaskRecord | None:
        """Everything known of a task in one query: its state, its run (submission and estimate) and, with
        `with_data`, its stored result. None when unknown here, or another user's."""
        owner = current_owner()
        mine, mine_params = _mine(owner)

        async def work(conn: LedgerConn) -> TaskRecord | None:
            row = await conn.one(f"{_task_select(with_data)} WHERE t.task_id = ?{mine}", (task_id, *mine_params))
            if row is not None:
                return _task_record(row)
            kept = self._unwritten_task_ids().get(task_id)
            record = None if kept is None else await self._kept_record(conn, kept)
            return record if record is None or _visible(record, owner) else None

        return await self._run(work)

    async def recent(self, *, limit: int, offset: int, unfinished_only: bool = False) -> tuple[list[TaskRecord], int]:
        """Tasks newest first; those still waiting in memory for disk space come first (they are the newest).
        A user sees only their own; a server without OAuth sees all. The total is exact up to COUNT_CAP (or the
        page's end) and COUNT_CAP + 1 beyond: "more than 1,000" (counting a year of runs would scan them all)."""
        owner = current_owner()
        mine, mine_params = _mine(owner)
        unfinished = f" AND t.next_poll_at IS NOT NULL AND t.status NOT IN {TERMINAL_SQL}" if unfinished_only else ""
        where = "WHERE 1 = 1" + unfinished + mine
        # Unfinished tasks are few among a year's: found by their own index and sorted, never by walking the time
        # index past every finished one ("+" keeps the planner off tasks_by_time).
        order = "+t.submitted_at" if unfinished_only else "t.submitted_at"
        bound = max(COUNT_CAP, offset + limit) + 1  # counted up to here: "more than 1,000" costs no scan

        async def work(conn: LedgerConn) -> tuple[list[TaskRecord], int]:
            kept = [await self._kept_record(conn, a) for a in reversed(self._unwritten_accepts.values())]
            kept = [r for r in kept if not (unfinished_only and r.is_terminal) and _visible(r, owner)]
            shown = kept[offset : offset + limit]
            counted = await conn.one(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM tasks t {where} LIMIT ?) AS bounded",  # noqa: S608
                (*mine_params, bound),
            )
            total = int(counted[0]) if counted is not None else 0
            rows = await conn.all(
                f"{_task_select(False)} {where} ORDER BY {order} DESC LIMIT ? OFFSET ?",
                (*mine_params, limit - len(shown), max(0, offset - len(kept))),
            )
            return shown + [_task_record(row) for row in rows], total + len(kept)

        return await self._run(work)

    async def due(self, *, limit: int, next_in_s: float) -> list[TaskRecord]:
        """The tracker's share of a pass: up to `limit` unfinished tasks whose poll is due, oldest-due first, each
        one's next poll moved `next_in_s` on in the same statement (so every unfinished task comes round, however
        many there are, and a replica taking the next turn starts where this one stopped). Tasks still waiting in
        memory for disk space come first. One indexed statement: the writer is held for a moment only. Each record's
        submission comes without its request (`{}`): a poll needs who ran it, never the rows it sent."""
        now = time.time()

        async def work(conn: LedgerConn) -> list[TaskRecord]:
            kept = [await self._kept_record(conn, a) for a in self._unwritten_accepts.values()]
            kept = [r for r in kept if not r.is_terminal][:limit]
            taken = await conn.all(
                """UPDATE tasks SET next_poll_at = ? WHERE task_id IN (
                       SELECT task_id FROM tasks WHERE next_poll_at IS NOT NULL AND next_poll_at <= ?
                       ORDER BY next_poll_at LIMIT ?)
                   RETURNING task_id""",
                (now + next_in_s, now, limit - len(kept)),
            )
            ids = [str(row[0]) for row in taken]
            if not ids:
                return kept
            marks = ", ".join("?" * len(ids))
            rows = await conn.all(f"{_task_select(False, with_request=False)} WHERE t.task_id IN ({marks})", ids)
            records = sorted((_task_record(row) for row in rows), key=lambda r: r.submitted_at)
            return kept + records

        return await self._run(work)

    async def prune(self, *, finished_before: float, limit: int) -> Pruned:
        """One short transaction of pruning, up to `limit` of each kind, for what ended before `finished_before`:
        tasks shrink to their summary (status, counts, credits, dates): their stored result and their run's
        request (the input rows) go, the rest stays for spend figures, recovery and the answer that says the
        result was pruned; runs without a task (table runs, refused runs) lose their request the same way and
        keep their credits; finished MCP task handles are deleted (their Databar task keeps the figures)."""
        now = time.time()

        async def work(conn: LedgerConn) -> Pruned:
            await conn.begin("ledger:prune")
            try:
                tasks, results = await self._prune_tasks(conn, finished_before, limit, now)
                runs = await self._prune_taskless_runs(conn, finished_before, limit, now)
                handles = await conn.all(
                    f"""DELETE FROM mcp_tasks WHERE handle_id IN (
                            SELECT handle_id FROM mcp_tasks WHERE state IN {FINISHED_HANDLES_SQL} AND updated_at < ?
                            ORDER BY updated_at LIMIT ?) RETURNING handle_id""",  # noqa: S608 - a fixed list
                    (finished_before, limit),
                )
                await conn.commit()
                return Pruned(tasks=tasks, results=results, runs=runs, handles=len(handles))
            except BaseException:
                await conn.rollback()
                raise

        return await self._run(work)

    @staticmethod
    async def _prune_tasks(conn: LedgerConn, finished_before: float, limit: int, now: float) -> tuple[int, int]:
        rows = await conn.all(
            """SELECT task_id, submission_id FROM tasks WHERE pruned_at IS NULL AND completed_at < ?
               ORDER BY completed_at LIMIT ?""",
            (finished_before, limit),
        )
        ids = [str(row[0]) for row in rows]
        runs = [int(row[1]) for row in rows if row[1] is not None]
        if not ids:
            return 0, 0
        marks = ", ".join("?" * len(ids))
        gone = await conn.all(f"DELETE FROM results WHERE task_id IN ({marks}) RETURNING task_id", ids)  # noqa: S608
        await conn.execute(
            f"UPDATE tasks SET pruned_at = ?, progress_json = NULL WHERE task_id IN ({marks})",  # noqa: S608
            (now, *ids),
        )
        if runs:
            await conn.execute(
                f"UPDATE submissions SET {SUMMARY_ONLY} WHERE id IN ({', '.join('?' * len(runs))})",  # noqa: S608
                (now, *runs),
            )
        return len(ids), len(gone)

    @staticmethod
    async def _prune_taskless_runs(conn: LedgerConn, made_before: float, limit: int, now: float) -> int:
        """Runs Databar gave no task id (table runs, refused or lost runs): their request goes, their outcome,
        estimate and measured credits stay (spend history counts them)."""
        rows = await conn.all(
            """SELECT id FROM submissions WHERE pruned_at IS NULL AND task_id IS NULL AND created_at < ?
               ORDER BY created_at LIMIT ?""",
            (made_before, limit),
        )
        ids = [int(row[0]) for row in rows]
        if ids:
            await conn.execute(
                f"UPDATE submissions SET {SUMMARY_ONLY} WHERE id IN ({', '.join('?' * len(ids))})",  # noqa: S608
                (now, *ids),
            )
        return len(ids)

    async def _kept_record(self, conn: LedgerConn, accepted: Spooled) -> TaskRecord:
        """A task known only in memory (the disk was full when Databar returned it), as the ledger would show it."""
        sub = await conn.one("SELECT * FROM submissions WHERE id = ?", (accepted.submission_id,))
        seen = self._unwritten_tasks.get(accepted.task_id)
        status = seen.status if seen is not None else accepted.status
        return TaskRecord(
            task_id=accepted.task_id,
            status=status,
            progress=seen.progress.model_dump() if seen is not None and seen.progress is not None else None,
            credits_spent=seen.credits_spent if seen is not None else None,
            rows_total=None,
            rows_with_data=None,
            errors=seen.errors if seen is not None else [],
            submitted_at=accepted.at,
            updated_at=accepted.at,
            completed_at=None,
            has_result=False,
            submission=None if sub is None else replace(_submission(sub), outcome="accepted", task_id=accepted.task_id),
        )

    async def unknown_submissions(self, *, limit: int) -> list[Submission]:
        owner = current_owner()
        # Unsettled runs are few among a year's: found by their outcome, then the user's kept. ("|| ''" keeps the
        # planner off the owner's index, which would walk every run the user ever made.)
        who, who_params = ("", ()) if owner is None else (" AND (owner || '') = ?", (owner,))

        async def work(conn: LedgerConn) -> list[Submission]:
            rows = await conn.all(
                f"""SELECT * FROM submissions WHERE outcome IN ('unknown', 'pending'){who}
                    ORDER BY created_at DESC LIMIT ?""",  # noqa: S608
                (*who_params, limit + len(self._unwritten_accepts)),
            )
            found = [_submission(row) for row in rows if int(row["id"]) not in self._unwritten_accepts]
            return found[:limit]

        return await self._run(work)

    async def credits_spent_since(self, since: float) -> float:
        async def work(conn: LedgerConn) -> float:
            row = await conn.one("SELECT COALESCE(SUM(credits_spent), 0) FROM tasks WHERE submitted_at >= ?", (since,))
            return 0.0 if row is None else float(row[0])

        return await self._run(work)

    # ---- runs without a Databar task (table enrichments, issue 15) ---------------------------------------

    async def accepted_without_task(self, submission_id: int, request: dict[str, Any]) -> bool:
        """Databar accepted a run it gives no task id for: settled (with what its reply added to the record),
        and nothing for the tracker to poll.

        False when the ledger could not take it (full disk, database gone): the acceptance is kept in memory
        and written with the next ledger call that can (an identical call meanwhile finds the run accepted); a
        process that exits first leaves the run 'pending', which the duplicate guard reads as "may have
        started", so an identical call never sends it again unasked.
        """
        try:
            await self._run(lambda conn: self._write_taskless(conn, submission_id, request))
        except Exception as exc:
            if not self._kept_back(exc):
                raise
            self._unwritten_taskless[submission_id] = request
            logger.error(
                "the ledger cannot be written (%s): submission %d is kept accepted in memory until it can",
                _one_line(exc),
                submission_id,
            )
            return False
        return True

    @staticmethod
    async def _write_taskless(conn: LedgerConn, submission_id: int, request: dict[str, Any]) -> None:
        await conn.execute(
            "UPDATE submissions SET outcome = 'accepted', request_json = ? WHERE id = ?",
            (json.dumps(request), submission_id),
        )  # one statement: no transaction needed on either backend

    async def latest_submission(self, endpoint: str) -> Submission | None:
        """The current user's newest run sent (or being sent) to `endpoint`, whatever its outcome."""
        owner = current_owner()
        who, params = ("", ()) if owner is None else (" AND owner = ?", (owner,))

        async def work(conn: LedgerConn) -> Submission | None:
            row = await conn.one(
                f"SELECT * FROM submissions WHERE endpoint = ?{who} ORDER BY created_at DESC, id DESC LIMIT 1",  # noqa: S608 - fixed SQL, values bound
                (endpoint, *params),
            )
            return None if row is None else _submission(row)

        return await self._run(work)

    # ---- what runs cost (issue 23: every billable act counted) --------------------------------------------

    async def note_balance(self, submission_id: int, balance: float) -> None:
        """The balance just before a run's POST: a table run is measured against the balance after it."""
        await self._run(
            lambda conn: conn.execute(
                "UPDATE submissions SET balance_before = ? WHERE id = ? AND balance_before IS NULL",
                (balance, submission_id),
            )
        )

    async def note_lost_balance(self, fingerprint: str, balance: float) -> None:
        """The balance right after a run's reply was lost: a later look says how it changed since."""
        await self._run(
            lambda conn: conn.execute(
                """UPDATE submissions SET balance_before = ? WHERE balance_before IS NULL AND id = (
                       SELECT id FROM submissions WHERE fingerprint = ? AND outcome = 'unknown'
                       ORDER BY created_at DESC, id DESC LIMIT 1)""",
                (balance, fingerprint),
            )
        )

    async def settle(self, submission_id: int, credits: float | None, basis: CreditsBasis) -> Submission | None:
        """Record what a run without a Databar task spent; the first settlement stands. The record after."""
        now = time.time()

        async def work(conn: LedgerConn) -> Submission | None:
            await conn.execute(
                """UPDATE submissions SET credits_spent = ?, credits_basis = ?, settled_at = ?
                   WHERE id = ? AND settled_at IS NULL""",
                (credits, basis, now, submission_id),
            )
            row = await conn.one("SELECT * FROM submissions WHERE id = ?", (submission_id,))
            return None if row is None else _submission(row)

        return await self._run(work)

    async def overlapping(self, submission_id: int, since: float, until: float) -> int:
        """Other runs of this server that may have moved the balance between `since` and `until`: every user's
        (they share the account), free ones aside; a run whose end is unknown counts (up to a day back)."""

        async def work(conn: LedgerConn) -> int:
            row = await conn.one(
                """SELECT COUNT(*) FROM submissions s LEFT JOIN tasks t ON t.task_id = s.task_id
                   WHERE s.id != ? AND s.outcome != 'rejected' AND COALESCE(s.estimated_credits, 1) > 0
                     AND s.created_at <= ? AND s.created_at >= ?
                     AND COALESCE(t.completed_at, s.settled_at, ?) >= ?""",
                (submission_id, until, since - DAY_S, until, since),
            )
            return 0 if row is None else int(row[0])

        return await self._run(work)

    async def runs_without_task(self, *, since: float, limit: int) -> list[Submission]:
        """The current user's runs Databar gave no task id (table enrichments, exporters), newest first."""
        owner = current_owner()
        who, params = ("", ()) if owner is None else (" AND owner = ?", (owner,))

        async def work(conn: LedgerConn) -> list[Submission]:
            rows = await conn.all(
                f"""SELECT * FROM submissions WHERE outcome = 'accepted' AND task_id IS NULL AND created_at >= ?{who}
                    ORDER BY created_at DESC, id DESC LIMIT ?""",  # noqa: S608 - fixed SQL, values bound
                (since, *params, limit),
            )
            return [_submission(row) for row in rows]

        return await self._run(work)

    async def spend_since(self, since: float) -> SpendTotals:
        """Every billable act since `since` (this server's, any user's: they share the balance), by how its
        credits are known: Databar's figure, measured, only estimated, still running, or possibly spent."""

        async def work(conn: LedgerConn) -> SpendTotals:
            tasks = await conn.all(
                """SELECT t.status, t.credits_spent, s.estimated_credits FROM tasks t
                   LEFT JOIN submissions s ON s.id = t.submission_id WHERE t.submitted_at >= ?""",
                (since,),
            )
            taskless = await conn.all(
                """SELECT outcome, estimated_credits, credits_spent, credits_basis FROM submissions
                   WHERE created_at >= ? AND task_id IS NULL AND outcome IN ('accepted', 'unknown', 'pending')""",
                (since,),
            )
            return tally_spend(tasks, taskless)

        return await self._run(work)


@dataclass(frozen=True)
class Pruned:
    """What pruning removed: tasks shrunk to their summary, stored results deleted, runs without a task shrunk to
    their summary, finished MCP task handles deleted."""

    tasks: int = 0
    results: int = 0
    runs: int = 0
    handles: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.tasks + other.tasks, self.results + other.results, self.runs + other.runs, self.handles + other.handles
        )

    def fills(self, batch: int) -> bool:
        """Whether any kind filled its batch (more of it may wait)."""
        return max(self.tasks, self.runs, self.handles) >= batch


@dataclass
class SpendTotals:
    """Credits of a span's runs, by how each run's figure is known (issue 23: never silently missing)."""

    reported: float = 0.0  # Databar's own figures (a running task's so far)
    measured: float = 0.0  # runs without a task, measured from the balance before and after
    estimated: float = 0.0  # finished runs known only by their estimate (counted at it)
    running: float = 0.0  # runs still going whose cost is not known yet: at most this
    possibly: float = 0.0  # runs whose submission outcome is unknown: possibly spent, at most this
    runs: int = 0
    estimated_runs: int = 0
    running_runs: int = 0
    running_unpriced: int = 0  # of running_runs, those without an estimate (their cost is unknown)
    possibly_runs: int = 0

    @property
    def spent(self) -> float:
        return self.reported + self.measured + self.estimated


def tally_spend(tasks: list[Row], taskless: list[Row]) -> SpendTotals:
    """The totals of task rows (status, credits_spent, estimated_credits) and runs without a task (outcome,
    estimated_credits, credits_spent, credits_basis)."""
    totals = SpendTotals()
    for status, spent, estimate in ((r[0], r[1], r[2]) for r in tasks):
        totals.runs += 1
        if status == UNKNOWN_TO_DATABAR and not spent:
            totals.possibly += estimate or 0.0
            totals.possibly_runs += 1
        elif spent is not None:
            totals.reported += float(spent)
        elif status in TERMINAL_STATUSES:
            totals.estimated += estimate or 0.0
            totals.estimated_runs += 1 if estimate else 0
        else:
            totals.running += estimate or 0.0
            totals.running_runs += 1
            totals.running_unpriced += estimate is None
    for outcome, estimate, spent, basis in ((r[0], r[1], r[2], r[3]) for r in taskless):
        totals.runs += 1
        if outcome != "accepted":
            totals.possibly += estimate or 0.0
            totals.possibly_runs += 1
        elif basis is None:
            totals.running += estimate or 0.0
            totals.running_runs += 1
            totals.running_unpriced += estimate is None
        elif basis == "measured":
            totals.measured += float(spent or 0.0)
        else:
            totals.estimated += float(spent or 0.0)
            totals.estimated_runs += 1 if spent else 0
    return totals


def _mine(owner: str | None) -> tuple[str, tuple[object, ...]]:
    """SQL (and its parameter) keeping only the owner's tasks (alias t); nothing when no user is calling."""
    if owner is None:
        return "", ()
    return " AND t.owner = ?", (owner,)


def ledger_for(settings: Settings) -> Ledger:
    """The ledger the settings name: PostgreSQL when DATABAR_MCP_DATABASE_URL is set, else the state dir's SQLite."""
    if settings.database_url is None:
        return Ledger(settings.ledger_path)
    from databar_mcp.core.ledger.postgres import PostgresBackend  # the optional `postgres` extra, only when asked for

    return Ledger(PostgresBackend(settings.database_url.get_secret_value()), spool=settings.state_dir / SPOOL_NAME)


def _one_line(exc: BaseException) -> str:
    """An exception for a log line: its type and first 200 characters (a LedgerError never holds a password)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]


def _visible(record: TaskRecord, owner: str | None) -> bool:
    return owner is None or (record.submission is not None and record.submission.owner == owner)


async def _nothing(conn: LedgerConn) -> None:
    return None


async def _quiet_rollback(conn: LedgerConn) -> None:
    try:
        await conn.rollback()
    except Exception as exc:
        logger.debug("rollback after a failed migration failed too: %s", type(exc).__name__)


def _submission(row: Row, prefix: str = "") -> Submission:
    def col(name: str) -> Any:
        return row[prefix + name]

    return Submission(
        id=int(col("id")),
        tool=str(col("tool")),
        endpoint=str(col("endpoint")),
        fingerprint=str(col("fingerprint")),
        request=cast(dict[str, Any], json.loads(col("request_json"))),
        rows=col("rows"),
        estimated_credits=col("estimated_credits"),
        created_at=float(col("created_at")),
        outcome=cast(Outcome, col("outcome")),
        task_id=col("task_id"),
        error=col("error"),
        owner=col("owner"),
        balance_before=col("balance_before"),
        credits_spent=col("credits_spent"),
        credits_basis=col("credits_basis"),
        settled_at=col("settled_at"),
    )


_SUBMISSION_COLUMNS = (
    "id", "tool", "endpoint", "fingerprint", "request_json", "rows", "estimated_credits", "created_at", "outcome",
    "task_id", "error", "owner", "balance_before", "credits_spent", "credits_basis", "settled_at",
)  # fmt: skip


def _task_select(with_data: bool, *, with_request: bool = True) -> str:
    """SELECT of a task with its run and whether (or, with_data, what) result is stored: one query, no N+1.

    Without `with_request` the run's request (its input rows) reads as `{}`: a poll never needs a 10,000-row
    run's rows, and reading them at every tracker pass held 4 MB while the run's result arrived (issue 28)."""
    sub = ", ".join(
        f"s.{c} AS s_{c}" if with_request or c != "request_json" else f"'{{}}' AS s_{c}" for c in _SUBMISSION_COLUMNS
    )
    data = "r.data_json, r.data_z" if with_data else "NULL AS data_json, NULL AS data_z"
    return (
        f"SELECT t.*, r.task_id IS NOT NULL AS has_result, {data}, {sub} FROM tasks t "  # noqa: S608
        "LEFT JOIN submissions s ON s.id = t.submission_id LEFT JOIN results r ON r.task_id = t.task_id"
    )


def _task_record(row: Row) -> TaskRecord:
    """A row of _task_select as a record."""
    return TaskRecord(
        task_id=str(row["task_id"]),
        status=str(row["status"]),
        progress=json.loads(row["progress_json"]) if row["progress_json"] else None,
        credits_spent=row["credits_spent"],
        rows_total=row["rows_total"],
        rows_with_data=row["rows_with_data"],
        errors=json.loads(row["errors_json"]) if row["errors_json"] else [],
        submitted_at=float(row["submitted_at"]),
        updated_at=float(row["updated_at"]),
        completed_at=row["completed_at"],
        has_result=bool(row["has_result"]),
        submission=None if row["s_id"] is None else _submission(row, prefix="s_"),
        data_json=_stored_json(row["data_json"], row["data_z"]),
        pruned_at=row["pruned_at"],
    )


def _stored_json(data_json: str | None, data_z: bytes | None) -> str | None:
    """A stored result's JSON: compressed since v6, as written before it otherwise."""
    if data_z is not None:
        return zlib.decompress(bytes(data_z)).decode()
    return None if data_json is None else str(data_json)


__all__ = [
    "COUNT_CAP",
    "MIGRATIONS",
    "Claim",
    "Ledger",
    "LedgerError",
    "Pruned",
    "SpendTotals",
    "Submission",
    "TaskIdTaken",
    "TaskNotOurs",
    "TaskRecord",
    "ledger_for",
    "out_of_space",
]
