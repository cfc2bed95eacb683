"""A sentinel API key and sentinel connector secrets driven through every error path: they appear nowhere in
tool results, in logs captured at DEBUG, or in exception text."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp.api import DatabarClient
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.sandbox import Fault, SandboxConfig, SandboxServer
from tests.conftest import BULK_ARGS, SENTINEL_KEY, make_settings, structured, whole

pytestmark = pytest.mark.anyio

HEADER_SECRET = "hdr-SENTINEL-c0ffee-5e5e"
TASK_GET = "GET /v1/tasks/{task_id}"
BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
SENTINELS = (SENTINEL_KEY, HEADER_SECRET)
CONNECTOR = {
    "name": "secret-api",
    "method": "post",
    "url": "https://api.example.com/score",
    "headers": [{"name": "Authorization", "value": HEADER_SECRET}],
}

Scenario = Callable[[Client, SandboxServer], Awaitable[Any]]


async def forbidden(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.config.api_key = "another-key"  # our sentinel key is now wrong: 403
    return await mcp.call_tool("get_account", {})


async def not_found(mcp: Client, _: SandboxServer) -> Any:
    return await mcp.call_tool("get_task", {"task_id": "no-such-task"})


async def no_credits(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.balance = 0.5
    return await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)


async def expired(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.config.task_base_seconds = 5.0
    handle = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
    sandbox.state.clock.advance(25 * 3600)
    return await mcp.call_tool("get_task", {"task_id": handle["task_id"], "wait_seconds": 0})


async def unprocessable(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="status", status=422))
    return await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)


async def rate_limited(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="rate_limit", times=10, retry_after=120))
    return await mcp.call_tool("get_account", {})


async def server_errors(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route="GET /v1/connectors/", kind="status", status=503, times=10))
    return await mcp.call_tool("list_connectors", {})


async def connector_update_fails(mcp: Client, sandbox: SandboxServer) -> Any:
    made = structured(await mcp.call_tool("create_connector", CONNECTOR))
    sandbox.state.inject(Fault(route="PUT /v1/connectors/{connector_id}", kind="status", status=500, times=10))
    return await mcp.call_tool("update_connector", {"connector_id": made["id"], "rate_limit": 3})


async def lost_reply(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="reset_after"))
    return await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)


async def timeout(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route=TASK_GET, kind="slow", delay=3.0, times=10))
    return await mcp.call_tool("get_task", {"task_id": "t-slow", "wait_seconds": 0})


async def invalid_arguments(mcp: Client, _: SandboxServer) -> Any:
    return await mcp.call_tool("create_connector", {**CONNECTOR, "url": "not a url " + HEADER_SECRET})


async def crash_inside_a_tool(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="status", status=200))  # a 200 of the wrong shape
    return await mcp.call_tool("get_account", {})


async def connector_listing(mcp: Client, _: SandboxServer) -> Any:
    await mcp.call_tool("create_connector", CONNECTOR)
    return await mcp.call_tool("list_connectors", {})


async def upstream_400_echoes_the_request(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route=BULK_RUN, kind="echo", status=400))
    return await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)


async def upstream_502_page_echoes_the_headers(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route="GET /v1/user/me", kind="echo", status=502, times=10))
    return await mcp.call_tool("get_account", {})


async def upstream_422_echoes_a_connector_header(mcp: Client, sandbox: SandboxServer) -> Any:
    sandbox.state.inject(Fault(route="POST /v1/connectors/", kind="echo", status=422))
    return await mcp.call_tool("create_connector", CONNECTOR)


async def update_422_echoes_the_stored_header(mcp: Client, sandbox: SandboxServer) -> Any:
    made = structured(await mcp.call_tool("create_connector", CONNECTOR))
    sandbox.state.inject(Fault(route="PUT /v1/connectors/{connector_id}", kind="echo", status=422))
    return await mcp.call_tool("update_connector", {"connector_id": made["id"], "rate_limit": 3})


async def stored_header_over_the_limit(mcp: Client, sandbox: SandboxServer) -> Any:
    """A header value Databar stored beyond our 4,096-character request limit: its ends never reach a log."""
    made = structured(await mcp.call_tool("create_connector", CONNECTOR))
    stored = sandbox.state.connectors[made["id"]]
    stored["headers"] = [{"name": "Authorization", "value": HEADER_SECRET + "x" * 5_000 + HEADER_SECRET}]
    return await mcp.call_tool("update_connector", {"connector_id": made["id"], "rate_limit": 3})


SCENARIOS: dict[str, Scenario] = {
    "403": forbidden,
    "404": not_found,
    "406": no_credits,
    "410": expired,
    "422": unprocessable,
    "429": rate_limited,
    "5xx": server_errors,
    "5xx on a connector update": connector_update_fails,
    "reply lost": lost_reply,
    "timeout": timeout,
    "validation error": invalid_arguments,
    "malformed response": crash_inside_a_tool,
    "connector listing": connector_listing,
    "400 echoing the request": upstream_400_echoes_the_request,
    "502 page echoing the headers": upstream_502_page_echoes_the_headers,
    "422 echoing a connector header": upstream_422_echoes_a_connector_header,
    "422 echoing the stored header on update": update_422_echoes_the_stored_header,
    "stored header over 4,096 chars": stored_header_over_the_limit,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_sentinels_never_leak(
    name: str, sandbox: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(sandbox, tmp_path, read_timeout_s=0.5, max_retries=1)
    async with Client(build_server(settings)) as client:
        result = await SCENARIOS[name](client, sandbox)

    seen = whole(result)
    if name not in ("connector listing",):
        assert result.is_error, (name, seen)
    for secret in SENTINELS:
        assert secret not in seen, name
        assert secret not in caplog.text, name
        for record in caplog.records:
            assert secret not in repr(record.args) and secret not in str(record.exc_info), name


def test_secrets_stay_out_of_reprs_and_exceptions(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = Settings(api_key=SecretStr(SENTINEL_KEY), state_dir=tmp_path)
    client = DatabarClient.from_settings(settings)
    assert SENTINEL_KEY not in repr(settings) and SENTINEL_KEY not in str(settings.model_dump())
    assert SENTINEL_KEY not in repr(client)


def test_a_key_file_is_read_and_its_content_never_echoed(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SENTINEL_KEY + "\n")
    settings = Settings.from_env({"DATABAR_API_KEY_FILE": str(key_file)})
    assert settings.api_key is not None and settings.api_key.get_secret_value() == SENTINEL_KEY
    assert "DATABAR_API_KEY_FILE" in settings.api_key_source
    bad = tmp_path / "bad"
    bad.write_text(f"{SENTINEL_KEY}\nsecond line\n")
    with pytest.raises(ValueError, match="exactly one") as caught:
        Settings.from_env({"DATABAR_API_KEY_FILE": str(bad)})
    assert SENTINEL_KEY not in str(caught.value)


async def test_sandbox_saw_only_the_configured_key(tmp_path: Path) -> None:
    """The server talks to Databar with its own key only (never anything a client sends)."""
    with SandboxServer(SandboxConfig(api_key=SENTINEL_KEY)) as sandbox:
        async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
            result = await client.call_tool("get_account", {})
        assert not result.is_error
        assert sandbox.state.counts["GET /v1/user/me"] == 1
