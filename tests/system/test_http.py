"""Streamable HTTP end to end: our server as its own process, the official MCP client, and hostile requests.

One server per module (bound to 127.0.0.1 with a bearer token) talks to the sandbox through a recording
proxy, so the tests can see every header that reached "Databar". Security cases and their status codes:
missing/wrong bearer -> 401, wrong Host -> 421, foreign Origin -> 403, body over the cap (declared or
chunked) -> 413, /healthz -> 200 without auth, a non-loopback bind without a token -> exit code 2.
The Dockerfile's properties and its install steps (build a wheel, pip install it) are checked here too.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import Message, Receive, Scope, Send

from databar_mcp import __version__
from databar_mcp.app.cli import build_parser, healthcheck, healthcheck_url, served_args
from databar_mcp.app.http_app import (
    DEFAULT_MAX_BODY,
    HttpConfigError,
    HttpOptions,
    SecurityMiddleware,
    options_from_env,
)
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY, structured
from tests.served import ServerProcess, clean_env, free_port, http_process

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-SENTINEL-3c1d9a7e5b0f42"
MAX_BODY = 64 * 1024  # small cap for the running server, so the oversize cases send little
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
BULK = {
    "waterfall": "email_getter",
    "params": [{"first_name": "A", "last_name": "B", "company": "example.com"}],
    "enrichments": [833],
}
WILDCARD = "0.0.0.0"  # noqa: S104 (what the tests ask the server to bind)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


# ---- a recording proxy in front of the sandbox: every header "Databar" received -----------------------


@dataclass
class Recorder:
    upstream: str
    proxy_url: str = ""
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _proxy_handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = [(k.lower(), v) for k, v in self.headers.items()]
            with recorder.lock:
                recorder.seen.append((self.command, self.path, dict(headers)))
            reply = httpx2.request(
                self.command,
                recorder.upstream + self.path,
                headers=[(k, v) for k, v in headers if k not in HOP_BY_HOP],
                content=body,
                timeout=30,
            )
            data = reply.content
            self.send_response(reply.status_code)
            for key, value in reply.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def sandbox_http() -> Iterator[SandboxServer]:
    config = SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002)
    with SandboxServer(config) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def recorder(sandbox_http: SandboxServer) -> Iterator[Recorder]:
    rec = Recorder(upstream=f"http://127.0.0.1:{sandbox_http.port}")
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(rec))
    proxy.daemon_threads = True
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    rec.proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}/v1"
    try:
        yield rec
    finally:
        proxy.shutdown()
        proxy.server_close()


# ---- our server, once per module --------------------------------------------------------------------


Served = ServerProcess


@pytest.fixture(scope="module")
def served(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("http")
    port = free_port()
    stderr_path = tmp / "server.stderr"
    env = clean_env(
        DATABAR_API_KEY=SENTINEL_KEY,
        DATABAR_BASE_URL=recorder.proxy_url,
        DATABAR_MCP_STATE_DIR=str(tmp / "state"),
        DATABAR_MCP_TRACKER_INTERVAL="3600",
        DATABAR_MCP_HTTP_TOKEN=TOKEN,
        DATABAR_MCP_HTTP_MAX_BODY=str(MAX_BODY),
        DATABAR_MCP_LOG_LEVEL="DEBUG",
    )
    with http_process(env, stderr_path, port=port) as served:
        yield served


@asynccontextmanager
async def mcp_client(url: str, token: str | None = TOKEN) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def post(served: Served, *, headers: dict[str, str] | None = None, content: Any = None) -> httpx2.Response:
    body = json.dumps(INITIALIZE).encode() if content is None else content
    merged = {**MCP_HEADERS, "authorization": f"Bearer {TOKEN}", **(headers or {})}
    merged = {k: v for k, v in merged.items() if v}
    return httpx2.post(served.url, headers=merged, content=body, timeout=10)


# ---- the official client over streamable HTTP ---------------------------------------------------------


@pytest.mark.anyio
async def test_tools_work_over_http_with_the_official_client(served: Served, sandbox_http: SandboxServer) -> None:
    before = sandbox_http.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"]
    async with mcp_client(served.url) as client:
        listed = await client.call_tool("list_waterfalls", {})
        assert not listed.is_error, listed.content
        assert "email_getter" in json.dumps(structured(listed))
        run = await client.call_tool("run_bulk_waterfall", {**BULK, "wait_seconds": 20})
        assert not run.is_error, run.content
        result = structured(run)
    assert result["status"] == "completed"
    assert result["rows_total"] == 1
    assert sandbox_http.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == before + 1


@pytest.mark.anyio
async def test_the_client_authorization_header_never_reaches_databar(served: Served, recorder: Recorder) -> None:
    async with mcp_client(served.url) as client:
        account = await client.call_tool("get_account", {})
    assert not account.is_error, account.content
    with recorder.lock:
        seen = list(recorder.seen)
    assert any(path == "/v1/user/me" for _, path, _ in seen)
    for method, path, headers in seen:
        assert "authorization" not in headers, (method, path)
        assert headers.get("x-apikey") == SENTINEL_KEY, (method, path)
        assert not any(TOKEN in value for value in headers.values()), (method, path)


@pytest.mark.anyio
async def test_the_client_without_the_token_is_refused(served: Served) -> None:
    # The SDK reports the 401 as a generic error ("Server returned an error response"); the raw tests below
    # check the status code and the challenge.
    with pytest.raises(Exception):  # noqa: B017, PT011
        async with mcp_client(served.url, token="wrong-token-wrong-token") as client:
            await client.call_tool("get_account", {})


# ---- resumable SSE replies (2025-11-25 sessions) ---------------------------------------------------------


def _open_session(served: Served) -> dict[str, str]:
    """A 2025-11-25 session opened by hand; the headers its later requests carry."""
    init = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": "2025-11-25"}}
    opened = post(served, content=json.dumps(init).encode())
    session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    post(served, headers=session, content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    return session


def _call(tool: str) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    ).encode()


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """The events of an SSE body, each as its fields (a field's value without the one optional space)."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
            continue
        name, _, value = line.partition(":")
        event[name] = value.removeprefix(" ")
    if event:
        yield event


def _resume(served: Served, session: dict[str, str], last_event_id: str) -> list[dict[str, str]]:
    """What a GET with Last-Event-ID replays, up to the first reply (that stream then stays open for more)."""
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {TOKEN}", "last-event-id": last_event_id}
    got: list[dict[str, str]] = []
    with httpx2.stream("GET", served.url, headers={**headers, **session}, timeout=30) as reply:
        assert reply.status_code == 200, reply.read()
        for event in _sse_events(reply.iter_lines()):
            if event.get("data"):
                got.append(event)
                if "result" in json.loads(event["data"]):
                    break
    return got


def test_sse_replies_open_with_a_priming_event_and_a_retry_hint(served: Served) -> None:
    """SEP-1699 (conformance scenario server-sse-polling): an event with an id and empty data, then the reply,
    and a `retry:` that tells a dropped client when to reconnect (issue 22 item 16)."""
    reply = post(served, headers=_open_session(served), content=_call("list_waterfalls"))
    events = list(_sse_events(iter(reply.text.splitlines())))
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert events[0]["id"] and events[0]["data"] == "" and events[0]["retry"] == "1000"
    assert events[1]["id"] and "email_getter" in events[1]["data"]


def test_a_reply_resumes_after_its_last_event_id_in_its_own_session_only(served: Served) -> None:
    """Every client numbers its requests alike: a replay must never hand one session another's reply."""
    mine, theirs = _open_session(served), _open_session(served)
    first = list(_sse_events(iter(post(served, headers=mine, content=_call("get_account")).text.splitlines())))
    post(served, headers=theirs, content=_call("list_waterfalls"))  # the same request id, in another session
    replayed = _resume(served, mine, first[0]["id"])
    foreign = _resume(served, theirs, first[0]["id"])
    assert [json.loads(e["data"]) for e in replayed] == [json.loads(first[1]["data"])]
    assert "balance" in replayed[0]["data"]
    assert foreign == []


# ---- hostile requests, raw ------------------------------------------------------------------------------


def test_a_valid_request_passes(served: Served) -> None:
    reply = post(served)
    assert reply.status_code == 200, reply.text
    assert '"protocolVersion"' in reply.text


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("", None),
        ("Bearer wrong-token-of-some-length", "invalid_token"),
        (f"Bearer {TOKEN}x", "invalid_token"),
        (f"Bearer {TOKEN[:-1]}", "invalid_token"),
        (f"Basic {TOKEN}", "invalid_token"),
        ("Bearer", "invalid_token"),
    ],
    ids=["missing", "wrong", "longer", "prefix", "basic-scheme", "empty"],
)
def test_missing_or_wrong_bearer_is_401(served: Served, authorization: str, error: str | None) -> None:
    reply = post(served, headers={"authorization": authorization})
    assert reply.status_code == 401
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    assert TOKEN not in reply.text


