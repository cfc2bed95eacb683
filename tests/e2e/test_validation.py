"""Invalid input is refused with a structured validation_error before anything reaches Databar."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, LEADS, error_body, lead

pytestmark = pytest.mark.anyio

TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
CONNECTOR: dict[str, Any] = {"name": "Scoring", "method": "post", "url": "https://api.example.com/score"}

SCHEMA_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("run_bulk_waterfall", {**BULK_ARGS, "enrichments": []}, "enrichments"),
    ("run_bulk_waterfall", {**BULK_ARGS, "enrichments": [833.5]}, "enrichments[0]"),
    ("run_bulk_waterfall", {**BULK_ARGS, "enrichments": [0]}, "enrichments[0]"),
    ("run_bulk_waterfall", {**BULK_ARGS, "params": []}, "params"),
    ("run_bulk_waterfall", {**BULK_ARGS, "params": "not a list"}, "params"),
    ("run_bulk_waterfall", {**BULK_ARGS, "params": [{"first_name": {"nested": 1}}]}, "params[0]"),
    ("run_bulk_waterfall", {**BULK_ARGS, "params": [LEADS[0]] * 10_001}, "params"),
    ("run_bulk_waterfall", {**BULK_ARGS, "email_verifier": "ten"}, "email_verifier"),
    ("run_bulk_waterfall", {**BULK_ARGS, "waterfall": "../user/me"}, "waterfall"),
    ("run_bulk_waterfall", {**BULK_ARGS, "waterfall": ".."}, "waterfall"),  # found by tests/test_fuzz.py
    ("get_waterfall", {"waterfall": "."}, "waterfall"),
    ("get_param_choices", {"enrichment_id": 500, "param": ".."}, "param"),
    ("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 600}, "wait_seconds"),
    ("run_bulk_waterfall", {"params": LEADS, "enrichments": [833]}, "waterfall"),
    ("get_task", {"task_id": ""}, "task_id"),
    ("get_task", {"task_id": "abc/../../user/me"}, "task_id"),
    ("get_task", {"task_id": "t1", "offset": -1}, "offset"),
    ("get_task", {"task_id": "t1", "wait_seconds": -1}, "wait_seconds"),
    ("list_table_rows", {"table_uuid": "not-a-uuid"}, "table_uuid"),
    ("list_table_rows", {"table_uuid": TABLE, "per_page": 1001}, "per_page"),
    ("list_table_rows", {"table_uuid": TABLE, "per_page": 0}, "per_page"),
    ("list_table_rows", {"table_uuid": TABLE, "page": 0}, "page"),
    ("create_connector", {**CONNECTOR, "name": "x" * 257}, "name"),
    ("create_connector", {**CONNECTOR, "name": ""}, "name"),
    ("create_connector", {**CONNECTOR, "url": "https://e.com/" + "a" * 500}, "url"),
    ("create_connector", {**CONNECTOR, "url": "ftp://example.com"}, "url"),
    ("create_connector", {**CONNECTOR, "method": "delete"}, "method"),
    ("create_connector", {**CONNECTOR, "type": "webhook"}, "type"),
    ("create_connector", {**CONNECTOR, "body_template": "x" * 2049}, "body_template"),
    ("create_connector", {**CONNECTOR, "rate_limit": 0}, "rate_limit"),
    ("create_connector", {**CONNECTOR, "max_concurrency": 0}, "max_concurrency"),
    ("create_connector", {**CONNECTOR, "headers": [{"name": "X-Key"}, {"value": "v"}]}, "headers[1].name"),
]


@pytest.mark.parametrize(("tool", "arguments", "field"), SCHEMA_INVALID)
async def test_schema_invalid_input_never_reaches_databar(
    mcp: Client, sandbox: SandboxServer, tool: str, arguments: dict[str, Any], field: str
) -> None:
    result = await mcp.call_tool(tool, arguments)

    assert result.is_error
    err = error_body(result)
    assert err["code"] == "validation_error"
    assert any(problem["field"].startswith(field) for problem in err["fields"]), err["fields"]
    assert err["next_steps"]
    assert sandbox.state.total_requests() == 0


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({**BULK_ARGS, "params": [*LEADS, {"first_name": "Only"}]}, "params[4]"),
        ({**BULK_ARGS, "params": [lead("A", "", "acme.com")]}, "params[0]"),
        ({**BULK_ARGS, "enrichments": [833, 4242]}, "enrichments"),
        ({**BULK_ARGS, "enrichments": [833, 833]}, "enrichments"),
        ({**BULK_ARGS, "email_verifier": 99}, "email_verifier"),
    ],
)
async def test_input_that_does_not_fit_the_waterfall_is_refused_before_any_run(
    mcp: Client, sandbox: SandboxServer, arguments: dict[str, Any], field: str
) -> None:
    result = await mcp.call_tool("run_bulk_waterfall", arguments)

    err = error_body(result)
    assert err["code"] == "validation_error"
    assert [p["field"] for p in err["fields"]] == [field]
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 0
    assert sandbox.state.total_requests() == sandbox.state.counts["GET /v1/waterfalls/{identifier}"]


async def test_validation_errors_never_echo_the_values_sent(mcp: Client) -> None:
    secret = "Bearer sk-live-" + "s" * 5000
    result = await mcp.call_tool(
        "create_connector", {**CONNECTOR, "headers": [{"name": "Authorization", "value": secret}]}
    )
    assert error_body(result)["code"] == "validation_error"
    assert "sk-live" not in str(result.content) + str(result.structured_content)
