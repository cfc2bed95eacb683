"""create_connector masks header values everywhere; list_table_rows pages within the result budget."""

from __future__ import annotations

import pytest
from mcp import Client

from databar_mcp.sandbox import SandboxServer
from tests.conftest import error_body, structured, text_of, whole

pytestmark = pytest.mark.anyio

TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
SECRET = "Bearer sk-connector-SENTINEL-77aa"


async def test_create_connector_masks_every_header_value(mcp: Client, sandbox: SandboxServer) -> None:
    result = await mcp.call_tool(
        "create_connector",
        {
            "name": "My Scoring API",
            "method": "post",
            "url": "https://api.example.com/v1/score",
            "headers": [{"name": "Authorization", "value": SECRET}, {"name": "X-Other", "value": "plain"}],
            "parameters": [{"name": "company_domain", "value": ""}],
            "body": [{"name": "domain", "value": ""}],
            "rate_limit": 60,
            "max_concurrency": 5,
        },
    )

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert isinstance(out["id"], int)
    assert [h["name"] for h in out["headers"]] == ["Authorization", "X-Other"]
    assert {h["value"] for h in out["headers"]} == {"********"}
    assert out["rate_limit"] == 10
    assert any("asked 60" in note for note in out["notes"])
    assert SECRET not in whole(result)
    assert "sk-connector" not in whole(result)
    assert sandbox.state.counts["POST /v1/connectors/"] == 1


async def test_connector_create_failure_does_not_leak_headers(mcp: Client, sandbox: SandboxServer) -> None:
    from databar_mcp.sandbox import Fault

    sandbox.state.inject(Fault(route="POST /v1/connectors/", kind="status", status=500))
    result = await mcp.call_tool(
        "create_connector",
        {"name": "n", "method": "get", "url": "https://x.example/a", "headers": [{"name": "K", "value": SECRET}]},
    )
    assert result.is_error
    assert error_body(result)["code"] == "upstream_error"
    assert SECRET not in whole(result)
    assert sandbox.state.counts["POST /v1/connectors/"] == 1  # a create is not idempotent: never re-sent


async def test_table_rows_page_and_next_call(mcp: Client) -> None:
    result = await mcp.call_tool("list_table_rows", {"table_uuid": TABLE, "page": 2, "per_page": 50})
    out = structured(result)
    assert out["total_count"] == 2345
    assert out["has_next_page"] is True
    assert len(out["rows"]) == 50
    assert all("id" in row for row in out["rows"])
    assert out["next_call"] == f'list_table_rows(table_uuid="{TABLE}", page=3, per_page=50)'


async def test_last_table_page_has_no_next_call(mcp: Client) -> None:
    out = structured(await mcp.call_tool("list_table_rows", {"table_uuid": TABLE, "page": 24, "per_page": 100}))
    assert len(out["rows"]) == 45
    assert out["has_next_page"] is False
    assert out.get("next_call") is None


async def test_a_page_larger_than_the_budget_is_cut_with_an_exact_continuation(mcp: Client, settings: object) -> None:
    result = await mcp.call_tool("list_table_rows", {"table_uuid": TABLE, "page": 1, "per_page": 1000})
    out = structured(result)
    shown = len(out["rows"])
    assert 0 < shown < 1000
    assert out["rows_omitted"] == 1000 - shown
    assert len(whole(result)) <= 40_000
    # Follow next_call: it continues the same page right after the last row shown.
    assert out["next_call"] == f'list_table_rows(table_uuid="{TABLE}", page=1, per_page=1000, skip={shown})'
    follow = structured(
        await mcp.call_tool("list_table_rows", {"table_uuid": TABLE, "page": 1, "per_page": 1000, "skip": shown})
    )
    direct = structured(await mcp.call_tool("list_table_rows", {"table_uuid": TABLE, "page": 2, "per_page": shown}))
    assert follow["rows"][0]["id"] == direct["rows"][0]["id"]  # row number `shown`, exactly


async def test_unknown_table_is_not_found(mcp: Client) -> None:
    result = await mcp.call_tool("list_table_rows", {"table_uuid": "00000000-0000-4000-8000-000000000000"})
    assert error_body(result)["code"] == "not_found"
