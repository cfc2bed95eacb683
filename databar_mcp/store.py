"""Ledger: a durable SQLite record of every submission, task and result.

Databar deletes results after 24 hours and agents lose conversations, time out and restart; the ledger
is what lets us promise that nothing a user paid for is ever lost or paid for twice. Every write happens
before the tool waits or returns. SQLite in WAL mode with a busy timeout makes one state dir safe to
share between server processes; all I/O runs in worker threads, off the event loop.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import anyio.to_thread

from databar_mcp.api.models import Task, TaskProgress

T = TypeVar("T")
Outcome = Literal["pending", "accepted", "rejected", "unknown"]

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
)

# What the migrations build: checked at open, so a damaged ledger is refused before anything is sent.
SCHEMA_TABLES: dict[str, frozenset[str]] = {
    "submissions": frozenset(
        {"id", "tool", "endpoint", "fingerprint", "request_json", "rows", "estimated_credits", "created_at"}
        | {"outcome", "task_id", "error"}
    ),
    "tasks": frozenset(
        {"task_id", "submission_id", "status", "progress_json", "credits_spent", "rows_total", "rows_with_data"}
        | {"errors_json", "submitted_at", "updated_at", "completed_at"}
    ),
    "results": frozenset({"task_id", "data_json", "saved_at"}),
}


class LedgerError(Exception):
    """The ledger cannot be used: one line saying what is wrong and where (never a traceback for the user)."""


def _unusable(path: Path, exc: BaseException) -> LedgerError:
    """The one-line explanation of an OS or SQLite failure on opening the ledger at `path`."""
    text = str(exc).lower()
    fix = "set DATABAR_MCP_STATE_DIR to a writable folder"
    if isinstance(exc, OSError):
        where = exc.filename or path.parent
        return LedgerError(f"cannot use the state dir {where}: {exc.strerror or exc} ({fix})")
    if "full" in text or "disk i/o" in text:
        return LedgerError(f"the ledger {path} cannot be written ({exc}): is the disk full? Free space, or {fix}")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return LedgerError(f"the ledger {path} cannot be opened for writing: {exc} ({fix})")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return LedgerError(
            f"the ledger {path} is not a usable SQLite database ({exc}): move it away to start a new one"
        )
    return LedgerError(f"the ledger {path} cannot be used: {type(exc).__name__}: {exc}")


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a ledger whose tables are missing or incomplete, or that fails SQLite's own quick check."""
    for table, columns in SCHEMA_TABLES.items():
        found = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
        if not found:
            raise LedgerError(f"the ledger {path} is damaged: table {table} is missing (move it away to start anew)")
        if missing := sorted(columns - found):
            raise LedgerError(f"the ledger {path} is damaged: table {table} lacks column(s) {', '.join(missing)}")
    verdict = str(conn.execute("PRAGMA quick_check(1)").fetchone()[0])
    if verdict != "ok":
        raise LedgerError(f"the ledger {path} is damaged ({verdict[:200]}): move it away to start a new one")


UNKNOWN_TO_DATABAR = "unknown_to_databar"
# "unknown_to_databar" is ours: Databar answered 404 for the task (another key or account); stop tracking it.
TERMINAL = ("completed", "partially_completed", "failed", "cancelled", "gone", "unknown_to_databar")
NOT_REUSABLE = ("failed", "cancelled", "gone", "unknown_to_databar")


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

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Claim:
    """The answer to 'may I submit this run?': a fresh submission id, or the earlier run to reuse."""

    submission_id: int | None
    earlier: Submission | None


