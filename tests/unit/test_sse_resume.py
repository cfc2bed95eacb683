"""The SSE event store stays bounded whatever clients do: events past its count or its age are forgotten.

(Its replay and its separation of sessions are judged over real HTTP in test_http.py.)
"""

from __future__ import annotations

import pytest
from mcp.server.streamable_http import EventMessage
from mcp_types import JSONRPCResponse

from databar_mcp.app.sse_resume import SessionEventStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_store_forgets_past_its_count_and_its_age() -> None:
    clock = Clock()
    store = SessionEventStore(max_events=3, keep_s=60.0, clock=clock)
    reply = JSONRPCResponse(jsonrpc="2.0", id=1, result={})
    ids = [await store.store_event("1", None if i == 0 else reply) for i in range(5)]
    kept_by_count = store.kept
    clock.now += 61.0
    await store.store_event("2", reply)
    replayed: list[EventMessage] = []

    async def collect(event: EventMessage) -> None:
        replayed.append(event)

    assert kept_by_count == 3
    assert store.kept == 1
    assert await store.replay_events_after(ids[0], collect) is None and replayed == []
