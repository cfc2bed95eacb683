"""Resumable SSE replies for stateful 2025-11-25 HTTP sessions: a priming event, a `retry:` hint, a replay.

With an event store the SDK opens each POST's SSE reply with a priming event (an id and empty data) and our
`retry:` interval (SEP-1699), and answers a GET carrying `Last-Event-ID` by replaying what that stream sent
after it: a client whose connection dropped mid-call reconnects and still gets the result. Without one a
dropped stream loses the reply (issue 22 item 16).

The SDK gives one store to every session and names a POST's stream by its JSON-RPC id, which every client
numbers from 0 or 1: keyed by stream id alone, a replay would hand one session the replies another session's
request 1 produced. So each event is kept under its session too. The store cannot see the session, so
`SessionTagging` (an ASGI layer in front of the SDK app) puts the session's tag in a context variable: the
SDK runs a session's message router in a task started inside the request that opened the session, so its
writes carry that request's tag; later requests (a POST's priming event, a GET's replay) look the tag up by
their `Mcp-Session-Id`. A replay from another session, or of an event no longer kept, sends nothing.

Events are kept in memory, for a while and up to a count (config.HTTP_SSE_EVENTS_*): enough for a client to
reconnect after the `retry:` interval, bounded whatever clients do. Stateless mode (replicas) and the
2026-07-28 protocol have no session to resume in; the SDK gives them no store.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final
from uuid import uuid4

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from databar_mcp import config

SESSION_HEADER: Final = b"mcp-session-id"


class SessionTag:
    """One session's identity in the store (compared by identity, never by value)."""


_current: ContextVar[SessionTag | None] = ContextVar("databar_sse_session", default=None)


@dataclass(frozen=True)
class _Event:
    event_id: EventId
    tag: SessionTag
    stream_id: StreamId
    message: JSONRPCMessage | None  # None: a priming event, never replayed
    stored_at: float


class SessionEventStore(EventStore):
    """The SDK's EventStore, each event kept under the session that sent it, bounded in count and age."""

    def __init__(
        self,
        max_events: int = config.HTTP_SSE_EVENTS_MAX,
        keep_s: float = config.HTTP_SSE_EVENTS_KEEP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_events = max_events
        self.keep_s = keep_s
        self._clock = clock
        self._order: deque[_Event] = deque()  # every kept event, oldest first
        self._by_id: dict[EventId, _Event] = {}
        self._streams: dict[tuple[int, StreamId], deque[_Event]] = {}

    @property
    def kept(self) -> int:
        """How many events are kept (not `__len__`: the SDK tests the store for truth, and empty is falsy)."""
        return len(self._order)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        tag = _current.get()
        event = _Event(uuid4().hex, tag if tag is not None else SessionTag(), stream_id, message, self._clock())
        self._order.append(event)
        self._by_id[event.event_id] = event
        self._streams.setdefault((id(event.tag), stream_id), deque()).append(event)
        self._forget_old()
        return event.event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        self._forget_old()
        last = self._by_id.get(last_event_id)
        if last is None or last.tag is not _current.get():
            return None  # unknown, forgotten, or another session's: nothing to resume
        events = list(self._streams[(id(last.tag), last.stream_id)])  # kept: forgetting drops it from both
        for event in events[events.index(last) + 1 :]:
            if event.message is not None:
                await send_callback(EventMessage(event.message, event.event_id))
        return last.stream_id

    def _forget_old(self) -> None:
        horizon = self._clock() - self.keep_s
        while self._order and (len(self._order) > self.max_events or self._order[0].stored_at < horizon):
            oldest = self._order.popleft()
            del self._by_id[oldest.event_id]
            key = (id(oldest.tag), oldest.stream_id)
            stream = self._streams[key]
            stream.popleft()  # events enter both queues in the same order, so it heads its stream too
            if not stream:
                del self._streams[key]


class SessionTagging:
    """ASGI: runs each request with its session's tag current, so SessionEventStore keeps sessions apart."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._tags: weakref.WeakValueDictionary[str, SessionTag] = weakref.WeakValueDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if bytes(k).lower() == SESSION_HEADER), None)
        if raw is not None:  # an unknown session gets a tag of its own: it replays nothing
            tag = self._tags.get(bytes(raw).decode("latin-1")) or SessionTag()
            token = _current.set(tag)
            try:
                await self.app(scope, receive, send)
            finally:
                _current.reset(token)
            return
        tag = SessionTag()  # a request that may open a session: its session task inherits this tag

        async def noting_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                for key, value in message.get("headers", []):
                    if bytes(key).lower() == SESSION_HEADER:
                        self._tags[bytes(value).decode("latin-1")] = tag
            await send(message)

        token = _current.set(tag)
        try:
            await self.app(scope, receive, noting_session)
        finally:
            _current.reset(token)
