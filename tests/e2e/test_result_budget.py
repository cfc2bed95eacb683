"""Every tool result fits the result budget, error or not, whatever the input or the upstream sends (issue 13
item 8): each oversized result below was 200 KB to 8 MB before. What was cut is said, and the whole result is
readable as the resource the result names."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextResourceContents

from databar_mcp.config import Settings
from databar_mcp.core.shaping import Cuts, shrink
from databar_mcp.sandbox import Fault, SandboxServer
from databar_mcp.tools.kit.fitting import CUT_META_KEY
from tests.conftest import BULK_ARGS, lead, structured, text_of, whole

pytestmark = pytest.mark.anyio

TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
MB = 1_000_000
BUDGET = 40_000

Case = Callable[[Client, SandboxServer], Awaitable[CallToolResult]]


async def bulk_key_1mb(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    return await mcp.call_tool("insert_rows", {"table_uuid": TABLE, "rows": [{"k" * MB: "v"}] * 8})


async def filter_column_1mb(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    return await mcp.call_tool("list_table_rows", {"table_uuid": TABLE, "filter": {"c" * MB: {"equals": "x"}}})


async def upstream_400_with_10k_issues(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    detail = {f"columns.{i}.{'n' * 100}": [f"column {i} is not allowed here " * 3] for i in range(10_000)}
    sandbox.state.inject(Fault(route="POST /v1/table/create", kind="reply", status=400, body={"detail": detail}))
    return await mcp.call_tool("create_table", {"name": "t", "columns": ["a"]})


async def upstream_422_with_10k_issues(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    detail = [{"loc": ["body", "params", i, "x" * 150], "msg": "m" * 400, "type": "t"} for i in range(10_000)]
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="reply", status=422, body={"detail": detail}))
    return await mcp.call_tool("get_account", {})


async def failed_task_with_long_error_list(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    sandbox.state.config.row_seconds = 0.0
    sandbox.state.balance = 1e6
    rows = [lead(f"F{i}", f"L{i}", f"host{i}-{'x' * 60}.fail") for i in range(4_000)]
    return await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": rows, "wait_seconds": 20})


async def partial_task_with_long_error_list(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    sandbox.state.config.row_seconds = 0.0
    sandbox.state.balance = 1e6
    rows = [lead(f"F{i}", f"L{i}", f"h{i}-{'y' * 60}.fail" if i % 2 else "example.com") for i in range(4_000)]
    return await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": rows, "wait_seconds": 20})


async def connector_with_100_params_of_4kb(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    params = [{"name": f"p{i}", "value": "v" * 4_096} for i in range(100)]
    args = {"name": "big", "url": "https://api.example.com/x", "method": "get", "parameters": params}
    return await mcp.call_tool("create_connector", args)


async def table_with_500_long_columns(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    return await mcp.call_tool("create_table", {"name": "t", "columns": [f"{i}{'c' * 250}" for i in range(500)]})


async def table_with_500_duplicate_columns(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    columns = [f"{i % 250}{'d' * 250}" for i in range(500)]
    return await mcp.call_tool("create_table", {"name": "t", "columns": columns})


async def export_with_long_columns(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    extra = {f"{i}{'e' * 2_000}": "x" for i in range(60)}
    rows = [{**lead("John", "Doe", "example.com"), **extra}]
    run = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": rows}))
    return await mcp.call_tool("export_task_result", {"task_id": run["task_id"], "filename": "wide"})


async def unknown_tool_named_1mb(mcp: Client, sandbox: SandboxServer) -> CallToolResult:
    return await mcp.call_tool("t" * MB, {})


CASES: dict[str, Case] = {
    "validation error for a 1 MB row key": bulk_key_1mb,
    "filter with a 1 MB column name": filter_column_1mb,
    "upstream 400 listing 10k issues": upstream_400_with_10k_issues,
    "upstream 422 listing 10k issues": upstream_422_with_10k_issues,
    "failed task with 4k errors": failed_task_with_long_error_list,
    "partially completed task with 2k errors": partial_task_with_long_error_list,
    "create_connector with 100 x 4 KB params": connector_with_100_params_of_4kb,
    "create_table with 500 long columns": table_with_500_long_columns,
    "create_table duplicate-column error": table_with_500_duplicate_columns,
    "export with 60 columns of 2 KB names": export_with_long_columns,
    "unknown tool with a 1 MB name": unknown_tool_named_1mb,
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_every_result_fits_the_budget(case: Case, mcp: Client, sandbox: SandboxServer) -> None:
    result = await case(mcp, sandbox)
    assert len(whole(result)) <= BUDGET, len(whole(result))
    cut = (result.meta or {}).get(CUT_META_KEY)
    if cut is None:
        return
    # A cut result says so, and the whole is a resource away.
    assert "was cut to fit the 40,000-character budget" in text_of(result)
    assert cut["original_chars"] > BUDGET
    uri = f"databar://results/{cut['result_id']}"
    assert uri in text_of(result)
    read = await mcp.read_resource(uri)
    content = read.contents[0]
    assert isinstance(content, TextResourceContents)
    kept = json.loads(content.text)
    assert kept["is_error"] == bool(result.is_error)
    assert len(json.dumps(kept["structured_content"])) + sum(map(len, kept["content"])) >= cut["original_chars"] - 10


async def test_a_cut_success_still_matches_its_output_schema(mcp: Client, sandbox: SandboxServer) -> None:
    result = await connector_with_100_params_of_4kb(mcp, sandbox)
    assert not result.is_error
    assert (result.meta or {}).get(CUT_META_KEY), "100 x 4 KB params cannot fit whole"
    assert not (await mcp.call_tool("enable_toolsets", {"toolsets": ["connectors"]})).is_error
    tool = next(t for t in (await mcp.list_tools()).tools if t.name == "create_connector")
    assert tool.output_schema is not None
    jsonschema.validate(structured(result), tool.output_schema)
    assert len(structured(result)["parameters"]) >= 1


async def test_small_results_are_untouched(mcp: Client) -> None:
    result = await mcp.call_tool("get_account", {})
    assert result.meta is None or CUT_META_KEY not in result.meta
    assert "was cut" not in text_of(result)


async def test_an_unknown_result_id_is_a_resource_error(mcp: Client) -> None:
    with pytest.raises(Exception, match="No such result is kept"):
        await mcp.read_resource("databar://results/0123456789abcdef")


async def test_a_small_budget_is_honoured_too(sandbox: SandboxServer, tmp_path: Any) -> None:
    from databar_mcp.app.server import build_server
    from tests.conftest import make_settings

    settings: Settings = make_settings(sandbox, tmp_path, result_budget_chars=2_000)
    async with Client(build_server(settings)) as mcp:
        for case in (table_with_500_long_columns, filter_column_1mb, connector_with_100_params_of_4kb):
            result = await case(mcp, sandbox)
            assert len(whole(result)) <= 2_000, (case.__name__, len(whole(result)))


def test_shrink_keeps_types_and_counts_what_it_cut() -> None:
    cuts = Cuts()
    value = {"a" * 50: ["x" * 100] * 10, "n": 3, "b": None, "nested": {"deep": [1, 2, 3]}}
    small = shrink(value, max_str=20, max_items=2, cuts=cuts)
    assert isinstance(small, dict)
    (long_key,) = [k for k in small if k.startswith("aaa")]
    assert len(long_key) <= 20
    assert all(isinstance(s, str) and len(s) <= 20 for s in small[long_key])
    assert len(small[long_key]) == 2
    assert small["n"] == 3 and small["b"] is None and small["nested"] == {"deep": [1, 2]}
    assert cuts.strings == 3 and cuts.items == 9


async def test_a_row_larger_than_the_budget_is_shown_cut_and_paging_moves_on(mcp: Client) -> None:
    made = structured(await mcp.call_tool("create_table", {"name": "wide", "columns": ["name", "blob"]}))
    table = made["identifier"]
    rows = [{"name": "small-0", "blob": "s"}, {"name": "huge", "blob": "B" * 200_000}, {"name": "small-2", "blob": "s"}]
    assert not (await mcp.call_tool("insert_rows", {"table_uuid": table, "rows": rows})).is_error
    seen: list[str] = []
    args: dict[str, Any] = {"table_uuid": table, "per_page": 3}
    for _ in range(5):  # it must end well before this
        result = await mcp.call_tool("list_table_rows", args)
        assert len(whole(result)) <= BUDGET
        out = structured(result)
        seen.extend(row["name"] for row in out["rows"])
        if "huge" in [row["name"] for row in out["rows"]]:
            assert (result.meta or {}).get(CUT_META_KEY), "the oversized row is cut, and kept whole as a resource"
        if out.get("next_call") is None:
            break
        assert "skip=" in out["next_call"]
        args = {"table_uuid": table, "per_page": 3, "skip": int(out["next_call"].split("skip=")[1].rstrip(")"))}
    assert seen == ["small-0", "huge", "small-2"]


def test_an_error_body_sent_as_json_text_stays_json_when_cut() -> None:
    """Error results may carry their body as JSON in the text (no structuredContent): cut, it is still JSON."""
    from mcp.types import TextContent

    from databar_mcp.tools.kit.fitting import OversizedResults, fit_result

    body = {"code": "validation_error", "message": "m" * 50_000, "fields": [{"field": "f" * 500}] * 500}
    result = CallToolResult(content=[TextContent(type="text", text=json.dumps(body))], is_error=True)
    fitted = fit_result(result, BUDGET, OversizedResults())
    assert len(whole(fitted)) <= BUDGET
    first = fitted.content[0]
    assert isinstance(first, TextContent)
    assert json.loads(first.text)["code"] == "validation_error"
