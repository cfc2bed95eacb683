"""Our tools against every reply variant Databar's own clients accept (API_NOTES, "Reply shapes ...").

The sandbox serves the SDK's shapes by default and the other spellings with `reply_variant`; waterfall
inputs state requiredness as `required`, `is_required`, or not at all. Each tool must work with each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import Fault, SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

VARIANTS: dict[str, dict[str, Any]] = {
    "sdk": {},
    "variant": {"reply_variant": True, "waterfall_required_key": "is_required"},
    "unstated": {"reply_variant": True, "waterfall_required_key": None},
}
PERSON = {"first_name": "John", "last_name": "Doe", "company": "example.com"}
BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"


@pytest.fixture(params=list(VARIANTS))
def variant_sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    config = SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002, **VARIANTS[request.param])
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
async def client(variant_sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(build_server(make_settings(variant_sandbox, tmp_path))) as session:
        yield session


async def ok(client: Client, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result: CallToolResult = await client.call_tool(name, args)
    assert not result.is_error, (name, text_of(result))
    return structured(result)


async def test_discovery_reads_every_variant(client: Client) -> None:
    found = await ok(client, "search_enrichments", {"query": "email"})
    categories = {e["id"]: e["category"] for e in found["enrichments"]}
    assert categories[833] == ["email"] and categories[300] == ["people"]

    techno = await ok(client, "get_enrichment", {"enrichment_id": 121})
    choice = next(p for p in techno["params"] if p["name"] == "tech_category")
    assert choice["choices"][:2] == ["Analytics", "CRM"]

    per_person = await ok(client, "get_enrichment", {"enrichment_id": 510})
    assert per_person["price_times"] == "max_results"

    waterfall = await ok(client, "get_waterfall", {"waterfall": "email_getter"})
    assert waterfall["required_inputs"] == ["first_name", "last_name", "company"]
    assert [(p["id"], p["price"], p["enabled_by_default"]) for p in waterfall["providers"]] == [
        (833, 1.0, True),
        (966, 2.0, True),
        (1001, 1.5, False),
    ]
    assert [v["id"] for v in waterfall["email_verifiers"]] == [10]

    choices = await ok(client, "get_param_choices", {"enrichment_id": 500, "param": "country", "query": "united"})
    assert [c["name"] for c in choices["choices"]][:1] == ["United Arab Emirates"]


async def test_a_missing_required_input_is_refused_before_sending(
    client: Client, variant_sandbox: SandboxServer
) -> None:
    variant_sandbox.state.reset_counts()
    rows = [PERSON, {"first_name": "Ann", "company": "example.com"}]
    args = {"waterfall": "email_getter", "params": rows, "enrichments": [833]}
    result = await client.call_tool("run_bulk_waterfall", args)
    assert result.is_error
    assert "validation_error" in text_of(result) and "last_name" in text_of(result)
    assert variant_sandbox.state.counts[BULK_RUN] == 0
    waterfall = await ok(client, "get_waterfall", {"waterfall": "email_getter"})
    stated = variant_sandbox.state.config.waterfall_required_key is not None
    assert waterfall["unclear_inputs"] == ([] if stated else ["first_name", "last_name", "company"])


async def test_runs_present_the_found_values(client: Client) -> None:
    bulk = await ok(
        client,
        "run_bulk_waterfall",
        {
            "waterfall": "email_getter",
            "params": [PERSON, {**PERSON, "company": "nowhere.invalid"}],
            "enrichments": [833, 966],
            "email_verifier": 10,
        },
    )
    assert bulk["status"] == "completed" and bulk["done"] is True
    first, missing = (row["data"] for row in bulk["rows"])
    assert missing is None
    assert first["email"] == "john.doe@example.com"
    assert first["provider"] == "LeadMagic email finder"
    assert isinstance(first["verified"], bool)
    assert first["credits"] == pytest.approx(1.5)
    assert bulk["credits_spent"] == pytest.approx(1.5 + 1.0 + 2.0)

    single = await ok(client, "run_bulk_waterfall", {"waterfall": "email_getter", "params": [PERSON]})
    assert single["rows"][0]["data"]["email"] == "john.doe@example.com"

    company = await ok(client, "run_bulk_enrichment", {"enrichment_id": 120, "params": [{"domain": "example.com"}]})
    assert company["rows"][0]["data"]["name"] == "Example"
    many = await ok(
        client,
        "run_bulk_enrichment",
        {"enrichment_id": 120, "params": [{"domain": "a.invalid"}, {"domain": "example.com"}]},
    )
    assert [row["data"] is None for row in many["rows"]] == [True, False]

    people = await ok(
        client, "run_bulk_enrichment", {"enrichment_id": 510, "params": [{"domain": "example.com", "max_results": 5}]}
    )
    assert people["estimated_credits"] == pytest.approx(0.2 * 5)

    again = await ok(client, "get_task", {"task_id": bulk["task_id"]})
    assert again["rows"][0]["data"]["email"] == "john.doe@example.com"


async def test_row_writes_report_row_errors(client: Client) -> None:
    table = await ok(client, "create_table", {"name": "Leads", "columns": ["email", "name"]})
    uuid = table["identifier"] if "identifier" in table else table["table"]["identifier"]
    inserted = await ok(client, "insert_rows", {"table_uuid": uuid, "rows": [{"email": "a@x.io", "name": "A"}]})
    row_id = inserted["rows"][0]["id"]
    updated = await ok(
        client,
        "update_rows",
        {
            "table_uuid": uuid,
            "rows": [{"id": row_id, "fields": {"name": "B"}}, {"id": "gone", "fields": {"name": "X"}}],
        },
    )
    assert updated["counts"] == {"failed": 1, "updated": 1}
    assert "Row not found." in next(r["error"] for r in updated["rows"] if r["action"] == "failed")
    upserted = await ok(
        client, "upsert_rows", {"table_uuid": uuid, "rows": [{"key": {"email": "a@x.io"}, "fields": {"name": "C"}}]}
    )
    assert upserted["counts"] == {"updated": 1}
    deleted = await ok(client, "delete_rows", {"table_uuid": uuid, "row_ids": [row_id, "gone"]})
    assert deleted["counts"] == {"deleted": 1, "failed": 1}


async def test_validation_bodies_show_their_fields(client: Client, variant_sandbox: SandboxServer) -> None:
    """The sandbox refuses an unknown choice; the body's fields (either envelope) reach the agent.

    The choices endpoint is down, so our own check of the long country list (issue 13) cannot run first."""
    choices = "GET /v1/enrichments/{enrichment_id}/params/{slug}/choices"
    variant_sandbox.state.inject(Fault(route=choices, kind="status", status=503, times=1000))  # down
    result = await client.call_tool(
        "run_bulk_enrichment",
        {"enrichment_id": 500, "params": [{"job_title": "CTO", "country": "Atlantis"}], "force": True},
    )
    assert result.is_error
    assert "country" in text_of(result)
    assert "not a valid choice" in text_of(result)
    assert variant_sandbox.state.counts["POST /v1/enrichments/{enrichment_id}/bulk-run"] == 1


async def test_table_pages_step_down_when_the_api_caps_them(tmp_path: Path) -> None:
    config = SandboxConfig(api_key=SENTINEL_KEY, rows_per_page_max=500, seed_table_rows=1200)
    with SandboxServer(config) as server:
        async with Client(build_server(make_settings(server, tmp_path))) as session:
            table = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
            page = await ok(session, "list_table_rows", {"table_uuid": table, "page": 2, "per_page": 1000})
            assert page["total_count"] == 1200
            shown = page["rows"]
            assert shown and shown[0]["id"] == server.state.tables[table].rows[1000]["id"]
            exported = await ok(session, "export_table_rows", {"table_uuid": table, "format": "jsonl"})
            assert exported["rows_written"] == 1200 and exported["complete"] is True
        refused = server.state.counts["GET /v1/table/{table_uuid}/rows"]
    # one refusal of 1000, then 500-row pages: page 2 of 1000 is API page 3 (the last, 200 rows), and the
    # export reads API pages 1, 2 and 3
    assert refused == 1 + 1 + 3
