"""tools/list: exact names, schemas carrying the API's constraints, all four annotations (a snapshot)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.app.server import INSTRUCTIONS
from databar_mcp.config import CORE_TOOLS, DEFAULT_TOOLSETS, TOOLSETS
from databar_mcp.tools.kit.registry import ALWAYS_LISTED, TOOLSET_META_KEY
from databar_mcp.tools.kit.schemas import model_visible, output_schema, portable

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "tools.json"


EXPECTED = {
    # discover
    "search_enrichments",
    "get_enrichment",
    "get_param_choices",
    "list_waterfalls",
    "get_waterfall",
    # enrich
    "run_bulk_waterfall",
    "run_bulk_enrichment",
    # tasks
    "get_task",
    "cancel_task",
    "list_recent_tasks",
    "export_task_result",
    # tables
    "list_tables",
    "create_table",
    "get_table_columns",
    "list_table_rows",
    "export_table_rows",
    "insert_rows",
    "import_rows",
    "update_rows",
    "upsert_rows",
    "delete_rows",
    # connectors
    "create_connector",
    "list_connectors",
    "update_connector",
    "delete_connector",
    # account
    "get_account",
    # table_enrich
    "add_table_enrichment",
    "list_table_enrichments",
    "update_table_enrichment",
    "run_table_enrichment",
    "wait_table_enrichment",
    # table_admin (not loaded by default)
    "create_column",
    "rename_column",
    "delete_column",
    "update_table",
    "delete_table",
    "dedupe_rows",
    "export_table",
    "create_folder",
    "duplicate_table",
    "clear_table",
    "list_workbooks",
    "rename_workbook",
    "duplicate_workbook",
    "rename_folder",
    "delete_folder",
    "list_trash",
    "restore_from_trash",
    # exporters (not loaded by default)
    "list_exporters",
    "add_table_exporter",
    "run_table_exporter",
    # flows (not loaded by default)
    "list_flows",
    "get_flow",
    "run_bulk_flow",
    "create_flow",
    "update_flow",
    "list_flow_versions",
    "restore_flow_version",
    # offered while a loaded toolset is not listed
    "enable_toolsets",
}


@pytest.fixture
async def every(mcp: Client) -> Client:
    """The default server after enable_toolsets listed everything: every tool the server can list."""
    hidden = [ts for ts in TOOLSETS if ts not in DEFAULT_TOOLSETS]
    assert not (await mcp.call_tool("enable_toolsets", {"toolsets": hidden})).is_error
    return mcp


async def _tools(every: Client) -> list[dict[str, Any]]:
    listed = (await every.list_tools()).tools
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed]


async def test_tool_list_matches_the_snapshot(every: Client) -> None:
    """A changed description or schema shows as a diff; refresh with UPDATE_SNAPSHOTS=1."""
    current = sorted(await _tools(every), key=lambda t: t["name"])
    for tool in current:
        tool.pop("_meta", None)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


async def test_tool_guardrails(every: Client) -> None:
    tools = await _tools(every)
    names = [t["name"] for t in tools]
    assert set(names) == EXPECTED
    assert len(names) == len(set(names))
    for tool in tools:
        hints = tool["annotations"]
        for hint in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
            assert isinstance(hints.get(hint), bool), (tool["name"], hint)
        assert len(tool["description"]) < 2000, tool["name"]
        assert tool["_meta"][TOOLSET_META_KEY] in {*TOOLSETS, ALWAYS_LISTED}, tool["name"]
        schema = tool["inputSchema"]
        assert schema["type"] == "object"
        assert not {"anyOf", "oneOf", "allOf"} & schema.keys(), tool["name"]
        assert "outputSchema" in tool, tool["name"]
    assert len(INSTRUCTIONS) < 2000


async def test_schemas_carry_the_constraints_a_call_is_planned_by(every: Client) -> None:
    """Caps, enums, defaults, required and every bound the server enforces stay in what the model reads: they
    say what a valid call is before it is made (issue 23, section 1)."""
    by_name = {t["name"]: t["inputSchema"] for t in await _tools(every)}
    bulk = by_name["run_bulk_waterfall"]["properties"]
    assert (bulk["params"]["minItems"], bulk["params"]["maxItems"]) == (1, 10_000)
    assert (bulk["wait_seconds"]["minimum"], bulk["wait_seconds"]["maximum"]) == (0, 25)
    assert bulk["email_verifier"]["minimum"] == 1 and bulk["email_verifier"]["type"] == "integer"
    # providers: the defaults; rows: params or input_file (exactly one, checked in the call)
    assert set(by_name["run_bulk_waterfall"]["required"]) == {"waterfall"}
    # listed like every argument it accepts (issue 24, item 1); only a refusal's next_steps ask for it
    assert bulk["acknowledge_possible_double_billing"] == {"default": False, "type": "boolean"}

    rows = by_name["list_table_rows"]["properties"]
    assert (rows["per_page"]["minimum"], rows["per_page"]["maximum"], rows["per_page"]["default"]) == (1, 1000, 100)
    assert rows["page"]["minimum"] == 1

    connector = by_name["create_connector"]
    props = connector["properties"]
    assert set(connector["required"]) == {"name", "method", "url"}
    assert props["method"] == {"enum": ["get", "post", "put", "patch"], "type": "string"}  # inline, no $defs
    assert props["type"]["enum"] == ["simple", "enrichment", "exporter"]
    assert set(connector["$defs"]) == {"NameValue"}  # shared by headers, parameters and body
    # out of every folder stays expressible where an omitted folder_id means "leave it": 0, not null
    move = by_name["update_table"]["properties"]["folder_id"]
    assert move["type"] == "integer" and "0: out of every folder" in move["description"]


SEEDS = (
    Path(__file__).resolve().parents[1] / "seeds"
)  # Databar's own API reference pages, verbatim (as in shared/seeds)


def seed_body_constraints(page: str) -> dict[str, dict[str, Any]]:
    """A Databar reference page's request body fields: {name: {required, maxLength, minimum}} as it states them."""
    body = page.split("\nBody\n", 1)[1].split("\nResponse\n", 1)[0]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    fields: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for i, line in enumerate(lines):
        is_name = (
            re.fullmatch(r"[a-z_]+", line)
            and i + 1 < len(lines)
            and re.match(r"(string|integer|NameValue)", lines[i + 1])
        )
        if is_name:
            current = fields.setdefault(line, {})
        elif current is not None and line == "required":
            current["required"] = True
        elif current is not None and (m := re.fullmatch(r"Maximum string length: (\d+)", line)):
            current["maxLength"] = int(m.group(1))
        elif current is not None and (m := re.fullmatch(r"Required range: x >= (\d+)", line)):
            current["minimum"] = int(m.group(1))
    return fields


