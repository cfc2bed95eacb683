"""Every line a stdio client sends gets an answer, even one that is not a JSON-RPC message we can read.

The SDK's stdio transport hands an unparsable line (a lone surrogate escape, JSON nested 5,000 deep) to the
session as an exception, which drops it: the client waits for a reply that never comes. This wraps the read
side so such a line is answered at once with a JSON-RPC error carrying the request's id when it can be found
(JSON-RPC 2.0: `id` null when it cannot), and the session never sees it.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from databar_mcp.core.shaping import clip

RequestId = str | int


def top_level_id(raw: str) -> RequestId | None:
    """The `id` member of the top-level JSON object in `raw`, found without parsing the rest (which may be
    nested too deep or hold escapes no parser accepts); None when there is none or it is not a valid id."""
    depth, i, n = 0, 0, len(raw)
    while i < n:
        c = raw[i]
        if c == '"':
            j = i + 1
            while j < n and raw[j] != '"':
                j += 2 if raw[j] == "\\" else 1
            if depth == 1 and raw[i + 1 : j] == "id":
                k = j + 1
                while k < n and raw[k] in " \t\r\n":
                    k += 1
                if k < n and raw[k] == ":":
                    k += 1
                    while k < n and raw[k] in " \t\r\n":
                        k += 1
                    try:
                        value, _ = json.JSONDecoder().raw_decode(raw, k)
                    except ValueError:
                        return None
                    valid = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
                    return value if valid else None
            i = j + 1
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        i += 1
    return None


def unreadable_reply(exc: Exception) -> types.JSONRPCError:
    """The JSON-RPC error answering a line the transport could not read as a message."""
    raw: object = None
    code, message = types.INTERNAL_ERROR, f"The message could not be read ({type(exc).__name__})."
    if isinstance(exc, ValidationError) and (errors := exc.errors(include_url=False)):
        first = errors[0]
        raw = first.get("input")
        if first["type"] == "json_invalid":
            code, message = types.PARSE_ERROR, f"Parse error: {clip(first['msg'], 200)}"
            if "hex escape" in first["msg"]:
                message += " (a lone surrogate escape such as \\ud800 is not text: send valid UTF-16 pairs)"
        else:
            code, message = types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message this server accepts."
    request_id = top_level_id(raw) if isinstance(raw, str) else None
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


class AnsweringReadStream:
    """The stdio read stream, minus unreadable lines: each of those is answered on `write` instead."""

    def __init__(self, inner: Any, write: Any) -> None:
        self._inner = inner
        self._write = write

    @property
    def last_context(self) -> object:  # the SDK reads the sender's context from here
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item: SessionMessage | Exception = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._write.send(SessionMessage(unreadable_reply(item)))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None
