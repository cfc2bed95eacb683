"""Task status notifications over `subscriptions/listen` (tasks extension, 2026-07-28), in process and over HTTP.

The official client has no task filter in its `listen()`, so the listen request goes raw (the session's own
stamp) and the frames are caught where the client surfaces them: the acknowledgement in the message handler,
`notifications/tasks` through an extension binding.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client import advertise
from mcp.shared.exceptions import MCPError

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import SandboxServer
from tests.conftest import make_settings
from tests.e2e.test_mcp_tasks import BULK_RUN, SLOW_ARGS, TERMINAL, slow
from tests.judges import CACHE, require
from tests.system.test_crash_recovery import server_process
from tests.tasks_client import EXT, TaskNotes, listen, poll_until, raw

pytestmark = pytest.mark.anyio

SUBSCRIPTION = "io.modelcontextprotocol/subscriptionId"


@asynccontextmanager
async def listening(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[tuple[Client, TaskNotes]]:
    """A client of the 2026 tasks extension, recording what it hears, on a server whose runs stay processing."""
    slow(sandbox)
    notes = TaskNotes()
    server = build_server(make_settings(sandbox, tmp_path))
    async with Client(server, extensions=[advertise(EXT, {}), notes], message_handler=notes.on_message) as client:
        yield client, notes


async def test_a_listener_hears_its_task_change_until_it_ends_and_nobody_else_hears(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with listening(sandbox, tmp_path) as (client, notes):
        unheard = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": SLOW_ARGS})
        await poll_until(client, unheard["taskId"], TERMINAL)
        assert notes.tasks == []  # no listen stream: no notification, however the task changed

        created = await raw(
            client, "tools/call", {"name": "run_bulk_waterfall", "arguments": {**SLOW_ARGS, "force": True}}
        )
        ended = await listen(client, [created["taskId"], "not-a-task-" + "x" * 24, unheard["taskId"]])
        got = await raw(client, "tasks/get", {"taskId": created["taskId"]})

    ((ack,),) = [notes.acks]
    assert ack["notifications"]["taskIds"] == [created["taskId"], unheard["taskId"]]  # unknown ids not honoured
    assert ack["_meta"][SUBSCRIPTION] == ended["_meta"][SUBSCRIPTION]
    mine = [n for n in notes.tasks if n["taskId"] == created["taskId"]]
    assert [n["status"] for n in notes.tasks if n["taskId"] == unheard["taskId"]] == ["completed"]  # its state now
    assert all(n["_meta"][SUBSCRIPTION] == ack["_meta"][SUBSCRIPTION] for n in notes.tasks)
    assert mine[0]["status"] == "working" and mine[-1]["status"] == "completed"
    # our progress travels with the notifications (how many of them show a run working depends on how few polls
    # the predicted end needs: a run of a kind already seen is polled once, near its end)
    assert any("io.databar/progress" in n["_meta"] for n in mine)
    assert mine[-1]["result"] == got["result"]  # the same DetailedTask tasks/get answers
    assert "resultType" not in mine[-1]
    assert sandbox.state.counts[BULK_RUN] == 2


async def test_listening_for_tasks_needs_the_extension_and_other_listens_reach_the_sdk(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    notes = TaskNotes()
    settings = make_settings(sandbox, tmp_path)
    async with Client(build_server(settings), message_handler=notes.on_message) as plain:
        with pytest.raises(MCPError) as missing:
            await listen(plain, ["x" * 32])
    async with Client(build_server(settings), extensions=[advertise(EXT, {})]) as client:
        with pytest.raises(MCPError) as bad:
            await raw(client, "subscriptions/listen", {"notifications": {"taskIds": "one"}})
        async with client.listen(tools_list_changed=True) as subscription:  # the SDK's own stream, untouched
            honored = subscription.honored

    assert missing.value.error.code == -32021
    assert missing.value.error.data == {"requiredCapabilities": {"extensions": {EXT: {}}}}
    assert bad.value.error.code == -32602
    assert honored.tools_list_changed is True
    assert notes.acks == []


async def test_task_notifications_over_http(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow(sandbox)
    notes = TaskNotes()
    with server_process(sandbox, tmp_path / "state") as (_, url):
        async with Client(url, extensions=[advertise(EXT, {}), notes], message_handler=notes.on_message) as client:
            created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": SLOW_ARGS})
            await listen(client, [created["taskId"]])

    assert notes.acks and notes.acks[0]["notifications"]["taskIds"] == [created["taskId"]]
    statuses = [n["status"] for n in notes.tasks]
    assert statuses[0] == "working" and statuses[-1] == "completed"
    assert notes.tasks[-1]["result"]["structuredContent"]["rows_total"] == len(SLOW_ARGS["params"])


# The ext-tasks package (0.2.2, installed with the Inspector) is the judge of the frames' shapes: its own zod
# schema for notifications/tasks and its reader of the acknowledged task ids.
JUDGE = """
import { TaskStatusNotificationV2Schema, isTaskStatusNotificationV2, readAcceptedTaskIdsV2 }
  from "@modelcontextprotocol/ext-tasks/core/v2";
let raw = "";
for await (const chunk of process.stdin) raw += chunk;
const { ack, notes } = JSON.parse(raw);
const statuses = notes.map((params) => {
  const frame = { jsonrpc: "2.0", method: "notifications/tasks", params };
  TaskStatusNotificationV2Schema.parse(frame);
  if (!isTaskStatusNotificationV2(frame)) throw new Error("not a task status notification");
  return params.status;
});
console.log(JSON.stringify({ accepted: readAcceptedTaskIdsV2(ack), statuses }));
"""


def ext_tasks_reads(frames: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    judges = require()
    return subprocess.run(  # noqa: S603 (the pinned judge's node, our own script)
        [str(judges.node), "--input-type=module", "-e", JUDGE],
        input=json.dumps(frames),
        capture_output=True,
        text=True,
        cwd=CACHE,
        timeout=60,
        check=False,
    )


async def test_the_ext_tasks_package_accepts_the_ack_and_every_notification(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with listening(sandbox, tmp_path) as (client, notes):
        created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": SLOW_ARGS})
        await listen(client, [created["taskId"]])

    judged = ext_tasks_reads({"ack": notes.acks[0], "notes": notes.tasks})
    control = ext_tasks_reads({"ack": notes.acks[0], "notes": [{**notes.tasks[0], "status": "done"}]})

    assert judged.returncode == 0, judged.stderr
    verdict = json.loads(judged.stdout)
    assert verdict["accepted"] == [created["taskId"]]
    assert verdict["statuses"][0] == "working" and verdict["statuses"][-1] == "completed"
    assert len(verdict["statuses"]) == len(notes.tasks) >= 2
    assert control.returncode != 0  # the judge does reject a frame outside the schema
