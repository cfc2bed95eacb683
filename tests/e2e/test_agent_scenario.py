"""An agent-style session through the MCP client: search → get_waterfall → run_bulk_waterfall → get_task →
create_table → insert_rows of the enriched rows → list_table_rows returns them; with the requests it cost."""

from __future__ import annotations

import pytest
from mcp import Client

from databar_mcp.sandbox import SandboxServer
from tests.conftest import lead, structured

pytestmark = pytest.mark.anyio

LEADS = [lead(f"First{i}", f"Last{i}", "example.com" if i % 3 else "nobody.invalid") for i in range(30)]

# What each step may cost at Databar (the counts the closing note reports); a change shows here.
EXPECTED_REQUESTS = {
    "search_enrichments": {
        "GET /v1/enrichments/": 1,
        "GET /v1/waterfalls/": 1,  # waterfalls are searched too
        "GET /v1/enrichments/{enrichment_id}": 5,
    },
    "get_waterfall": {"GET /v1/waterfalls/{identifier}": 1},
    "run_bulk_waterfall": {"POST /v1/waterfalls/{identifier}/bulk-run": 1},
    "create_table": {"POST /v1/table/create": 1},
    "insert_rows": {"GET /v1/table/{table_uuid}/columns": 1, "POST /v1/table/{table_uuid}/rows": 1},
    "list_table_rows": {"GET /v1/table/{table_uuid}/rows": 1},
}


async def test_search_run_store_and_read_back(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.task_base_seconds = 1.0
    spent: dict[str, dict[str, int]] = {}

    async def step(tool: str, args: dict[str, object]) -> dict[str, object]:
        before = dict(sandbox.state.counts)
        result = await mcp.call_tool(tool, args)
        assert not result.is_error, (tool, result.content)
        delta = {k: v - before.get(k, 0) for k, v in sandbox.state.counts.items() if v != before.get(k, 0)}
        for route, n in delta.items():
            spent.setdefault(tool, {})[route] = spent.get(tool, {}).get(route, 0) + n
        return structured(result)

    found = await step("search_enrichments", {"query": "email"})
    assert any(e["id"] == 833 for e in found["enrichments"])  # type: ignore[union-attr]
    waterfall = await step("get_waterfall", {"waterfall": "email_getter"})
    providers = [p["id"] for p in waterfall["providers"] if p["enabled_by_default"]]  # type: ignore[union-attr]
    run = await step(
        "run_bulk_waterfall",
        {"waterfall": "email_getter", "params": LEADS, "enrichments": providers, "wait_seconds": 0},
    )
    assert run["done"] is False
    # 30 rows: without a limit the answer is a sample (issue 23); the agent asks for every row it will store.
    done = await step("get_task", {"task_id": run["task_id"], "wait_seconds": 20, "limit": 100})
    assert done["status"] == "completed" and done["rows_total"] == 30
    enriched = [
        {**LEADS[int(row["index"])], "email": row["data"]["email"]}  # type: ignore[index]
        for row in done["rows"]  # type: ignore[union-attr]
        if row["data"] is not None  # type: ignore[index]
    ]
    assert len(enriched) == 20

    table = await step("create_table", {"name": "Enriched leads", "columns": [*LEADS[0], "email"]})
    inserted = await step("insert_rows", {"table_uuid": table["identifier"], "rows": enriched})
    assert inserted["counts"] == {"created": 20}
    read = await step("list_table_rows", {"table_uuid": table["identifier"], "per_page": 100})

    assert sorted(r["email"] for r in read["rows"]) == sorted(r["email"] for r in enriched)  # type: ignore[union-attr]
    for tool, routes in EXPECTED_REQUESTS.items():
        assert spent[tool] == routes, (tool, spent[tool])
    polls = spent["get_task"]["GET /v1/tasks/{task_id}"]
    assert 1 <= polls <= 10  # a 1.6 s task, detected promptly with a handful of requests
    print("\nrequests per step:", spent)