async def test_the_four_core_tools_carry_the_constraints_databar_documents(mcp: Client) -> None:
    """Read from Databar's own reference pages: every bound it states for a core tool's input is in the listed
    schema of the default listing, where the model reads it."""
    listed = {t.name: t.input_schema for t in (await mcp.list_tools()).tools}
    assert set(CORE_TOOLS) <= set(listed), "the four core tools are in the default listing"

    documented = seed_body_constraints((SEEDS / "databar-create-connector.txt").read_text(encoding="utf-8"))
    assert {"name", "url", "body_template", "rate_limit", "max_concurrency"} <= set(documented)
    connector = listed["create_connector"]
    for name, bounds in documented.items():
        schema = connector["properties"][name]
        for keyword in ("maxLength", "minimum"):
            if keyword in bounds:
                assert schema.get(keyword) == bounds[keyword], (name, keyword, schema)
        if bounds.get("required"):
            assert name in connector["required"], name

    openapi = (SEEDS / "databar-run-bulk-waterfall.openapi.txt").read_text(encoding="utf-8")
    bulk_request = openapi.split("BulkRequest:", 1)[1].split("title: BulkRequest", 1)[0]
    enrichments = bulk_request.split("enrichments:", 1)[1].split("email_verifier:", 1)[0]
    min_items = int(re.search(r"minItems: (\d+)", enrichments).group(1))  # type: ignore[union-attr]
    assert listed["run_bulk_waterfall"]["properties"]["enrichments"]["minItems"] == min_items == 1
    assert listed["run_bulk_waterfall"]["properties"]["params"]["type"] == "array"
    assert listed["list_table_rows"]["properties"]["per_page"]["maximum"] == 1000  # the seed's default page
    assert listed["get_task"]["properties"]["limit"]["minimum"] == 1


async def test_read_only_hints_match_what_tools_do(every: Client) -> None:
    hints = {t["name"]: t["annotations"] for t in await _tools(every)}
    for name in ("get_task", "list_table_rows", "list_waterfalls", "get_account", "list_recent_tasks"):
        assert hints[name]["readOnlyHint"] is True
    for name in ("run_bulk_waterfall", "create_connector", "export_task_result"):
        assert hints[name]["readOnlyHint"] is False
    for name in ("delete_rows", "delete_connector", "update_connector", "cancel_task"):
        assert hints[name]["destructiveHint"] is True
    for name in ("insert_rows", "create_table", "run_bulk_enrichment", "run_bulk_waterfall", "run_bulk_flow"):
        assert hints[name]["destructiveHint"] is False and hints[name]["idempotentHint"] is False
        assert hints[name]["idempotentHint"] is False


