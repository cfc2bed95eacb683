"""Failures an agent can act on come back as structured isError results, with what to do next."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp.sandbox import Fault, SandboxServer
from databar_mcp.server import build_server
from tests.conftest import BULK_ARGS, lead, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_GET = "GET /v1/tasks/{task_id}"


async def test_insufficient_credits_gives_balance_and_estimate(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 5.0

    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)

    assert result.is_error
    err = structured(result)
    assert err["code"] == "insufficient_credits" and err["http_status"] == 406
    assert err["details"]["balance"] == 5.0
    assert err["details"]["estimated_credits"] == 4 * 3.0
    assert any("get_account" in step for step in err["next_steps"])
    assert sandbox.state.tasks == {}


@pytest.mark.parametrize("gone_style", ["http_410", "status_gone"])
async def test_expired_results_without_a_local_copy_explain_what_happened(
    mcp: Client, sandbox: SandboxServer, gone_style: str, tmp_path: Path
) -> None:
    sandbox.state.config.gone_style = gone_style  # type: ignore[assignment]
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["task_id"]
    sandbox.state.clock.advance(25 * 3600)

    # Another machine (its own state dir, no ledger copy) asks for the task after expiry.
    async with Client(build_server(make_settings(sandbox, tmp_path / "elsewhere"))) as other:
        result = await other.call_tool("get_task", {"task_id": task_id})

    assert result.is_error
    err = structured(result)
    assert err["code"] == "result_expired" and err["http_status"] == 410
    assert err["task_id"] == task_id
    assert "24 hours" in err["message"]
    assert err["next_steps"]


async def test_bad_key_is_auth_failed(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, api_key=SecretStr("wrong-key"))
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_account", {})
    err = structured(result)
    assert result.is_error and err["code"] == "auth_failed" and err["http_status"] == 403
    assert "DATABAR_API_KEY" in err["next_steps"][0]


async def test_missing_key_is_auth_failed_without_a_request(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, api_key=None)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_account", {})
    assert structured(result)["code"] == "auth_failed"
    assert sandbox.state.total_requests() == 0


async def test_rate_limited_get_is_retried_after_retry_after(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="rate_limit", times=2, retry_after=0.0))
    result = await mcp.call_tool("get_account", {})
    assert not result.is_error
    assert sandbox.state.counts["GET /v1/user/me"] == 3


async def test_rate_limit_that_persists_is_reported_with_retry_after(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="rate_limit", times=10, retry_after=120))
    result = await mcp.call_tool("get_account", {})
    err = structured(result)
    assert err["code"] == "rate_limited" and err["http_status"] == 429
    assert err["retry_after_seconds"] == 120
    assert sandbox.state.counts["GET /v1/user/me"] == 1  # 120 s is beyond the cap: no blind wait


async def test_5xx_and_resets_on_polls_are_recovered(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route=TASK_GET, kind="status", status=503, times=1))
    sandbox.state.inject(Fault(route=TASK_GET, kind="reset_before", times=1))
    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)
    assert not result.is_error, text_of(result)
    assert structured(result)["status"] == "completed"
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_lost_reply_to_bulk_run_is_never_sent_twice(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="reset_after"))

    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)

    err = structured(result)
    assert result.is_error and err["code"] == "submission_unknown"
    assert any("twice" in step for step in err["next_steps"])
    assert sandbox.state.counts[BULK_RUN] == 1
    assert len(sandbox.state.tasks) == 1  # Databar did the work: exactly one task, billed once


async def test_5xx_on_bulk_run_is_not_retried(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="status", status=502))
    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)
    assert structured(result)["code"] == "submission_unknown"
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_429_on_bulk_run_is_retried_once_and_runs_once(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="rate_limit", retry_after=0.0))
    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)
    assert not result.is_error, text_of(result)
    assert sandbox.state.counts[BULK_RUN] == 2
    assert len(sandbox.state.tasks) == 1


async def test_refused_connection_is_retried_then_reported(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, base_url="http://127.0.0.1:9/v1", max_retries=1)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = structured(result)
    assert err["code"] == "upstream_error"
    assert "connect" in err["message"].lower()


async def test_all_rows_failing_is_task_failed(mcp: Client) -> None:
    rows = [lead("A", "B", "x.fail"), lead("C", "D", "y.fail")]
    result = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": rows})
    err = structured(result)
    assert result.is_error and err["code"] == "task_failed"
    assert err["task_id"]


async def test_unknown_task_is_not_found(mcp: Client) -> None:
    result = await mcp.call_tool("get_task", {"task_id": "3f1c9b52-0000-4000-8000-000000000000"})
    assert structured(result)["code"] == "not_found"
    assert structured(result)["http_status"] == 404


async def test_unknown_waterfall_is_not_found_and_nothing_is_billed(mcp: Client, sandbox: SandboxServer) -> None:
    result = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "waterfall": "no_such_waterfall"})
    assert structured(result)["code"] == "not_found"
    assert sandbox.state.counts[BULK_RUN] == 0
