"""The HTTP transport stays available under abuse (issue 13 items 15-16), tested against the real server
process over real sockets: one client cannot hold every session, idle sessions expire within seconds here
(minutes by default), the stateless 2026-07-28 path needs no session, and connections trickling headers or
a body are closed at their deadline."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.served import clean_env, free_port, http_process
from tests.system.test_http import INITIALIZE, MCP_HEADERS

IDLE_S = 6.0  # long enough that a loaded machine opens and pings ten sessions well within it
HEADER_S = 1.0
BODY_S = 1.0


@dataclass
class Limited:
    base: str
    port: int

    @property
    def url(self) -> str:
        return self.base + "/mcp"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    tmp = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = clean_env(
        DATABAR_MCP_STATE_DIR=str(tmp / "state"),
        DATABAR_MCP_HTTP_MAX_SESSIONS="4",
        DATABAR_MCP_HTTP_SESSIONS_PER_CLIENT="3",
        DATABAR_MCP_HTTP_SESSION_IDLE=str(IDLE_S),
        DATABAR_MCP_HTTP_HEADER_TIMEOUT=str(HEADER_S),
        DATABAR_MCP_HTTP_BODY_TIMEOUT=str(BODY_S),
    )
    with http_process(env, tmp / "stderr", port=port, args=["--sandbox"]) as served:
        yield Limited(served.base, port)


def initialize(server: Limited, client: str) -> httpx2.Response:
    headers = {**MCP_HEADERS, "authorization": f"Bearer client-{client}"}
    return httpx2.post(server.url, headers=headers, content=json.dumps(INITIALIZE), timeout=10)


def alive(server: Limited, session: str) -> bool:
    headers = {**MCP_HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
    ping = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    status = httpx2.post(server.url, headers=headers, content=ping, timeout=10).status_code
    assert status in (200, 404), status
    return status == 200


def test_sessions_are_limited_per_client_expire_when_idle_and_never_block_stateless(limited: Limited) -> None:
    time.sleep(IDLE_S + 0.5)  # start from no live session
    opened = []
    for _ in range(10):  # a client that opens sessions and never ends them
        reply = initialize(limited, "a")
        assert reply.status_code == 200, reply.text
        opened.append(reply.headers["mcp-session-id"])
    assert [alive(limited, s) for s in opened] == [False] * 7 + [True] * 3  # it keeps only its own share

    other = initialize(limited, "b")
    assert other.status_code == 200  # another client still gets in
    full = initialize(limited, "c")
    assert full.status_code == 503  # 4 in all, none idle long enough to give up

    async def stateless() -> list[str]:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            Client(streamable_http_client(limited.url, http_client=http), mode="2026-07-28") as client,
        ):
            return [t.name for t in (await client.list_tools()).tools]

    assert "get_task" in anyio.run(stateless)  # the 2026-07-28 path needs no session

    time.sleep(IDLE_S + 1.0)
    assert not alive(limited, other.headers["mcp-session-id"])  # expired after IDLE_S, not 30 minutes
    assert initialize(limited, "c").status_code == 200


def _slow_socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    return sock


def _closed(sock: socket.socket) -> bool:
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def trickle(port: int, head: bytes, drip: bytes, count: int) -> float:
    """Open `count` connections sending `head`, then one byte of `drip` each 0.2 s; the seconds until all close."""
    socks = [_slow_socket(port) for _ in range(count)]
    started = time.monotonic()
    for s in socks:
        s.sendall(head)
    open_ = set(range(count))
    i = 0
    while open_ and time.monotonic() - started < 15:
        time.sleep(0.2)
        for n in list(open_):
            if _closed(socks[n]):
                open_.discard(n)
                continue
            try:
                socks[n].sendall(drip[i % len(drip) : i % len(drip) + 1])
            except OSError:
                open_.discard(n)
        i += 1
    for s in socks:
        s.close()
    assert not open_, f"{len(open_)} trickling connection(s) still open after 15 s"
    return time.monotonic() - started


def test_trickled_headers_are_cut_off_at_the_deadline(limited: Limited) -> None:
    head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    took = trickle(limited.port, head, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 100)
    assert took < HEADER_S + 3
    assert httpx2.get(limited.base + "/healthz", timeout=5).status_code == 200  # and the server serves on


def test_a_trickled_body_is_cut_off_at_the_deadline(limited: Limited) -> None:
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"accept: application/json, text/event-stream\r\ncontent-length: 5000\r\n\r\n"
    )
    took = trickle(limited.port, head, b'{"jsonrpc": "2.0"', 100)
    assert took < BODY_S + 3


def test_json_nested_200000_deep_is_400(limited: Limited) -> None:
    """Issue 22 (6), at the default body cap: an initialize nested 200,000 deep was a 500 (RecursionError)."""
    deep = b"[" * 200_000 + b"]" * 200_000
    body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":' + deep + b"}"
    for version in ("2025-06-18", "2026-07-28"):
        headers = {**MCP_HEADERS, "mcp-protocol-version": version}
        reply = httpx2.post(limited.url, headers=headers, content=body, timeout=30)
        assert reply.status_code == 400, reply.text[:500]


def test_limits_come_from_the_environment(tmp_path: Path) -> None:
    from databar_mcp.app.http_app import HttpConfigError, options_from_env

    options = options_from_env("127.0.0.1", 8000, {"DATABAR_MCP_HTTP_SESSION_IDLE": "12.5"})
    assert options.session_idle_s == 12.5 and options.sessions_per_client == 32 and options.max_sessions == 1000
    assert options.header_timeout_s == 10.0 and options.body_timeout_s == 30.0
    with pytest.raises(HttpConfigError, match="must be positive"):
        options_from_env("127.0.0.1", 8000, {"DATABAR_MCP_HTTP_HEADER_TIMEOUT": "0"})
