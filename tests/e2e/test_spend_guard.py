"""The spend guard: refuse above the per-call limit or below the balance floor, ask the user above the
confirmation threshold (elicitation), and never send anything it refuses."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitRequestParams, ElicitResult
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.spend import check_spend
from databar_mcp.core.users import acting_as
from databar_mcp.sandbox import Fault, SandboxServer
from tests.conftest import BULK_ARGS, confirming, error_body, make_settings, structured, text_of
from tests.tasks_client import raw

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
ESTIMATE = 12.0  # BULK_ARGS: 4 rows × (1 + 2) credits


def runs(sandbox: SandboxServer) -> int:
    return sum(n for route, n in sandbox.state.counts.items() if route.startswith("POST") and "run" in route)


async def test_above_the_per_call_limit_is_refused_before_anything_is_sent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path, max_credits_per_call=10))) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
        cheap = await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "enrichments": [833]})  # 4 credits

    err = error_body(result)
    assert result.is_error and err["code"] == "spend_limit"
    assert err["details"]["estimated_credits"] == ESTIMATE
    assert "DATABAR_MCP_MAX_CREDITS_PER_CALL" in text_of(result)
    assert not cheap.is_error and structured(cheap)["estimated_credits"] == 4.0
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_a_run_that_would_sink_the_balance_below_the_floor_is_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.balance = 100.0
    async with Client(build_server(make_settings(sandbox, tmp_path, min_balance=95))) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = error_body(result)
    assert err["code"] == "spend_limit" and err["details"]["balance"] == 100.0
    assert "DATABAR_MCP_MIN_BALANCE" in err["details"]["setting"]
    assert runs(sandbox) == 0 and sandbox.state.balance == 100.0


@pytest.mark.parametrize(("answer", "sent"), [("accept", True), ("decline", False), ("cancel", False)])
async def test_above_the_confirmation_threshold_the_user_is_asked(
    sandbox: SandboxServer, tmp_path: Path, answer: str, sent: bool
) -> None:
    asked: list[str] = []

    server = build_server(make_settings(sandbox, tmp_path, confirm_above=5))
    async with Client(server, elicitation_callback=confirming(answer, asked)) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)

    assert len(asked) == 1 and "12 credits" in asked[0]
    if sent:
        assert not result.is_error and structured(result)["status"] == "completed"
        assert structured(result)["estimated_credits"] == ESTIMATE and structured(result)["credits_spent"] > 0
    else:
        assert error_body(result)["code"] == "spend_limit"
    assert runs(sandbox) == (1 if sent else 0)


async def test_a_user_who_unticks_confirm_is_a_no(sandbox: SandboxServer, tmp_path: Path) -> None:
    async with Client(
        build_server(make_settings(sandbox, tmp_path, confirm_above=5)), elicitation_callback=confirming("refuse", [])
    ) as c:
        result = await c.call_tool("run_bulk_waterfall", BULK_ARGS)
    assert error_body(result)["code"] == "spend_limit" and runs(sandbox) == 0


async def test_without_elicitation_support_the_guard_refuses_and_says_how_to_raise_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path, confirm_above=5))) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = error_body(result)
    assert err["code"] == "spend_limit" and "cannot ask the user" in err["message"]
    assert any("DATABAR_MCP_CONFIRM_ABOVE" in step for step in err["next_steps"])
    assert runs(sandbox) == 0


async def test_a_free_reuse_is_never_refused_or_asked_about(sandbox: SandboxServer, tmp_path: Path) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
    async with Client(build_server(make_settings(sandbox, tmp_path, max_credits_per_call=1))) as client:
        again = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    assert not again.is_error and structured(again)["task_id"] == first["task_id"]
    assert structured(again)["reused"] is True


async def test_every_run_tool_is_guarded(sandbox: SandboxServer, tmp_path: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("run_bulk_waterfall", {"waterfall": "email_getter", "params": BULK_ARGS["params"][:1]}),  # default providers
        ("run_bulk_enrichment", {"enrichment_id": 833, "params": BULK_ARGS["params"][:1], "pages": 2}),
        ("run_bulk_enrichment", {"enrichment_id": 833, "params": BULK_ARGS["params"]}),
        ("run_bulk_waterfall", BULK_ARGS),
    ]
    async with Client(build_server(make_settings(sandbox, tmp_path, max_credits_per_call=0.5))) as client:
        for name, args in calls:
            err = error_body(await client.call_tool(name, args))
            assert err["code"] == "spend_limit", name
            assert err["details"]["estimated_credits"] > 0.5
    assert runs(sandbox) == 0


@given(
    estimate=st.floats(min_value=0, max_value=1e6),
    balance=st.floats(min_value=0, max_value=1e6),
    limit=st.none() | st.floats(min_value=0, max_value=1e6),
    floor=st.none() | st.floats(min_value=0, max_value=1e6),
    confirm=st.none() | st.floats(min_value=0, max_value=1e6),
)
def test_spend_rules(
    estimate: float, balance: float, limit: float | None, floor: float | None, confirm: float | None
) -> None:
    settings = Settings(max_credits_per_call=limit, min_balance=floor, confirm_above=confirm)
    verdict = check_spend(estimate, balance, settings).verdict
    over_limit = limit is not None and estimate > limit
    under_floor = floor is not None and balance - estimate < floor
    if over_limit or under_floor:
        assert verdict == "refuse"
    elif confirm is not None and estimate > confirm:
        assert verdict == "confirm"
    else:
        assert verdict == "ok"


# ---- a user's daily cap (users file) under concurrency: runs it cannot price count at their most ------------

EMPLOYEES = 511  # priced per posting: 0.2 credits × max_results per row; the catalog states no default for it
BULK_ENRICH = "POST /v1/enrichments/{enrichment_id}/bulk-run"


def employees_args(run: int, **extra: object) -> dict[str, Any]:
    rows = [{"domain": f"run{run}-company{i}.com", **extra} for i in range(25)]
    return {"enrichment_id": EMPLOYEES, "params": rows, "wait_seconds": 0}


async def parallel_calls(settings: Settings, calls: list[dict[str, Any]]) -> list[Any]:
    """The calls spread over two servers on one ledger, all at once (one user's agents, across two replicas)."""
    results: list[Any] = [None] * len(calls)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(build_server(settings))) for _ in range(2)]

        async def one(index: int) -> None:
            results[index] = await clients[index % len(clients)].call_tool("run_bulk_enrichment", calls[index])

        async with anyio.create_task_group() as group:
            for index in range(len(calls)):
                group.start_soon(one, index)
    return results


