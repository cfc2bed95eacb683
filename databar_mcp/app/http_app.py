"""Streamable HTTP: the SDK's `/mcp` app behind our checks, served by uvicorn, safe by default.

Every request except `GET /healthz` passes, in this order:

1. Host: the Host header must name the bound address or an allowed host (wrong Host -> 421). This is the
   DNS-rebinding defence: a web page whose name was re-pointed at 127.0.0.1 still sends its own name.
2. Origin: when present it must be the server's own origin or an allowed origin (foreign Origin -> 403).
3. Bearer token: when `DATABAR_MCP_HTTP_TOKEN` is set, `Authorization: Bearer <token>` is required and
   compared in constant time (missing or wrong -> 401 with `WWW-Authenticate: Bearer`). Binding anything
   but a loopback address without a token is refused at start.
4. Body cap: a declared Content-Length over the cap, or a chunked body growing past it -> 413; a body
   that does not arrive within the body deadline -> 408 (headers have their own deadline, in the protocol).
5. Sessions: a client (address + token) opening more sessions than its share gives up its longest-idle one;
   idle sessions close after minutes, not the SDK's 30 (see http_limits).
6. The Authorization header is removed before the request reaches the MCP app, so nothing downstream (the
   tools, the Databar client) can see or forward it: Databar is always called with the server's own key.

With OAuth (`DATABAR_MCP_OAUTH_ISSUER` + `DATABAR_MCP_OAUTH_RESOURCE`, see auth.py) instead of a static token,
step 3 checks the JWT (401 with `WWW-Authenticate: Bearer resource_metadata=...` when missing or invalid) and,
after the body is read, the scope each request that reads or acts needs (`tools/call` by its tool,
`resources/read`, the tasks methods, with `tasks/cancel` and `tasks/update` as runs: auth.scope_for_request;
403 `insufficient_scope` naming it; a body the check cannot read is refused with 400, never passed on
unchecked). The protected-resource metadata (RFC 9728) is served at its well-known path with no check. The
header then goes on to the SDK's own auth, which binds sessions to the token's principal and gives the
tools the caller's identity; the token is still never sent to Databar.

Replicas behind a load balancer: `DATABAR_MCP_HTTP_STATELESS=1` serves 2025 clients without sessions (any
replica answers any request; the 2026-07-28 protocol is stateless already), `DATABAR_MCP_REQUEST_STATE_KEYS`
(comma-separated secrets of at least 32 characters, the first one sealing) lets every replica open the
`requestState` another sealed (the SDK's RequestStateSecurity), and `GET /readyz` answers 200 only while the
ledger answers and the server is not shutting down (503 otherwise), for the load balancer's health check.
On SIGTERM the server drains: /readyz turns 503, tool calls waiting on a task hand back its id at once,
uvicorn stops accepting and lets in-flight requests finish, open event streams end once every call has
answered, then the lifespan closes the ledger's pool.

We do these checks ourselves instead of the SDK's `TransportSecuritySettings`, which it switches on only for
loopback binds, applies only on `/mcp` after its Content-Type check, and matches Host patterns that need a
port. `GET /healthz` answers `{"status": "ok", "version", "uptime_s"}` with no check: it reveals nothing.

Environment (read here until they move to config.Settings):
`DATABAR_MCP_HTTP_TOKEN` or `DATABAR_MCP_HTTP_TOKEN_FILE` (bearer token, at least 16 characters),
`DATABAR_MCP_HTTP_ALLOWED_HOSTS` (comma-separated host names, `name:port`, or `*` to skip the Host check),
`DATABAR_MCP_HTTP_ALLOWED_ORIGINS` (comma-separated origins such as `https://app.example.com`, or `*`),
`DATABAR_MCP_HTTP_MAX_BODY` (bytes, default 4 MiB), `DATABAR_MCP_HTTP_MAX_SESSIONS`, `..._SESSIONS_PER_CLIENT`,
`DATABAR_MCP_HTTP_SESSION_IDLE`, `DATABAR_MCP_HTTP_HEADER_TIMEOUT`, `DATABAR_MCP_HTTP_BODY_TIMEOUT` (seconds).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final, cast
from urllib.parse import urlsplit

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer, RequestStateSecurity
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from sse_starlette.sse import AppStatus
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from databar_mcp import __version__, config
from databar_mcp.app.auth import (
    InvalidToken,
    OAuthConfigError,
    ResourceServer,
    oauth_from_env,
    scope_for_request,
    scope_for_tool,
)
from databar_mcp.app.http_limits import BoundedH11Protocol, SessionLimiter, client_key, session_of, watching
from databar_mcp.app.sse_resume import SessionEventStore, SessionTagging
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.core.logs import reclaim_library_loggers
from databar_mcp.tools.kit.registry import Toolbox
from databar_mcp.tools.kit.sdk_private import registered_tools

log = logging.getLogger("databar_mcp.http")

MCP_PATH: Final = "/mcp"
HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"
READY_TIMEOUT_S: Final = 2.0
STATELESS_ENV: Final = "DATABAR_MCP_HTTP_STATELESS"
REQUEST_STATE_KEYS_ENV: Final = "DATABAR_MCP_REQUEST_STATE_KEYS"
REQUEST_STATE_KEYS_FILE_ENV: Final = "DATABAR_MCP_REQUEST_STATE_KEYS_FILE"
MIN_STATE_KEY_LEN: Final = 32
DEFAULT_MAX_BODY: Final = 4 * 1024 * 1024
MIN_TOKEN_LEN: Final = 16
GRACEFUL_SHUTDOWN_S: Final = 5  # a call still unanswered by then is cancelled
DRAIN_POLL_S: Final = 0.02

TOKEN_ENV: Final = "DATABAR_MCP_HTTP_TOKEN"  # noqa: S105 (a variable name)
TOKEN_FILE_ENV: Final = "DATABAR_MCP_HTTP_TOKEN_FILE"  # noqa: S105 (a variable name)
ALLOWED_HOSTS_ENV: Final = "DATABAR_MCP_HTTP_ALLOWED_HOSTS"
ALLOWED_ORIGINS_ENV: Final = "DATABAR_MCP_HTTP_ALLOWED_ORIGINS"
MAX_BODY_ENV: Final = "DATABAR_MCP_HTTP_MAX_BODY"
LIMIT_ENVS: Final = {
    "max_sessions": "DATABAR_MCP_HTTP_MAX_SESSIONS",
    "sessions_per_client": "DATABAR_MCP_HTTP_SESSIONS_PER_CLIENT",
    "session_idle_s": "DATABAR_MCP_HTTP_SESSION_IDLE",
    "header_timeout_s": "DATABAR_MCP_HTTP_HEADER_TIMEOUT",
    "body_timeout_s": "DATABAR_MCP_HTTP_BODY_TIMEOUT",
}

LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_BINDS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (names, not a bind)
REALM: Final = 'Bearer realm="databar-mcp"'

# (status, JSON body, extra headers) of a refused request
Rejection = tuple[int, dict[str, str], list[tuple[str, str]]]


class HttpConfigError(ValueError):
    """The HTTP transport cannot start with this configuration (the message never holds a secret)."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _machine_names() -> set[str]:
    """This machine's host name and its addresses: what clients use to reach a wildcard bind."""
    names: set[str] = set()
    try:
        hostname = socket.gethostname()
    except OSError:
        return names
    names.add(hostname.lower())
    try:
        for info in socket.getaddrinfo(hostname, None):
            names.add(str(info[4][0]).lower())
    except OSError:
        pass
    return names