def test_bearer_scheme_is_case_insensitive(served: Served) -> None:
    assert post(served, headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


def test_every_path_but_healthz_needs_the_token(served: Served) -> None:
    assert httpx2.get(served.base + "/anything", timeout=5).status_code == 401
    assert httpx2.get(served.url, timeout=5).status_code == 401


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "[::2]:80", "a:b:c"])
def test_wrong_host_is_421(served: Served, host: str) -> None:
    reply = post(served, headers={"host": host})
    assert reply.status_code == 421
    assert reply.json()["error"] == "misdirected_request"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_loopback_hosts_are_allowed(served: Served, host: str) -> None:
    assert post(served, headers={"host": host.format(port=served.port)}).status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://localhost:1", "https://127.0.0.1.evil.example:{port}", "null"]
)
def test_foreign_origin_is_403(served: Served, origin: str) -> None:
    reply = post(served, headers={"origin": origin.format(port=served.port)})
    assert reply.status_code == 403
    assert reply.json()["error"] == "forbidden_origin"


def test_same_origin_is_allowed(served: Served) -> None:
    assert post(served, headers={"origin": f"http://127.0.0.1:{served.port}"}).status_code == 200


def test_host_is_checked_before_the_token(served: Served) -> None:
    assert post(served, headers={"host": "evil.example", "authorization": ""}).status_code == 421


