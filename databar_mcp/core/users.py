"""Per-user Databar keys and limits, chosen by the OAuth token's subject (never by anything in the request).

With OAuth on, every tool call acts for the token's subject: its runs are billed to the Databar key the users
file gives that subject (or the server's key), under that user's per-call and daily credit caps on top of the
server-wide spend guard, and the ledger shows the user only their own submissions, tasks, results and exports.
Without OAuth there is one user (the server's owner) and nothing here applies.

The users file (`DATABAR_MCP_USERS_FILE`, JSON, kept like any secrets file) looks like:

    {"users": {"alice@example.com": {"api_key": "...", "daily_credit_cap": 500, "max_credits_per_call": 50}},
     "default": {"daily_credit_cap": 100}}

A subject the file does not name gets `default` (with the server's key), or is refused when there is none.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from mcp.server.auth.middleware.auth_context import get_access_token
from pydantic import SecretStr

from databar_mcp.api.errors import AuthenticationError

USERS_FILE_ENV: Final = "DATABAR_MCP_USERS_FILE"

# Set where no token is in context but a user's work is done: the tracker polling a user's task.
_acting: ContextVar[str | None] = ContextVar("databar_acting_owner", default=None)


class UsersConfigError(ValueError):
    """The users file cannot be used (the message never holds a key)."""


class UserLimitReached(Exception):
    """A run would go over the calling user's own credit caps."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class NoSubject(AuthenticationError):
    """An access token without a subject reached a tool (the verifier refuses those): answered as auth_failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=0)


class UnknownUser(AuthenticationError):
    """The token's subject has no Databar account here (no entry, no default): answered as auth_failed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=0)


def current_owner() -> str | None:
    """Whom this call acts for: the tracker's acting user, else the OAuth token's subject (None: no OAuth).

    Never the token's client id: client ids and user ids share one namespace, so a token with no subject and
    `azp: "alice"` would act as alice. The verifier refuses such tokens; a token without one here is refused."""
    if (acting := _acting.get()) is not None:
        return acting
    token = get_access_token()
    if token is None:
        return None
    if not token.subject:
        raise NoSubject("The access token names no subject (sub): there is no user to act for.")
    return token.subject


@contextlib.contextmanager
def acting_as(owner: str | None) -> Generator[None]:
    """Do background work (polling a task) as the user who owns it."""
    reset = _acting.set(owner)
    try:
        yield
    finally:
        _acting.reset(reset)


@dataclass(frozen=True)
class UserAccount:
    api_key: SecretStr | None = None  # None: the server's key
    daily_credit_cap: float | None = None
    max_credits_per_call: float | None = None

    def __repr__(self) -> str:
        key = "own key" if self.api_key else "server key"
        return f"UserAccount({key}, daily={self.daily_credit_cap}, per_call={self.max_credits_per_call})"


def _number(raw: object, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise UsersConfigError(f"{where} must be a non-negative number")
    return float(raw)


def _account(raw: object, where: str) -> UserAccount:
    if not isinstance(raw, dict):
        raise UsersConfigError(f"{where} must be an object")
    entry = cast(dict[str, object], raw)
    unknown = sorted(set(entry) - {"api_key", "daily_credit_cap", "max_credits_per_call"})
    if unknown:
        raise UsersConfigError(f"{where} has unknown field(s) {', '.join(unknown)}")
    key = entry.get("api_key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise UsersConfigError(f"{where}.api_key must be a non-empty string")
    return UserAccount(
        api_key=SecretStr(key.strip()) if isinstance(key, str) else None,
        daily_credit_cap=_number(entry.get("daily_credit_cap"), f"{where}.daily_credit_cap"),
        max_credits_per_call=_number(entry.get("max_credits_per_call"), f"{where}.max_credits_per_call"),
    )


@dataclass(frozen=True)
class Users:
    accounts: Mapping[str, UserAccount]
    default: UserAccount | None

    @classmethod
    def parse(cls, text: str, source: str) -> Users:
        try:
            raw: object = json.loads(text)
        except ValueError as exc:
            raise UsersConfigError(f"{source} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
        if not isinstance(raw, dict):
            raise UsersConfigError(f"{source} must hold a JSON object with 'users'")
        top = cast(dict[str, Any], raw)
        users = top.get("users", {})
        if not isinstance(users, dict):
            raise UsersConfigError(f"{source}: 'users' must map subjects to accounts")
        accounts = {
            str(sub): _account(entry, f"{source}: users[{sub!r}]")
            for sub, entry in cast(dict[str, object], users).items()
        }
        default = top.get("default")
        return cls(accounts=accounts, default=None if default is None else _account(default, f"{source}: default"))

    @classmethod
    def from_file(cls, path: Path | None) -> Users | None:
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsersConfigError(f"cannot read {USERS_FILE_ENV} {path}: {exc.strerror or exc}") from None
        return cls.parse(text, f"{USERS_FILE_ENV} {path}")

    def account(self, owner: str | None) -> UserAccount | None:
        """The caller's account; None for the server's owner (no OAuth). UnknownUser when not configured."""
        if owner is None:
            return None
        found = self.accounts.get(owner, self.default)
        if found is None:
            raise UnknownUser(f"no Databar account is configured for {owner!r} on this server: ask its admin")
        return found

    def current(self) -> UserAccount | None:
        return self.account(current_owner())

    def api_key(self) -> SecretStr | None:
        """The key this call bills to: the user's own, or None for the server's."""
        account = self.current()
        return None if account is None else account.api_key
