"""Every tool call answers by its deadline, whatever the upstream does.

Small deadlines keep these fast: the deadline is 2-3 s, against faults that would otherwise hold the call far
longer (Retry-After waits, slow replies, an identical run that seems to be in flight). Each test asserts the
call ended nearer its deadline than the time the fault would have held it: that tells "stopped at the
deadline" from "waited the fault out" on a busy machine too, where a fixed small margin would measure the
machine (how fast the call is, is the bench's question).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from mcp import Client

from databar_mcp.api.models import BulkWaterfallRequest
from databar_mcp.app.server import build_server
from databar_mcp.core.fingerprint import account_id, fingerprint
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.sandbox import Fault, SandboxServer
from tests.conftest import BULK_ARGS, error_body, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_GET = "GET /v1/tasks/{task_id}"


def ended_by_deadline(elapsed: float, *, deadline_s: float, fault_holds_s: float) -> bool:
    """The call ended closer to its deadline than to the end of the fault's hold."""
    return elapsed < (deadline_s + fault_holds_s) / 2


async def timed(client: Client, tool: str, args: dict[str, object]) -> tuple[dict[str, object], float, str]:
    started = time.monotonic()
    result = await client.call_tool(tool, args)
    body = error_body(result) if result.is_error else structured(result)
    return body, time.monotonic() - started, text_of(result)


async def test_retry_after_waits_on_a_submit_stop_at_the_deadline(sandbox: SandboxServer, tmp_path: Path) -> None:
    """429 with Retry-After 2, three times, under a 3 s deadline: one wait fits, the next does not."""
    settings = make_settings(sandbox, tmp_path, tool_deadline_s=3.0, deadline_margin_s=0.3)
    sandbox.state.inject(Fault(route=BULK_RUN, kind="rate_limit", times=3, retry_after=2))

    async with Client(build_server(settings)) as client:
        out, elapsed, text = await timed(client, "run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 1})

    assert out["code"] == "rate_limited", text
    assert out["retry_after_seconds"] == 2
    assert ended_by_deadline(elapsed, deadline_s=3.0, fault_holds_s=6.0)  # three Retry-After: 2 waits
    # refused once or twice (whether the second Retry-After wait fits depends on how fast the first came back),
    # never run
    assert sandbox.state.counts[BULK_RUN] in (1, 2) and len(sandbox.state.tasks) == 0


async def test_get_task_under_429s_answers_rate_limited_at_once(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, tool_deadline_s=2.0, deadline_margin_s=0.2)
    sandbox.state.config.task_base_seconds = 30  # still running when polled
    async with Client(build_server(settings)) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
        sandbox.state.inject(Fault(route=TASK_GET, kind="rate_limit", times=3, retry_after=5))
        out, elapsed, text = await timed(client, "get_task", {"task_id": first["task_id"], "wait_seconds": 0})

    assert out["code"] == "rate_limited" and out["retry_after_seconds"] == 5, text
    assert ended_by_deadline(elapsed, deadline_s=2.0, fault_holds_s=15.0)  # three Retry-After: 5 waits


async def test_a_slow_reply_to_a_submit_is_submission_unknown_by_the_deadline(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = make_settings(sandbox, tmp_path, tool_deadline_s=2.0, deadline_margin_s=0.2, read_timeout_s=30)
    sandbox.state.inject(Fault(route=BULK_RUN, kind="slow", delay=4))

    async with Client(build_server(settings)) as client:
        out, elapsed, text = await timed(client, "run_bulk_waterfall", BULK_ARGS)
        again, _, _ = await timed(client, "run_bulk_waterfall", BULK_ARGS)

    assert out["code"] == "submission_unknown", text
    assert "deadline" in str(out["message"])
    assert ended_by_deadline(elapsed, deadline_s=2.0, fault_holds_s=4.0)  # a 4 s reply
    assert again["code"] == "submission_unknown"  # recorded: the re-call is not sent
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_slow_polls_end_with_a_handle_by_the_deadline(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, tool_deadline_s=2.0, deadline_margin_s=0.2, read_timeout_s=30)
    sandbox.state.config.task_base_seconds = 0.5
    sandbox.state.inject(Fault(route=TASK_GET, kind="slow", times=5, delay=4))

    async with Client(build_server(settings)) as client:
        out, elapsed, text = await timed(client, "run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 2})

    assert out["status"] == "processing" and "get_task" in str(out["next_call"]), text
    assert ended_by_deadline(elapsed, deadline_s=2.0, fault_holds_s=4.0)  # a 4 s poll


async def test_a_recall_right_after_a_crash_mid_send_answers_by_the_deadline(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The dead process's run is 'pending' and only seconds old: it looks in flight; waiting for it to settle
    (connect + read timeouts) must not outlast the deadline."""
    settings = make_settings(sandbox, tmp_path, tool_deadline_s=2.0, deadline_margin_s=0.2, read_timeout_s=30)
    ledger = Ledger(settings.ledger_path)
    request = BulkWaterfallRequest.model_validate(
        {"params": BULK_ARGS["params"], "enrichments": BULK_ARGS["enrichments"]}
    ).model_dump(mode="json")
    assert settings.api_key is not None
    account = account_id(settings.api_key.get_secret_value(), settings.base_url)
    endpoint = "waterfalls/email_getter/bulk-run"
    await ledger.claim(
        tool="run_bulk_waterfall",
        endpoint=endpoint,
        fingerprint=fingerprint(account=account, endpoint=endpoint, body=request),
        request=request,
        rows=4,
        estimated_credits=12.0,
        window_s=1800,
        force=False,
    )
    ledger.close()
    with sqlite3.connect(settings.ledger_path) as conn:
        assert conn.execute("SELECT outcome FROM submissions").fetchone()[0] == "pending"

    async with Client(build_server(settings)) as client:
        out, elapsed, text = await timed(client, "run_bulk_waterfall", BULK_ARGS)

    assert out["code"] == "submission_unknown", text
    assert ended_by_deadline(elapsed, deadline_s=2.0, fault_holds_s=30.0)  # settled by the read timeout
    assert sandbox.state.counts.get(BULK_RUN, 0) == 0
