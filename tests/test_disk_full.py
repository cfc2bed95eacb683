"""The disk fills up between a billable POST and its ledger write: the task id must survive.

The disk is made full for real, for SQLite: `PRAGMA max_page_count` caps the ledger at its current size and
the tasks table is filled to the brim, so the next write fails with SQLITE_FULL ("database or disk is full")
exactly as on a full volume; raising the cap is space coming back.
"""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from databar_mcp.api import DatabarClient
from databar_mcp.api.models import BulkWaterfallRequest, TaskHandle
from databar_mcp.config import Settings
from databar_mcp.core.ledger_sqlite import SqliteBackend
from databar_mcp.core.runner import RunOrder, TaskRunner
from databar_mcp.core.store import Ledger
from databar_mcp.sandbox import SandboxServer
from tests.conftest import LEADS

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"


def fill_the_disk(conn: sqlite3.Connection) -> None:
    """Cap the file at its current pages, then fill the tasks table's free space until nothing more fits."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count = {pages}")
    size, n = 2000, 0
    while size >= 4:
        try:
            conn.execute(
                "INSERT INTO tasks (task_id, status, errors_json, submitted_at, updated_at) "
                "VALUES (?, 'completed', ?, 0, 0)",
                (f"filler-{n}", json.dumps(["x" * size])),
            )
            n += 1
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc):
                raise
            size //= 2


def space_returns(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA max_page_count = 1000000")


async def test_a_task_id_survives_a_full_disk_and_is_written_when_space_returns(
    sandbox: SandboxServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    backend = SqliteBackend(settings.ledger_path)  # the disk is filled through SQLite's own page limit
    ledger = Ledger(backend)
    await ledger.open()
    body = BulkWaterfallRequest(params=LEADS, enrichments=[833, 966], email_verifier=None)
    caplog.set_level(logging.INFO)

    async with DatabarClient.from_settings(settings) as client:
        runner = TaskRunner(
            client, ledger, account="a", poll_first_s=0.02, poll_cap_s=0.1, duplicate_window_s=1800, settle_s=1
        )

        async def send() -> TaskHandle:
            await backend.run_sqlite(fill_the_disk)  # the volume fills up now
            return await client.bulk_run_waterfall("email_getter", body)

        order = RunOrder(
            tool="run_bulk_waterfall",
            endpoint="waterfalls/email_getter/bulk-run",
            request=body.model_dump(mode="json"),
            rows=len(LEADS),
            estimated_credits=12.0,
            force=False,
            send=send,
        )

        async def submit() -> str:
            submitted = await runner.submit(order)
            assert submitted.durable is False
            return submitted.task_id

        task_id = await submit()
        assert ledger.unwritten == 1
        assert task_id in caplog.text  # in the log
        recent, _ = await ledger.recent(limit=5, offset=0)
        assert recent[0].task_id == task_id and recent[0].submission is not None  # listed by list_recent_tasks
        assert [s.id for s in await ledger.unknown_submissions(limit=5)] == []  # known, not "unsettled"

        # An identical call while the disk is still full: the same task, nothing sent again.
        again = await runner.submit(order)
        assert again.task_id == task_id and again.reused is not None
        finished = await runner.wait(task_id, timeout_s=10)  # its result arrives while the disk is full
        assert finished is not None and finished.status == "completed"

        await backend.run_sqlite(space_returns)
        await ledger.open()  # any ledger call writes what was waiting
    assert ledger.unwritten == 0
    ledger.close()

    reopened = Ledger(settings.ledger_path)
    record = await reopened.read(task_id)
    assert record is not None and record.submission is not None
    assert record.submission.outcome == "accepted" and record.submission.task_id == task_id
    assert record.status == "completed" and record.has_result
    stored = record.stored_task()
    assert stored is not None and stored.data == finished.data
    reopened.close()
    assert sandbox.state.counts[BULK_RUN] == 1 and len(sandbox.state.tasks) == 1
