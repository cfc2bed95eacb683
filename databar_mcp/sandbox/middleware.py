"""The request pipeline in front of every route: count, inject faults, authenticate, rate-limit.

Faults that "drop the connection" start a response whose Content-Length promises more bytes than are
sent, send part of it, then raise: uvicorn closes the socket and the client sees a broken reply. Faults
named `*_after` (and `reused_task_id`) let the route do its work first (a run is created and billed) and
then replace the reply, as a proxy, a CDN or a broken API node in front of Databar would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import NoReturn, cast

import anyio
from starlette.datastructures import Headers
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from databar_mcp.sandbox.config import Fault
from databar_mcp.sandbox.state import SandboxState

UNMATCHED = "<unmatched>"
AFTER_WORK = frozenset({"reset_after", "truncated_after", "html_after", "status_after", "reused_task_id"})
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon.</body></html>"
REDIRECT_TO = "https://databar.ai/login?next=/v1/"


class InjectedDisconnect(Exception):
    """Raised on purpose to make uvicorn drop the connection mid-reply."""


async def _send_json(send: Send, status: int, body: object, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    pairs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})


async def _drop(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> NoReturn:
    """Promise more bytes than we send, send half, then kill the connection."""
    partial = body[: len(body) // 2]
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    kept.append((b"content-length", str(len(body) + 1024).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": partial, "more_body": True})
    raise InjectedDisconnect("connection dropped by an injected fault")


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    """Add the X-RateLimit-* headers to a reply, as the API does while a limit applies."""
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


def _presented_key(headers: Headers) -> str | None:
    """The key a request carries: `x-apikey` (what our client and Databar's SDK send) or, without it, an
    `Authorization: Bearer` token (Databar's MCP client sends the key both ways). Same rules for either."""
    key = headers.get("x-apikey")
    if key is not None:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class SandboxMiddleware:
    """Pure ASGI so that it can both buffer a finished reply and break the connection."""

    def __init__(self, app: ASGIApp, state: SandboxState, routes: Sequence[Route]) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    def _resolve(self, scope: Scope) -> tuple[str, dict[str, object]]:
        """The "METHOD template" key; tolerates a missing or extra trailing slash by rewriting the path."""
        method = str(scope["method"])
        path = str(scope["path"])
        toggled = path[:-1] if path.endswith("/") and path != "/" else path + "/"
        for candidate in (path, toggled):
            probe = {**scope, "path": candidate}
            partial: Route | None = None
            for route in self.routes:
                match, child = route.matches(probe)
                if match is Match.FULL:
                    scope["path"] = candidate
                    return f"{method} {route.path}", cast(dict[str, object], child.get("path_params", {}))
                if match is Match.PARTIAL and partial is None:
                    partial = route
            if partial is not None:
                scope["path"] = candidate
                return f"{method} {partial.path}", {}
        return f"{method} {UNMATCHED}", {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key, path_params = self._resolve(scope)
        self.state.count(key)
        fault = self.state.take_fault(key)
        if fault is not None and fault.kind == "slow":
            receive = await _buffered(receive)  # the request arrived in full; only the answer is late
        if fault is not None and fault.kind in ("reply", "echo"):
            await _hostile_reply(fault, scope, receive, send)
            return
        if fault is not None and fault.kind not in AFTER_WORK and await self._pre_work_fault(fault, send):
            return
        if str(scope["path"]).startswith("/v1"):
            if _presented_key(Headers(scope=scope)) != self.state.config.api_key:
                await _send_json(send, 403, {"detail": "Forbidden"})
                return
            table_uuid = path_params.get("table_uuid")
            verdict = self.state.check_rate(table_uuid if isinstance(table_uuid, str) else None)
            if verdict is not None and not verdict.allowed:
                await _send_json(send, 429, {"detail": "Too many requests"}, verdict.headers())
                return
            if verdict is not None:
                send = _with_headers(send, verdict.headers())
        if fault is not None and fault.kind in AFTER_WORK:
            await self._work_then_fault(key, fault, scope, receive, send)
            return
        await self.app(scope, receive, self._noting_work(key, send))

    def _noting_work(self, key: str, send: Send) -> Send:
        """Count the request in `state.work` when the route answered 2xx: the API did the work (and, for a run,
        billed it), whatever reply the client then saw."""

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= cast(int, message["status"]) < 300:
                self.state.did_work(key)
            await send(message)

        return wrapped

    async def _pre_work_fault(self, fault: Fault, send: Send) -> bool:
        """Apply a fault that strikes before any work; True when the reply has been sent."""
        if fault.kind == "slow":
            await anyio.sleep(fault.delay)
            return False
        if fault.kind == "status":
            await _send_json(send, fault.status, {"detail": f"Injected fault: HTTP {fault.status}."})
        elif fault.kind == "rate_limit":
            retry = str(max(0, math.ceil(fault.retry_after)))  # the test chose it; 0 keeps tests fast
            headers = {"Retry-After": retry, "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0"}
            headers["X-RateLimit-Reset"] = retry
            await _send_json(send, 429, {"detail": "Too many requests"}, headers)
        else:
            await _drop(send, 200, [(b"content-type", b"application/json")], b'{"task_id": "')
        return True

    async def _work_then_fault(self, key: str, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        """Do the work (create and bill the task...), then lose or replace the reply."""
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(cast(bytes, message.get("body", b"")))

        await self.app(scope, receive, self._noting_work(key, capture))
        status = cast(int, start.get("status", 200))
        headers = cast(list[tuple[bytes, bytes]], list(start.get("headers", [])))
        body = b"".join(chunks)
        if fault.kind == "reset_after":
            await _drop(send, status, headers, body)
        elif fault.kind == "truncated_after":
            await _send_raw(send, status, b"application/json", body[: len(body) // 2])
        elif fault.kind == "html_after":
            await _send_raw(send, 200, b"text/html; charset=utf-8", HTML_PAGE)
        elif fault.kind == "status_after":
            extra = [(b"location", REDIRECT_TO.encode())] if 300 <= fault.status < 400 else []
            await _send_raw(send, fault.status, *_foreign_body(fault.body), extra)
        else:  # reused_task_id
            await _send_raw(send, status, b"application/json", self._reuse_task_id(body))

    def _reuse_task_id(self, body: bytes) -> bytes:
        """The reply with its task_id swapped for the id of the oldest other task (a duplicate id upstream)."""
        reply = cast(dict[str, object], json.loads(body))
        others = [task_id for task_id in self.state.tasks if task_id != reply.get("task_id")]
        if others:
            reply["task_id"] = others[0]
        return json.dumps(reply).encode()


def _foreign_body(body: object) -> tuple[bytes, bytes]:
    """A `status_after` reply's content type and body: an HTML maintenance page by default; a string as it is
    (`""`: an empty body); anything else as JSON (a gateway's own error shape, not Databar's)."""
    if body is None:
        return b"text/html; charset=utf-8", HTML_PAGE
    if isinstance(body, str):
        return b"text/html; charset=utf-8", body.encode()
    return b"application/json", json.dumps(body).encode()


async def _send_raw(
    send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete, well-formed HTTP reply (the bytes promised are the bytes sent) with whatever body."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now, and replay it later even if the client has gone by then."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += cast(bytes, message.get("body", b""))
        if not message.get("more_body", False):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# ---- hostile replies: huge bodies and bodies that echo the request ---------------------------------------


async def _hostile_reply(fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
    """`reply`: the fault's body as is. `echo`: an error quoting the request back, secrets included.

    The echo takes the shape each status has at Databar: 422 a FastAPI `detail` list whose `msg` quotes a
    header value and whose `input` is the body, 400 a `detail` string quoting headers and body, 5xx an
    HTML proxy page listing the request headers.
    """
    if fault.kind == "reply":
        await _send_json(send, fault.status, fault.body)
        return
    raw = b""
    while True:
        message = await receive()
        raw += cast(bytes, message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    try:
        body: object = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in cast(list[tuple[bytes, bytes]], scope["headers"])}
    request = {"method": scope["method"], "path": scope["path"], "headers": headers, "body": body}
    if fault.status == 422:
        quoted = _first_header_value(body) or headers.get("x-apikey", "")
        entry: dict[str, object] = {"loc": ["body", "headers", 0, "value"], "type": "value_error"}
        entry.update(msg=f"invalid value {quoted!r}", input=body)
        await _send_json(send, 422, {"detail": [entry], "request": request})
    elif fault.status >= 500:
        page = "<html><body><h1>Bad Gateway</h1><pre>" + json.dumps(request) + "</pre></body></html>"
        raw_page = page.encode()
        pairs = [(b"content-type", b"text/html"), (b"content-length", str(len(raw_page)).encode())]
        await send({"type": "http.response.start", "status": fault.status, "headers": pairs})
        await send({"type": "http.response.body", "body": raw_page})
    else:
        await _send_json(send, fault.status, {"detail": f"Bad request {json.dumps(request)}", "request": request})


def _first_header_value(body: object) -> str | None:
    if isinstance(body, dict):
        headers: object = cast(dict[str, object], body).get("headers")
        if isinstance(headers, list) and headers and isinstance(headers[0], dict):
            value: object = cast(list[dict[str, object]], headers)[0].get("value")
            return value if isinstance(value, str) else None
    return None
