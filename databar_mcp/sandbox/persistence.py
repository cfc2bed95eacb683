"""The sandbox's state on disk, so `databar-mcp --sandbox` behaves like one remote service across restarts.

A client that starts a server process per call (the MCP Inspector CLI does) must still find the task it
started and the table it created. The whole state is one JSON document, written atomically after every
request that may change it and read back at start; a file that cannot be read starts a fresh sandbox
(it is an emulator: its state is a convenience, never the user's data).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from databar_mcp.sandbox import workspace
from databar_mcp.sandbox.flows import flow_from_json
from databar_mcp.sandbox.providers import RowOutcome
from databar_mcp.sandbox.tables import Column, Table
from databar_mcp.sandbox.tasks import Task

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from databar_mcp.sandbox.state import SandboxState

logger = logging.getLogger("databar_mcp.sandbox")
FORMAT = 1


def snapshot(state: SandboxState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "clock_offset": state.clock.offset,
        "balance": state.raw_balance,
        "unsettled": sorted(state.unsettled),
        "next_connector_id": state.peek_connector_id(),
        "connectors": {str(k): v for k, v in state.connectors.items()},
        "tasks": [asdict(t) for t in state.tasks.values()],
        "tables": [asdict(t) for t in state.tables.values()],
        "workspace": workspace.to_json(state.workspace),
        "flows": [asdict(f) for f in state.flows.values()],
    }


def _task(raw: dict[str, Any]) -> Task:
    outcomes = [RowOutcome(**o) for o in cast(list[dict[str, Any]], raw.pop("outcomes"))]
    return Task(**raw, outcomes=outcomes)


def _table(raw: dict[str, Any]) -> Table:
    columns = [Column(**c) for c in cast(list[dict[str, Any]], raw.pop("columns"))]
    return Table(**raw, columns=columns)


def restore(state: SandboxState, snap: dict[str, Any]) -> None:
    state.clock.set_offset(float(snap["clock_offset"]))
    state.raw_balance = float(snap["balance"])
    state.unsettled = set(cast(list[str], snap["unsettled"]))
    state.set_next_connector_id(int(snap["next_connector_id"]))
    state.connectors = {int(k): v for k, v in cast(dict[str, Any], snap["connectors"]).items()}
    state.tasks = {t.task_id: t for t in (_task(raw) for raw in cast(list[dict[str, Any]], snap["tasks"]))}
    state.tables = {t.identifier: t for t in (_table(raw) for raw in cast(list[dict[str, Any]], snap["tables"]))}
    if "workspace" in snap:  # absent in files written before table enrichments existed
        state.workspace = workspace.from_json(cast(dict[str, Any], snap["workspace"]))
    if "flows" in snap:  # absent in files written before flows could be edited: the seeded ones stand
        flows = [flow_from_json(dict(raw)) for raw in cast(list[dict[str, Any]], snap["flows"])]
        state.flows = {f.id: f for f in flows}


def load(state: SandboxState, path: Path) -> bool:
    """Restore `state` from `path`; False (and a fresh sandbox) when there is no usable file."""
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(snap, dict) or cast(dict[str, Any], snap).get("format") != FORMAT:
            raise ValueError("not a sandbox state file of this version")
        restore(state, cast(dict[str, Any], snap))
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("sandbox state %s is unreadable (%s); starting a fresh sandbox", path, type(exc).__name__)
        return False
    return True


def save(state: SandboxState, path: Path) -> None:
    """Write the state atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(snapshot(state), ensure_ascii=False, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sandbox-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


class SaveAfterWrites:
    """ASGI middleware: once a request that may change the state has been answered, save the state.

    Reads (GET) change nothing that is not recomputed on load (the balance settles from each task's clock).
    """

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "GET" or self.state.persist_path is None:
            await self.app(scope, receive, send)
            return

        async def answered(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.state.save()

        await self.app(scope, receive, answered)
