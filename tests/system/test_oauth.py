"""OAuth 2.1 resource server end to end: a JWKS on loopback, tokens signed here, our server as its own process.

| case                      | answer                                                       |
| ------------------------- | ------------------------------------------------------------ |
| no token                  | 401, WWW-Authenticate: Bearer resource_metadata="..."         |
| valid, all scopes         | tools work; the JWT never reaches Databar                    |
| expired / not yet valid   | 401 invalid_token                                            |
| wrong audience / issuer   | 401 invalid_token                                            |
| key not in the JWKS, none | 401 invalid_token                                            |
| missing scope             | 403 insufficient_scope, scope="<the one needed>"             |
| metadata document         | RFC 9728, validated with the SDK's ProtectedResourceMetadata |
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import ProtectedResourceMetadata
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from databar_mcp.app.auth import SCOPES
from databar_mcp.app.http_app import HttpConfigError, HttpOptions, SecurityMiddleware, options_from_env
from databar_mcp.sandbox import SandboxServer
from databar_mcp.tools.kit.fitting import CUT_META_KEY
from tests.conftest import SENTINEL_KEY, error_body, structured, whole
from tests.postgres_server import PostgresServer
from tests.served import clean_env, free_port, http_process
from tests.system.test_http import INITIALIZE, MCP_HEADERS, Recorder, recorder, sandbox_http
from tests.tasks_client import raw

pytestmark = pytest.mark.anyio

__all__ = ["recorder", "sandbox_http"]  # fixtures shared with test_http

KID = "test-key-1"
BOB_KEY = "sk-BOB-own-key-5e4d3c2b1a"
# alice: the server's key, with caps; bob: a key of his own; dave: no caps; anyone else: no account here
USERS = {
    "users": {
        "alice": {"daily_credit_cap": 4.5, "max_credits_per_call": 4},
        "bob": {"api_key": BOB_KEY},
        "dave": {},
    }
}
ALL_SCOPES = " ".join(SCOPES)


@dataclass
class Issuer:
    url: str
    key: rsa.RSAPrivateKey
    stranger: rsa.RSAPrivateKey  # a key the JWKS does not hold
    jwks_hits: list[str]
    audience: str = ""  # our resource URL, known once the server's port is

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": "alice",
            "aud": self.audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "scope": ALL_SCOPES,
            "client_id": "agent-app",
        }
        key = overrides.pop("key", self.key)
        claims.update(overrides)
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": KID}
        )


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Issuer(
            url=f"http://127.0.0.1:{server.server_address[1]}",
            key=key,
            stranger=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            jwks_hits=hits,
        )
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Served:
    base: str
    stderr: Path
    state: Path

    @property
    def url(self) -> str:
        return self.base + "/mcp"


@pytest.fixture(scope="module")
def served(recorder: Recorder, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("oauth")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    issuer.audience = base + "/mcp"
    stderr_path = tmp / "server.stderr"
    users_file = tmp / "users.json"
    users_file.write_text(json.dumps(USERS))
    env = clean_env(
        DATABAR_MCP_USERS_FILE=str(users_file),
        DATABAR_API_KEY=SENTINEL_KEY,
        DATABAR_BASE_URL=recorder.proxy_url,
        DATABAR_MCP_STATE_DIR=str(tmp / "state"),
        DATABAR_MCP_TRACKER_INTERVAL="3600",
        DATABAR_MCP_OAUTH_ISSUER=issuer.url,
        DATABAR_MCP_OAUTH_RESOURCE=base + "/mcp",
        DATABAR_MCP_LOG_LEVEL="INFO",
    )
    with http_process(env, stderr_path, port=port):
        yield Served(base, stderr_path, tmp / "state")


@asynccontextmanager
async def session(
    served: Served, token: str, mode: str | None = None, elicitation_callback: Any = None
) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        transport = streamable_http_client(served.url, http_client=http)
        options: dict[str, Any] = {} if mode is None else {"mode": mode}
        async with Client(transport, elicitation_callback=elicitation_callback, **options) as client:
            yield client


def post(served: Served, body: dict[str, Any], token: str | None) -> httpx2.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx2.post(served.url, json=body, headers=headers, timeout=10)


def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


def test_the_protected_resource_metadata_names_the_issuer_and_scopes(served: Served, issuer: Issuer) -> None:
    reply = httpx2.get(served.base + "/.well-known/oauth-protected-resource/mcp", timeout=5)
    assert reply.status_code == 200
    document = ProtectedResourceMetadata.model_validate(reply.json())
    assert str(document.resource) == served.url
    assert [str(a).rstrip("/") for a in document.authorization_servers] == [issuer.url]
    assert reply.json()["authorization_servers"] == [issuer.url]  # exactly as enforced: no slash added (22.4)
    assert reply.json()["resource"] == served.url
    assert set(document.scopes_supported or []) == set(SCOPES)
    assert document.bearer_methods_supported == ["header"]


def test_no_token_is_401_pointing_to_the_metadata(served: Served) -> None:
    reply = post(served, INITIALIZE, None)
    assert reply.status_code == 401
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{served.base}/.well-known/oauth-protected-resource/mcp"' in challenge


@pytest.mark.parametrize(
    "case",
    ["expired", "not_yet_valid", "wrong_audience", "wrong_issuer", "unknown_key", "alg_none", "no_subject"],
)
def test_a_bad_token_is_401_invalid_token(served: Served, issuer: Issuer, case: str) -> None:
    now = int(time.time())
    token = {
        "expired": lambda: issuer.token(exp=now - 3600, nbf=now - 7200, iat=now - 7200),
        "not_yet_valid": lambda: issuer.token(nbf=now + 3600),
        "wrong_audience": lambda: issuer.token(aud="https://other.example.com/mcp"),
        "wrong_issuer": lambda: issuer.token(iss="https://evil.example.com"),
        "unknown_key": lambda: issuer.token(key=issuer.stranger),
        "alg_none": lambda: jwt.encode(
            {"iss": issuer.url, "sub": "alice", "aud": served.url, "exp": now + 600, "scope": ALL_SCOPES},
            "",
            algorithm="none",
            headers={"kid": KID},
        ),
        "no_subject": lambda: issuer.token(sub=None),
    }[case]()
    reply = post(served, INITIALIZE, token)
    assert reply.status_code == 401, reply.text
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]
    assert "resource_metadata=" in reply.headers["www-authenticate"]
    assert token not in reply.text


@pytest.mark.parametrize(
    ("tool", "arguments", "needed"),
    [
        ("run_bulk_waterfall", {"waterfall": "email_getter", "params": [], "enrichments": [833]}, "enrichments:run"),
        ("get_account", {}, "balance:read"),
        ("insert_rows", {"table": "t", "rows": []}, "tables:write"),
        ("run_table_enrichment", {"table": "t", "enrichment": "e"}, "enrichments:run"),
        ("create_table", {"name": "t"}, "tables:write"),
    ],
)
def test_a_tool_beyond_the_tokens_scopes_is_403_insufficient_scope(
    served: Served, issuer: Issuer, recorder: Recorder, tool: str, arguments: dict[str, Any], needed: str
) -> None:
    before = len(recorder.seen)
    reply = post(served, call(tool, arguments), issuer.token(scope="tables:read"))
    assert reply.status_code == 403
    challenge = reply.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and f'scope="{needed}"' in challenge
    assert "resource_metadata=" in challenge
    assert len(recorder.seen) == before  # refused before anything reached Databar


async def test_a_valid_token_works_and_never_reaches_databar(
    served: Served, issuer: Issuer, recorder: Recorder, sandbox_http: SandboxServer
) -> None:
    token = issuer.token()
    async with session(served, token) as client:
        tools = await client.list_tools()
        account = structured(await client.call_tool("get_account", {}))
        waterfalls = await client.call_tool("list_waterfalls", {})
    assert {t.name for t in tools.tools} >= {"run_bulk_waterfall", "get_account"}
    assert "balance" in json.dumps(account) and not waterfalls.is_error
    assert recorder.seen, "the calls reached the sandbox"
    for _, _, headers in recorder.seen:
        assert token not in json.dumps(headers)
        assert headers.get("x-apikey") == SENTINEL_KEY and "authorization" not in headers
    assert issuer.jwks_hits.count("/.well-known/jwks.json") >= 1


async def test_a_read_only_token_reads_but_the_server_log_never_holds_a_token(served: Served, issuer: Issuer) -> None:
    token = issuer.token(scope="tables:read", sub="dave")
    async with session(served, token) as client:
        result = await client.call_tool("list_waterfalls", {})
    assert not result.is_error
    post(served, INITIALIZE, issuer.token(exp=int(time.time()) - 3600))
    log = served.stderr.read_text(errors="replace")
    assert token not in log and "bearer token refused" in log


def test_oauth_and_a_static_token_together_are_refused() -> None:
    env = {
        "DATABAR_MCP_OAUTH_ISSUER": "https://issuer.example.com",
        "DATABAR_MCP_OAUTH_RESOURCE": "https://mcp.example.com/mcp",
        "DATABAR_MCP_HTTP_TOKEN": "x" * 32,
    }
    with pytest.raises(HttpConfigError, match="choose one"):
        options_from_env("127.0.0.1", 8000, env)
    with pytest.raises(HttpConfigError, match="both"):
        options_from_env("127.0.0.1", 8000, {"DATABAR_MCP_OAUTH_ISSUER": "https://issuer.example.com"})
    wide = options_from_env("0.0.0.0", 8000, {k: v for k, v in env.items() if "TOKEN" not in k})  # noqa: S104
    assert wide.oauth is not None and wide.oauth.options.jwks_url == "https://issuer.example.com/.well-known/jwks.json"


# ---- per-user keys, caps, isolation and the audit log -----------------------------------------------------


def leads(n: int, tag: str) -> list[dict[str, str]]:
    return [{"first_name": f"{tag}{i}", "last_name": "Doe", "company": "example.com"} for i in range(n)]


def run_args(n: int, tag: str) -> dict[str, Any]:
    return {"waterfall": "email_getter", "params": leads(n, tag), "enrichments": [833], "wait_seconds": 0}


async def test_a_users_caps_apply_and_their_tasks_are_theirs_alone(
    served: Served, issuer: Issuer, sandbox_http: SandboxServer
) -> None:
    sandbox_http.state.config.task_base_seconds = 3.0  # alice's first run is still running: its estimate counts
    try:
        async with session(served, issuer.token(sub="alice")) as alice:
            first = structured(await alice.call_tool("run_bulk_waterfall", run_args(4, "a")))
            over_day = await alice.call_tool("run_bulk_waterfall", run_args(1, "b"))
            over_call = await alice.call_tool("run_bulk_waterfall", run_args(5, "c"))
            own = structured(await alice.call_tool("list_recent_tasks", {}))
    finally:
        sandbox_http.state.config.task_base_seconds = 0.05
    task_id = first["task_id"]
    assert first["estimated_credits"] == 4.0 and first["done"] is False
    assert error_body(over_day)["code"] == "spend_limit"
    assert "daily cap of 4.5" in error_body(over_day)["message"]
    assert "above your limit of 4 per call" in error_body(over_call)["message"]
    assert [t["task_id"] for t in own["tasks"]] == [task_id]

    async with session(served, issuer.token(sub="dave")) as dave:
        theirs = error_body(await dave.call_tool("get_task", {"task_id": task_id}))
        listed = structured(await dave.call_tool("list_recent_tasks", {}))
        export = error_body(await dave.call_tool("export_task_result", {"task_id": task_id}))
        same_run = structured(await dave.call_tool("run_bulk_waterfall", run_args(4, "a")))
    assert theirs["code"] == "not_found"
    assert task_id not in json.dumps(listed)
    assert export["code"] in ("not_found", "task_not_finished") and task_id not in json.dumps(export.get("path", ""))
    assert same_run["task_id"] != task_id and same_run.get("reused", False) is False  # never handed alice's run

    lines = [json.loads(line) for line in (served.state / "audit.jsonl").read_text().splitlines()]
    runs = [line for line in lines if line["event"] == "run"]
    assert {
        k: next(r for r in runs if r["task_id"] == task_id)[k] for k in ("who", "tool", "rows", "estimated_credits")
    } == {"who": "alice", "tool": "run_bulk_waterfall", "rows": 4, "estimated_credits": 4.0}
    assert any(r["who"] == "dave" and r["task_id"] == same_run["task_id"] for r in runs)
    raw = (served.state / "audit.jsonl").read_text()
    assert SENTINEL_KEY not in raw and BOB_KEY not in raw and "eyJ" not in raw


async def test_the_tokens_subject_picks_the_databar_key_and_an_unknown_one_gets_none(
    served: Served, issuer: Issuer, recorder: Recorder
) -> None:
    before = len(recorder.seen)
    async with session(served, issuer.token(sub="bob")) as bob:
        bobs = await bob.call_tool("get_account", {})
    async with session(served, issuer.token(sub="mallory")) as mallory:
        nobody = await mallory.call_tool("get_account", {})
    keys = [headers.get("x-apikey") for _, _, headers in recorder.seen[before:]]
    assert keys == [BOB_KEY]  # bob's own key went upstream (the sandbox refuses it); mallory's call sent nothing
    assert error_body(bobs)["code"] == "auth_failed" and BOB_KEY not in whole(bobs)
    assert error_body(nobody)["code"] == "auth_failed"
    assert "no Databar account is configured" in whole(nobody), whole(nobody)


async def test_an_mcp_task_is_bound_to_its_user_not_to_the_http_session(served: Served, issuer: Issuer) -> None:
    """2025-11-25 task handles were scoped to the HTTP session, so a user lost them with the session (or a
    restart, or another replica); bound to the OAuth user, they answer from any session and to nobody else."""
    task = {"ttl": 60_000}
    async with session(served, issuer.token(sub="dave"), mode="legacy") as first:
        created = await raw(
            first, "tools/call", {"name": "run_bulk_waterfall", "arguments": run_args(2, "task"), "task": task}
        )
    handle = created["task"]["taskId"]
    async with session(served, issuer.token(sub="dave"), mode="legacy") as again:
        seen = await raw(again, "tasks/get", {"taskId": handle})
        listed = await raw(again, "tasks/list", {})
    async with session(served, issuer.token(sub="alice"), mode="legacy") as other:
        with pytest.raises(MCPError) as foreign:
            await raw(other, "tasks/get", {"taskId": handle})
        theirs = await raw(other, "tasks/list", {})
    assert seen["taskId"] == handle and seen["status"] in ("working", "completed"), seen
    assert handle in [t["taskId"] for t in listed["tasks"]]
    assert foreign.value.error.code == -32602 and handle not in json.dumps(theirs)


# ---- issue 22, security: every act is the caller's own and within the token's scopes -----------------------


def cancels(recorder: Recorder) -> list[str]:
    with recorder.lock:
        return [path for method, path, _ in recorder.seen if method == "POST" and path.endswith("/cancel")]


def audit_lines(served: Served) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (served.state / "audit.jsonl").read_text().splitlines()]


async def test_another_user_cannot_cancel_a_task_and_who_cancels_is_audited(
    served: Served, issuer: Issuer, recorder: Recorder, sandbox_http: SandboxServer
) -> None:
    """Issue 22 (1): alice and dave share the server's Databar key; alice cancelled dave's running task by id
    and got its rows. Now it is not found, nothing is sent upstream, and dave's own cancel names him."""
    sandbox_http.state.config.task_base_seconds = 60.0  # dave's run is still running when alice tries
    try:
        async with session(served, issuer.token(sub="dave")) as dave:
            task_id = structured(await dave.call_tool("run_bulk_waterfall", run_args(2, "cancel")))["task_id"]
            before = len(cancels(recorder))
            async with session(served, issuer.token(sub="alice")) as alice:
                refused = await alice.call_tool("cancel_task", {"task_id": task_id})
            assert error_body(refused)["code"] == "not_found", whole(refused)
            assert "cancel0" not in whole(refused)  # none of dave's rows
            assert len(cancels(recorder)) == before  # nothing reached Databar
            still = structured(await dave.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0}))
            assert still["status"] == "processing" and still["done"] is False
            cancelled = structured(await dave.call_tool("cancel_task", {"task_id": task_id}))
    finally:
        sandbox_http.state.config.task_base_seconds = 0.05
    assert cancelled["status"] == "cancelled"
    assert cancels(recorder)[before:] == [f"/v1/tasks/{task_id}/cancel"]
    stops = [line for line in audit_lines(served) if line["event"] == "cancel"]
    assert [(s["who"], s["task_id"], s["status"]) for s in stops if s["task_id"] == task_id] == [
        ("dave", task_id, "cancelled")
    ]


