"""A file run as one job: its parts and the bulk run that carried each, kept in the ledger (issue 25).

A list bigger than one bulk run is cut into parts (core.files.parts); each part is its own billable run, sent
through the runner like any other. The job ties them together so that the same call, after a crash, a timeout
or in a new conversation, finds every part Databar already accepted and never sends it again, and writes the
output file once all are in. A part is recorded here the moment Databar answers it with a task id (the
runner has recorded the submission before the POST: a part whose POST may have reached Databar but whose
answer was lost is found there, by the fingerprint of what it sent).

The job's id is derived from what it runs (the file's content, the mapping, the target, the caller), so the
same call always names the same job.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from databar_mcp.core.files import Part
from databar_mcp.core.fingerprint import canonical_json
from databar_mcp.core.ledger.backend import LedgerConn, Row
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.core.users import current_owner

JOB_PREFIX = "fj-"


def job_id_of(*, account: str, file_sha256: str, mapping: dict[str, str], target: object, skip_bad: bool) -> str:
    """The same file, mapping and target for the same caller is the same job; anything else is another."""
    owner = current_owner()
    material = canonical_json(
        {"account": account, "owner": owner, "file": file_sha256, "mapping": mapping, "target": target}
        | {"skip_bad": skip_bad}
    )
    return JOB_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SentPart:
    number: int
    fingerprint: str
    task_id: str
    rows_sent: int


@dataclass(frozen=True)
class Job:
    job_id: str
    tool: str
    input_file: str
    rows: int
    parts: int
    estimated_credits: float | None
    output_file: str | None
    output_rows: int | None
    state: str  # "running" until the output file is written, then "done"
    sent: dict[int, SentPart] = field(default_factory=lambda: dict[int, SentPart]())

    @property
    def done(self) -> bool:
        return self.state == "done"


def _job(row: Row, parts: list[Row]) -> Job:
    sent = {
        int(p["part"]): SentPart(int(p["part"]), str(p["fingerprint"]), str(p["task_id"]), int(p["rows_sent"]))
        for p in parts
    }
    return Job(
        job_id=str(row["job_id"]),
        tool=str(row["tool"]),
        input_file=str(row["input_file"]),
        rows=int(row["rows"]),
        parts=int(row["parts"]),
        estimated_credits=None if row["estimated_credits"] is None else float(row["estimated_credits"]),
        output_file=None if row["output_file"] is None else str(row["output_file"]),
        output_rows=None if row["output_rows"] is None else int(row["output_rows"]),
        state=str(row["state"]),
        sent=sent,
    )


async def _read(conn: LedgerConn, job_id: str) -> Job | None:
    row = await conn.one("SELECT * FROM file_jobs WHERE job_id = ?", (job_id,))
    if row is None:
        return None
    parts = await conn.all("SELECT * FROM file_job_parts WHERE job_id = ? ORDER BY part", (job_id,))
    return _job(row, parts)


async def read_job(ledger: Ledger, job_id: str) -> Job | None:
    return await ledger.call(lambda conn: _read(conn, job_id))


async def open_job(
    ledger: Ledger,
    *,
    job_id: str,
    tool: str,
    input_file: str,
    file_sha256: str,
    rows: int,
    parts: int,
    mapping: dict[str, str],
    estimated_credits: float | None,
) -> Job:
    """The job, created on its first call (two calls at once create it once: the id is the primary key)."""
    now = time.time()
    priced_at = (estimated_credits, now, now)

    async def work(conn: LedgerConn) -> Job:
        await conn.begin(f"job:{job_id}")
        try:
            await conn.execute(
                """INSERT INTO file_jobs (job_id, owner, tool, input_file, file_sha256, rows, parts, mapping_json,
                                          estimated_credits, state, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) ON CONFLICT (job_id) DO NOTHING""",
                (job_id, current_owner(), tool, input_file, file_sha256, rows, parts, json.dumps(mapping), *priced_at),
            )
            job = await _read(conn, job_id)
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        assert job is not None
        return job

    return await ledger.call(work)


async def part_sent(ledger: Ledger, job_id: str, part: Part, *, task_id: str, rows_sent: int) -> None:
    """Record the bulk run that carries `part` (at once, before waiting on it)."""
    now = time.time()

    async def work(conn: LedgerConn) -> None:
        await conn.begin(f"job:{job_id}")
        try:
            await conn.execute(
                """INSERT INTO file_job_parts (job_id, part, fingerprint, first_row, stop_row, rows_sent, task_id,
                                               sent_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, part) DO NOTHING""",
                (job_id, part.number, part.fingerprint, part.start, part.stop, rows_sent, task_id, now),
            )
            await conn.execute("UPDATE file_jobs SET updated_at = ? WHERE job_id = ?", (now, job_id))
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise

    await ledger.call(work)


async def set_output(ledger: Ledger, job_id: str, output_file: str, *, rows: int | None, done: bool) -> None:
    """Name the output before it is written (a resumed call overwrites that file, and only it), then mark the
    job done with the rows written."""
    now = time.time()
    state = "done" if done else "running"

    async def work(conn: LedgerConn) -> None:
        await conn.begin(f"job:{job_id}")
        try:
            await conn.execute(
                "UPDATE file_jobs SET output_file = ?, output_rows = ?, state = ?, updated_at = ? WHERE job_id = ?",
                (output_file, rows, state, now, job_id),
            )
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise

    await ledger.call(work)


async def restart_job(ledger: Ledger, job_id: str) -> None:
    """Forget a job's parts and output (force=true: the caller asked to run the file again, billing again)."""

    async def work(conn: LedgerConn) -> None:
        await conn.begin(f"job:{job_id}")
        try:
            await conn.execute("DELETE FROM file_job_parts WHERE job_id = ?", (job_id,))
            await conn.execute("DELETE FROM file_jobs WHERE job_id = ?", (job_id,))
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise

    await ledger.call(work)


def unsent(job: Job, parts: Sequence[Part]) -> list[Part]:
    """The parts no bulk run carries yet, in order."""
    return [p for p in parts if p.number not in job.sent]