def test_oversize_body_with_content_length_is_413(served: Served) -> None:
    reply = post(served, content=b"x" * (MAX_BODY + 1))
    assert reply.status_code == 413


def test_oversize_chunked_body_is_413(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"y" * 4096

    reply = post(served, content=chunks())
    assert reply.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413


def test_body_at_the_cap_is_not_refused_for_size(served: Served) -> None:
    raw = json.dumps(INITIALIZE).encode()
    padded = raw[:-1] + b" " * (MAX_BODY - len(raw)) + b"}"
    assert len(padded) == MAX_BODY
    assert post(served, content=padded).status_code == 200


@pytest.mark.parametrize("version", [None, "2026-07-28"])
def test_json_nested_past_the_stack_is_400(served: Served, version: str | None) -> None:
    """Issue 22 (6): an initialize nested deeper than Python's stack was a RecursionError in the middleware
    (the session accounting parses it) and a 500; as deep as the body cap allows here (200,000 deep with
    OAuth: test_oauth), it is the SDK's 400 parse error."""
    prefix, suffix = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":', b"}"
    depth = (MAX_BODY - len(prefix) - len(suffix)) // 2
    body = prefix + b"[" * depth + b"]" * depth + suffix
    reply = post(served, content=body, headers={"mcp-protocol-version": version or ""})
    assert reply.status_code == 400, reply.text[:500]
    assert post(served).status_code == 200  # and the server serves on


def test_healthz_needs_no_auth_and_reveals_nothing(served: Served) -> None:
    reply = httpx2.get(served.base + "/healthz", headers={"host": "anything.example"}, timeout=5)
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert set(body) == {"status", "server", "version", "transport", "uptime_s"}
    assert TOKEN not in reply.text and SENTINEL_KEY not in reply.text
    assert httpx2.post(served.base + "/healthz", timeout=5).status_code == 405


def test_server_logs_mask_secrets_and_show_upstream_requests(served: Served) -> None:
    assert post(served, headers={"authorization": f"Bearer {TOKEN}-but-longer"}).status_code == 401
    httpx2.get(served.base + "/healthz", timeout=5)
    log = served.stderr.read_text(errors="replace")
    assert TOKEN not in log and SENTINEL_KEY not in log
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and all(re.match(r"ts=\S+ level=\w+ logger=\S+ msg=", line) for line in lines), lines[:5]
    assert "rejected with 401" in log


# ---- refusing unsafe configurations -------------------------------------------------------------------


