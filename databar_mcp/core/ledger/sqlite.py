"""The embedded ledger backend: one SQLite file in the state dir (the default).

SQLite in WAL mode with a busy timeout makes one state dir safe to share between server processes on one host.
All I/O runs in worker threads, off the event loop, one thread at a time on one long-lived connection (opening
one per call costs more than most queries).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from databar_mcp.core.ledger.backend import LedgerConn, LedgerError, LedgerUnavailable, Row, drive

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
# A WAL reader waits for nothing but a file locked outright (another process in exclusive mode, a recovery):
# readiness says so after this long rather than hanging.
PROBE_BUSY_TIMEOUT_S = 1.0


def unusable(path: Path, exc: BaseException) -> LedgerError | None:
    """The one-line explanation of an OS or SQLite failure on opening the ledger at `path`."""
    if not isinstance(exc, OSError | sqlite3.Error):
        return None
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


def out_of_space(exc: BaseException) -> bool:
    """A write SQLite could not make for lack of disk (SQLITE_FULL) or because the disk failed (SQLITE_IOERR)."""
    if isinstance(exc, LedgerUnavailable):
        return exc.out_of_space
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)
    return "disk is full" in str(exc) or "disk I/O error" in str(exc)


def enter_wal(conn: sqlite3.Connection, patience_s: float = BUSY_TIMEOUT_S) -> None:
    """Put a ledger file in WAL mode, waiting out other processes that are creating it at the same moment.

    On a brand-new file the switch upgrades a read lock to a write lock, and SQLite answers "database is locked"
    at once there instead of calling the busy handler (it could deadlock); so the wait is ours.
    """
    deadline = time.monotonic() + patience_s
    pause = 0.005
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


class SqliteConn(LedgerConn):
    """A synchronous sqlite3 connection behind the async ledger interface (its awaits never suspend)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._conn.execute(sql, params)

    async def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
        return row

    async def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return list(self._conn.execute(sql, params).fetchall())

    async def begin(self, *keys: str) -> None:
        self._conn.execute("BEGIN IMMEDIATE")  # SQLite has one write lock: every key shares it

    async def commit(self) -> None:
        self._conn.execute("COMMIT")

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    async def begin_migration(self) -> None:
        enter_wal(self._conn)
        self._conn.execute("BEGIN IMMEDIATE")

    async def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    async def set_schema_version(self, version: int) -> None:
        self._conn.execute(f"PRAGMA user_version = {int(version)}")

    async def run_script(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    async def columns(self, table: str) -> set[str]:
        return {str(row[1]) for row in self._conn.execute(f"PRAGMA table_info({table})")}

    async def integrity(self) -> str:
        return str(self._conn.execute("PRAGMA quick_check(1)").fetchone()[0])


class SqliteBackend:
    """The ledger in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one worker thread at a time uses the shared connection
        # Readiness reads on a connection and a thread of their own: a WAL reader never waits for the writer, so
        # /readyz answers while the shared connection runs a long query (a load balancer's check is a few seconds).
        self._probe_conn: sqlite3.Connection | None = None
        self._probe_lock = threading.Lock()
        self._probe_threads = anyio.CapacityLimiter(1)

    @property
    def where(self) -> str:
        return str(self.path)

    def _shared(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                if self.path.is_dir():
                    raise LedgerError(f"the ledger {self.path} is a directory, not a SQLite file (move it away)")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
            except (OSError, sqlite3.Error) as exc:
                raise unusable(self.path, exc) or exc from None
            self._conn = conn
        return self._conn

    def run_blocking(self, fn: Callable[[LedgerConn], Coroutine[Any, Any, T]]) -> T:
        with self._lock:
            return drive(fn(SqliteConn(self._shared())))

    async def run(self, fn: Callable[[LedgerConn], Awaitable[T]]) -> T:
        async def as_coroutine(conn: LedgerConn) -> T:
            return await fn(conn)

        try:
            return await anyio.to_thread.run_sync(self.run_blocking, as_coroutine)
        except sqlite3.OperationalError as exc:  # the file or the disk failed us (full, read-only, locked too long)
            explained = unusable(self.path, exc)
            message = str(explained) if explained is not None else f"the ledger {self.path} failed: {exc}"
            raise LedgerUnavailable(message, out_of_space=out_of_space(exc)) from None

    async def run_sqlite(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the shared sqlite3 connection itself (maintenance and tests that shape the file)."""

        def work() -> T:
            with self._lock:
                return fn(self._shared())

        return await anyio.to_thread.run_sync(work)

    def probe_blocking(self) -> None:
        with self._probe_lock:
            if self._probe_conn is None:
                self._probe_conn = sqlite3.connect(
                    self.path, timeout=PROBE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
            self._probe_conn.execute("PRAGMA user_version").fetchone()

    async def probe(self) -> None:
        await anyio.to_thread.run_sync(self.probe_blocking, limiter=self._probe_threads)

    def unusable(self, exc: BaseException) -> LedgerError | None:
        return unusable(self.path, exc)

    def out_of_space(self, exc: BaseException) -> bool:
        return out_of_space(exc)

    @asynccontextmanager
    async def tracking_turn(self) -> AsyncGenerator[bool]:
        # Processes sharing one state dir each track (polls are idempotent GETs): one host, a handful at most.
        yield True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._probe_lock:
            if self._probe_conn is not None:
                self._probe_conn.close()
                self._probe_conn = None

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)
