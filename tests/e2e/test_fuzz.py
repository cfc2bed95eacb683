"""Hypothesis fuzzing of every tool's arguments through a real MCP client: one field at a time is made
invalid (wrong type, huge or pattern-breaking unicode strings, deep nesting, out of range, missing). The
server never crashes or hangs, always answers a structured validation_error, and the sandbox receives zero
requests."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import TOOLSETS, Settings
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from databar_mcp.tools.kit.registry import DEFINED
from databar_mcp.tools.kit.schemas import portable
from tests.conftest import SENTINEL_KEY, error_body, make_settings


def full_schemas() -> dict[str, dict[str, Any]]:
    """Every tool's input schema as the server validates it: tools/list leaves identifier patterns out of
    what the model reads (tools/kit/schemas.py), and the fuzzer breaks those patterns too."""
    with tempfile.TemporaryDirectory(prefix="databar-fuzz-") as state_dir:  # collection writes nowhere else
        offline = Settings(
            base_url="http://127.0.0.1:9",
            api_key=SecretStr("unused"),
            state_dir=Path(state_dir),
            toolsets=TOOLSETS,  # every tool listed: a default server hands hidden tools to the SDK only when called
        )
        server = build_server(offline)

        async def listed() -> list[Any]:
            async with Client(server):  # a whole session, closed: nothing is left for the garbage collector
                return list(await MCPServer.list_tools(server))

        return {t.name: portable(t.input_schema) for t in anyio.run(listed)}


SCHEMAS: dict[str, dict[str, Any]] = full_schemas()
# Each example draws one value from every way a tool's arguments are made invalid (a field and a kind of wrong
# value, or a required field left out: ~800 in all), so every way is tried this many times. Drawing one way at
# random per example took 100 examples a tool (5,300 calls) and still left ways of the longest tools untried;
# our server's code covered (lines and branches) was the same from 10 random examples a tool.
DRAWS_PER_WAY = 3
TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
LEAD = {"first_name": "Ann", "last_name": "Lee", "company": "example.com"}
MISSING_TABLE = "00000000-0000-4000-8000-000000000000"
FLOW = "8d4e2b71-0c3f-4a95-b7e8-5f6a1c2d3e40"  # the sandbox's "Company research" flow

VALID: dict[str, dict[str, Any]] = {
    "cancel_task": {"task_id": "t1"},
    "create_connector": {"name": "n", "method": "get", "url": "https://x.example/a"},
    "create_table": {"name": "t"},
    "delete_connector": {"connector_id": 1},
    "list_connectors": {"connector_id": 1},
    "enable_toolsets": {"toolsets": ["tables"]},
    "delete_rows": {"table_uuid": TABLE, "row_ids": ["r1"]},
    "export_table_rows": {"table_uuid": TABLE},
    "export_task_result": {"task_id": "t1"},
    "get_enrichment": {"enrichment_id": 120},
    "get_param_choices": {"enrichment_id": 500, "param": "country"},
    "get_table_columns": {"table_uuid": TABLE},
    "get_task": {"task_id": "t1", "wait_seconds": 0},
    "get_waterfall": {"waterfall": "email_getter"},
    "insert_rows": {"table_uuid": TABLE, "rows": [{"first_name": "A"}]},
    "import_rows": {"table_uuid": TABLE, "input_file": "/nonexistent/leads.csv"},
    "list_recent_tasks": {},
    "list_table_rows": {"table_uuid": TABLE},
    "list_waterfalls": {},
    "run_bulk_enrichment": {"enrichment_id": 120, "params": [{"domain": "example.com"}]},
    "run_bulk_waterfall": {"waterfall": "email_getter", "params": [LEAD], "enrichments": [833]},
    "search_enrichments": {},
    "update_connector": {"connector_id": 1, "rate_limit": 2},
    "update_rows": {"table_uuid": TABLE, "rows": [{"id": "r1", "fields": {"first_name": "B"}}]},
    "upsert_rows": {"table_uuid": TABLE, "rows": [{"key": {"email": "a@b.c"}, "fields": {"first_name": "B"}}]},
    # table_enrich, table_admin, exporters, flows (issue 15)
    "add_table_enrichment": {"table_uuid": TABLE, "enrichment": 120, "mapping": {"domain": {"column": "company"}}},
    "list_table_enrichments": {"table_uuid": TABLE},
    "update_table_enrichment": {"table_uuid": TABLE, "enrichment_id": 1, "launch_strategy": "run_on_click"},
    "run_table_enrichment": {"table_uuid": TABLE, "enrichment_id": 999, "wait_seconds": 0},
    "wait_table_enrichment": {"table_uuid": TABLE, "enrichment_id": 999, "wait_seconds": 0},
    "create_column": {"table_uuid": TABLE, "name": "fuzz"},
    "rename_column": {"table_uuid": TABLE, "column": "email", "new_name": "email"},
    "delete_column": {"table_uuid": TABLE, "column": "no such column"},
    "update_table": {"table_uuid": TABLE, "name": "Sandbox leads", "folder_id": 0},
    "delete_table": {"table_uuid": MISSING_TABLE},
    "dedupe_rows": {"table_uuid": TABLE},
    "export_table": {"table_uuid": TABLE, "wait_seconds": 0},
    "create_folder": {"name": "f"},
    "list_exporters": {"exporter_id": 41},
    "add_table_exporter": {"table_uuid": TABLE, "exporter_id": 41, "mapping": {"email": {"column": "email"}}},
    "run_table_exporter": {"table_uuid": TABLE, "table_exporter_id": 999},
    "get_flow": {"flow_id": FLOW},
    "run_bulk_flow": {"flow_id": FLOW, "inputs": [{"domain": "example.com"}], "wait_seconds": 0},
    # table_admin and flows (issue 27): bases that change nothing another base relies on
    "duplicate_table": {"table_uuid": TABLE},
    "clear_table": {"table_uuid": TABLE},  # without confirm: counts only
    "rename_workbook": {"workbook_id": "wb_missing", "name": "w"},
    "duplicate_workbook": {"workbook_id": "wb_missing"},
    "rename_folder": {"folder_id": 999, "name": "f"},
    "delete_folder": {"folder_id": 999},
    "restore_from_trash": {"tables": [MISSING_TABLE]},
    "create_flow": {  # without confirm: checked and priced, nothing saved
        "name": "f",
        "inputs": [{"id": "domain"}],
        "steps": [{"id": "p", "uses": "enrichment:120", "inputs": {"domain": "{{input.domain}}"}}],
        "outputs": {"name": "p.name"},
    },
    "update_flow": {"flow_id": FLOW, "name": "Company research"},
    "list_flow_versions": {"flow_id": FLOW},
    "restore_flow_version": {"flow_id": FLOW, "version": 1},
}
FUZZED = sorted(name for name, schema in SCHEMAS.items() if schema.get("properties"))


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def kinds(prop: dict[str, Any]) -> set[str]:
    """JSON types a property accepts (null aside); a $ref is an enum or object here."""
    found = {prop["type"]} if "type" in prop else set()
    for option in prop.get("anyOf", []):
        if "type" in option:
            found.add(option["type"])
        elif "$ref" in option:
            found.add("enum")
    if "$ref" in prop:
        found.add("enum")
    return found - {"null"}


def constraint(prop: dict[str, Any], key: str) -> Any:
    for source in (prop, *prop.get("anyOf", [])):
        if key in source:
            return source[key]
    return None


def wrong_values(prop: dict[str, Any]) -> list[st.SearchStrategy[Any]]:
    """Kinds of value that no schema of this property accepts."""
    accepted = kinds(prop)
    deep = st.integers(min_value=20, max_value=120).map(nested)  # deep nesting (the official client caps depth)
    options: list[st.SearchStrategy[Any]] = [deep]
    if accepted <= {"string", "enum"}:
        options.append(st.dictionaries(st.text(max_size=5), st.integers(), min_size=1, max_size=3))
        options.append(st.floats(allow_nan=False, allow_infinity=False))
    if accepted <= {"integer", "number"}:
        options.append(st.text(alphabet="abcxyz✓é\u202e\u0000", min_size=1, max_size=20))
        if "integer" in accepted:
            options.append(st.floats(min_value=0.01, max_value=0.99).map(lambda f: f + 1))
    if accepted == {"boolean"}:
        options.append(st.sampled_from(["maybe", "✓", "2", [], {"a": 1}]))
    if accepted <= {"array"}:
        # Not JSON text: the SDK parses JSON-encoded strings for structured parameters ("null", "[1]" are valid).
        options.append(st.text(min_size=1, max_size=50).filter(lambda text: not is_json(text)))
    if accepted <= {"object"}:
        options.append(st.lists(st.integers(), max_size=3))
    if (max_len := constraint(prop, "maxLength")) is not None:
        options.append(st.integers(min_value=max_len + 1, max_value=max_len + 100_000).map(lambda n: "é" * n))
    if constraint(prop, "pattern") is not None:
        options.append(st.text(alphabet="/\\ \u202e\u200b✓\"'<>;.é", min_size=1, max_size=40))
    if (maximum := constraint(prop, "maximum")) is not None:
        options.append(st.integers(min_value=int(maximum) + 1, max_value=int(maximum) + 10**9))
    if (minimum := constraint(prop, "minimum")) is not None:
        options.append(st.integers(min_value=int(minimum) - 10**9, max_value=int(minimum) - 1))
    if (min_items := constraint(prop, "minItems")) is not None and min_items > 0:
        options.append(st.just([]))
    if (max_items := constraint(prop, "maxItems")) is not None and max_items <= 100:
        options.append(st.just([1] * (max_items + 1)))
    if "enum" in accepted:
        options.append(st.text(alphabet="QWERTY✓", min_size=1, max_size=10))
    return options


def invalid_arguments(name: str) -> list[st.SearchStrategy[dict[str, Any]]]:
    """Every way to make the tool's valid base invalid in one field: each kind of wrong value of each field,
    and each required field left out."""
    schema = SCHEMAS[name]
    base = VALID[name]
    mutations: list[st.SearchStrategy[dict[str, Any]]] = [
        kind.map(lambda value, field=field: {**base, field: value})
        for field, prop in schema["properties"].items()
        for kind in wrong_values(prop)
    ]
    for field in schema.get("required", []):
        mutations.append(st.just({k: v for k, v in base.items() if k != field}))
    return mutations


async def bounded_call(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    with anyio.fail_after(10):  # the server never hangs on any input
        return await client.call_tool(name, arguments)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture(scope="module")
def fuzz_server(portal: BlockingPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Any]]:
    config = SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.0)
    with SandboxServer(config) as sandbox:
        # the default server (every toolset loaded, some listed on request), so enable_toolsets is fuzzed too
        server = build_server(make_settings(sandbox, tmp_path_factory.mktemp("fuzz")))
        with portal.wrap_async_context_manager(Client(server)) as client:
            yield client, sandbox


def test_every_tool_has_a_valid_base_and_it_works(fuzz_server: tuple[Client, Any], portal: BlockingPortal) -> None:
    """The bases are valid (so each fuzzed failure comes from the one field made invalid)."""
    client, _ = fuzz_server
    assert set(VALID) >= set(FUZZED)
    for name in FUZZED:
        result = portal.call(client.call_tool, name, VALID[name])
        body = error_body(result) if result.is_error else {}
        assert body.get("code") != "validation_error" or name.endswith("_rows"), (name, body)


@pytest.mark.parametrize("name", FUZZED)
def test_invalid_arguments_are_refused_before_any_request(
    name: str, fuzz_server: tuple[Client, Any], portal: BlockingPortal
) -> None:
    client, sandbox = fuzz_server
    ways = invalid_arguments(name)
    ran: list[dict[str, Any]] = []

    @settings(
        max_examples=DRAWS_PER_WAY,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        for way, mutation in enumerate(ways):
            arguments = data.draw(mutation, label=f"way {way}")
            before = sandbox.state.total_requests()
            result = portal.call(bounded_call, client, name, arguments)
            assert result.is_error, (name, arguments)
            body = error_body(result)
            assert body.get("code") == "validation_error", (name, body)
            assert body.get("next_steps")
            assert sandbox.state.total_requests() == before, (name, arguments)
            ran.append(arguments)

    check()
    assert len(ran) >= len(ways) * DRAWS_PER_WAY, (len(ran), len(ways))  # every way really ran, each time


def test_every_tool_written_is_fuzzed() -> None:
    """The fuzzed schemas come from a server listing every toolset: a default listing once left 38 tools out."""
    written = {spec.name for specs in DEFINED.values() for spec in specs}
    assert written and set(SCHEMAS) >= written, sorted(written - set(SCHEMAS))
