"""A durable local spool for task ids Databar returned that the ledger could not take yet.

Databar bills a run the moment it accepts it. If the ledger cannot record the task id then (the disk is full,
the PostgreSQL server is restarting), keeping the id only in memory loses it when the process exits before
the ledger answers again: nothing would ever poll the task, and the rows the user paid for would be lost.

The spool is one file in the state dir, allocated in full when the ledger opens: a fixed number of slots,
each overwritten in place. Overwriting blocks a file already owns needs no free space, so an id can be kept
on the very disk that just filled up. Processes sharing a state dir take an advisory lock (which needs no
space either) to pick a slot. A slot names the ledger it belongs to: a state dir used once with SQLite and
once with PostgreSQL never writes one ledger's ids into the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger("databar_mcp.ledger")

SPOOL_NAME = "unwritten-task-ids.spool"
SLOT_BYTES = 1024  # one record; a task id is tens of bytes, the ledger's location at most a few hundred
SLOTS = 128  # ids waiting at once: far more than runs in flight in one process
_FREE = b" " * (SLOT_BYTES - 1) + b"\n"


@dataclass(frozen=True)
class Spooled:
    """A task id Databar returned for a submission, not written to the ledger yet."""

    submission_id: int
    task_id: str
    status: str
    at: float


class TaskIdSpool:
    """The spool file of one state dir, for one ledger (`ledger`: its location, never a password)."""

    def __init__(self, path: Path, ledger: str) -> None:
        self.path = path
        self._ledger = ledger
        self.ready = False

    def open(self) -> bool:
        """Create (allocated in full) or check the spool; False when it cannot be had (the id stays in memory)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                size = SLOTS * SLOT_BYTES
                if os.fstat(fd).st_size < size:
                    with _locked(fd):
                        current = os.fstat(fd).st_size
                        for offset in range(current - current % SLOT_BYTES, size, SLOT_BYTES):
                            os.pwrite(fd, _FREE, offset)
                        os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error("the task-id spool %s cannot be made (%s): unwritten task ids stay in memory", self.path, exc)
            return False
        self.ready = True
        return True

    def keep(self, entry: Spooled) -> bool:
        """Write `entry` into a free slot (or its own) and fsync; False when that failed (logged)."""
        record = json.dumps({"ledger": self._ledger, **asdict(entry)}, separators=(",", ":")).encode()
        if not self.ready or len(record) >= SLOT_BYTES:
            return False
        try:
            fd = os.open(self.path, os.O_RDWR)
            try:
                with _locked(fd):
                    slots = list(self._slots(fd))
                    mine = [i for i, _, e in slots if e is not None and e.submission_id == entry.submission_id]
                    free = [i for i, used, _ in slots if not used]
                    slot = (mine or free or [None])[0]
                    if slot is None:
                        logger.error("the task-id spool %s is full: task %s stays in memory", self.path, entry.task_id)
                        return False
                    os.pwrite(fd, record.ljust(SLOT_BYTES - 1) + b"\n", slot * SLOT_BYTES)
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error(
                "the task-id spool %s cannot be written (%s): task %s stays in memory", self.path, exc, entry.task_id
            )
            return False
        return True

    def drop(self, submission_id: int) -> None:
        """Free the slot of a submission whose task id the ledger now holds."""
        if not self.ready:
            return
        try:
            fd = os.open(self.path, os.O_RDWR)
            try:
                with _locked(fd):
                    for slot, _, entry in self._slots(fd):
                        if entry is not None and entry.submission_id == submission_id:
                            os.pwrite(fd, _FREE, slot * SLOT_BYTES)
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # it is written again on the next start: harmless, the write is idempotent
            logger.warning("the task-id spool %s could not be cleared (%s)", self.path, exc)

    def load(self) -> list[Spooled]:
        """This ledger's waiting ids, oldest first (an earlier process may have exited before writing them)."""
        if not self.path.exists():
            return []
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                with _locked(fd):
                    found = [entry for _, _, entry in self._slots(fd) if entry is not None]
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error("the task-id spool %s cannot be read (%s)", self.path, exc)
            return []
        return sorted(found, key=lambda e: e.at)

    def _slots(self, fd: int) -> Iterator[tuple[int, bool, Spooled | None]]:
        """Every slot: whether it is in use, and its entry when it holds one of this ledger's."""
        size = os.fstat(fd).st_size
        for slot in range(min(SLOTS, size // SLOT_BYTES)):
            raw = os.pread(fd, SLOT_BYTES, slot * SLOT_BYTES).strip()
            yield slot, bool(raw), self._parse(raw) if raw else None

    def _parse(self, raw: bytes) -> Spooled | None:
        try:
            data = json.loads(raw)
            if data.pop("ledger") != self._ledger:
                return None
            return Spooled(
                submission_id=int(data["submission_id"]),
                task_id=str(data["task_id"]),
                status=str(data["status"]),
                at=float(data["at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.error("a slot of the task-id spool %s is unreadable: %r", self.path, raw[:200])
            return None


@contextlib.contextmanager
def _locked(fd: int) -> Generator[None]:
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
