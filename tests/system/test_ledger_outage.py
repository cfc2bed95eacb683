"""The ledger's PostgreSQL server goes away (a real restart, a real stop) while Databar runs what we sent.

A task id Databar billed for must never be lost (issue 22 item 8), and no ledger failure may reach the agent as
an untyped "Error executing tool" (item 9). The server is a real PostgreSQL of its own (tests/postgres_server.py),
stopped and started with pg_ctl, so every connection the pool held is closed by the server as in production.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp.api import DatabarClient
from databar_mcp.api.deadline import deadline_in
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.ledger.postgres import PostgresBackend
from databar_mcp.core.ledger.spool import SPOOL_NAME
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.core.tracker import track_once
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, LEADS, error_body, make_settings, structured, text_of
from tests.postgres_server import PostgresServer, start_postgres
from tests.run_orders import email_run, runner_for

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: restarting it must not disturb the session's."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def pg_settings(sandbox: SandboxServer, tmp_path: Path, url: str, **overrides: Any) -> Settings:
    return make_settings(sandbox, tmp_path, database_url=SecretStr(url), **overrides)


async def test_a_restart_between_the_post_and_the_task_id_write_loses_nothing(
    postgres: PostgresServer, sandbox: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    """Regression: the pool handed out a connection the restart had closed, the task id's write failed, and the
    run stayed `pending` with no task id: nothing polled the task Databar had billed."""
    ledger = Ledger(PostgresBackend(postgres.new_database()), spool=tmp_path / "state" / SPOOL_NAME)
    await ledger.open()  # the pool now holds an open connection, which the restart will close
    try:
        async with DatabarClient.from_settings(settings) as client:
            order = email_run(client, after_post=functools.partial(anyio.to_thread.run_sync, postgres.restart))
            submitted = await runner_for(client, ledger).submit(order)
        record = await ledger.read(submitted.task_id)
    finally:
        await ledger.aclose()

    assert submitted.durable is True  # written at once, on a connection checked before it was handed over
    assert record is not None and record.submission is not None
    assert record.submission.outcome == "accepted" and record.submission.task_id == submitted.task_id
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_a_task_id_outlives_a_stopped_database_and_a_process_exit_and_the_tracker_collects_it(
    postgres: PostgresServer, sandbox: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    """The database is down when Databar returns the id, and the process exits before it is back: the spool in
    the state dir keeps the id; the next process writes it when the database answers, and its tracker polls the
    task to its result."""
    url = postgres.new_database()
    spool = tmp_path / "state" / SPOOL_NAME
    ledger = Ledger(PostgresBackend(url), spool=spool)
    await ledger.open()
    try:
        async with DatabarClient.from_settings(settings) as client:
            with deadline_in(3):  # a tool call's deadline: the writes give up in time, the id is kept
                order = email_run(client, after_post=functools.partial(anyio.to_thread.run_sync, postgres.halt))
                submitted = await runner_for(client, ledger).submit(order)
        assert submitted.durable is False and ledger.unwritten == 1
        assert submitted.task_id.encode() in spool.read_bytes()
    finally:
        await ledger.aclose()  # the process exits before the database is back: its memory is gone
        await anyio.to_thread.run_sync(postgres.resume)

    after = Ledger(PostgresBackend(url), spool=spool)  # the next process, on the same state dir
    try:
        async with DatabarClient.from_settings(settings) as client:
            runner = runner_for(client, after)
            while (record := await after.read(submitted.task_id)) is None or not record.has_result:
                await track_once(runner, after)
                await anyio.sleep(0.05)
    finally:
        await after.aclose()

    assert record.status == "completed" and record.submission is not None
    assert record.submission.outcome == "accepted" and record.submission.task_id == submitted.task_id
    assert submitted.task_id.encode() not in spool.read_bytes()  # written, so no longer waiting
    assert sandbox.state.counts[BULK_RUN] == 1 and len(sandbox.state.tasks) == 1


async def test_tools_answer_a_stopped_database_with_a_structured_error(
    postgres: PostgresServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Regression: with the database restarting, every tool answered an untyped "Error executing tool"."""
    settings = pg_settings(sandbox, tmp_path, postgres.new_database(), tool_deadline_s=4)
    async with Client(build_server(settings)) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 3}))
        await anyio.to_thread.run_sync(postgres.halt)
        try:
            run = await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": LEADS[:2]})
            listed = await client.call_tool("list_recent_tasks", {})
        finally:
            await anyio.to_thread.run_sync(postgres.resume)
        again = await client.call_tool("get_task", {"task_id": first["task_id"]})
        while again.is_error and error_body(again)["code"] == "ledger_unavailable":
            # The pool reconnects on its own backoff once the server is back (later on a busy machine); until it
            # has, each call waits its pool timeout and answers the same structured error, never anything else.
            again = await client.call_tool("get_task", {"task_id": first["task_id"]})

    for result in (run, listed):
        body = error_body(result)
        assert body["code"] == "ledger_unavailable", text_of(result)
        assert "Error executing tool" not in text_of(result) and "ledger database" in body["message"]
    assert sandbox.state.counts[BULK_RUN] == 1  # nothing is sent without the ledger's record of it
    assert not again.is_error and structured(again)["status"] == "completed"  # back to normal once it answers


async def test_a_deadline_during_a_database_write_answers_with_the_task_id(
    postgres: PostgresServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Regression: the wait's deadline cancelled a write in flight, and the rollback on the interrupted
    connection raised, replacing the deadline's answer with an untyped error."""
    url = postgres.new_database()
    settings = pg_settings(sandbox, tmp_path, url)
    async with Client(build_server(settings)) as client:
        await client.call_tool("list_recent_tasks", {})  # the schema exists
        with psycopg.connect(url) as blocker:  # the result's write waits on this lock until the deadline fires
            blocker.execute("LOCK TABLE results IN ACCESS EXCLUSIVE MODE")
            result = await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 2})
        done = await client.call_tool("get_task", {"task_id": structured(result)["task_id"], "wait_seconds": 10})

    assert not result.is_error, text_of(result)
    view = structured(result)
    assert view["task_id"] in text_of(result) and "get_task(" in text_of(result)
    assert not done.is_error and structured(done)["status"] == "completed", text_of(done)
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_an_mcp_task_asked_for_while_the_database_is_down_gets_the_tools_structured_answer(
    postgres: PostgresServer, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Regression (found by bench.fault_storm): with no ledger to keep a task handle in, a task-augmented call
    answered a JSON-RPC error; it now answers as a call without a task would (which a tasks client accepts)."""
    from tests.tasks_client import raw

    settings = pg_settings(sandbox, tmp_path, postgres.new_database(), tool_deadline_s=4)
    async with Client(build_server(settings), mode="legacy") as client:
        await client.call_tool("list_recent_tasks", {})
        await anyio.to_thread.run_sync(postgres.halt)
        try:
            answer = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": BULK_ARGS, "task": {}})
        finally:
            await anyio.to_thread.run_sync(postgres.resume)

    assert "task" not in answer and answer["isError"] is True, answer
    assert "ledger_unavailable" in answer["content"][0]["text"]
    assert sandbox.state.counts[BULK_RUN] == 0
