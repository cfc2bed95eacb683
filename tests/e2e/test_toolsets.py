"""Toolsets and read-only mode change tools/list as specified; read-only tools never send a non-GET."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.config import CORE_TOOLS, DEFAULT_TOOLSETS, TOOLSETS
from databar_mcp.sandbox import SandboxServer
from databar_mcp.tools.kit.registry import TOOLSET_META_KEY
from tests.conftest import BULK_ARGS, error_body, make_settings, structured
from tests.e2e.test_tools_list import EXPECTED

pytestmark = pytest.mark.anyio

SEED_TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"


async def tools_of(sandbox: SandboxServer, tmp_path: Path, **overrides: Any) -> dict[str, dict[str, Any]]:
    async with Client(build_server(make_settings(sandbox, tmp_path, **overrides))) as client:
        listed = (await client.list_tools()).tools
    return {t.name: t.model_dump(mode="json", by_alias=True) for t in listed}


async def test_every_tool_belongs_to_a_toolset_and_all_lists_them(sandbox: SandboxServer, tmp_path: Path) -> None:
    tools = await tools_of(sandbox, tmp_path, toolsets="all")
    toolsets = {t["_meta"][TOOLSET_META_KEY] for t in tools.values()}
    assert toolsets == set(TOOLSETS)
    assert set(tools) == EXPECTED - {"enable_toolsets"}  # every toolset listed: nothing left to offer


async def test_by_default_the_core_toolsets_are_listed_and_enable_toolsets_offers_the_rest(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    everything = await tools_of(sandbox, tmp_path / "all", toolsets="all")
    default = await tools_of(sandbox, tmp_path / "default")
    core = {n for n, t in everything.items() if t["_meta"][TOOLSET_META_KEY] in DEFAULT_TOOLSETS}
    # the four tools this server exists for are listed too, though two of their toolsets wait behind enable_toolsets
    assert set(default) == core | set(CORE_TOOLS) | {"enable_toolsets"}
    assert {"create_connector", "list_table_rows"} - core == {"create_connector", "list_table_rows"}
    offer = default["enable_toolsets"]
    assert "tables (9 tools)" in offer["description"] and "connectors (3 tools)" in offer["description"]
    assert offer["annotations"]["readOnlyHint"] is True and offer["annotations"]["openWorldHint"] is False


async def test_enable_toolsets_lists_them_and_tells_the_client(sandbox: SandboxServer, tmp_path: Path) -> None:
    notices: list[str] = []

    async def on_message(message: object) -> None:
        notices.append(str(getattr(message, "method", type(message).__name__)))

    everything = await tools_of(sandbox, tmp_path / "all", toolsets="all")
    settings = make_settings(sandbox, tmp_path / "default")
    async with Client(build_server(settings), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.tools is not None and client.server_capabilities.tools.list_changed
        out = structured(await client.call_tool("enable_toolsets", {"toolsets": ["tables"]}))
        listed = {t.name for t in (await client.list_tools()).tools}
        again = structured(await client.call_tool("enable_toolsets", {"toolsets": ["tables", "discover"]}))
        rows = await client.call_tool("list_tables", {})
    tables = {n for n, t in everything.items() if t["_meta"][TOOLSET_META_KEY] == "tables"}
    assert set(out["new_tools"]) == tables - {"list_table_rows"} and "tables" in out["listed"]
    assert tables <= listed and "update_connector" not in listed  # connectors: only its core tool is listed
    assert again["new_tools"] == [] and not rows.is_error
    assert notices.count("notifications/tools/list_changed") == 1  # only the call that changed the list


async def test_enabled_tools_are_listed_as_written_and_as_if_loaded_at_start(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Tools of unlisted toolsets reach the SDK only when listed or called: tools/list must not show it."""
    everything = await tools_of(sandbox, tmp_path / "all", toolsets="all")
    async with Client(build_server(make_settings(sandbox, tmp_path / "default"))) as client:
        called = await client.call_tool("list_connectors", {"connector_id": 1})  # registered by the call
        await client.call_tool("enable_toolsets", {"toolsets": ["connectors", "tables"]})
        after = [t.model_dump(mode="json", by_alias=True) for t in (await client.list_tools()).tools]
    chosen = {*DEFAULT_TOOLSETS, "tables", "connectors"}
    expected = [n for n, t in everything.items() if t["_meta"][TOOLSET_META_KEY] in chosen]
    assert [t["name"] for t in after] == [*expected, "enable_toolsets"]  # the order they are written in
    assert [t for t in after if t["name"] != "enable_toolsets"] == [everything[n] for n in expected]
    # the tool ran (nobody had listed it) and asked Databar, which has no such connector: not "Unknown tool"
    assert error_body(called)["code"] == "not_found"


