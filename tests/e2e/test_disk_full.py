"""The disk fills up between a billable POST and its ledger write: the task id must survive.

The disk is made full for real, for SQLite: `PRAGMA max_page_count` caps the ledger at its current size and
the tasks table is filled to the brim, so the next write fails with SQLITE_FULL ("database or disk is full")
exactly as on a full volume; raising the cap is space coming back.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from databar_mcp.api import DatabarClient
from databar_mcp.config import Settings
from databar_mcp.core.ledger.spool import SPOOL_NAME
from databar_mcp.core.ledger.sqlite import SqliteBackend
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.sandbox import SandboxServer
from tests.run_orders import email_run, runner_for

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
    caplog.set_level(logging.INFO)

    async with DatabarClient.from_settings(settings) as client:
        runner = runner_for(client, ledger)

        async def fill() -> None:
            await backend.run_sqlite(fill_the_disk)  # the volume fills up now

        order = email_run(client, before_post=fill)

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


async def test_a_table_run_accepted_on_a_full_disk_is_found_accepted_and_written_when_space_returns(
    settings: Settings,
) -> None:
    """A run Databar gives no task id for (a table run) accepted while the disk is full: an identical claim
    finds it accepted with what its reply added (not 'pending', which made the caller wait out its deadline),
    and the record is written by the first ledger call after space returns."""
    backend = SqliteBackend(settings.ledger_path)
    ledger = Ledger(backend)
    await ledger.open()
    request = {"body": {"run": 1}, "scope": {"rows": 5, "columns": ["c" * 40] * 200}}  # more than a page holds

    async def claim() -> Any:
        return await ledger.claim(
            tool="run_table_enrichment", endpoint="table/t/run-enrichment/1", fingerprint="f" * 64,
            request={"body": {"run": 1}}, rows=5, estimated_credits=15.0, window_s=1800, force=False,
        )  # fmt: skip

    first = await claim()
    await backend.run_sqlite(fill_the_disk)
    assert await ledger.accepted_without_task(first.submission_id, request) is False
    assert ledger.unwritten == 1
    again = await claim()
    assert again.submission_id is None and again.earlier is not None
    assert again.earlier.outcome == "accepted" and again.earlier.request == request

    await backend.run_sqlite(space_returns)
    await ledger.open()  # any ledger call writes what was waiting
    assert ledger.unwritten == 0
    ledger.close()
    reopened = Ledger(settings.ledger_path)
    written = await reopened.submission(first.submission_id)
    reopened.close()
    assert written is not None and written.outcome == "accepted" and written.request == request


async def test_a_task_id_kept_on_a_full_disk_survives_the_process_exiting_before_space_returns(
    sandbox: SandboxServer, settings: Settings
) -> None:
    """Regression (issue 22 item 10): the id was kept in memory only, so an exit before space came back lost the
    task Databar had billed. The spool file in the state dir keeps it; the next process writes it."""
    backend = SqliteBackend(settings.ledger_path)
    ledger = Ledger(backend, spool=settings.state_dir / SPOOL_NAME)
    await ledger.open()
    async with DatabarClient.from_settings(settings) as client:
        runner = runner_for(client, ledger)

        async def fill() -> None:
            await backend.run_sqlite(fill_the_disk)

        order = email_run(client, before_post=fill)
        submitted = await runner.submit(order)
    assert submitted.durable is False
    await backend.run_sqlite(space_returns)  # space comes back only after the process is gone:
    ledger.close()  # the process exits with the id unwritten (its memory is lost)

    after = Ledger(settings.ledger_path)  # the next start, on the same state dir (the default spool beside it)
    record = await after.read(submitted.task_id)
    recent, _ = await after.recent(limit=5, offset=0, unfinished_only=True)  # what the tracker polls
    after.close()
    assert record is not None and record.submission is not None
    assert record.submission.outcome == "accepted" and record.submission.task_id == submitted.task_id
    assert [r.task_id for r in recent] == [submitted.task_id]
    assert submitted.task_id.encode() not in (settings.state_dir / SPOOL_NAME).read_bytes()
    assert sandbox.state.counts[BULK_RUN] == 1


def mount(*args: str) -> bool:
    """Run mount(8) or umount(8) (as root; the tests that need it skip elsewhere); True when it worked."""
    tool = shutil.which(args[0])
    if os.geteuid() != 0 or tool is None:
        return False
    return subprocess.run([tool, *args[1:]], check=False, capture_output=True).returncode == 0  # noqa: S603


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB volume (tmpfs) to fill up: a write past it fails with ENOSPC, as on a full disk."""
    where = tmp_path / "volume"
    where.mkdir()
    if not mount("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)):
        pytest.skip("mounting a small volume needs root")
    try:
        yield where
    finally:
        mount("umount", "-l", str(where))


def fill_the_volume(where: Path) -> Path:
    """Fill the volume to its last byte; the file returned, deleted, is space coming back."""
    filler = where / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


async def test_a_full_disk_during_a_table_run_is_a_structured_answer_and_never_sends_it_twice(
    sandbox: SandboxServer, small_disk: Path
) -> None:
    """Regression (issue 22 item 9): the disk filled between the table run's POST and its ledger write
    (`accepted_without_task`), and the agent got an untyped "Error executing tool". And an identical call
    right after waited out its deadline to say submission_unknown: the acceptance is kept in memory now, so
    the call finds the run at once, and the record is written when space returns."""
    from mcp import Client

    from databar_mcp.app.server import build_server
    from databar_mcp.sandbox import Fault
    from tests.conftest import make_settings, structured, text_of
    from tests.e2e.test_table_enrich import RUN, table_with_waterfall

    sandbox.state.balance = 10_000
    server = build_server(make_settings(sandbox, small_disk, toolsets="all"))
    async with Client(server) as client:
        table, enrichment = await table_with_waterfall(client, 5)
        sandbox.state.inject(Fault(route=RUN, kind="slow", delay=0.5))  # the POST arrives, then takes a while
        args = {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 5}
        results: list[Any] = []
        filler: Path | None = None
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                results.append(await client.call_tool("run_table_enrichment", args))

            tg.start_soon(run)
            while sandbox.state.counts.get(RUN, 0) < 1:  # claimed and sent: the disk fills up now
                await anyio.sleep(0.01)
            filler = fill_the_volume(small_disk)
        again = await client.call_tool("run_table_enrichment", {**args, "wait_seconds": 0})
        assert filler is not None
        filler.unlink()  # space returns

    first = results[0]
    assert "Error executing tool" not in text_of(first)
    assert not first.is_error, text_of(first)  # the run went ahead at Databar and is reported as such
    assert "An identical earlier run was returned: nothing was sent or billed again" in text_of(again)
    assert not again.is_error, text_of(again)  # the run kept accepted in memory, found at once: never re-sent
    assert structured(again)["reused"] is True and sandbox.state.counts[RUN] == 1