def test_portable_schemas_type_any_value_and_drop_titles_but_keep_names() -> None:
    """Regression (issue 12): `Any` fields were schemas with no validation keyword (Inspector --strict warned)."""
    schema = {
        "title": "Row",
        "type": "object",
        "properties": {
            "data": {"title": "Data", "description": "The data."},
            "title": {"title": "Title", "type": "string"},  # a property named "title" stays
            "tags": {"type": "array", "items": {}},
            "cell": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}], "default": None},
            "page": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": 1},
        },
        "$defs": {"Inner": {"title": "Inner", "anyOf": [{"title": "A", "type": "string"}, {"type": "null"}]}},
    }

    out = portable(schema)

    any_value = [{"type": t} for t in ("object", "null", "array", "string", "number", "boolean")]
    assert out["properties"]["data"] == {"anyOf": any_value, "description": "The data."}
    assert out["properties"]["title"] == {"type": "string"}
    assert out["properties"]["tags"]["items"] == {"anyOf": any_value}
    assert out["properties"]["cell"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}  # int ⊂ number
    assert out["properties"]["page"] == schema["properties"]["page"]  # a constrained integer and a real default stay
    assert out["$defs"]["Inner"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert "title" not in out and schema["title"] == "Row"  # a copy: the SDK's own schema is untouched


async def test_output_schemas_have_no_ref_for_a_client_to_resolve_per_row(every: Client) -> None:
    """Regression (issue 28): get_task's rows were `$ref`s to `$defs/Row`, and any-JSON cells tried null last;
    the MCP SDK's client checks every result against the schema, and resolving a `$ref` per row cost a third of
    a page's check. Every non-recursive definition is now written where it is used."""
    tools = await _tools(every)
    for tool in tools:
        listed = json.dumps(tool["outputSchema"])
        assert "$ref" not in listed and "$defs" not in listed, tool["name"]
    get_task = next(t for t in tools if t["name"] == "get_task")["outputSchema"]
    row = get_task["properties"]["rows"]["items"]
    assert row["required"] == ["index", "data"] and row["properties"]["index"]["type"] == "integer"
    assert [b["type"] for b in row["properties"]["data"]["anyOf"][:2]] == ["object", "null"]


def test_output_schema_inlines_definitions_but_keeps_recursive_ones_and_the_contract() -> None:
    """Written in place, a definition says what its `$ref` said: the same instances pass and fail."""
    from jsonschema import Draft202012Validator

    schema = {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": {"$ref": "#/$defs/Row"}},
            "first": {"$ref": "#/$defs/Row", "description": "The first row."},
            "bounded": {"$ref": "#/$defs/Row", "maxProperties": 1},  # a constraint beside $ref: kept as a $ref
            "tree": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
        },
        "required": ["rows"],
        "$defs": {
            "Row": {"title": "Row", "type": "object", "properties": {"index": {"type": "integer"}, "data": {}}},
            "Node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}},
        },
    }

    out = output_schema(schema)

    assert out["properties"]["rows"]["items"]["properties"]["index"] == {"type": "integer"}
    assert out["properties"]["first"]["description"] == "The first row." and out["properties"]["first"]["type"]
    assert out["properties"]["bounded"]["$ref"] == "#/$defs/Row"
    assert out["properties"]["tree"]["anyOf"][0] == {"$ref": "#/$defs/Node"}
    assert set(out["$defs"]) == {"Row", "Node"}  # Row kept: `bounded` still refers to it
    instances = [
        {"rows": [{"index": 1, "data": None}, {"index": 2, "data": {"a": [1]}}]},
        {"rows": [{"index": "one"}]},
        {"rows": [], "first": {"index": 1.5}},
        {"rows": [], "bounded": {"index": 1, "data": 2}},
        {"rows": [], "tree": {"kids": [{"kids": []}, {"kids": "x"}]}},
        {"rows": [], "tree": {"kids": [{"kids": [{}]}]}},
        {"first": {}},
    ]
    original, inlined = Draft202012Validator(portable(schema)), Draft202012Validator(out)
    verdicts = [(original.is_valid(i), inlined.is_valid(i)) for i in instances]
    assert all(a == b for a, b in verdicts), verdicts
    assert [a for a, _ in verdicts] == [True, False, False, False, False, True, False]


def test_model_visible_schemas_keep_every_bound_and_fold_only_an_omittable_null() -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 2_000_000_000},
            "name": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^a"},
            "rows": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": {"type": "object"}},
            "wait": {"type": "number", "minimum": 0, "maximum": 25},
            "verifier": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "description": "d"},
            "folder": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "cell": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "nested": {"type": "object", "additionalProperties": False, "properties": {"x": {"type": "string"}}},
        },
        "required": ["id", "folder"],
    }

    out = model_visible(schema)["properties"]

    assert out["id"] == schema["properties"]["id"]
    assert out["name"] == schema["properties"]["name"]
    assert out["rows"] == schema["properties"]["rows"]
    assert out["wait"] == schema["properties"]["wait"]
    assert out["verifier"] == {"type": "integer", "minimum": 1, "description": "d"}  # omittable: omitting is its null
    assert out["folder"] == schema["properties"]["folder"]  # required: its null means something
    assert out["cell"] == {"type": "string"}
    assert out["nested"] == schema["properties"]["nested"]