async def test_an_explicit_choice_loads_exactly_it(sandbox: SandboxServer, tmp_path: Path) -> None:
    chosen = await tools_of(sandbox, tmp_path, toolsets="discover,enrich,tasks,account")
    assert "enable_toolsets" not in chosen
    async with Client(build_server(make_settings(sandbox, tmp_path, toolsets="discover"))) as client:
        refused = await client.call_tool("list_tables", {})
    assert refused.is_error  # not loaded at all: nothing to enable


@pytest.mark.parametrize("chosen", [("discover",), ("tasks", "account"), ("tables", "connectors")])
async def test_toolset_selection_loads_only_those(sandbox: SandboxServer, tmp_path: Path, chosen: tuple[str]) -> None:
    everything = await tools_of(sandbox, tmp_path / "all", toolsets="all")
    selected = await tools_of(sandbox, tmp_path / "some", toolsets=",".join(chosen))
    expected = {name for name, t in everything.items() if t["_meta"][TOOLSET_META_KEY] in chosen}
    assert set(selected) == expected and expected


async def test_read_only_mode_removes_every_tool_that_writes_or_spends(sandbox: SandboxServer, tmp_path: Path) -> None:
    everything = await tools_of(sandbox, tmp_path / "all", toolsets="all")
    read_only = await tools_of(sandbox, tmp_path / "ro", read_only=True, toolsets="all")
    assert set(read_only) == {n for n, t in everything.items() if t["annotations"]["readOnlyHint"]}
    for gone in ("run_bulk_waterfall", "run_bulk_enrichment", "insert_rows", "delete_connector", "cancel_task"):
        assert gone not in read_only
    assert {"get_task", "list_waterfalls", "get_account", "list_recent_tasks"} <= set(read_only)
    # read-only wins over an explicit toolset choice
    enrich_ro = await tools_of(sandbox, tmp_path / "ro2", read_only=True, toolsets="enrich")
    assert enrich_ro == {}


READ_ONLY_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("search_enrichments", {"query": "email"}),
    ("get_enrichment", {"enrichment_id": 833}),
    ("get_param_choices", {"enrichment_id": 500, "param": "country", "query": "united"}),
    ("list_waterfalls", {}),
    ("get_waterfall", {"waterfall": "email_getter"}),
    ("get_account", {}),
    ("list_recent_tasks", {}),
    ("list_tables", {}),
    ("get_table_columns", {"table_uuid": SEED_TABLE}),
    ("list_table_rows", {"table_uuid": SEED_TABLE, "per_page": 5}),
    ("list_connectors", {}),
]


async def test_read_only_tools_never_send_anything_but_gets(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(
        sandbox, tmp_path, read_only=True, toolsets="discover,enrich,tasks,tables,connectors,account,table_enrich"
    )
    async with Client(build_server(make_settings(sandbox, tmp_path / "writer"))) as writer:
        task_id = structured(await writer.call_tool("run_bulk_waterfall", BULK_ARGS))["task_id"]
        await writer.call_tool("create_connector", {"name": "c", "method": "get", "url": "https://example.com/x"})
        mapping = {p: {"column": p} for p in ("first_name", "last_name", "company")}
        added = await writer.call_tool(
            "add_table_enrichment", {"table_uuid": SEED_TABLE, "enrichment": "email_getter", "mapping": mapping}
        )
        attached = structured(added)["enrichment_id"]
    sandbox.state.reset_counts()

    async with Client(build_server(settings)) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        calls = [
            *READ_ONLY_CALLS,
            ("get_task", {"task_id": task_id}),
            ("list_connectors", {"connector_id": 1}),
            ("list_table_enrichments", {"table_uuid": SEED_TABLE}),
            ("wait_table_enrichment", {"table_uuid": SEED_TABLE, "enrichment_id": attached, "wait_seconds": 0}),
        ]
        called = set()
        for name, args in calls:
            if name not in listed:
                continue
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, result.content)
            called.add(name)

    assert called == listed - {"export_task_result"}  # every read-only tool was exercised
    methods = {route.split(" ", 1)[0] for route, n in sandbox.state.counts.items() if n}
    assert methods == {"GET"}


def test_enable_toolsets_knows_every_toolset() -> None:
    from typing import get_args

    from databar_mcp.tools.toolsets import PURPOSE, ToolsetName

    assert set(PURPOSE) == set(TOOLSETS) == set(get_args(ToolsetName)[0])  # Annotated[Toolset, its schema]