async def test_a_daily_cap_counts_a_run_it_cannot_price_at_its_most_under_concurrency(
    sandbox: SandboxServer, tmp_path: Path, database_url: str | None
) -> None:
    """Regression (issue 22, 11): a run without an estimate (511 with max_results left out) counted 0 against the
    daily cap until it finished, so 20 parallel runs under a cap of 5 were all sent and billed 100 credits. Now it
    is refused, saying what to set; priced runs still get exactly what fits, across two servers on one ledger."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": {}, "default": {"daily_credit_cap": 5}}))  # the README's shape
    url = None if database_url is None else SecretStr(database_url)
    settings = make_settings(sandbox, tmp_path, users_file=users, database_url=url)
    with acting_as("alice"):  # the subject an OAuth token would name
        unpriced = await parallel_calls(settings, [employees_args(run) for run in range(20)])
        priced = await parallel_calls(settings, [employees_args(100 + run, max_results=1) for run in range(20)])

    bodies = [error_body(result) for result in unpriced]
    assert {body["code"] for body in bodies} == {"spend_limit"}
    assert "cannot be estimated" in bodies[0]["message"] and "daily credit cap" in bodies[0]["message"]
    assert any("set max_results (a number) in every row" in step for step in bodies[0]["next_steps"])
    sent = [result for result in priced if not result.is_error]
    assert len(sent) == 1 and structured(sent[0])["estimated_credits"] == 5.0  # 25 rows × 0.2 × 1: all the cap
    assert all("daily cap of 5" in error_body(result)["message"] for result in priced if result.is_error)
    assert sandbox.state.counts[BULK_ENRICH] == 1


# ---- a guard that could not check refuses (issue 22, 12) ---------------------------------------------------

USER_ME = "GET /v1/user/me"


async def test_when_the_balance_cannot_be_read_the_guard_refuses_and_says_when_to_retry(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Regression (issue 22, 12): a 503 on the balance read marked the run "unchecked" and sent it, skipping
    the minimum balance, the per-call limit and the confirmation (3 of 3 sent)."""
    sandbox.state.inject(Fault(route=USER_ME, kind="status", status=503, times=1000))
    settings = make_settings(sandbox, tmp_path, min_balance=10, confirm_above=5)
    async with Client(build_server(settings), elicitation_callback=confirming("accept", asked := [])) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = error_body(result)
    assert err["code"] == "spend_guard_unavailable" and err["http_status"] == 503
    assert "could not check this run" in err["message"] and "Nothing was sent" in err["message"]
    assert "call run_bulk_waterfall again in a minute" in " ".join(err["next_steps"]).lower()
    assert runs(sandbox) == 0 and asked == []