def test_non_loopback_bind_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    proc = subprocess.run(  # noqa: S603 (our own entry point)
        [sys.executable, "-m", "databar_mcp", "--transport", "http", "--host", WILDCARD, "--port", str(free_port())],
        env=clean_env(DATABAR_API_KEY="k", DATABAR_MCP_STATE_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "DATABAR_MCP_HTTP_TOKEN" in proc.stderr and "refusing" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("host", [WILDCARD, "::", "10.1.2.3", "my-host.example", ""])
def test_options_refuse_non_loopback_without_token(host: str) -> None:
    with pytest.raises(HttpConfigError, match="DATABAR_MCP_HTTP_TOKEN"):
        options_from_env(host, 8000, {})


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"DATABAR_MCP_HTTP_TOKEN": "short"}, "too short"),
        ({"DATABAR_MCP_HTTP_TOKEN": "has a space in the middle"}, "printable ASCII"),
        ({"DATABAR_MCP_HTTP_TOKEN_FILE": "/nonexistent/token"}, "cannot read"),
        ({"DATABAR_MCP_HTTP_MAX_BODY": "lots"}, "number of bytes"),
        ({"DATABAR_MCP_HTTP_MAX_BODY": "10"}, "at least"),
    ],
)
def test_options_reject_bad_settings(env: dict[str, str], match: str) -> None:
    with pytest.raises(HttpConfigError, match=match) as caught:
        options_from_env("127.0.0.1", 8000, env)
    assert "has a space" not in str(caught.value)  # the message never holds the token


def test_options_defaults_and_token_file(tmp_path: Path) -> None:
    plain = options_from_env("127.0.0.1", 8000, {})
    assert plain.token is None and plain.max_body == DEFAULT_MAX_BODY == 4 * 1024 * 1024
    assert {"127.0.0.1", "localhost", "::1"} <= plain.allowed_hosts
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    public = options_from_env(WILDCARD, 8000, {"DATABAR_MCP_HTTP_TOKEN_FILE": str(token_file)})
    assert public.token is not None and public.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(public)
    assert socket.gethostname().lower() in public.allowed_hosts
    extra = options_from_env(
        "127.0.0.1",
        8000,
        {"DATABAR_MCP_HTTP_ALLOWED_HOSTS": "MCP.Example.com, *", "DATABAR_MCP_HTTP_ALLOWED_ORIGINS": "https://a.b/"},
    )
    assert "mcp.example.com" in extra.allowed_hosts and extra.any_host
    assert extra.allowed_origins == {"https://a.b"} and not extra.any_origin


# ---- the middleware in process: what reaches the MCP app ----------------------------------------------


