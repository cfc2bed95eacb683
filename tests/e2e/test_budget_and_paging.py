"""Every result fits the context budget whatever the size; paging returns every row exactly once."""

from __future__ import annotations

import pytest
from mcp import Client

from databar_mcp.config import Settings
from databar_mcp.core.users import acting_as
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, lead, run_sql, structured, whole

TASK_GET = "GET /v1/tasks/{task_id}"

pytestmark = pytest.mark.anyio


def _leads(n: int) -> list[dict[str, str]]:
    companies = ["example.com", "acme.com", "globex.io", "none.invalid"]
    return [lead(f"First{i}", f"Last{i}", companies[i % 4]) for i in range(n)]


async def test_large_run_pages_within_budget_and_loses_no_row(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.row_seconds = 0.0
    sandbox.state.balance = 100_000.0
    rows = _leads(2_000)
    first = await mcp.call_tool(
        "run_bulk_waterfall", {"waterfall": "email_getter", "params": rows, "enrichments": [833, 966]}
    )
    out = structured(first)
    assert out["status"] == "completed"
    sizes = [len(whole(first))]
    collected = list(out["rows"])
    pages = 1
    while out.get("next_offset") is not None:
        assert out["next_call"] == f'get_task(task_id="{out["task_id"]}", offset={out["next_offset"]}, limit=50)'
        page = await mcp.call_tool("get_task", {"task_id": out["task_id"], "offset": out["next_offset"]})
        sizes.append(len(whole(page)))
        out = structured(page)
        collected.extend(out["rows"])
        pages += 1
    assert [row["index"] for row in collected] == list(range(2_000))
    assert max(sizes) <= 40_000
    assert pages > 2
    # example.com rows are always found; .invalid never.
    assert all(collected[i]["data"] is not None for i in range(0, 2_000, 4))
    assert all(collected[i]["data"] is None for i in range(3, 2_000, 4))


async def test_limit_caps_the_page(mcp: Client) -> None:
    out = structured(
        await mcp.call_tool(
            "run_bulk_waterfall", {"waterfall": "email_getter", "params": _leads(30), "enrichments": [833]}
        )
    )
    page = structured(await mcp.call_tool("get_task", {"task_id": out["task_id"], "offset": 10, "limit": 5}))
    assert [r["index"] for r in page["rows"]] == [10, 11, 12, 13, 14]
    assert page["next_offset"] == 15


async def test_offset_past_the_end_is_an_empty_page(mcp: Client) -> None:
    out = structured(
        await mcp.call_tool(
            "run_bulk_waterfall", {"waterfall": "email_getter", "params": _leads(3), "enrichments": [833]}
        )
    )
    page = structured(await mcp.call_tool("get_task", {"task_id": out["task_id"], "offset": 99}))
    assert page["rows"] == []
    assert page.get("next_call") is None


async def test_a_finished_tasks_page_is_answered_again_from_memory(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    """Issue 28 (sequential get_task calls): each warm get_task on a finished task read and decompressed the
    ledger's copy, presented every row and fitted the page again, for the same answer. The same page, for the
    same user and arguments, is now kept a minute: the second call reads nothing (here the ledger's copy is gone
    meanwhile, and the answer is still the one it gave), while another page, or another user, is worked out anew."""
    sandbox.state.balance = 1_000.0
    done = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 25}))
    task_id = done["task_id"]
    assert done["done"] is True
    args = {"task_id": task_id, "limit": 2}
    first = whole(await mcp.call_tool("get_task", args))
    assert "Served from the local ledger copy" in first and f"Task {task_id} completed" in first
    run_sql(settings, "DELETE FROM results WHERE task_id = ?", task_id)
    gets = sandbox.state.counts[TASK_GET]

    again = whole(await mcp.call_tool("get_task", args))

    assert again == first and sandbox.state.counts[TASK_GET] == gets  # no request, the same answer
    other_page = whole(await mcp.call_tool("get_task", {**args, "offset": 2}))
    assert sandbox.state.counts[TASK_GET] == gets + 1 and "Served from the local ledger copy" not in other_page
    with acting_as("bob"):  # not the user who ran it: nothing kept for another user is handed over
        refused = await mcp.call_tool("get_task", args)
    assert refused.is_error and "not_found" in whole(refused)
