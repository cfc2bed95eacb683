"""Connectors list/get/update/delete: header values are write-only everywhere; an update keeps secrets."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from databar_mcp.sandbox import SandboxServer
from tests.conftest import error_body, structured, whole

pytestmark = pytest.mark.anyio

SECRET = "Bearer sk-connector-SENTINEL-31bd"
NEW_SECRET = "sk-rotated-SENTINEL-8c1e"


async def create(mcp: Client, name: str = "Scoring") -> dict[str, Any]:
    return structured(
        await mcp.call_tool(
            "create_connector",
            {
                "name": name,
                "method": "post",
                "url": "https://api.example.com/v1/score",
                "headers": [{"name": "Authorization", "value": SECRET}],
                "rate_limit": 5,
            },
        )
    )


async def test_list_and_get_mask_header_values(mcp: Client) -> None:
    made = await create(mcp)
    await create(mcp, "Second")
    listed = await mcp.call_tool("list_connectors", {})
    got = await mcp.call_tool("list_connectors", {"connector_id": made["id"]})
    assert structured(listed)["total"] == 2
    [one] = structured(got)["connectors"]
    assert (one["id"], one["headers"]) == (made["id"], [{"name": "Authorization", "value": "********"}])
    for result in (listed, got):
        assert SECRET not in whole(result) and "sk-connector" not in whole(result)


async def test_update_changes_only_what_is_given_and_keeps_the_secret_header(
    mcp: Client, sandbox: SandboxServer
) -> None:
    made = await create(mcp)
    updated = await mcp.call_tool("update_connector", {"connector_id": made["id"], "url": "https://api.example.com/v2"})
    out = structured(updated)
    assert out["url"] == "https://api.example.com/v2" and out["name"] == "Scoring" and out["rate_limit"] == 5
    stored = sandbox.state.connectors[made["id"]]
    assert stored["headers"] == [{"name": "Authorization", "value": SECRET}]  # kept, never seen by the agent
    assert SECRET not in whole(updated)

    rotated = await mcp.call_tool(
        "update_connector",
        {"connector_id": made["id"], "headers": [{"name": "Authorization", "value": NEW_SECRET}]},
    )
    assert sandbox.state.connectors[made["id"]]["headers"] == [{"name": "Authorization", "value": NEW_SECRET}]
    assert NEW_SECRET not in whole(rotated)


async def test_update_with_nothing_to_change_sends_nothing(mcp: Client, sandbox: SandboxServer) -> None:
    made = await create(mcp)
    result = error_body(await mcp.call_tool("update_connector", {"connector_id": made["id"]}))
    assert result["code"] == "validation_error"
    assert sandbox.state.counts.get("PUT /v1/connectors/{connector_id}", 0) == 0


async def test_delete_then_get_is_not_found(mcp: Client) -> None:
    made = await create(mcp)
    deleted = structured(await mcp.call_tool("delete_connector", {"connector_id": made["id"]}))
    gone = error_body(await mcp.call_tool("list_connectors", {"connector_id": made["id"]}))
    again = error_body(await mcp.call_tool("delete_connector", {"connector_id": made["id"]}))
    assert deleted["deleted"] is True
    assert gone["code"] == "not_found" and again["code"] == "not_found"
