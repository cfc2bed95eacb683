"""Faults at the HTTP edge (the sandbox's injection), each checked against what the sandbox counted.

Polls are idempotent GETs: any burst of 5xx, resets or slow replies is absorbed and the agent sees data.
A run POST is billable: it is sent again only when it certainly never arrived (a 429 rejection).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import Fault, SandboxServer
from databar_mcp.sandbox.config import FaultKind
from tests.conftest import BULK_ARGS, error_body, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_GET = "GET /v1/tasks/{task_id}"

POLL_FAULTS: list[tuple[str, FaultKind, int, int]] = [
    # (case, kind, times, status)
    ("500 burst", "status", 3, 500),
    ("502 burst", "status", 2, 502),
    ("503 burst", "status", 3, 503),
    ("504 burst", "status", 2, 504),
    ("reset before reply", "reset_before", 3, 0),
    ("reply lost after work", "reset_after", 2, 0),
    ("slow reply past the read timeout", "slow", 2, 0),
    ("429 with Retry-After", "rate_limit", 2, 0),
]


@pytest.mark.parametrize(("case", "kind", "times", "status"), POLL_FAULTS, ids=[c[0] for c in POLL_FAULTS])
async def test_poll_faults_are_recovered_without_an_error(
    sandbox: SandboxServer, tmp_path: Path, case: str, kind: FaultKind, times: int, status: int
) -> None:
    sandbox.state.config.task_base_seconds = 0.3  # the first polls see it running, so faults hit real polls
    settings = make_settings(sandbox, tmp_path, read_timeout_s=0.4)
    sandbox.state.inject(Fault(route=TASK_GET, kind=kind, times=times, status=status or 503, delay=0.6, retry_after=0))

    async with Client(build_server(settings)) as client:
        result = await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 15})
        recent = structured(await client.call_tool("list_recent_tasks", {}))

    assert not result.is_error, f"{case}: {text_of(result)}"
    out = structured(result)
    assert out["status"] == "completed" and out["rows_total"] == 4
    assert sandbox.state.counts[BULK_RUN] == 1
    assert sandbox.state.counts[TASK_GET] >= times + 1  # every fault consumed by a poll, then a good one
    assert [t["task_id"] for t in recent["tasks"]] == [out["task_id"]]
    assert recent["tasks"][0]["result_stored"] is True


SUBMIT_UNKNOWN: list[tuple[str, FaultKind, int]] = [
    ("reply lost after the task was created", "reset_after", 0),
    ("connection reset mid-reply", "reset_before", 0),
    ("502 from a proxy", "status", 502),
    ("500", "status", 500),
    ("slow reply past the read timeout", "slow", 0),
]


@pytest.mark.parametrize(("case", "kind", "status"), SUBMIT_UNKNOWN, ids=[c[0] for c in SUBMIT_UNKNOWN])
async def test_a_run_whose_reply_is_lost_is_sent_once_and_reported_unknown(
    sandbox: SandboxServer, tmp_path: Path, case: str, kind: FaultKind, status: int
) -> None:
    settings = make_settings(sandbox, tmp_path, read_timeout_s=0.3)
    sandbox.state.inject(Fault(route=BULK_RUN, kind=kind, status=status or 503, delay=0.6))

    async with Client(build_server(settings)) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
        err = error_body(result)
        assert result.is_error and err["code"] == "submission_unknown", f"{case}: {text_of(result)}"
        fingerprint = err["details"]["fingerprint"]
        assert isinstance(fingerprint, str) and len(fingerprint) == 64

        # The agent re-calls (a retry after a client timeout): refused again, nothing sent.
        again = error_body(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
        assert again["code"] == "submission_unknown"
        assert again["details"]["fingerprint"] == fingerprint

        recent = structured(await client.call_tool("list_recent_tasks", {}))
        assert [(s["fingerprint"], s["outcome"]) for s in recent["unsettled_submissions"]] == [(fingerprint, "unknown")]
        assert sandbox.state.counts[BULK_RUN] == 1

        # The user checked (this client cannot ask them, so the agent says so): force sends it anew, once.
        forced = await client.call_tool(
            "run_bulk_waterfall", {**BULK_ARGS, "force": True, "acknowledge_possible_double_billing": True}
        )
        assert not forced.is_error, text_of(forced)
        assert sandbox.state.counts[BULK_RUN] == 2

    if kind == "slow":
        while len(sandbox.state.tasks) < 2:  # the slow request is still being worked on by the sandbox
            await anyio.sleep(0.05)
    expected_tasks = 1 if kind in ("reset_before", "status") else 2
    assert len(sandbox.state.tasks) == expected_tasks  # what Databar really started: never a duplicate


async def test_429_on_submit_is_retried_after_retry_after_and_runs_once(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="rate_limit", times=2, retry_after=1))

    with anyio.fail_after(20):
        started = anyio.current_time()
        result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)
        elapsed = anyio.current_time() - started

    assert not result.is_error, text_of(result)
    assert structured(result)["status"] == "completed"
    assert sandbox.state.counts[BULK_RUN] == 3  # two rejections (never arrived), then one accepted
    assert len(sandbox.state.tasks) == 1
    assert elapsed >= 2.0  # Retry-After: 1 honoured twice


async def test_rejected_run_is_not_a_duplicate(mcp: Client, sandbox: SandboxServer) -> None:
    """400/422 mean Databar refused it: nothing started, so the same call may be sent again once fixed."""
    sandbox.state.inject(Fault(route=BULK_RUN, kind="status", status=422))
    first = error_body(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))
    assert first["code"] == "validation_error"

    second = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)

    assert not second.is_error, text_of(second)
    assert structured(second).get("reused", False) is False
    assert sandbox.state.counts[BULK_RUN] == 2
    assert len(sandbox.state.tasks) == 1