def _rows_with_data(data: object) -> tuple[int | None, int | None]:
    if isinstance(data, list):
        items = cast(list[Any], data)
        return len(items), sum(1 for item in items if item is not None)
    if data is None:
        return None, None
    return 1, 1


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one worker thread at a time uses the shared connection

    # ---- plumbing ----------------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    def _migrate(self) -> None:
        """Create or upgrade the schema, then check it; any problem is a LedgerError naming the path."""
        try:
            if self.path.is_dir():
                raise LedgerError(f"the ledger {self.path} is a directory, not a SQLite file (move it away)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    if version > len(MIGRATIONS):
                        raise LedgerError(
                            f"the ledger {self.path} has schema v{version}, newer than this databar-mcp knows "
                            f"(v{len(MIGRATIONS)}): upgrade databar-mcp, or use another DATABAR_MCP_STATE_DIR"
                        )
                    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                        for statement in script.split(";"):
                            if statement.strip():
                                conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {number}")
                    _check_schema(conn, self.path)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):  # e.g. a failed COMMIT already ended it
                        conn.execute("ROLLBACK")
                    raise
        except (OSError, sqlite3.Error) as exc:
            raise _unusable(self.path, exc) from None
        self._ready = True

    def _shared(self) -> sqlite3.Connection:
        """One long-lived connection (opening one per call costs more than most queries)."""
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            with self._lock:
                if not self._ready:
                    self._migrate()
                return fn(self._shared())

        return await anyio.to_thread.run_sync(work)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def open(self) -> None:
        await self._run(lambda conn: None)

    def check(self) -> None:
        """Open (create or upgrade) and check the ledger now, in this thread: LedgerError says what is wrong."""
        with self._lock:
            self._migrate()

    @staticmethod
    def schema_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    async def version(self) -> int:
        return await self._run(self.schema_version)

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
    ) -> Claim:
        """Atomically: return an earlier identical run still running or recent, or record a new intent."""
        now = time.time()

        def work(conn: sqlite3.Connection) -> Claim:
            conn.execute("BEGIN IMMEDIATE")
            try:
                earlier = None if force else self._earlier(conn, fingerprint, now - window_s)
                if earlier is not None:
                    conn.execute("COMMIT")
                    return Claim(submission_id=None, earlier=earlier)
                cur = conn.execute(
                    """INSERT INTO submissions (tool, endpoint, fingerprint, request_json, rows, estimated_credits,
                                                created_at, outcome)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')""",
                    (tool, endpoint, fingerprint, json.dumps(request), rows, estimated_credits, now),
                )
                conn.execute("COMMIT")
                return Claim(submission_id=cur.lastrowid, earlier=None)
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return await self._run(work)

    async def earlier_run(self, fingerprint: str, *, window_s: float) -> Submission | None:
        """The identical run a claim would return now (read-only: lets a tool skip asking to pay for a reuse)."""
        since = time.time() - window_s
        return await self._run(lambda conn: self._earlier(conn, fingerprint, since))

    def _earlier(self, conn: sqlite3.Connection, fingerprint: str, since: float) -> Submission | None:
        """An identical run still running, or sent/finished since `since` (rejected runs never count)."""
        row = conn.execute(
            """SELECT s.* FROM submissions s LEFT JOIN tasks t ON t.task_id = s.task_id
               WHERE s.fingerprint = ? AND s.outcome IN ('pending', 'accepted', 'unknown')
                 AND (s.created_at >= ? OR (s.outcome = 'accepted' AND t.status NOT IN
                      ('completed', 'partially_completed', 'failed', 'cancelled', 'gone', 'unknown_to_databar')))
               ORDER BY s.created_at DESC LIMIT 1""",
            (fingerprint, since),
        ).fetchone()
        if row is None:
            return None
        earlier = _submission(row)
        # A finished task counts only if it finished inside the window (and did not fail).
        if earlier.outcome != "accepted" or self._fresh(conn, earlier, since):
            return earlier
        return None

    @staticmethod
    def _fresh(conn: sqlite3.Connection, earlier: Submission, since: float) -> bool:
        row = conn.execute("SELECT status, completed_at FROM tasks WHERE task_id = ?", (earlier.task_id,)).fetchone()
        if row is None or row["status"] not in TERMINAL:
            return True
        if row["status"] in NOT_REUSABLE:
            return False
        return row["completed_at"] is None or row["completed_at"] >= since

    async def accepted(self, submission_id: int, task_id: str, status: str) -> None:
        """Record the task id the moment Databar returns it (before any waiting)."""
        now = time.time()

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE submissions SET outcome = 'accepted', task_id = ? WHERE id = ?", (task_id, submission_id)
            )
            conn.execute(
                """INSERT INTO tasks (task_id, submission_id, status, submitted_at, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(task_id) DO UPDATE SET submission_id = excluded.submission_id""",
                (task_id, submission_id, status, now, now),
            )
            conn.execute("COMMIT")

        await self._run(work)

    async def failed(self, submission_id: int, outcome: Outcome, error: str) -> None:
        """'rejected': Databar refused it (nothing started). 'unknown': it may have started."""
        await self._run(
            lambda conn: conn.execute(
                "UPDATE submissions SET outcome = ?, error = ? WHERE id = ?", (outcome, error[:500], submission_id)
            )
        )

    async def submission(self, submission_id: int) -> Submission | None:
        def work(conn: sqlite3.Connection) -> Submission | None:
            row = conn.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            return None if row is None else _submission(row)

        return await self._run(work)

    # ---- tasks and results -------------------------------------------------------------------------------

    async def observe(self, task: Task) -> None:
        """Record what a poll showed; a terminal task's data is stored in full, in the same transaction."""
        now = time.time()
        progress = task.progress.model_dump() if task.progress is not None else None
        terminal = task.is_terminal
        with_data = terminal and task.data is not None and task.status != "gone"
        rows_total, rows_found = _rows_with_data(task.data) if with_data else (None, None)
        data_json = json.dumps(task.data, ensure_ascii=False) if with_data else None

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            existing = conn.execute("SELECT status FROM tasks WHERE task_id = ?", (task.task_id,)).fetchone()
            if existing is not None and existing["status"] in TERMINAL and task.status == "gone":
                conn.execute("UPDATE tasks SET updated_at = ? WHERE task_id = ?", (now, task.task_id))
                conn.execute("COMMIT")
                return
            conn.execute(
                """INSERT INTO tasks (task_id, status, progress_json, credits_spent, rows_total, rows_with_data,
                                      errors_json, submitted_at, updated_at, completed_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(task_id) DO UPDATE SET
                       status = excluded.status,
                       progress_json = COALESCE(excluded.progress_json, tasks.progress_json),
                       credits_spent = COALESCE(excluded.credits_spent, tasks.credits_spent),
                       rows_total = COALESCE(excluded.rows_total, tasks.rows_total),
                       rows_with_data = COALESCE(excluded.rows_with_data, tasks.rows_with_data),
                       errors_json = COALESCE(excluded.errors_json, tasks.errors_json),
                       updated_at = excluded.updated_at,
                       completed_at = COALESCE(tasks.completed_at, excluded.completed_at)""",
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
                ),
            )
            if data_json is not None:
                conn.execute(
                    """INSERT INTO results (task_id, data_json, saved_at) VALUES (?, ?, ?)
                       ON CONFLICT(task_id) DO NOTHING""",
                    (task.task_id, data_json, now),
                )
            conn.execute("COMMIT")

        await self._run(work)

    async def task(self, task_id: str) -> TaskRecord | None:
        def work(conn: sqlite3.Connection) -> TaskRecord | None:
            row = conn.execute(
                """SELECT t.*, EXISTS(SELECT 1 FROM results r WHERE r.task_id = t.task_id) AS has_result
                   FROM tasks t WHERE t.task_id = ?""",
                (task_id,),
            ).fetchone()
            return None if row is None else _task_record(conn, row)

        return await self._run(work)

    async def result(self, task_id: str) -> object | None:
        """The stored data of a finished task (None when there is no local copy)."""

        def work(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT data_json FROM results WHERE task_id = ?", (task_id,)).fetchone()
            return None if row is None else str(row[0])

        raw = await self._run(work)
        return None if raw is None else json.loads(raw)

    async def stored_task(self, task_id: str) -> Task | None:
        """The task as Databar last showed it, rebuilt from the ledger with its stored data, if complete."""
        found = await self.stored(task_id)
        return None if found is None else found[0]

    async def stored(self, task_id: str) -> tuple[Task, float | None] | None:
        """A complete stored task and its run's estimated cost, in one read."""

        def work(conn: sqlite3.Connection) -> tuple[TaskRecord, str] | None:
            row = conn.execute(
                """SELECT t.*, 1 AS has_result, r.data_json FROM tasks t JOIN results r ON r.task_id = t.task_id
                   WHERE t.task_id = ?""",
                (task_id,),
            ).fetchone()
            return None if row is None else (_task_record(conn, row), str(row["data_json"]))

        found = await self._run(work)
        if found is None:
            return None
        record, data_json = found
        return Task(
            task_id=record.task_id,
            status=record.status,
            progress=TaskProgress.model_validate(record.progress) if record.progress else None,
            data=json.loads(data_json),
            error=record.errors or None,
            credits_spent=record.credits_spent,
        ), (record.submission.estimated_credits if record.submission else None)

    async def recent(self, *, limit: int, offset: int, unfinished_only: bool = False) -> tuple[list[TaskRecord], int]:
        where = f"WHERE t.status NOT IN {TERMINAL!r}" if unfinished_only else ""

        def work(conn: sqlite3.Connection) -> tuple[list[TaskRecord], int]:
            total = int(conn.execute(f"SELECT COUNT(*) FROM tasks t {where}").fetchone()[0])  # noqa: S608
            rows = conn.execute(
                f"""SELECT t.*, EXISTS(SELECT 1 FROM results r WHERE r.task_id = t.task_id) AS has_result
                    FROM tasks t {where} ORDER BY t.submitted_at DESC LIMIT ? OFFSET ?""",  # noqa: S608
                (limit, offset),
            ).fetchall()
            return [_task_record(conn, row) for row in rows], total

        return await self._run(work)

    async def unknown_submissions(self, *, limit: int) -> list[Submission]:
        def work(conn: sqlite3.Connection) -> list[Submission]:
            rows = conn.execute(
                """SELECT * FROM submissions WHERE outcome IN ('unknown', 'pending')
                   ORDER BY created_at DESC LIMIT ?""",
                (limit,),
            ).fetchall()
            return [_submission(row) for row in rows]

        return await self._run(work)

    async def credits_spent_since(self, since: float) -> float:
        def work(conn: sqlite3.Connection) -> float:
            row = conn.execute(
                "SELECT COALESCE(SUM(credits_spent), 0) FROM tasks WHERE submitted_at >= ?", (since,)
            ).fetchone()
            return float(row[0])

        return await self._run(work)


def _submission(row: sqlite3.Row) -> Submission:
    return Submission(
        id=int(row["id"]),
        tool=str(row["tool"]),
        endpoint=str(row["endpoint"]),
        fingerprint=str(row["fingerprint"]),
        request=cast(dict[str, Any], json.loads(row["request_json"])),
        rows=row["rows"],
        estimated_credits=row["estimated_credits"],
        created_at=float(row["created_at"]),
        outcome=cast(Outcome, row["outcome"]),
        task_id=row["task_id"],
        error=row["error"],
    )


def _task_record(conn: sqlite3.Connection, row: sqlite3.Row) -> TaskRecord:
    submission = None
    if row["submission_id"] is not None:
        sub = conn.execute("SELECT * FROM submissions WHERE id = ?", (row["submission_id"],)).fetchone()
        submission = None if sub is None else _submission(sub)
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
        submission=submission,
    )
