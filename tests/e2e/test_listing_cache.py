"""The start's tools/list kept on disk (databar_mcp/startup.py): a cached start lists exactly what a fresh one
lists, calls every tool, and anything that could change the listing (code, SDK, settings) makes it build again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.app.server import DatabarMCPServer, build_server
from databar_mcp.config import Settings
from databar_mcp.sandbox import SandboxServer
from databar_mcp.startup import CACHE_FILE, ListingCache, fingerprint, source_fingerprint
from databar_mcp.tools.kit.registry import Toolbox
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


def box_of(server: DatabarMCPServer) -> Toolbox:
    assert server.toolbox is not None
    return server.toolbox


async def listing(server: DatabarMCPServer) -> str:
    """tools/list as a client receives it, serialized."""
    async with Client(server) as client:
        result = await client.list_tools()
    return json.dumps(result.model_dump(by_alias=True, mode="json"), sort_keys=True)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"read_only": True}, {"toolsets": ("all",)}, {"toolsets": ("tables", "account")}],
    ids=["default", "read-only", "all", "tables+account"],
)
async def test_a_cached_listing_is_byte_identical_to_a_fresh_one(
    sandbox: SandboxServer, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    settings = make_settings(sandbox, tmp_path, **overrides)
    fresh = build_server(settings)
    assert box_of(fresh).cached is None  # nothing kept yet: built as always
    fresh_listing = await listing(fresh)
    assert (settings.state_dir / CACHE_FILE).is_file()

    cached = build_server(settings)
    box = box_of(cached)
    assert box.cached is not None
    assert set(box.deferred) == set(box.registered)  # no tool given to the SDK: no schema work at start
    assert await listing(cached) == fresh_listing
    assert box.registered == box_of(fresh).registered  # the same tools loaded, by the same toolsets


async def test_a_cached_start_calls_every_tool_and_lists_more_as_a_fresh_one_does(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = make_settings(sandbox, tmp_path)
    fresh = build_server(settings)
    await listing(fresh)
    cached = build_server(settings)
    async with Client(cached) as client:
        account = await client.call_tool("get_account", {})  # listed: its module is imported now
        tables = await client.call_tool("list_tables", {})  # not listed, yet callable
        bad = await client.call_tool("get_task", {"task_id": "t", "nonsense": 1})  # its schema is checked
        enabled = await client.call_tool("enable_toolsets", {"toolsets": ["tables"]})
        after = await client.list_tools()
    assert not account.is_error and not tables.is_error and not enabled.is_error
    assert bad.is_error and "nonsense" in json.dumps(bad.model_dump(mode="json"))
    async with Client(build_server(make_settings(sandbox, tmp_path / "other"))) as client:
        await client.call_tool("enable_toolsets", {"toolsets": ["tables"]})
        expected = await client.list_tools()
    assert after.model_dump(mode="json") == expected.model_dump(mode="json")


def test_any_change_of_code_sdk_or_settings_changes_the_fingerprint(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    sources = source_fingerprint()
    assert "tools/tasks.py" in {path for path, _, _ in sources}
    key = fingerprint(settings, sources)
    assert fingerprint(settings, sources) == key  # stable
    path, size, mtime = sources[0]
    assert fingerprint(settings, [(path, size, mtime + 1), *sources[1:]]) != key  # a file touched
    assert fingerprint(settings, [(path, size + 1, mtime), *sources[1:]]) != key  # a file edited
    assert fingerprint(settings, sources[1:]) != key  # a file removed
    assert fingerprint(settings.model_copy(update={"read_only": True}), sources) != key
    assert fingerprint(settings.model_copy(update={"result_budget_chars": 9_000}), sources) != key


async def test_a_listing_kept_under_another_fingerprint_is_rebuilt_and_replaced(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = make_settings(sandbox, tmp_path)
    fresh_listing = await listing(build_server(settings))
    path = settings.state_dir / CACHE_FILE
    kept = json.loads(path.read_text())
    stale_tools = [dict(tool, description="an older description") for tool in kept["tools"]]
    old_key = fingerprint(settings, [("databar_mcp/tools/tasks.py", 1, 1)])  # as if built from other code
    path.write_text(json.dumps(kept | {"key": old_key, "tools": stale_tools}))
    assert ListingCache(path, old_key).read() is not None  # readable, but only under its own key

    rebuilt = build_server(settings)
    box = box_of(rebuilt)
    assert box.cached is None
    assert not set(box.deferred) & {"get_task", "get_account"}  # the listed tools went to the SDK as always
    assert await listing(rebuilt) == fresh_listing  # not the stale descriptions
    assert json.loads(path.read_text())["key"] == ListingCache.for_settings(settings).key  # replaced


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b'{"key": 1}', b"\xff\xfe"],
    ids=["empty", "torn", "not-an-object", "no-listing", "not-utf8"],
)
async def test_an_unreadable_cache_file_is_a_miss(sandbox: SandboxServer, tmp_path: Path, content: bytes) -> None:
    settings = make_settings(sandbox, tmp_path)
    fresh_listing = await listing(build_server(settings))
    path = settings.state_dir / CACHE_FILE
    path.write_bytes(content)
    rebuilt = build_server(settings)
    assert box_of(rebuilt).cached is None
    assert await listing(rebuilt) == fresh_listing
    assert ListingCache.for_settings(settings).read() is not None  # written again, whole


async def test_a_key_with_a_broken_listing_is_a_miss(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = make_settings(sandbox, tmp_path)
    await listing(build_server(settings))
    path = settings.state_dir / CACHE_FILE
    key = ListingCache.for_settings(settings).key
    path.write_text(json.dumps({"key": key, "tools": [], "known": [["only_two", "fields"]], "resource_modules": []}))
    assert ListingCache.for_settings(settings).read() is None