def mcp_session(served: Served, token: str) -> dict[str, str]:
    """A raw 2025-11-25 session for `token`: the headers that continue it."""
    init = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": "2025-11-25"}}
    opened = post(served, init, token)
    assert opened.status_code == 200, opened.text
    headers = {
        **MCP_HEADERS,
        "authorization": f"Bearer {token}",
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    done = httpx2.post(served.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    assert done.status_code == 202, done.text
    return headers


async def test_a_read_only_token_cannot_cancel_its_users_mcp_task(
    served: Served, issuer: Issuer, recorder: Recorder, sandbox_http: SandboxServer
) -> None:
    """Issue 22 (2): tasks/cancel skipped the scope check, so a tables:read token stopped its user's paid run
    (the cancel_task tool needs enrichments:run). Refused now with 403, and the run goes on."""
    sandbox_http.state.config.task_base_seconds = 60.0
    try:
        async with session(served, issuer.token(sub="dave"), mode="legacy") as dave:
            created = await raw(
                dave, "tools/call", {"name": "run_bulk_waterfall", "arguments": run_args(2, "mcp"), "task": {}}
            )
            handle = created["task"]["taskId"]
            before = len(cancels(recorder))
            headers = mcp_session(served, issuer.token(sub="dave", scope="tables:read"))
            cancel = {"jsonrpc": "2.0", "id": 5, "method": "tasks/cancel", "params": {"taskId": handle}}
            refused = httpx2.post(served.url, json=cancel, headers={**headers, "mcp-name": handle}, timeout=10)
            assert refused.status_code == 403, refused.text
            assert 'scope="enrichments:run"' in refused.headers["www-authenticate"]
            assert len(cancels(recorder)) == before
            seen = await raw(dave, "tasks/get", {"taskId": handle})
            assert seen["status"] == "working", seen
            await raw(dave, "tasks/cancel", {"taskId": handle})  # the full token may
    finally:
        sandbox_http.state.config.task_base_seconds = 0.05
    assert len(cancels(recorder)) == before + 1


@pytest.mark.parametrize(
    ("method", "params", "granted", "needed"),
    [
        ("tasks/cancel", {"taskId": "t"}, "tables:read", "enrichments:run"),
        ("tasks/update", {"taskId": "t", "inputResponses": {}}, "tables:read", "enrichments:run"),
        ("tasks/get", {"taskId": "t"}, "balance:read", "tables:read"),
        ("tasks/result", {"taskId": "t"}, "balance:read", "tables:read"),
        ("tasks/list", {}, "balance:read", "tables:read"),
        ("completion/complete", {"ref": {"type": "ref/prompt", "name": "p"}}, "balance:read", "tables:read"),
        ("subscriptions/listen", {"notifications": {"taskIds": ["t"]}}, "balance:read", "tables:read"),
    ],
)
@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
def test_every_method_that_acts_is_scope_checked(
    served: Served, issuer: Issuer, method: str, params: dict[str, Any], granted: str, needed: str, version: str
) -> None:
    """Issue 22 (2): only tools/call and resources/read were checked."""
    body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
    headers = {**MCP_HEADERS, "authorization": f"Bearer {issuer.token(scope=granted)}", "mcp-protocol-version": version}
    reply = httpx2.post(served.url, json=body, headers=headers, timeout=10)
    assert reply.status_code == 403, reply.text
    assert f'scope="{needed}"' in reply.headers["www-authenticate"]


@pytest.mark.parametrize("claims", [{"sub": "", "azp": "alice"}, {"sub": " ", "client_id": "alice"}])
async def test_a_token_without_a_subject_is_not_its_client(
    served: Served, issuer: Issuer, claims: dict[str, str]
) -> None:
    """Issue 22 (3): `sub: ""` fell back to the client id, so `azp: "alice"` read alice's tasks."""
    reply = post(served, INITIALIZE, issuer.token(**claims))
    assert reply.status_code == 401, reply.text
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]


def test_a_subjectless_token_acts_for_nobody() -> None:
    """Issue 22 (3), behind the verifier: a token in context without a subject is no user, never its client."""
    from mcp.server.auth.middleware.auth_context import auth_context_var
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    from databar_mcp.api.errors import AuthenticationError
    from databar_mcp.core.users import current_owner

    token = AccessToken(token="t", client_id="alice", scopes=[], subject=None)
    reset = auth_context_var.set(AuthenticatedUser(token))
    try:
        with pytest.raises(AuthenticationError, match="no subject"):
            current_owner()
    finally:
        auth_context_var.reset(reset)


async def test_a_cut_result_is_its_users_alone(served: Served, issuer: Issuer) -> None:
    """Issue 22 (5): a result kept whole as databar://results/{id} was readable by anyone holding the id."""
    columns = [f"{i}{'c' * 250}" for i in range(500)]
    async with session(served, issuer.token(sub="dave")) as dave:
        result = await dave.call_tool("create_table", {"name": "wide", "columns": columns})
        cut = (result.meta or {}).get(CUT_META_KEY)
        assert cut is not None and cut["result_id"], whole(result)
        uri = f"databar://results/{cut['result_id']}"
        own = await dave.read_resource(uri)
    assert "c" * 250 in json.dumps(own.model_dump(mode="json"))
    async with session(served, issuer.token(sub="alice")) as alice:
        with pytest.raises(MCPError, match="No such result is kept"):
            await alice.read_resource(uri)


DEEP = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize(
    "body",
    [DEEP, b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":' + DEEP + b"}"],
    ids=["array", "initialize"],
)
@pytest.mark.parametrize("version", [None, "2026-07-28"])
def test_json_nested_200000_deep_is_400_with_oauth(
    served: Served, issuer: Issuer, body: bytes, version: str | None
) -> None:
    """Issue 22 (6): the scope check parsed the body and caught only ValueError: RecursionError was a 500."""
    headers = {**MCP_HEADERS, "authorization": f"Bearer {issuer.token()}"}
    if version is not None:
        headers["mcp-protocol-version"] = version
    reply = httpx2.post(served.url, content=body, headers=headers, timeout=30)
    assert reply.status_code == 400, reply.text[:500]


# ---- issue 22 (4): the metadata publishes exactly what is enforced --------------------------------------


@pytest.mark.parametrize(
    ("configured", "canonical"),
    [
        ("https://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp"),
        ("HTTP://mcp.example.com:80", "http://mcp.example.com"),
        ("https://mcp.example.com/", "https://mcp.example.com"),
        ("https://mcp.example.com", "https://mcp.example.com"),
        ("https://mcp.example.com:8443/a/mcp", "https://mcp.example.com:8443/a/mcp"),
        ("http://[::1]:8000/mcp", "http://[::1]:8000/mcp"),
    ],
)
def test_the_resource_is_published_and_checked_in_one_canonical_form(configured: str, canonical: str) -> None:
    env = {"DATABAR_MCP_OAUTH_ISSUER": "https://issuer.example.com", "DATABAR_MCP_OAUTH_RESOURCE": configured}
    options = options_from_env("127.0.0.1", 8000, env).oauth
    assert options is not None
    metadata = options.options.metadata()
    assert metadata["resource"] == canonical  # what clients ask tokens for
    assert options.verifier.options.resource == canonical  # the audience the verifier checks
    assert metadata["authorization_servers"] == ["https://issuer.example.com"]  # exactly, no slash added
    assert options.options.metadata_url.startswith(canonical.removesuffix("/mcp").removesuffix("/a"))


def test_a_resource_with_a_fragment_is_refused() -> None:
    env = {"DATABAR_MCP_OAUTH_ISSUER": "https://i.example.com", "DATABAR_MCP_OAUTH_RESOURCE": "https://m.example/mcp#x"}
    with pytest.raises(HttpConfigError, match="fragment"):
        options_from_env("127.0.0.1", 8000, env)


async def test_the_published_resource_is_the_audience_accepted(issuer: Issuer) -> None:
    """Issue 22 (4) at the HTTP edge: configured with an upper-case host and a default port, the server
    publishes the canonical resource and the issuer exactly, and a token for what it published is accepted."""
    from databar_mcp.app.auth import ResourceServer, oauth_from_env
    from tests.system.test_http import Echo

    env = {"DATABAR_MCP_OAUTH_ISSUER": issuer.url, "DATABAR_MCP_OAUTH_RESOURCE": "http://MCP.Example.com:80"}
    oauth_options = oauth_from_env(env)
    assert oauth_options is not None
    app = SecurityMiddleware(Echo(), HttpOptions(any_host=True, oauth=ResourceServer.create(oauth_options)))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://mcp.example.com") as client:
        metadata = (await client.get("/.well-known/oauth-protected-resource")).json()
        published = metadata["resource"]
        accepted = await client.post(
            "/mcp", json=INITIALIZE, headers={"authorization": f"Bearer {issuer.token(aud=published)}"}
        )
    assert metadata["authorization_servers"] == [issuer.url]
    assert published == "http://mcp.example.com"
    assert accepted.status_code == 200, accepted.text


# ---- caps and confirmations across two server processes sharing PostgreSQL (issue 22, 11 and 13) -------------


@contextmanager
def two_replicas(
    recorder: Recorder, issuer: Issuer, postgres: PostgresServer, tmp: Path, **settings: str
) -> Iterator[tuple[Served, Served]]:
    """Two HTTP server processes on one PostgreSQL ledger, with the replicas' shared request-state keys and a
    users file whose default gives every user a daily cap of 5 credits (the README's shape); frank has none."""
    users_file = tmp / "users.json"
    users_file.write_text(json.dumps({"users": {"frank": {}}, "default": {"daily_credit_cap": 5}}))
    env = clean_env(
        DATABAR_MCP_USERS_FILE=str(users_file),
        DATABAR_API_KEY=SENTINEL_KEY,
        DATABAR_BASE_URL=recorder.proxy_url,
        DATABAR_MCP_DATABASE_URL=postgres.new_database(),
        DATABAR_MCP_REQUEST_STATE_KEYS="k" * 32,
        DATABAR_MCP_TRACKER_INTERVAL="3600",
        DATABAR_MCP_OAUTH_ISSUER=issuer.url,
        **settings,
    )
    with contextlib.ExitStack() as stack:
        replicas: list[Served] = []
        for index in range(2):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            state = tmp / f"state{index}"
            replica_env = {**env, "DATABAR_MCP_OAUTH_RESOURCE": base + "/mcp", "DATABAR_MCP_STATE_DIR": str(state)}
            stack.enter_context(http_process(replica_env, tmp / f"server{index}.stderr", port=port))
            replicas.append(Served(base, tmp / f"server{index}.stderr", state))
        yield replicas[0], replicas[1]


def employees(run: int, **extra: object) -> dict[str, Any]:
    """Enrichment 511, priced 0.2 credits × max_results per row; the catalog states no default for it."""
    rows = [{"domain": f"r{run}-c{i}.example", **extra} for i in range(25)]
    return {"enrichment_id": 511, "params": rows, "wait_seconds": 0}


async def test_two_processes_on_postgresql_hold_a_users_daily_cap_for_runs_they_cannot_price(
    recorder: Recorder, issuer: Issuer, sandbox_http: SandboxServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    """Regression (issue 22, 11): a run without an estimate counted 0 against the daily cap, so 20 parallel runs
    across two processes sharing PostgreSQL were all sent (no server-wide limit set, as in the README)."""
    bulk_enrich = "POST /v1/enrichments/{enrichment_id}/bulk-run"
    before = sandbox_http.state.counts[bulk_enrich]
    with two_replicas(recorder, issuer, postgres, tmp_path) as replicas:

        async def parallel(calls: list[dict[str, Any]]) -> list[CallToolResult]:
            results: list[CallToolResult] = []
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(session(r, issuer.token(sub="erin", aud=r.url))) for r in replicas
                ]

                async def send(client: Client, arguments: dict[str, Any]) -> None:
                    results.append(await client.call_tool("run_bulk_enrichment", arguments))

                async with anyio.create_task_group() as group:
                    for index, arguments in enumerate(calls):
                        group.start_soon(send, clients[index % 2], arguments)
            return results

        unpriced = await parallel([employees(run) for run in range(20)])
        priced = await parallel([employees(100 + run, max_results=1) for run in range(20)])  # 5 credits each

    assert all(error_body(r)["code"] == "spend_limit" for r in unpriced)
    assert all("your account has a daily credit cap" in error_body(r)["message"] for r in unpriced)
    assert any("set max_results (a number) in every row" in s for s in error_body(unpriced[0])["next_steps"])
    assert sum(not r.is_error for r in priced) == 1  # exactly what fits the cap of 5
    assert sandbox_http.state.counts[bulk_enrich] - before == 1


async def test_two_processes_on_postgresql_spend_each_confirmation_once(
    recorder: Recorder, issuer: Issuer, sandbox_http: SandboxServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    """Regression (issue 22, 13): a confirmed force round's sealed state ran once per replay, on either process
    sharing the ledger and the request-state keys."""

    async def in_band(context: Any, params: ElicitRequestParams) -> ElicitResult:
        raise AssertionError("on 2026-07-28 the question travels in the tool call's result")

    bulk_run = "POST /v1/waterfalls/{identifier}/bulk-run"
    before = sandbox_http.state.counts[bulk_run]
    args = {**run_args(8, "sealed"), "force": True}  # 8 rows × 1 credit, above the threshold of 6: asked
    with two_replicas(recorder, issuer, postgres, tmp_path, DATABAR_MCP_CONFIRM_ABOVE="6") as replicas:
        async with contextlib.AsyncExitStack() as stack:
            at_one, at_two = [
                await stack.enter_async_context(session(r, issuer.token(sub="frank", aud=r.url), None, in_band))
                for r in replicas
            ]
            asked = await raw(at_one, "tools/call", {"name": "run_bulk_waterfall", "arguments": args})
            (key,) = asked["inputRequests"]
            confirmed = {
                "name": "run_bulk_waterfall",
                "arguments": args,
                "requestState": asked["requestState"],
                "inputResponses": {key: {"action": "accept", "content": {"confirm": True}}},
            }
            ran = await raw(at_one, "tools/call", confirmed)
            replays: list[int] = []
            for replica in (at_two, at_one, at_two):
                with pytest.raises(MCPError) as replayed:
                    await raw(replica, "tools/call", confirmed)
                replays.append(replayed.value.error.code)

    assert ran["isError"] is False and ran["structuredContent"]["estimated_credits"] == 8.0
    assert replays == [-32602] * 3
    assert sandbox_http.state.counts[bulk_run] - before == 1
