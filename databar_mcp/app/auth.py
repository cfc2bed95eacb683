"""OAuth 2.1 resource server (the MCP authorization spec): JWT access tokens from the team's issuer.

A token is accepted only when it is signed by a key of the issuer's JWKS (asymmetric algorithms only), names
the issuer (`iss`) and this server's resource URL as audience (`aud`, RFC 8707), is within `nbf`..`exp`, and
has a subject. Its scopes decide which tools it may call (Databar's own scopes): read tools need
`tables:read`, `get_account` needs `balance:read`, runs (every run_* tool) and cancel_task need
`enrichments:run`, every other write (tables, columns, connectors, table enrichments) needs `tables:write`.
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


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OAuthConfigError(f"{name} must be an http(s) URL, not {value!r}")
    return value  # compared exactly (RFC 8414 issuer, RFC 8707 resource): kept as written


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
        """The RFC 9728 protected-resource metadata document."""
        document = ProtectedResourceMetadata(
            resource=AnyHttpUrl(self.resource),
            authorization_servers=[AnyHttpUrl(self.issuer)],
            scopes_supported=list(SCOPES),
            bearer_methods_supported=["header"],
            resource_name="Databar enrichment (databar-mcp)",
        )
        return document.model_dump(mode="json", exclude_none=True)


def oauth_from_env(environ: Mapping[str, str]) -> OAuthOptions | None:
    issuer = environ.get(ISSUER_ENV, "").strip()
    resource = environ.get(RESOURCE_ENV, "").strip()
    if not issuer and not resource:
        return None
    if not issuer or not resource:
        raise OAuthConfigError(f"OAuth needs both {ISSUER_ENV} and {RESOURCE_ENV} (this server's public /mcp URL)")
    issuer = _http_url(issuer, ISSUER_ENV)
    jwks = environ.get(JWKS_ENV, "").strip() or f"{issuer}/.well-known/jwks.json"
    return OAuthOptions(issuer=issuer, resource=_http_url(resource, RESOURCE_ENV), jwks_url=_http_url(jwks, JWKS_ENV))


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
        subject = str(claims["sub"])
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