def _split_list(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _normalize_host(value: str) -> str:
    return value.strip().lower().rstrip(".")


def _read_token(environ: Mapping[str, str]) -> SecretStr | None:
    raw = environ.get(TOKEN_ENV)
    source = TOKEN_ENV
    if not raw and (path := environ.get(TOKEN_FILE_ENV)):
        source = f"{TOKEN_FILE_ENV} {path}"
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise HttpConfigError(f"cannot read {source}: {exc.strerror or type(exc).__name__}") from None
    if not raw:
        return None
    token = raw.strip()
    if len(token) < MIN_TOKEN_LEN:
        raise HttpConfigError(f"{source} is too short: use at least {MIN_TOKEN_LEN} random characters")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise HttpConfigError(f"{source} must be printable ASCII without spaces")
    return SecretStr(token)


@dataclass(frozen=True)
class HttpOptions:
    """Everything the HTTP transport needs besides the MCP server."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: SecretStr | None = field(default=None, repr=False)
    max_body: int = DEFAULT_MAX_BODY
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    allowed_origins: frozenset[str] = frozenset()
    any_host: bool = False
    any_origin: bool = False
    max_sessions: int = config.HTTP_MAX_SESSIONS
    sessions_per_client: int = config.HTTP_SESSIONS_PER_CLIENT
    session_idle_s: float = config.HTTP_SESSION_IDLE_S
    header_timeout_s: float = config.HTTP_HEADER_TIMEOUT_S
    body_timeout_s: float = config.HTTP_BODY_TIMEOUT_S
    oauth: ResourceServer | None = field(default=None, repr=False)
    stateless: bool = False
    request_state_keys: tuple[SecretStr, ...] = field(default=(), repr=False)

    def server_kwargs(self) -> dict[str, Any]:
        """What MCPServer takes for these options: OAuth's auth, the replicas' shared request-state keys."""
        kwargs: dict[str, Any] = self.oauth.server_kwargs() if self.oauth is not None else {}
        if self.request_state_keys:
            keys = [k.get_secret_value() for k in self.request_state_keys]
            kwargs["request_state_security"] = RequestStateSecurity(keys=keys, ttl=config.REQUEST_STATE_TTL_S)
        return kwargs

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in WILDCARD_BINDS:
            shown = "127.0.0.1"
        return f"http://{shown}:{self.port}{MCP_PATH}"

    @property
    def where(self) -> str:
        """Where clients reach the server: on a wildcard bind, every interface, not only 127.0.0.1."""
        if self.host not in WILDCARD_BINDS:
            return self.url
        bound = f"[{self.host}]" if ":" in self.host else self.host
        name = socket.gethostname() or "this-host"
        return f"{bound}:{self.port}, all interfaces (e.g. http://{name}:{self.port}{MCP_PATH}; here {self.url})"

    @property
    def health_url(self) -> str:
        return self.url.removesuffix(MCP_PATH) + HEALTH_PATH


def default_allowed_hosts(host: str) -> set[str]:
    bound = _normalize_host(host.strip("[]"))
    if bound in WILDCARD_BINDS:
        return set(LOOPBACK_NAMES) | _machine_names()
    names = {bound}
    if is_loopback(bound):
        names |= LOOPBACK_NAMES
    return names


def options_from_env(host: str, port: int, environ: Mapping[str, str] | None = None) -> HttpOptions:
    """Options for serving on host:port, from the environment; HttpConfigError when unsafe or invalid."""
    env = os.environ if environ is None else environ
    token = _read_token(env)
    try:
        oauth_options = oauth_from_env(env)
    except OAuthConfigError as exc:
        raise HttpConfigError(str(exc)) from None
    if oauth_options is not None and token is not None:
        raise HttpConfigError(f"choose one: OAuth (DATABAR_MCP_OAUTH_*) or a static token ({TOKEN_ENV}), not both")
    oauth = ResourceServer.create(oauth_options) if oauth_options is not None else None
    if token is None and oauth is None and not is_loopback(host):
        raise HttpConfigError(
            f"refusing to serve HTTP on {host or 'all addresses'} without a bearer token: any host on the network "
            f"could use the Databar key. Set {TOKEN_ENV} (or {TOKEN_FILE_ENV}) to a random secret of at least "
            f"{MIN_TOKEN_LEN} characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
            "or bind 127.0.0.1."
        )
    max_body = DEFAULT_MAX_BODY
    if raw := env.get(MAX_BODY_ENV):
        try:
            max_body = int(raw)
        except ValueError:
            raise HttpConfigError(f"{MAX_BODY_ENV} must be a number of bytes, not {raw!r}") from None
        if max_body < 1024:
            raise HttpConfigError(f"{MAX_BODY_ENV} must be at least 1024 bytes")
    if not 0 <= port <= 65535:
        raise HttpConfigError(f"port {port} is out of range")
    limits: dict[str, Any] = {}
    for name, var in LIMIT_ENVS.items():
        if raw := env.get(var):
            try:
                value = float(raw) if name.endswith("_s") else int(raw)
            except ValueError:
                raise HttpConfigError(f"{var} must be a number, not {raw!r}") from None
            if not value > 0:
                raise HttpConfigError(f"{var} must be positive")
            limits[name] = value
    raw_keys = env.get(REQUEST_STATE_KEYS_ENV)
    if not raw_keys and (keys_file := env.get(REQUEST_STATE_KEYS_FILE_ENV)):
        try:
            raw_keys = Path(keys_file).read_text(encoding="utf-8").replace("\n", ",")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise HttpConfigError(f"cannot read {REQUEST_STATE_KEYS_FILE_ENV} {keys_file}: {reason}") from None
    state_keys = tuple(SecretStr(k) for k in _split_list(raw_keys))
    if any(len(k.get_secret_value()) < MIN_STATE_KEY_LEN for k in state_keys):
        raise HttpConfigError(f"each of {REQUEST_STATE_KEYS_ENV} must be at least {MIN_STATE_KEY_LEN} characters")
    extra_hosts = [_normalize_host(h) for h in _split_list(env.get(ALLOWED_HOSTS_ENV))]
    origins = [o.lower().rstrip("/") for o in _split_list(env.get(ALLOWED_ORIGINS_ENV))]
    return HttpOptions(
        host=host,
        port=port,
        token=token,
        max_body=max_body,
        allowed_hosts=frozenset(default_allowed_hosts(host) | {h.strip("[]") for h in extra_hosts if h != "*"}),
        allowed_origins=frozenset(o for o in origins if o != "*"),
        any_host="*" in extra_hosts,
        any_origin="*" in origins,
        oauth=oauth,
        stateless=env.get(STATELESS_ENV, "").strip().lower() in ("1", "true", "yes"),
        request_state_keys=state_keys,
        **limits,
    )


def _parse_host_header(value: str) -> tuple[str, str | None] | None:
    """(host name, port or None) of a Host header, or None when malformed."""
    value = value.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
    elif value.count(":") == 1:
        name, port = value.split(":")
    elif ":" in value:
        return None
    else:
        name, port = value, None
    if port is not None and not (port.isdigit() and len(port) <= 5):
        return None
    name = name.rstrip(".")
    return (name, port) if name else None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


async def _reply(
    send: Send, status: int, body: Mapping[str, Any], headers: Iterable[tuple[str, str]] = (), *, close: bool = True
) -> None:
    raw = json.dumps(body).encode()
    pairs = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"cache-control", b"no-store"),
    ]
    pairs += [(k.encode(), v.encode()) for k, v in headers]
    if close:  # the request body may be unread: do not reuse the connection
        pairs.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})


class _BodyTooLarge(Exception):
    pass


class SecurityMiddleware:
    """Pure ASGI in front of the SDK app: health, Host, Origin, bearer token, body cap, header stripping."""

    def __init__(self, app: ASGIApp, options: HttpOptions) -> None:
        self.app = app
        self.options = options
        self.started = time.monotonic()
        self._token_digest = _digest(options.token.get_secret_value()) if options.token is not None else None
        self.sessions = SessionLimiter(
            max_sessions=options.max_sessions, per_client=options.sessions_per_client, idle_s=options.session_idle_s
        )
        self.tool_scopes: dict[str, str] | None = None  # filled by build_http_app when OAuth is on
        self.server: MCPServer[Any] | None = None  # for /readyz: its ledger, once the lifespan has started
        self.draining = False
        self.answering = 0  # requests other than GET (whose event streams idle until closed) being served now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan passes through; websockets are not served
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        method = str(scope.get("method", "GET"))
        if path.rstrip("/") == HEALTH_PATH:
            await self._health(method, send)
            return
        if path.rstrip("/") == READY_PATH:
            await self._ready(method, send)
            return
        oauth = self.options.oauth
        if oauth is not None and path == oauth.options.metadata_path:
            await _reply(send, 200, oauth.options.metadata(), close=False)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        rejection = self._check_host(headers) or self._check_origin(headers) or self._check_token(headers)
        if rejection is None and oauth is not None:
            rejection, granted = await self._check_jwt(oauth, headers)
        else:
            granted = None
        if rejection is not None:
            status, body, extra = rejection
            log.info("%s %s rejected with %d (%s)", method, path, status, body["error"])
            await _reply(send, status, body, extra)
            return
        try:
            with anyio.fail_after(self.options.body_timeout_s):
                body, replay = await self._read_body(headers, receive)
        except TimeoutError:
            log.info(
                "%s %s rejected with 408 (body not received within %.0f s)", method, path, self.options.body_timeout_s
            )
            await _reply(send, 408, {"error": "request_timeout", "message": "The request body arrived too slowly."})
            return
        except _BodyTooLarge:
            log.info("%s %s rejected with 413 (body over %d bytes)", method, path, self.options.max_body)
            await _reply(
                send,
                413,
                {"error": "payload_too_large", "message": f"Request body over {self.options.max_body} bytes."},
            )
            return
        except ValueError:
            await _reply(send, 400, {"error": "bad_request", "message": "Invalid Content-Length."})
            return
        if granted is not None and (refused := self._check_scopes(granted, body)) is not None:
            status, reply, extra = refused
            log.info("%s %s rejected with %d (%s)", method, path, status, reply["error"])
            await _reply(send, status, reply, extra)
            return
        if oauth is None:
            inner_scope = {**scope, "headers": [(k, v) for k, v in headers if k.lower() != b"authorization"]}
        else:  # the SDK's auth reads it (and binds the session to its principal); nothing sends it on
            inner_scope = dict(scope)
        await self._serve(scope, inner_scope, method, body, replay, send)

    async def _serve(
        self, scope: Scope, inner_scope: Scope, method: str, body: bytes, replay: Receive, send: Send
    ) -> None:
        """Hand the request to the SDK app, accounting for the session it uses, opens or ends."""
        client = client_key(scope)
        sid = session_of(inner_scope)
        if sid is None and method == "POST" and _is_initialize(body):
            evict, allowed = self.sessions.to_evict(client)
            for old in evict:
                await self.sessions.close(self.app, inner_scope, old)
            if not allowed:
                message = (
                    f"This client already has {self.options.sessions_per_client} sessions with requests in flight; "
                    "end one (DELETE) or wait."
                )
                await _reply(send, 429, {"error": "too_many_sessions", "message": message}, [("retry-after", "5")])
                return
        seen: dict[str, Any] = {}
        if sid is not None:
            self.sessions.begin(sid)
        answering = method != "GET"
        self.answering += answering
        try:
            await self.app(inner_scope, replay, watching(send, seen))
        finally:
            self.answering -= answering
            if sid is not None:
                self.sessions.end(sid, status=int(seen.get("status", 500)), method=method)
            elif isinstance(opened := seen.get("session"), str):
                self.sessions.opened(opened, client)

    # ---- checks: None when the request passes, else (status, body, extra headers) ------------------------

    def _check_host(self, headers: list[tuple[bytes, bytes]]) -> Rejection | None:
        values = [v for k, v in headers if k.lower() == b"host"]
        parsed = _parse_host_header(values[0].decode("latin-1")) if len(values) == 1 else None
        if parsed is not None:
            name, port = parsed
            allowed = self.options.allowed_hosts
            if self.options.any_host or name in allowed or (port is not None and f"{name}:{port}" in allowed):
                return None
        message = f"Host not allowed; add it to {ALLOWED_HOSTS_ENV} if this server is meant to be reached by it."
        return 421, {"error": "misdirected_request", "message": message}, []

    def _check_origin(self, headers: list[tuple[bytes, bytes]]) -> Rejection | None:
        origins = [v.decode("latin-1").strip() for k, v in headers if k.lower() == b"origin"]
        if not origins:
            return None  # not a browser, or a same-origin GET: nothing to check
        origin = origins[0].lower().rstrip("/")
        if len(origins) == 1 and (self.options.any_origin or origin in self.options.allowed_origins):
            return None
        host = next((v.decode("latin-1").strip().lower() for k, v in headers if k.lower() == b"host"), "")
        try:
            parts = urlsplit(origin)
        except ValueError:
            parts = None
        if len(origins) == 1 and parts is not None and parts.scheme in ("http", "https") and parts.netloc == host:
            return None
        message = f"Origin not allowed; add it to {ALLOWED_ORIGINS_ENV} to let that web page call this server."
        return 403, {"error": "forbidden_origin", "message": message}, []

    def _check_token(self, headers: list[tuple[bytes, bytes]]) -> Rejection | None:
        if self._token_digest is None:
            return None
        values = [v.decode("latin-1") for k, v in headers if k.lower() == b"authorization"]
        if not values:
            return 401, {"error": "unauthorized", "message": "Bearer token required."}, [("www-authenticate", REALM)]
        scheme, _, credentials = values[0].strip().partition(" ")
        given = credentials.strip() if scheme.lower() == "bearer" else ""
        # Always compare (fixed-length digests), so timing says nothing about the token or the header shape.
        ok = hmac.compare_digest(_digest(given), self._token_digest) and len(values) == 1 and bool(given)
        if ok:
            return None
        challenge = f'{REALM}, error="invalid_token"'
        return 401, {"error": "unauthorized", "message": "Invalid bearer token."}, [("www-authenticate", challenge)]

    def _challenge(self, oauth: ResourceServer, error: str | None = None, **params: str) -> str:
        parts = [f'resource_metadata="{oauth.options.metadata_url}"']
        if error is not None:
            parts.insert(0, f'error="{error}"')
        parts += [f'{key}="{value}"' for key, value in params.items()]
        return f"Bearer {', '.join(parts)}"

    async def _check_jwt(
        self, oauth: ResourceServer, headers: list[tuple[bytes, bytes]]
    ) -> tuple[Rejection | None, set[str] | None]:
        """(None, the token's scopes) for a valid JWT; else the 401 that points to the metadata."""
        values = [v.decode("latin-1") for k, v in headers if k.lower() == b"authorization"]
        scheme, _, credentials = values[0].strip().partition(" ") if len(values) == 1 else ("", "", "")
        if not values or scheme.lower() != "bearer" or not credentials.strip():
            message = "An OAuth access token is required: see the resource metadata for the authorization server."
            return (
                401,
                {"error": "unauthorized", "message": message},
                [("www-authenticate", self._challenge(oauth))],
            ), None
        try:
            access = await oauth.verifier.verify(credentials.strip())
        except InvalidToken as exc:
            log.info("bearer token refused: %s", exc)
            challenge = self._challenge(oauth, "invalid_token")
            body = {"error": "invalid_token", "message": "The access token is invalid or expired; get a new one."}
            return (401, body, [("www-authenticate", challenge)]), None
        return None, set(access.scopes)

    def _check_scopes(self, granted: set[str], body: bytes) -> Rejection | None:
        """403 insufficient_scope when a message in the body acts beyond the token (auth.scope_for_request);
        400 when the body cannot be read here: what is not checked is not passed on."""
        oauth = self.options.oauth
        assert oauth is not None
        needed = self._needed_scopes(body)
        if needed is None:
            return 400, {"error": "parse_error", "message": "The request body is not JSON this server can read."}, []
        for scope in needed:
            if scope not in granted:
                challenge = self._challenge(oauth, "insufficient_scope", scope=scope)
                message = f"This token lacks the scope {scope}; ask for a token that includes it."
                return 403, {"error": "insufficient_scope", "message": message}, [("www-authenticate", challenge)]
        return None

    def _needed_scopes(self, body: bytes) -> list[str] | None:
        """The scopes the body's messages need; None when it is not readable JSON (nothing to act on: [])."""
        if not body.strip():
            return []  # a GET's or DELETE's empty body; the SDK answers an empty POST
        parsed = _json_body(body)
        if parsed is UNREADABLE:
            return None
        messages = cast(list[object], parsed) if isinstance(parsed, list) else [parsed]
        needed: list[str] = []
        for message in messages:
            if isinstance(message, dict):
                fields = cast(dict[str, object], message)
                scope = scope_for_request(fields.get("method"), fields.get("params"), self.tool_scopes or {})
                if scope is not None:
                    needed.append(scope)
        return needed

    async def _read_body(self, headers: list[tuple[bytes, bytes]], receive: Receive) -> tuple[bytes, Receive]:
        """Read the whole body within the cap; the body, and a receive for the app that replays it."""
        cap = self.options.max_body
        for key, value in headers:
            if key.lower() == b"content-length":
                declared = int(value)  # ValueError: 400
                if declared < 0:
                    raise ValueError("negative Content-Length")
                if declared > cap:
                    raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        pending: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending.append(message)  # e.g. http.disconnect: the app sees it after the body
                break
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > cap:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *pending]

        async def replay() -> Message:
            if queue:
                return queue.pop(0)
            return await receive()

        return body, replay

    async def _ready(self, method: str, send: Send) -> None:
        """200 while this replica can serve (its ledger answers); 503 while starting, draining or cut off."""
        if method not in ("GET", "HEAD"):
            await _reply(send, 405, {"error": "method_not_allowed"}, [("allow", "GET, HEAD")], close=False)
            return
        services = getattr(self.server, "services", None)
        ledger: Ledger | None = getattr(services, "ledger", None)
        problem = "draining" if self.draining else None
        if problem is None and ledger is None:
            problem = "starting"
        elif problem is None and ledger is not None:
            # Answered from the last check a thread of its own made, awaiting nothing: the event loop's queue of
            # fifty agents' work put hundreds of milliseconds in front of an awaited check (issue 26).
            watch = ledger.readiness()
            if not watch.checked:  # the process's first /readyz: its first check
                await anyio.to_thread.run_sync(watch.wait_checked, READY_TIMEOUT_S)
            problem = watch.problem()
        body: dict[str, Any] = {"status": "ready" if problem is None else "unavailable", "version": __version__}
        if problem is not None:
            body["reason"] = problem
        await _reply(send, 200 if problem is None else 503, body, close=False)

    def drain(self) -> None:
        """Shutting down: /readyz answers 503, and waits hand back their task ids (see TaskRunner.draining)."""
        self.draining = True
        runner = getattr(getattr(self.server, "services", None), "runner", None)
        if runner is not None:
            runner.draining = True

    async def _health(self, method: str, send: Send) -> None:
        if method not in ("GET", "HEAD"):
            await _reply(send, 405, {"error": "method_not_allowed"}, [("allow", "GET, HEAD")], close=False)
            return
        body = {
            "status": "ok",
            "server": "databar-mcp",
            "version": __version__,
            "transport": "streamable-http",
            "uptime_s": round(time.monotonic() - self.started, 1),
        }
        await _reply(send, 200, body, close=False)


UNREADABLE: Final = object()  # a body that is not JSON Python reads


def _json_body(body: bytes) -> object:
    """The body's JSON value, or UNREADABLE: bad syntax, bad UTF-8, an integer too long to convert (ValueError)
    and nesting deeper than the interpreter's stack (RecursionError: JSON 200,000 deep) alike. The SDK answers
    such a body with a 400 parse error; nothing here may turn it into a 500."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return UNREADABLE


def _is_initialize(body: bytes) -> bool:
    """Whether a POST body is an `initialize` request (the one that opens a stateful session)."""
    if b"initialize" not in body:
        return False
    message = _json_body(body)
    return isinstance(message, dict) and cast(dict[str, object], message).get("method") == "initialize"


def bounded_protocol(header_timeout_s: float) -> type[BoundedH11Protocol]:
    """uvicorn's h11 protocol with this header deadline."""
    return type("BoundedH11", (BoundedH11Protocol,), {"header_timeout_s": header_timeout_s})


def build_http_app(server: MCPServer[Any], options: HttpOptions) -> ASGIApp:
    """The SDK's streamable-HTTP Starlette app at /mcp (its lifespan runs ours), behind SecurityMiddleware."""
    inner = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        max_request_body_size=options.max_body,
        max_sessions=options.max_sessions,
        session_idle_timeout=options.session_idle_s,
        # Our middleware validates Host and Origin for every path and every bind; see the module docstring.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=options.host,
        stateless_http=options.stateless,
        # Resumable SSE replies (priming event, retry:, Last-Event-ID replay); stateless mode has no session.
        event_store=None if options.stateless else SessionEventStore(),
        retry_interval=config.HTTP_SSE_RETRY_MS,
    )
    middleware = SecurityMiddleware(inner if options.stateless else SessionTagging(inner), options)
    middleware.server = server
    if options.oauth is not None:
        middleware.tool_scopes = tool_scopes(server)
    return middleware