class Echo:
    """Stands in for the SDK app: answers with the headers and body it was given."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reply = json.dumps({"headers": [[k.decode(), v.decode()] for k, v in scope["headers"]], "body": body.decode()})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": reply.encode()})


def _middleware_client(**options: Any) -> httpx2.AsyncClient:
    app = SecurityMiddleware(Echo(), HttpOptions(**options))
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


@pytest.mark.anyio
async def test_authorization_is_stripped_and_the_body_replayed() -> None:
    from pydantic import SecretStr

    async with _middleware_client(token=SecretStr(TOKEN)) as client:
        reply = await client.post("/mcp", headers={"authorization": f"Bearer {TOKEN}"}, content=b'{"a": 1}')
    assert reply.status_code == 200
    echoed = reply.json()
    assert echoed["body"] == '{"a": 1}'
    assert all(name != "authorization" for name, _ in echoed["headers"])
    assert TOKEN not in reply.text


@pytest.mark.anyio
async def test_without_a_token_loopback_requests_pass_but_host_and_origin_are_still_checked() -> None:
    async with _middleware_client() as client:
        assert (await client.post("/mcp", content=b"{}")).status_code == 200
        assert (await client.post("/mcp", headers={"authorization": "Bearer whatever"})).status_code == 200
        assert (await client.post("/mcp", headers={"host": "evil.example"})).status_code == 421
        assert (await client.post("/mcp", headers={"origin": "http://evil.example"})).status_code == 403


@pytest.mark.anyio
async def test_allowed_hosts_and_origins_can_be_extended() -> None:
    async with _middleware_client(
        allowed_hosts=frozenset({"mcp.example.com", "other.example:9000"}),
        allowed_origins=frozenset({"https://app.example.com"}),
    ) as client:
        assert (await client.post("/mcp", headers={"host": "mcp.example.com."})).status_code == 200
        assert (await client.post("/mcp", headers={"host": "other.example:9000"})).status_code == 200
        assert (await client.post("/mcp", headers={"host": "other.example:9001"})).status_code == 421
        ok = {"host": "mcp.example.com", "origin": "https://app.example.com"}
        assert (await client.post("/mcp", headers=ok)).status_code == 200
        same = {"host": "mcp.example.com", "origin": "https://mcp.example.com"}
        assert (await client.post("/mcp", headers=same)).status_code == 200
        foreign = {"host": "mcp.example.com", "origin": "https://app.example.com.evil"}
        assert (await client.post("/mcp", headers=foreign)).status_code == 403


@pytest.mark.anyio
async def test_bad_content_length_is_400() -> None:
    async with _middleware_client() as client:
        reply = await client.post("/mcp", headers={"content-length": "nope"}, content=b"{}")
    assert reply.status_code == 400


# ---- healthcheck command (Docker HEALTHCHECK) ---------------------------------------------------------


def test_healthcheck_reads_the_servers_own_command_line(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    args = build_parser().parse_args(["healthcheck"])

    def write(*argv: str) -> None:
        cmdline.write_bytes(b"".join(part.encode() + b"\0" for part in argv))

    write("/usr/local/bin/python", "/usr/local/bin/databar-mcp")
    assert healthcheck_url(args, cmdline) is None  # stdio: nothing to check
    write("python", "/usr/local/bin/databar-mcp", "--transport", "http", "--host", WILDCARD, "--port", "9000")
    assert healthcheck_url(args, cmdline) == "http://127.0.0.1:9000/healthz"
    write("python", "-m", "databar_mcp", "--transport", "http", "--host", "::1")
    assert healthcheck_url(args, cmdline) == "http://[::1]:8000/healthz"
    write("/sbin/init")  # not our server: this command's own flags decide
    assert healthcheck_url(args, cmdline) is None
    assert served_args(b"databar-mcp\0--port\0not-a-number\0") is None


def test_healthcheck_command(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    good = build_parser().parse_args(["healthcheck", "--url", served.base + "/healthz"])
    assert healthcheck(good) == 0
    bad = build_parser().parse_args(["healthcheck", "--url", f"http://127.0.0.1:{free_port()}/healthz"])
    assert healthcheck(bad) == 1
    out = capsys.readouterr().out
    assert out.startswith("healthy:") and "unhealthy:" in out


# ---- Dockerfile -----------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out: list[tuple[str, str]] = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_dockerfile_properties() -> None:
    instructions = dockerfile_instructions()
    froms = [args for word, args in instructions if word == "FROM"]
    assert len(froms) == 2, froms  # build a wheel, then a slim runtime
    for image in froms:
        ref = image.split()[0]
        name, _, tag = ref.partition(":")
        tag, _, digest = tag.partition("@")
        assert name == "python" and re.fullmatch(r"3\.11\.\d+-slim-\w+", tag), ref  # pinned patch
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), ref  # and pinned bytes: a tag can be moved
    assert len({image.split()[0] for image in froms}) == 1, froms  # the wheel is built on the runtime's Python
    runtime = stages()[-1]
    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    env = " ".join(args for word, args in runtime if word == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    assert "DATABAR_MCP_STATE_DIR=/data" in env
    assert any(word == "VOLUME" and "/data" in args for word, args in runtime)
    entrypoint = next(args for word, args in runtime if word == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["databar-mcp"]
    health = next(args for word, args in runtime if word == "HEALTHCHECK")
    assert "CMD" in health and "healthcheck" in health
    for word, args in instructions:  # no secret baked into any layer
        if word in ("ENV", "ARG", "LABEL"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args):
                assert not re.search(r"KEY|TOKEN|SECRET|PASSWORD", name, re.IGNORECASE), (word, args)
    assert not any(SENTINEL_KEY in args or TOKEN in args for _, args in instructions)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".venv", ".git", ".env", "*.sqlite3"):
        assert entry in ignored, entry


def test_dockerfile_install_steps_build_a_wheel_that_installs_and_runs(tmp_path: Path) -> None:
    """Run the build stage's RUN line on the files it COPYs, then install the wheel as the runtime stage does."""
    build, runtime = stages()
    context = tmp_path / "context"
    context.mkdir()
    for word, args in build:
        if word == "COPY":
            *sources, _ = args.split()
            for source in sources:
                src = ROOT / source
                if src.is_dir():
                    shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(src, context / source)
    build_runs = [args for word, args in build if word == "RUN"]
    assert len(build_runs) == 1
    wheel_cmd = build_runs[0].split()
    assert wheel_cmd[:3] == ["pip", "wheel", "--no-cache-dir"] and "--no-deps" in wheel_cmd
    out_dir = wheel_cmd[wheel_cmd.index("--wheel-dir") + 1]
    wheel_cmd[wheel_cmd.index("--wheel-dir") + 1] = str(tmp_path / "dist")
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", *wheel_cmd], cwd=context, capture_output=True, text=True, timeout=180, check=False
    )
    if proc.returncode != 0 and re.search(
        r"(?i)no matching distribution|connection|network", proc.stdout + proc.stderr
    ):
        pytest.skip("no package index to fetch the build backend from")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("databar_mcp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "databar_mcp/app/http_app.py" in names and "databar_mcp/sandbox/app.py" in names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)

    install = next(args for word, args in runtime if word == "RUN" and "pip install" in args)
    assert f"{out_dir}/*.whl" in install or f"{out_dir}/databar_mcp" in install, install
    # The runtime stage resolves dependencies from PyPI; here they are already installed, so --no-deps into
    # a target directory, ahead of the editable install on the path.
    target = tmp_path / "site"
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = {**clean_env(), "PYTHONPATH": str(target)}
    code = "import databar_mcp, sys; print(databar_mcp.__file__); sys.argv=['databar-mcp','--version']; " + (
        "from databar_mcp.app.cli import main; main()"
    )
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith(str(target))
    assert proc.stdout.splitlines()[1] == f"databar-mcp {__version__}"
    entry_points = zipfile.ZipFile(wheel).read(f"databar_mcp-{__version__}.dist-info/entry_points.txt").decode()
    assert "databar-mcp = databar_mcp.app.cli:main" in entry_points


@pytest.mark.anyio
async def test_enable_toolsets_grows_only_its_own_sessions_list(served: Served) -> None:
    """Regression (issue 23, section 6): one conversation's enable_toolsets grew every session's tool list."""

    @asynccontextmanager
    async def legacy_session() -> AsyncIterator[Client]:  # 2025-11-25: an Mcp-Session-Id per conversation
        async with (
            httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(30)) as http,
            Client(streamable_http_client(served.url, http_client=http), mode="legacy") as client,
        ):
            yield client

    async with legacy_session() as alice, legacy_session() as bob:
        before = {t.name for t in (await bob.list_tools()).tools}
        enabled = await alice.call_tool("enable_toolsets", {"toolsets": ["tables"]})
        assert not enabled.is_error and "create_table" in str(enabled.content)
        alices = {t.name for t in (await alice.list_tools()).tools}
        bobs = {t.name for t in (await bob.list_tools()).tools}
    assert "create_table" in alices and "create_table" not in bobs
    assert bobs == before and "list_table_rows" in bobs  # a core tool is every session's


