"""The enrich_contacts prompt, completions for waterfall/enrichment/task ids, and the catalog resources."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.client.client import ConnectMode
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from tests.conftest import BULK_ARGS, structured

pytestmark = pytest.mark.anyio


async def test_enrich_contacts_prompt_walks_discover_estimate_run_get_task(mcp: Client) -> None:
    prompts = {p.name for p in (await mcp.list_prompts()).prompts}
    got = await mcp.get_prompt("enrich_contacts", {"what": "400 leads", "waterfall": "email_getter"})
    text = getattr(got.messages[0].content, "text", "")
    assert "enrich_contacts" in prompts
    assert text.startswith("Enrich 400 leads with Databar (waterfall email_getter).")
    order = [text.index(word) for word in ("list_waterfalls", "get_account", "run_bulk_waterfall", "get_task")]
    assert order == sorted(order)


async def test_waterfall_identifiers_complete_for_the_prompt(mcp: Client) -> None:
    ref = PromptReference(type="ref/prompt", name="enrich_contacts")
    assert (await mcp.complete(ref, {"name": "waterfall", "value": "ph"})).completion.values == ["phone_getter"]
    everything = (await mcp.complete(ref, {"name": "waterfall", "value": ""})).completion.values
    assert {"email_getter", "phone_getter"} <= set(everything)


async def test_enrichment_ids_complete_by_prefix_and_by_name(mcp: Client) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri="databar://enrichments/{enrichment_id}")
    by_prefix = (await mcp.complete(ref, {"name": "enrichment_id", "value": "12"})).completion.values
    by_name = (await mcp.complete(ref, {"name": "enrichment_id", "value": "technograph"})).completion.values
    assert {"120", "121"} <= set(by_prefix) and all(v.startswith("12") for v in by_prefix)
    assert by_name == ["121"]


async def test_task_ids_complete_from_the_ledger(mcp: Client) -> None:
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["task_id"]
    ref = ResourceTemplateReference(type="ref/resource", uri="databar://tasks/{task_id}/result")
    got = (await mcp.complete(ref, {"name": "task_id", "value": task_id[:4]})).completion.values
    assert got == [task_id]


async def test_catalog_resources_hold_the_full_json(mcp: Client) -> None:
    enrichment = json.loads(getattr((await mcp.read_resource("databar://enrichments/121")).contents[0], "text", ""))
    waterfall = json.loads(
        getattr((await mcp.read_resource("databar://waterfalls/email_getter")).contents[0], "text", "")
    )
    assert enrichment["id"] == 121 and enrichment["price"] == 2.5
    assert [p["id"] for p in waterfall["available_enrichments"]][:2] == [833, 966]


@pytest.mark.parametrize(("mode", "era"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_unknown_prompt_is_invalid_params_in_both_eras(settings: Settings, mode: ConnectMode, era: str) -> None:
    """The spec's answer to an unknown prompt name is -32602, as for an unknown resource (issue 22 item 14);
    the SDK's ValueError made it -32603 on 2026-07-28 and code 0 on 2025-11-25."""
    async with Client(build_server(settings), mode=mode) as client:
        assert client.protocol_version == era
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("no_such_prompt", {})
    assert unknown.value.error.code == -32602
    assert unknown.value.error.message == "Unknown prompt: no_such_prompt"
