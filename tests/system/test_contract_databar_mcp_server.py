"""Databar's own MCP server (npm databar-mcp-server 1.4.0) as a judge of the sandbox's replies.

tests/judges.py installs it with the other judges into the git-ignored .cache/judges/ (the venv's Node), and
it is pointed at the sandbox through DATABAR_BASE_URL. Before the sandbox emitted Databar's waterfall
entries it crashed on them (`resultData.steps` undefined); now its own parsing must see each reply whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY, text_of
from tests.judges import Judges, require

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def judge() -> Judges:
    return require()


@pytest.fixture
def sandbox_api() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002)) as server:
        yield server


@pytest.fixture
async def databar_server(judge: Judges, sandbox_api: SandboxServer) -> AsyncIterator[Client]:
    env = {"DATABAR_API_KEY": SENTINEL_KEY, "DATABAR_BASE_URL": sandbox_api.base_url, "PATH": str(judge.node.parent)}
    params = StdioServerParameters(command=str(judge.node), args=[str(judge.databar_server)], env=env)
    async with Client(params) as client:
        yield client


PERSON = {"first_name": "John", "last_name": "Doe", "company": "example.com"}


async def test_databar_server_reads_our_waterfall_results(databar_server: Client) -> None:
    single = await databar_server.call_tool(
        "run_waterfall", {"waterfall_identifier": "email_getter", "params": PERSON, "provider_ids": [833]}
    )
    assert not single.is_error, text_of(single)
    text = text_of(single)
    assert "Total Cost: 1.00 credits" in text
    assert "LeadMagic email finder: found (1.00 credits)" in text
    assert "john.doe@example.com" in text

    bulk = await databar_server.call_tool(
        "run_bulk_waterfall",
        {
            "waterfall_identifier": "email_getter",
            "params_list": [PERSON, {**PERSON, "company": "x.invalid"}],
            "provider_ids": [833],
        },
    )
    assert not bulk.is_error, text_of(bulk)
    assert '"result_field"' in text_of(bulk) and "john.doe@example.com" in text_of(bulk)


async def test_databar_server_reads_our_catalog_and_account(databar_server: Client) -> None:
    found = await databar_server.call_tool("search_waterfalls", {"query": "email"})
    assert "email_getter" in text_of(found)
    detail = await databar_server.call_tool("get_enrichment_details", {"enrichment_id": 121})
    assert "Required Parameters: domain" in text_of(detail)
    company = await databar_server.call_tool(
        "run_enrichment", {"enrichment_id": 120, "params": {"domain": "example.com"}}
    )
    assert not company.is_error and '"name": "Example"' in text_of(company)
    balance = await databar_server.call_tool("get_user_balance", {})
    assert "Balance:" in text_of(balance) and "Plan: sandbox" in text_of(balance)
