"""Durable MCP task handles: one ledger row per MCP task, tied to the Databar task it waits on (a table run has
none: its row keeps the tool's immediate answer in `result` until the final one replaces it).

A handle outlives the connection and the process that created it (clients poll after reconnecting or after a
server restart), and its final result is stored in the row, so it still answers after Databar has deleted the
task 24 hours later. Handle ids are random (192 bits) and every lookup is filtered by the requestor's scope:
an id alone never grants access.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, cast

from databar_mcp.core.ledger.backend import LedgerConn, Row
from databar_mcp.core.ledger.store import Ledger

Generation = Literal["2025-11-25", "2026-07-28"]
# Generation-neutral states; each wire maps them (a tool error is "failed" in 2025-11-25, "completed" in 2026).
State = Literal["working", "input_required", "completed", "tool_error", "cancelled", "protocol_error"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "tool_error", "cancelled", "protocol_error"})


@dataclass(frozen=True)
class Handle:
    handle_id: str
    scope: str
    generation: Generation
    tool: str
    request: dict[str, Any]
    databar_task_id: str | None
    state: State
    status_message: str | None
    progress: dict[str, Any] | None
    poll_ms: int | None
    ttl_ms: int | None
    result: dict[str, Any] | None
    input: dict[str, Any] | None
    created_at: float
    updated_at: float

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def expired(self, now: float) -> bool:
        return self.ttl_ms is not None and now > self.created_at + self.ttl_ms / 1000.0


def new_handle_id() -> str:
    return secrets.token_urlsafe(24)


def _dumps(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _loads(raw: object) -> Any:
    return None if raw is None else json.loads(str(raw))


def _handle(row: Row) -> Handle:
    return Handle(
        handle_id=str(row["handle_id"]),
        scope=str(row["scope"]),
        generation=cast(Generation, row["generation"]),
        tool=str(row["tool"]),
        request=cast(dict[str, Any], json.loads(row["request_json"])),
        databar_task_id=row["databar_task_id"],
        state=cast(State, row["state"]),
        status_message=row["status_message"],
        progress=_loads(row["progress_json"]),
        poll_ms=row["poll_ms"],
        ttl_ms=row["ttl_ms"],
        result=_loads(row["result_json"]),
        input=_loads(row["input_json"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


class HandleStore:
    """SQL for the `mcp_tasks` table (created by the ledger's v2 migration)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def create(
        self,
        *,
        scope: str,
        generation: Generation,
        tool: str,
        request: dict[str, Any],
        databar_task_id: str | None,
        state: State,
        status_message: str | None,
        poll_ms: int | None,
        ttl_ms: int | None,
        result: dict[str, Any] | None = None,
        input_request: dict[str, Any] | None = None,
    ) -> Handle:
        now = time.time()
        handle_id = new_handle_id()

        async def work(conn: LedgerConn) -> None:
            await conn.execute(
                """INSERT INTO mcp_tasks (handle_id, scope, generation, tool, request_json, databar_task_id, state,
                                          status_message, poll_ms, ttl_ms, result_json, input_json, created_at,
                                          updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    handle_id,
                    scope,
                    generation,
                    tool,
                    json.dumps(request, ensure_ascii=False),
                    databar_task_id,
                    state,
                    status_message,
                    poll_ms,
                    ttl_ms,
                    _dumps(result),
                    _dumps(input_request),
                    now,
                    now,
                ),
            )

        await self._ledger.call(work)
        found = await self.get(handle_id, scope)
        assert found is not None
        return found

    async def get(self, handle_id: str, scope: str) -> Handle | None:
        async def work(conn: LedgerConn) -> Handle | None:
            row = await conn.one("SELECT * FROM mcp_tasks WHERE handle_id = ? AND scope = ?", (handle_id, scope))
            return None if row is None else _handle(row)

        return await self._ledger.call(work)

    async def by_id(self, handle_id: str) -> Handle | None:
        """For the server's own background work only (never for answering a requestor)."""

        async def work(conn: LedgerConn) -> Handle | None:
            row = await conn.one("SELECT * FROM mcp_tasks WHERE handle_id = ?", (handle_id,))
            return None if row is None else _handle(row)

        return await self._ledger.call(work)

    async def page(self, scope: str, *, offset: int, limit: int) -> list[Handle]:
        async def work(conn: LedgerConn) -> list[Handle]:
            rows = await conn.all(
                """SELECT * FROM mcp_tasks WHERE scope = ? ORDER BY created_at DESC, handle_id LIMIT ? OFFSET ?""",
                (scope, limit, offset),
            )
            return [_handle(row) for row in rows]

        return await self._ledger.call(work)

    async def unfinished(self) -> list[Handle]:
        async def work(conn: LedgerConn) -> list[Handle]:
            rows = await conn.all(
                "SELECT * FROM mcp_tasks WHERE state IN ('working', 'input_required') ORDER BY created_at"
            )
            return [_handle(row) for row in rows]

        return await self._ledger.call(work)

    async def update(
        self,
        handle_id: str,
        *,
        state: State | None = None,
        status_message: str | None = None,
        progress: dict[str, Any] | None = None,
        poll_ms: int | None = None,
        databar_task_id: str | None = None,
        result: dict[str, Any] | None = None,
        input_request: dict[str, Any] | None = None,
        clear_input: bool = False,
    ) -> bool:
        """Change a handle that is not terminal yet; False when it already was (a terminal state never changes)."""
        now = time.time()

        async def work(conn: LedgerConn) -> bool:
            # RETURNING says whether a row changed, on SQLite and PostgreSQL alike (no rowcount across the seam)
            changed = await conn.one(
                """UPDATE mcp_tasks SET
                       state = COALESCE(?, state),
                       status_message = COALESCE(?, status_message),
                       progress_json = COALESCE(?, progress_json),
                       poll_ms = COALESCE(?, poll_ms),
                       databar_task_id = COALESCE(?, databar_task_id),
                       result_json = COALESCE(?, result_json),
                       input_json = CASE WHEN ? = 1 THEN NULL ELSE COALESCE(?, input_json) END,
                       updated_at = ?
                   WHERE handle_id = ? AND state IN ('working', 'input_required')
                   RETURNING handle_id""",
                (
                    state,
                    status_message,
                    _dumps(progress),
                    poll_ms,
                    databar_task_id,
                    _dumps(result),
                    1 if clear_input else 0,
                    _dumps(input_request),
                    now,
                    handle_id,
                ),
            )
            return changed is not None

        return await self._ledger.call(work)
