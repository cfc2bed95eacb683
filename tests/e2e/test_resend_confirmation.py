"""A forced re-send of a run whose earlier submission is unknown asks the user first.

An agent cannot check the Databar web app, so `force=true` alone must not pay twice: a client that can ask
the user (elicitation) gets the question with what is known (when, rows, estimated credits, what to look
for); one that cannot gets a refusal unless the call also says the user acknowledged the risk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ElicitRequestParams, ElicitResult

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import Fault, SandboxServer
from tests.conftest import BULK_ARGS, error_body, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
FORCED = {**BULK_ARGS, "force": True}


async def lose_the_first_reply(client: Client, sandbox: SandboxServer) -> dict[str, Any]:
    """The first run is created at Databar, its reply lost: submission_unknown."""
    sandbox.state.inject(Fault(route=BULK_RUN, kind="reset_after"))
    first = error_body(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
    assert first["code"] == "submission_unknown"
    assert len(sandbox.state.tasks) == 1
    return first


async def test_without_elicitation_force_alone_is_refused_and_says_what_to_check(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
        await lose_the_first_reply(client, sandbox)
        refused = await client.call_tool("run_bulk_waterfall", FORCED)
        assert sandbox.state.counts[BULK_RUN] == 1  # nothing sent

        acknowledged = await client.call_tool(
            "run_bulk_waterfall", {**FORCED, "acknowledge_possible_double_billing": True}
        )

    err = error_body(refused)
    assert refused.is_error and err["code"] == "submission_unknown", text_of(refused)
    assert "cannot ask the user" in err["message"] and "Nothing was sent" in err["message"]
    steps = " ".join(err["next_steps"])
    assert "email_getter" in steps and "4 row(s)" in steps and "12 credits" in steps and " UTC" in steps
    assert "acknowledge_possible_double_billing=true" in steps
    assert not acknowledged.is_error, text_of(acknowledged)
    assert sandbox.state.counts[BULK_RUN] == 2


@pytest.mark.parametrize(
    ("mode", "action", "content", "sent"),
    [
        ("auto", "accept", {"resend": True}, True),
        ("auto", "accept", {"resend": False}, False),
        ("auto", "decline", None, False),
        ("auto", "cancel", None, False),
        ("legacy", "accept", {"resend": True}, True),  # asked mid-call rather than by input_required
        ("legacy", "decline", None, False),
    ],
)
async def test_with_elicitation_the_user_decides_a_forced_resend(
    sandbox: SandboxServer, tmp_path: Path, mode: Any, action: str, content: dict[str, Any] | None, sent: bool
) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    server = build_server(make_settings(sandbox, tmp_path))
    async with Client(server, elicitation_callback=elicit, mode=mode) as client:
        await lose_the_first_reply(client, sandbox)
        assert asked == []  # nothing was forced yet: no question
        # Even an agent that claims the user acknowledged cannot skip the question when the client can ask it.
        result = await client.call_tool("run_bulk_waterfall", {**FORCED, "acknowledge_possible_double_billing": True})

    assert len(asked) == 1
    question = asked[0]
    assert "4 row(s)" in question and "12 credits" in question and " UTC" in question
    assert "outcome is unknown" in question and "email_getter" in question
    if sent:
        assert not result.is_error, text_of(result)
        assert structured(result)["status"] == "completed" and structured(result).get("reused", False) is False
    else:
        assert error_body(result)["code"] == "submission_unknown", text_of(result)
    assert sandbox.state.counts[BULK_RUN] == (2 if sent else 1)


async def test_force_after_a_known_run_asks_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    """Paying again for a run whose task is known is what force means: no question, no refusal."""
    asked: list[str] = []

    async def elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="decline")

    async with Client(build_server(make_settings(sandbox, tmp_path)), elicitation_callback=elicit) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
        forced = structured(await client.call_tool("run_bulk_waterfall", FORCED))

    assert asked == [] and forced["task_id"] != first["task_id"]
    assert sandbox.state.counts[BULK_RUN] == 2