def tool_scopes(server: MCPServer[Any]) -> dict[str, str]:
    """Each registered tool's OAuth scope, from its toolset and read-only hint."""
    scopes: dict[str, str] = {}
    box = getattr(server, "toolbox", None)
    if isinstance(box, Toolbox):
        box.ensure_all()  # tools of unlisted toolsets are registered with the SDK lazily: scope them all now
    for tool in registered_tools(server):
        toolset = (tool.meta or {}).get("io.databar/toolset")
        read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        scopes[tool.name] = scope_for_tool(tool.name, toolset if isinstance(toolset, str) else None, read_only)
    return scopes


class _DrainingServer(uvicorn.Server):
    """uvicorn, telling our middleware first when SIGTERM/SIGINT arrives (so it drains before it stops), and
    ending event streams only once every call in flight has answered.

    sse_starlette, left to itself, ends every event stream the moment uvicorn is told to exit: a tool call
    handing back its task id on drain lost that race now and then, and the client read a cut-off reply.
    """

    def __init__(self, config: uvicorn.Config, *, app: SecurityMiddleware | None) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._app is not None:
            self._app.drain()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._end_streams_once_answered)
            await super().shutdown(sockets)
            tg.cancel_scope.cancel()

    async def _end_streams_once_answered(self) -> None:
        while self._app is not None and self._app.answering > 0:  # noqa: ASYNC110 (a counter, no event to await)
            await anyio.sleep(DRAIN_POLL_S)
        AppStatus.should_exit = True


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says "serving": a port in use is one line and a hint."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve_http(server: MCPServer[Any], options: HttpOptions) -> int:
    """Serve until SIGINT/SIGTERM; 0 after a clean shutdown, 1 when the server never started, 2 when the port
    cannot be had."""
    try:
        sock = listen(options.host, options.port)
    except OSError as exc:
        log.error(
            "cannot listen on %s port %d: %s. Stop whatever uses it, or choose another with --port N "
            "(env DATABAR_MCP_PORT)",
            options.host,
            options.port,
            exc.strerror or exc,
        )
        return 2
    app = build_http_app(server, options)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_config=None,  # our handler (databar_mcp.core.logs) formats uvicorn's records; uvicorn's writes to stdout
        log_level=None,
        access_log=logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO),
        proxy_headers=False,  # X-Forwarded-* are not trusted
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        http=bounded_protocol(options.header_timeout_s),
    )
    uv = _DrainingServer(config, app=app if isinstance(app, SecurityMiddleware) else None)
    reclaim_library_loggers()
    auth = "bearer token required" if options.token is not None else "no bearer token: loopback clients only"
    if options.oauth is not None:
        auth = f"OAuth access tokens from {options.oauth.options.issuer} required"
    log.warning("serving MCP over streamable HTTP at %s (%s; health at %s)", options.where, auth, options.health_url)
    if options.any_host:
        log.warning("%s=* : the Host header is not checked (DNS-rebinding protection off)", ALLOWED_HOSTS_ENV)
    AppStatus.disable_automatic_graceful_drain()  # _DrainingServer ends the streams itself
    try:
        with sock:
            uv.run(sockets=[sock])
    finally:  # the flags are the process's: leave them as found for a server started after this one
        AppStatus.should_exit = False
        AppStatus.enable_automatic_graceful_drain_mode()
    return 0 if uv.started else 1