async def test_a_rate_limited_balance_read_refuses_with_databars_retry_after(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.inject(Fault(route=USER_ME, kind="rate_limit", retry_after=120, times=1000))
    async with Client(build_server(make_settings(sandbox, tmp_path, min_balance=10))) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = error_body(result)
    assert err["code"] == "spend_guard_unavailable" and err["http_status"] == 429
    assert err["retry_after_seconds"] == 120 and "again in 120 s" in err["next_steps"][0]
    assert runs(sandbox) == 0


async def test_the_per_call_limit_needs_no_balance_and_still_refuses_when_it_cannot_be_read(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.inject(Fault(route=USER_ME, kind="status", status=503, times=1000))
    async with Client(build_server(make_settings(sandbox, tmp_path, min_balance=1, max_credits_per_call=10))) as c:
        result = await c.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = error_body(result)
    assert err["code"] == "spend_limit" and "above the limit of 10 per call" in err["message"]
    assert runs(sandbox) == 0


async def test_a_check_that_failed_before_the_body_is_made_again_in_it(sandbox: SandboxServer, tmp_path: Path) -> None:
    """The catalog read fails while the question would be prepared, then answers: the body judges the run itself
    and, as the user could not be asked, sends nothing (before: sent with no question)."""
    attempts = 1 + make_settings(sandbox, tmp_path).max_retries  # every try of the resolver's one catalog read
    sandbox.state.inject(Fault(route="GET /v1/waterfalls/{identifier}", kind="status", status=503, times=attempts))
    asked: list[str] = []
    server = build_server(make_settings(sandbox, tmp_path, confirm_above=5))
    async with Client(server, elicitation_callback=confirming("accept", asked)) as client:
        result = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
    err = error_body(result)
    assert err["code"] == "confirmation_required" and "12 credits" in err["message"]
    assert err["next_steps"] == [
        "Call run_bulk_waterfall again with the same arguments: the user is asked to confirm first."
    ]
    assert runs(sandbox) == 0 and asked == []


# ---- one confirmation, one run: a sealed round is spent once (issue 22, 13) ---------------------------------


async def in_band(context: Any, params: ElicitRequestParams) -> ElicitResult:
    raise AssertionError("on 2026-07-28 the question travels in the tool call's result, never as a request")


def answered(asked: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The confirmed round: the same call again, with the user's yes and the sealed state it answers."""
    (key,) = asked["inputRequests"]
    yes = {key: {"action": "accept", "content": {"confirm": True}}}
    return {
        "name": "run_bulk_waterfall",
        "arguments": args,
        "requestState": asked["requestState"],
        "inputResponses": yes,
    }


async def test_a_confirmed_force_round_runs_once_however_often_it_is_replayed(
    sandbox: SandboxServer, tmp_path: Path, database_url: str | None
) -> None:
    """Regression (issue 22, 13): the sealed state of a confirmed force round was good for its 600 s lifetime;
    3 replays billed 3 more runs with no new question. A replay is refused like an expired state, on any replica
    sharing the ledger (two servers with the replicas' shared keys here), and also when sent to both at once."""
    url = None if database_url is None else SecretStr(database_url)
    settings = make_settings(sandbox, tmp_path, confirm_above=5, database_url=url)
    shared = {"request_state_security": RequestStateSecurity(keys=["k" * 32])}
    args = {**BULK_ARGS, "force": True, "wait_seconds": 0}
    call = {"name": "run_bulk_waterfall", "arguments": args}
    refused: list[MCPError] = []
    async with contextlib.AsyncExitStack() as stack:
        one, two = [
            await stack.enter_async_context(Client(build_server(settings, **shared), elicitation_callback=in_band))
            for _ in range(2)
        ]
        confirmed = answered(await raw(one, "tools/call", call), args)
        first = await raw(one, "tools/call", confirmed)
        for replica in (one, two, one):
            with pytest.raises(MCPError) as replayed:
                await raw(replica, "tools/call", confirmed)
            refused.append(replayed.value)

        raced = answered(await raw(two, "tools/call", call), args)
        outcomes: list[object] = []

        async def send(replica: Client) -> None:
            try:
                outcomes.append(await raw(replica, "tools/call", raced))
            except MCPError as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(send, one)
            group.start_soon(send, two)

    assert first["isError"] is False and first["structuredContent"]["task_id"]
    assert [(e.error.code, e.error.message) for e in refused] == [(-32602, "Invalid or expired requestState")] * 3
    assert sorted(type(o).__name__ for o in outcomes) == ["MCPError", "dict"]
    assert sandbox.state.counts[BULK_RUN] == 2  # the first confirmation, and one of the two raced
