"""The seam between the ledger's logic (store.py) and the database that holds it: SQLite or PostgreSQL.

The ledger's operations are written once, as coroutines over `LedgerConn`. Each backend supplies a connection
that speaks its SQL dialect (placeholders, schema version, exclusive transactions) and runs an operation on it:
SQLite synchronously in a worker thread (its connection never suspends), PostgreSQL on the event loop with a pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class LedgerError(Exception):
    """The ledger cannot be used: one line saying what is wrong and where (never a traceback for the user)."""


class LedgerUnavailable(LedgerError):
    """A ledger call failed for want of the database or the disk (a restart, a full or read-only disk), not for a
    fault of ours: what it had to write is kept (store.py), and the tool says so in a structured answer."""

    def __init__(self, message: str, *, out_of_space: bool = False) -> None:
        super().__init__(message)
        self.out_of_space = out_of_space


class Row(Protocol):
    """A result row read by column name or by position."""

    def __getitem__(self, key: Any, /) -> Any: ...


class LedgerConn(Protocol):
    """One database connection, used by one ledger operation at a time."""

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None: ...

    async def one(self, sql: str, params: Sequence[object] = ()) -> Row | None: ...

    async def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    async def begin(self, *keys: str) -> None:
        """Start a transaction that no other writer of the same keys can interleave with.

        SQLite takes its one write lock (BEGIN IMMEDIATE); PostgreSQL takes a transaction-scoped advisory lock
        per key, so two replicas writing the same fingerprint or task id queue instead of both reading first.
        """
        ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None:
        """Roll back if a transaction is still open (a database may end one itself on some errors)."""
        ...

    # ---- schema ---------------------------------------------------------------------------------------

    async def begin_migration(self) -> None:
        """An exclusive transaction for reading and upgrading the schema (one process migrates at a time)."""
        ...

    async def schema_version(self) -> int: ...

    async def set_schema_version(self, version: int) -> None: ...

    async def run_script(self, script: str) -> None:
        """Run one migration script (written in SQLite's dialect; the backend translates what differs)."""
        ...

    async def columns(self, table: str) -> set[str]: ...

    async def integrity(self) -> str:
        """'ok', or the database's own account of the damage it found."""
        ...


class LedgerBackend(Protocol):
    """Where the ledger lives and how its operations reach it."""

    @property
    def where(self) -> str:
        """The ledger's location for messages (a path, or a database URL without its password)."""
        ...

    async def run(self, fn: Callable[[LedgerConn], Awaitable[T]]) -> T:
        """Run one operation on one connection; failing to connect at all raises LedgerError, and the database or
        disk failing it (a closed connection, a full or read-only disk) LedgerUnavailable."""
        ...

    def run_blocking(self, fn: Callable[[LedgerConn], Coroutine[Any, Any, T]]) -> T:
        """Run one operation now, in this thread (start-up checks, before any event loop runs)."""
        ...

    def unusable(self, exc: BaseException) -> LedgerError | None:
        """The one-line LedgerError for a failure to open or migrate the ledger (None: not a database failure)."""
        ...

    def out_of_space(self, exc: BaseException) -> bool:
        """A write that failed for lack of disk (or a failing disk): kept and replayed later (also when `exc` is
        the LedgerUnavailable that `run` made of it)."""
        ...

    def tracking_turn(self) -> AbstractAsyncContextManager[bool]:
        """Whether this process does the background tracker's pass now (one replica at a time does)."""
        ...

    async def probe(self) -> None:
        """Readiness: raise unless the store answers a trivial read; never queued behind a long query."""
        ...

    def probe_blocking(self) -> None:
        """The same check in the calling thread, on a connection only readiness uses (readiness.py's thread)."""
        ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run, in this thread, a coroutine that never suspends (all its awaits are on a synchronous connection)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a ledger operation on a synchronous connection suspended")
