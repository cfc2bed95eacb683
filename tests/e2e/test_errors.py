"""Failures an agent can act on come back as structured isError results, with what to do next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import Fault, SandboxServer
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, FieldProblem, error_result
from tests.conftest import BULK_ARGS, error_body, lead, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_GET = "GET /v1/tasks/{task_id}"


async def test_insufficient_credits_gives_balance_and_estimate(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 5.0

    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)

    assert result.is_error
    err = error_body(result)
    assert err["code"] == "insufficient_credits" and err["http_status"] == 406
    assert err["details"]["balance"] == 5.0
    assert err["details"]["estimated_credits"] == 4 * 3.0
    assert any("get_account" in step for step in err["next_steps"])
    assert sandbox.state.tasks == {}


async def test_insufficient_credits_leads_with_the_numbers_and_the_rows_covered(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """Regression (issue 23 §6): the 406 answer opened with "not enough credits, or the plan does not allow this"
    and never said how many rows the balance pays for."""
    sandbox.state.balance = 5.0

    summary = text_of(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)).split("\n")[0]

    assert summary.startswith(
        "Error [insufficient_credits] (HTTP 406): Balance: 5 credits; this run may cost up to 12 (4 row(s) at up to "
        "3 each). The balance covers 1 of the 4 row(s)."
    ), summary
    assert "or the plan does not allow" not in summary  # the numbers explain it: no hedge of ours


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
    err = error_body(result)
    assert err["code"] == "result_expired" and err["http_status"] == 410
    assert err["task_id"] == task_id
    assert "24 hours" in err["message"]
    assert err["next_steps"]


async def test_bad_key_is_auth_failed(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, api_key=SecretStr("wrong-key"))
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_account", {})
    err = error_body(result)
    assert result.is_error and err["code"] == "auth_failed" and err["http_status"] == 403
    assert "DATABAR_API_KEY" in err["next_steps"][0]


async def test_missing_key_is_auth_failed_without_a_request(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path, api_key=None)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_account", {})
    assert error_body(result)["code"] == "auth_failed"
    assert sandbox.state.total_requests() == 0


async def test_rate_limited_get_is_retried_after_retry_after(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="rate_limit", times=2, retry_after=0.0))
    result = await mcp.call_tool("get_account", {})
    assert not result.is_error
    assert sandbox.state.counts["GET /v1/user/me"] == 3


async def test_rate_limit_that_persists_is_reported_with_retry_after(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="rate_limit", times=10, retry_after=120))
    result = await mcp.call_tool("get_account", {})
    err = error_body(result)
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

    err = error_body(result)
    assert result.is_error and err["code"] == "submission_unknown"
    assert any("twice" in step for step in err["next_steps"])
    assert sandbox.state.counts[BULK_RUN] == 1
    assert len(sandbox.state.tasks) == 1  # Databar did the work: exactly one task, billed once


async def test_5xx_on_bulk_run_is_not_retried(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="status", status=502))
    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)
    assert error_body(result)["code"] == "submission_unknown"
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
    err = error_body(result)
    assert err["code"] == "upstream_error"
    assert "connect" in err["message"].lower()


async def test_all_rows_failing_is_task_failed(mcp: Client) -> None:
    rows = [lead("A", "B", "x.fail"), lead("C", "D", "y.fail")]
    result = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": rows})
    err = error_body(result)
    assert result.is_error and err["code"] == "task_failed"
    assert err["task_id"]


async def test_unknown_task_is_not_found(mcp: Client) -> None:
    result = await mcp.call_tool("get_task", {"task_id": "3f1c9b52-0000-4000-8000-000000000000"})
    assert error_body(result)["code"] == "not_found"
    assert error_body(result)["http_status"] == 404


async def test_unknown_waterfall_is_not_found_and_nothing_is_billed(mcp: Client, sandbox: SandboxServer) -> None:
    result = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "waterfall": "no_such_waterfall"})
    assert error_body(result)["code"] == "not_found"
    assert sandbox.state.counts[BULK_RUN] == 0


async def test_error_results_carry_the_body_in_text_and_no_structured_content(mcp: Client) -> None:
    """Regression (issue 12): TypeScript-SDK clients validate structuredContent against the output schema even
    when isError is true, so an error body sent there showed as "data must have required property 'status'"."""
    result = await mcp.call_tool("get_task", {"task_id": "3f1c9b52-0000-4000-8000-000000000000"})

    assert result.is_error and result.structured_content is None
    summary, body_json = (getattr(block, "text", "") for block in result.content)  # two text blocks
    assert summary.startswith("Error [not_found] (HTTP 404): Not found")
    body = json.loads(body_json)
    assert set(body) == {"code", "http_status", "message", "next_steps", "task_id", "retry_after_seconds"} | {
        "fields",
        "details",
    }
    assert body["message"] in summary and body["next_steps"]


def test_an_error_body_over_the_budget_is_cut_and_keeps_what_the_agent_acts_on() -> None:
    body = ErrorBody(
        code=ErrorCode.VALIDATION_ERROR,
        message="Unknown column(s).",
        next_steps=["Fix the listed fields."],
        fields=[FieldProblem(field=f"rows[{i}].x", problem="unknown column 'x'") for i in range(2_000)],
        details={"known_columns": ["c" * 3_000] * 30, "error": "UNKNOWN_COLUMNS"},
    )

    text = text_of(error_result(body, budget=5_000))

    assert len(text) <= 5_000
    cut = json.loads(text.split("\n")[1])
    assert cut["code"] == "validation_error" and cut["next_steps"] == ["Fix the listed fields."]
    assert 0 < len(cut["fields"]) < 2_000 and "too large" in cut["details"]["omitted"]
    small = text_of(error_result(body.model_copy(update={"fields": []}), budget=40_000))
    details = json.loads(small.split("\n")[1])["details"]
    assert details["error"] == "UNKNOWN_COLUMNS" and "truncated, 3000 chars" in details["known_columns"][0]
