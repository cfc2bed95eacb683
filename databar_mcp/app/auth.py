"""OAuth 2.1 resource server (the MCP authorization spec): JWT access tokens from the team's issuer.

A token is accepted only when it is signed by a key of the issuer's JWKS (asymmetric algorithms only), names
the issuer (`iss`, exactly as configured) and this server's resource URL as audience (`aud`, RFC 8707, in the
canonical form the metadata publishes), is within `nbf`..`exp`, and has a subject (the user it acts for;
never its client id). Its scopes decide which tools it may call (Databar's own scopes): read tools need
`tables:read`, `get_account` needs `balance:read`, runs (every run_* tool) and cancel_task need
`enrichments:run`, every other write (tables, columns, connectors, table enrichments) needs `tables:write`;
the MCP methods that read or act beyond tools/call are scoped alike (METHOD_SCOPES).
The token itself is never sent anywhere: Databar is called with the server's (or the user's configured) key,
never with what the client presented.

Environment: `DATABAR_MCP_OAUTH_ISSUER` (the authorization server), `DATABAR_MCP_OAUTH_RESOURCE` (this server's
public URL, e.g. https://mcp.example.com/mcp), `DATABAR_MCP_OAUTH_JWKS_URL` (default: the issuer's
/.well-known/jwks.json).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import urlsplit

import anyio.to_thread
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl

from databar_mcp import config

log = logging.getLogger("databar_mcp.app.auth")

ISSUER_ENV: Final = "DATABAR_MCP_OAUTH_ISSUER"
RESOURCE_ENV: Final = "DATABAR_MCP_OAUTH_RESOURCE"
JWKS_ENV: Final = "DATABAR_MCP_OAUTH_JWKS_URL"

READ_SCOPE: Final = "tables:read"
WRITE_SCOPE: Final = "tables:write"
RUN_SCOPE: Final = "enrichments:run"
BALANCE_SCOPE: Final = "balance:read"
SCOPES: Final = (READ_SCOPE, WRITE_SCOPE, RUN_SCOPE, BALANCE_SCOPE)
# Never HS* (a shared secret) or "none": only the issuer's private keys can sign.
ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OAuthConfigError(ValueError):
    """OAuth cannot be set up with this configuration (the message never holds a secret)."""


def scope_for_tool(name: str, toolset: str | None, read_only: bool) -> str:
    """The scope a tool needs: every run_* tool bills credits (as does stopping one), reads need the read
    scope (export_task_result only writes the caller's own result to a file here), the rest writes tables."""
    if toolset == config.Toolset.ACCOUNT:
        return BALANCE_SCOPE
    if name.startswith("run_") or name == "cancel_task":
        return RUN_SCOPE
    if read_only or name == "export_task_result":
        return READ_SCOPE
    return WRITE_SCOPE


# Methods that read or act on the user's Databar data, beyond tools/call (each tool has its own scope):
# stopping a run is as much a run's act as starting one (as the cancel_task tool), and tasks/update answers a
# run's spend confirmation, which sends it.
METHOD_SCOPES: Final[Mapping[str, str]] = {
    "resources/read": READ_SCOPE,
    "completion/complete": READ_SCOPE,  # completes from the catalog and the user's task ids
    "tasks/get": READ_SCOPE,
    "tasks/list": READ_SCOPE,
    "tasks/result": READ_SCOPE,
    "tasks/cancel": RUN_SCOPE,
    "tasks/update": RUN_SCOPE,
}


def scope_for_request(method: object, params: object, tool_scopes: Mapping[str, str]) -> str | None:
    """The scope one JSON-RPC request needs; None for the protocol's own steps (initialize, lists, ping...).

    An unknown tool needs none here: the SDK answers it, and asking for a scope first would leak the list."""
    empty: Mapping[str, object] = {}
    fields = cast(Mapping[str, object], params) if isinstance(params, Mapping) else empty
    if method == "tools/call":
        name = fields.get("name")
        return tool_scopes.get(name) if isinstance(name, str) else None
    if method == "subscriptions/listen":  # a listen stream naming tasks follows their status: a read
        notifications = fields.get("notifications")
        return READ_SCOPE if isinstance(notifications, Mapping) and "taskIds" in notifications else None
    return METHOD_SCOPES.get(method) if isinstance(method, str) else None


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OAuthConfigError(f"{name} must be an http(s) URL, not {value!r}")
    return value


def canonical_resource(value: str) -> str:
    """This server's resource URL in the one form it is both published (RFC 9728) and checked as the tokens'
    audience (RFC 8707): scheme and host in lower case, no default port, no trailing slash on an empty path
    (the MCP authorization spec's canonical server URI). Clients copy the published value into their token
    requests, so any other spelling of it would be refused; normalised here once, used everywhere."""
    _http_url(value, RESOURCE_ENV)
    parts = urlsplit(value)
    if parts.fragment or value.endswith("#"):
        raise OAuthConfigError(f"{RESOURCE_ENV} must not have a fragment (RFC 8707), not {value!r}")
    if parts.username is not None or parts.password is not None:
        raise OAuthConfigError(f"{RESOURCE_ENV} must not hold credentials")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OAuthConfigError(f"{RESOURCE_ENV} must name a host, not {value!r}")
    try:
        port = parts.port
    except ValueError:
        raise OAuthConfigError(f"{RESOURCE_ENV} has an invalid port: {value!r}") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    path = "" if parts.path == "/" else parts.path
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class OAuthOptions:
    issuer: str
    resource: str
    jwks_url: str

    @property
    def metadata_url(self) -> str:
        return str(build_resource_metadata_url(AnyHttpUrl(self.resource)))

    @property
    def metadata_path(self) -> str:
        return urlsplit(self.metadata_url).path

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata document, naming exactly what the tokens are checked
        against: the issuer as configured (RFC 8414 clients compare it exactly; pydantic's URL type would add a
        trailing slash) and the canonical resource (the audience)."""
        document = ProtectedResourceMetadata(
            resource=AnyHttpUrl(self.resource),
            authorization_servers=[AnyHttpUrl(self.issuer)],
            scopes_supported=list(SCOPES),
            bearer_methods_supported=["header"],
            resource_name="Databar enrichment (databar-mcp)",
        )  # validated by the SDK's model; its URLs then published as they are enforced
        dumped = document.model_dump(mode="json", exclude_none=True)
        return {**dumped, "resource": self.resource, "authorization_servers": [self.issuer]}


def oauth_from_env(environ: Mapping[str, str]) -> OAuthOptions | None:
    issuer = environ.get(ISSUER_ENV, "").strip()
    resource = environ.get(RESOURCE_ENV, "").strip()
    if not issuer and not resource:
        return None
    if not issuer or not resource:
        raise OAuthConfigError(f"OAuth needs both {ISSUER_ENV} and {RESOURCE_ENV} (this server's public /mcp URL)")
    issuer = _http_url(issuer, ISSUER_ENV)  # compared exactly (RFC 8414): kept as written
    jwks = environ.get(JWKS_ENV, "").strip() or f"{issuer.rstrip('/')}/.well-known/jwks.json"
    return OAuthOptions(issuer=issuer, resource=canonical_resource(resource), jwks_url=_http_url(jwks, JWKS_ENV))


class InvalidToken(Exception):
    """Why a bearer token was refused (for the log and the 401's description; never the token)."""


@dataclass
class JwtVerifier(TokenVerifier):
    """Checks JWT access tokens against the issuer's JWKS (keys cached; an unknown `kid` refetches them)."""

    options: OAuthOptions
    _verified: OrderedDict[bytes, AccessToken] = field(default_factory=OrderedDict[bytes, AccessToken])

    def __post_init__(self) -> None:
        self._jwks = jwt.PyJWKClient(
            self.options.jwks_url,
            cache_keys=True,
            lifespan=config.OAUTH_JWKS_CACHE_S,
            timeout=config.OAUTH_JWKS_TIMEOUT_S,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            return await self.verify(token)
        except InvalidToken as exc:
            log.info("bearer token refused: %s", exc)
            return None

    async def verify(self, token: str) -> AccessToken:
        """The token's access, or InvalidToken saying why not (checked once, then cached until it expires)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._verified.get(digest)
        now = time.time()
        if cached is not None and cached.expires_at is not None and cached.expires_at > now:
            return cached
        access = await anyio.to_thread.run_sync(self._decode, token)
        self._verified[digest] = access
        while len(self._verified) > config.OAUTH_VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return access

    def _decode(self, token: str) -> AccessToken:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.options.resource,
                issuer=self.options.issuer,
                leeway=config.OAUTH_LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise InvalidToken(f"the issuer's keys could not be fetched ({type(exc).__name__})") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip():
            # The subject is whose tasks, results and key a call gets: without one there is nobody to act for
            # (never the client id, which shares the namespace with user ids).
            raise InvalidToken("the token names no subject (sub)")
        raw_scopes: object = claims.get("scope", claims.get("scp", ""))
        if isinstance(raw_scopes, str):
            scopes = raw_scopes.split()
        else:
            scopes = [str(s) for s in cast(list[object], raw_scopes)] if isinstance(raw_scopes, list) else []
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or subject),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=self.options.resource,
            subject=subject,
            claims={"iss": claims["iss"], "sub": subject},
        )


@dataclass(frozen=True)
class ResourceServer:
    """OAuth options and the one verifier that the SDK's auth and our HTTP checks share."""

    options: OAuthOptions
    verifier: JwtVerifier

    @classmethod
    def create(cls, options: OAuthOptions) -> ResourceServer:
        return cls(options=options, verifier=JwtVerifier(options))

    def server_kwargs(self) -> dict[str, Any]:
        """What MCPServer takes to authenticate requests itself (and bind sessions to their principal)."""
        auth = AuthSettings(
            issuer_url=AnyHttpUrl(self.options.issuer),
            resource_server_url=AnyHttpUrl(self.options.resource),
            validate_token_resource=False,  # our verifier checks the audience itself
        )
        return {"auth": auth, "token_verifier": self.verifier}
