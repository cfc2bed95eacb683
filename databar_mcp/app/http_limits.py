"""Limits that keep the HTTP transport available to every client: sessions per client, and read deadlines.

Sessions: the SDK refuses new sessions with 503 once `max_sessions` are open and closes a session only after
its idle timeout, so one client that opens sessions and forgets them locks everyone out. `SessionLimiter`
sees every session open (the `mcp-session-id` of an opening reply) and end (DELETE, 404), and before a new
session opens it makes room: a client at its own cap gives up its longest-idle session, and at the global
cap the longest-idle session of anyone (idle for a while) goes. Room is made with a DELETE through the SDK
app itself, the way a client ends a session. The stateless 2026-07-28 path opens no sessions at all.

Read deadlines: uvicorn hands a request to the app only once its headers are in, and puts no deadline on
them, so connections trickling header bytes stay open for ever. `BoundedH11Protocol` closes a connection
whose request headers have not all arrived within the deadline (from connect, or from the end of the previous
response); the body deadline is the security middleware's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from databar_mcp import config

log = logging.getLogger("databar_mcp.http")

SESSION_HEADER = b"mcp-session-id"
TIMEOUT_REPLY = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass
class _Session:
    client: str
    last_seen: float
    in_flight: int = 0


def client_key(scope: Scope) -> str:
    """Who is asking: the peer address and (hashed) bearer token; sessions are counted per key."""
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    auth = next((v for k, v in scope.get("headers", []) if k.lower() == b"authorization"), b"")
    return f"{address}/{hashlib.sha256(auth).hexdigest()[:12]}"


class SessionLimiter:
    """Per-client and global session accounting in front of the SDK's session manager."""

    def __init__(
        self,
        *,
        max_sessions: int = config.HTTP_MAX_SESSIONS,
        per_client: int = config.HTTP_SESSIONS_PER_CLIENT,
        idle_s: float = config.HTTP_SESSION_IDLE_S,
        evict_idle_s: float = config.HTTP_EVICT_IDLE_S,
    ) -> None:
        self.max_sessions = max_sessions
        self.per_client = per_client
        self.idle_s = idle_s
        self.evict_idle_s = evict_idle_s
        self.sessions: dict[str, _Session] = {}

    def _prune(self, now: float) -> None:
        """Forget sessions the SDK has closed for idleness by now (no request in flight, idle past the timeout)."""
        for sid, s in list(self.sessions.items()):
            if s.in_flight == 0 and now - s.last_seen > self.idle_s:
                del self.sessions[sid]

    def _idlest(self, client: str | None, now: float, min_idle: float) -> str | None:
        idle = [
            (s.last_seen, sid)
            for sid, s in self.sessions.items()
            if s.in_flight == 0 and (client is None or s.client == client) and now - s.last_seen >= min_idle
        ]
        return min(idle)[1] if idle else None

    def to_evict(self, client: str) -> tuple[list[str], bool]:
        """Before `client` opens a session: (sessions to close first, whether it may open one at all)."""
        now = time.monotonic()
        self._prune(now)
        evict: list[str] = []
        mine = sum(1 for s in self.sessions.values() if s.client == client)
        if mine >= self.per_client:
            own = self._idlest(client, now, 0.0)
            if own is None:
                return [], False  # every one of its sessions is busy: it must wait or close one
            evict.append(own)
        elif len(self.sessions) >= self.max_sessions and (other := self._idlest(None, now, self.evict_idle_s)):
            evict.append(other)
        for sid in evict:
            self.sessions.pop(sid, None)
        return evict, True

    def opened(self, sid: str, client: str) -> None:
        self.sessions[sid] = _Session(client=client, last_seen=time.monotonic())

    def begin(self, sid: str) -> None:
        if (s := self.sessions.get(sid)) is not None:
            s.in_flight += 1

    def end(self, sid: str, *, status: int, method: str) -> None:
        s = self.sessions.get(sid)
        if s is None:
            return
        s.in_flight = max(0, s.in_flight - 1)
        s.last_seen = time.monotonic()
        if status == 404 or (method == "DELETE" and status < 300):
            del self.sessions[sid]

    async def close(self, app: ASGIApp, scope: Scope, sid: str) -> None:
        """End a session through the SDK app, with a DELETE as a client would send."""
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() in (b"host", b"mcp-protocol-version")]
        delete: dict[str, Any] = {**scope, "method": "DELETE", "headers": [*headers, (SESSION_HEADER, sid.encode())]}
        delete["query_string"] = b""
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)  # never disconnects while the DELETE is handled
            return {"type": "http.disconnect"}

        async def discard(message: Message) -> None:
            return None

        await app(delete, receive, discard)
        log.info("closed idle session %s to make room for a new one", sid[:12])


def session_of(scope: Scope) -> str | None:
    raw = next((v for k, v in scope.get("headers", []) if k.lower() == SESSION_HEADER), None)
    return raw.decode("latin-1") if raw is not None else None


def watching(send: Send, seen: dict[str, Any]) -> Send:
    """`send`, noting the reply's status and any session id it opens in `seen`."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = int(message["status"])
            for key, value in message.get("headers", []):
                if bytes(key).lower() == SESSION_HEADER:
                    seen["session"] = bytes(value).decode("latin-1")
        await send(message)

    return wrapped


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's headers."""

    header_timeout_s: float = config.HTTP_HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info("closing a connection whose request headers took over %.0f s", self.header_timeout_s)
            self.transport.write(TIMEOUT_REPLY)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline (a pipelined one disarms it)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