@pytest.mark.anyio
async def test_a_2026_client_closing_its_run_call_cancels_the_databar_run(
    served: Served, sandbox_http: SandboxServer
) -> None:
    """Regression (issue 23, section 5): over 2026-07-28 HTTP a client cancels by closing the reply stream;
    the wait ended but the run went on billing. Now the Databar run is cancelled too."""
    cancel = "POST /v1/tasks/{task_id}/cancel"
    before_cancels, before_tasks = sandbox_http.state.counts.get(cancel, 0), set(sandbox_http.state.tasks)
    config = sandbox_http.state.config
    base, row = config.task_base_seconds, config.row_seconds
    config.task_base_seconds, config.row_seconds = 0.0, 2.0  # far longer than the test
    rows = [{"first_name": f"F{i}", "last_name": "Doe", "company": "example.com"} for i in range(10)]
    try:
        async with mcp_client(served.url) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "run_bulk_waterfall", {**BULK, "params": rows, "wait_seconds": 25})
                while not set(sandbox_http.state.tasks) - before_tasks:  # sent; the call is waiting now
                    await anyio.sleep(0.02)
                tg.cancel_scope.cancel()  # the user presses Stop
            (task_id,) = set(sandbox_http.state.tasks) - before_tasks
            task = sandbox_http.state.tasks[task_id]
            # until the server cancels it, or the run ends by itself (then it was not cancelled: the test fails)
            while (
                sandbox_http.state.counts.get(cancel, 0) == before_cancels and task.status(time.time()) == "processing"
            ):
                await anyio.sleep(0.05)
    finally:
        config.task_base_seconds, config.row_seconds = base, row
    assert task.cancelled_at is not None  # Databar refunds the unfinished rows
