"""`databar-mcp doctor`: is this install ready to serve? One line per check, an exit code, and `--json`.

Users paste this output into bug reports, so it names where each setting came from and never shows the
API key: the key is masked, and every line is scrubbed of it once more before it is printed.
"""

from __future__ import annotations

import json
import platform
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx2
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from databar_mcp import __version__
from databar_mcp.api import AuthenticationError, DatabarClient, DatabarError
from databar_mcp.config import MIN_SECRET_LEN, Settings
from databar_mcp.core.ledger.store import MIGRATIONS, LedgerError, ledger_for

Status = Literal["pass", "warn", "fail", "skip"]
Fact = str | int | float | bool | list[str] | None
MARKS: dict[Status, str] = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "–"}
# Shorter than this, a value cannot be told apart from ordinary words: it is never searched for in text.
MIN_MASKED_KEY_LEN = MIN_SECRET_LEN  # the same floor as the log redactor and reply scrubbing
# Databar keys are long random tokens; a key this short was most likely pasted wrong.
PLAUSIBLE_KEY_LEN = 20
# Doctor answers in seconds: one quick attempt per request, not the server's patient retry policy.
REACH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    facts: dict[str, Fact] = field(default_factory=lambda: dict[str, Fact]())

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "warn")


def mask_key(key: str) -> str:
    """'sk-SENTINEL-9f8e7d6c5b4a' -> 'sk-…5b4a': a short prefix and at most the last 4 characters."""
    if len(key) < 12:
        return "…" if len(key) < 8 else "…" + key[-2:]
    head, sep, _ = key.partition("-")
    prefix = head + sep if sep and len(head) <= 3 else ""
    return f"{prefix}…{key[-4:]}"


def safe_url(url: str) -> str:
    """The URL without user:password, which must not be printed either."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_key(settings: Settings) -> Check:
    if settings.api_key is None or not settings.api_key.get_secret_value():
        return Check("api key", "fail", "not set: export DATABAR_API_KEY (or try `databar-mcp doctor --sandbox`)")
    secret = settings.api_key.get_secret_value()
    masked = mask_key(secret)
    facts: dict[str, Fact] = {"masked": masked, "length": len(secret), "source": settings.api_key_source}
    detail = f"{masked} ({len(secret)} char{'' if len(secret) == 1 else 's'}, from {settings.api_key_source})"
    if settings.api_key_source != "sandbox" and len(secret) < PLAUSIBLE_KEY_LEN:
        return Check("api key", "warn", detail + ": too short to be a Databar API key; check what was pasted", facts)
    return Check("api key", "pass", detail, facts)


async def check_reachable(settings: Settings) -> Check:
    """Any HTTP answer from the base URL counts: this check is about the network, not the key."""
    url = safe_url(settings.base_url)
    started = time.monotonic()
    try:
        async with httpx2.AsyncClient(timeout=REACH_TIMEOUT_S, follow_redirects=False) as http:
            response = await http.get(settings.base_url.rstrip("/") + "/")
    except httpx2.HTTPError as exc:
        return Check("base url", "fail", f"{url} unreachable ({type(exc).__name__})", {"url": url})
    ms = round((time.monotonic() - started) * 1000)
    status = response.status_code
    # The probe sends no key, so 401/403 is the API answering as it should; the key is the next check.
    meaning = " to a request without a key, as expected" if status in (401, 403) else ""
    return Check(
        "base url",
        "pass",
        f"{url} reachable (HTTP {status}{meaning}, {ms} ms)",
        {"url": url, "http_status": status, "ms": ms},
    )


async def check_account(settings: Settings, reachable: bool) -> tuple[Check, Check]:
    """GET user/me: whether the key is accepted, then the balance and plan it reveals."""
    if settings.api_key is None:
        return Check("key accepted", "skip", "no key to try"), Check("balance", "skip", "no key")
    if not reachable:
        return Check("key accepted", "skip", "base URL unreachable"), Check("balance", "skip", "base URL unreachable")
    quick = settings.model_copy(update={"max_retries": 0, "connect_timeout_s": REACH_TIMEOUT_S})
    try:
        async with DatabarClient.from_settings(quick) as client:
            user = await client.get_user()
    except AuthenticationError as exc:
        refused = Check("key accepted", "fail", f"rejected by Databar (HTTP {exc.status_code}): check the key")
        return refused, Check("balance", "skip", "key rejected")
    except DatabarError as exc:
        failed = Check("key accepted", "fail", f"GET user/me failed: {exc.message}")
        return failed, Check("balance", "skip", "account unreadable")
    who = f"workspace {user.workspace}" if user.workspace else "account readable"
    accepted = Check("key accepted", "pass", f"accepted ({who})", {"workspace": user.workspace})
    facts: dict[str, Fact] = {"balance": user.balance, "plan": user.plan}
    plan = user.plan or "unknown plan"
    if user.balance <= 0:
        return accepted, Check("balance", "fail", f"{user.balance:g} credits ({plan}): runs will fail", facts)
    return accepted, Check("balance", "pass", f"{user.balance:,.10g} credits, plan {plan}", facts)


def check_state_dir(settings: Settings) -> Check:
    folder = settings.state_dir
    probe = folder / f".doctor-{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("state dir", "fail", f"{folder} not writable ({exc.strerror or type(exc).__name__})")
    return Check("state dir", "pass", f"{folder} writable", {"path": str(folder)})


async def check_ledger(settings: Settings, state_ok: bool) -> Check:
    if not state_ok:
        return Check("ledger", "skip", "state dir not writable")
    ledger = ledger_for(settings)
    path = ledger.where  # the SQLite file, or the PostgreSQL database without its password
    try:
        await ledger.open()
        version = await ledger.version()
        if version > len(MIGRATIONS):
            detail = f"schema v{version} is newer than this databar-mcp knows (v{len(MIGRATIONS)}): upgrade it"
            return Check("ledger", "fail", detail, {"path": str(path), "schema_version": version})
        _, tasks = await ledger.recent(limit=1, offset=0)
    except LedgerError as exc:  # it says what is wrong and where
        return Check("ledger", "fail", str(exc), {"path": str(path)})
    except Exception as exc:  # any failure to open or read it is the finding, not a crash
        return Check("ledger", "fail", f"{path}: {type(exc).__name__}: {exc}", {"path": str(path)})
    finally:
        await ledger.aclose()
    facts: dict[str, Fact] = {"path": str(path), "schema_version": version, "tasks": tasks}
    return Check("ledger", "pass", f"schema v{version}, {tasks} task(s), {path}", facts)


def check_protocol() -> Check:
    versions = [*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS]
    sdk = metadata.version("mcp")
    return Check("protocol", "pass", f"MCP {', '.join(versions)} (mcp SDK {sdk})", {"versions": versions, "sdk": sdk})


def check_version() -> Check:
    try:
        installed: str | None = metadata.version("databar-mcp")
    except metadata.PackageNotFoundError:
        installed = None
    stale = f"; installed metadata says {installed}: reinstall" if installed and installed != __version__ else ""
    return Check(
        "version",
        "pass",
        f"databar-mcp {__version__} (Python {platform.python_version()}){stale}",
        {"version": __version__, "python": platform.python_version()},
    )


async def run_checks(settings: Settings) -> list[Check]:
    key = check_key(settings)
    reach = await check_reachable(settings)
    accepted, balance = await check_account(settings, reach.ok)
    state = check_state_dir(settings)
    ledger = await check_ledger(settings, state.ok)
    return [key, reach, accepted, balance, state, ledger, check_protocol(), check_version()]


def scrub(text: str, settings: Settings) -> str:
    """Last line of defence: whatever a check said, the key itself never reaches the output."""
    if settings.api_key is None or settings.api_key_source == "sandbox":
        return text  # the sandbox's key is public, and often a plain word ("sandbox") found elsewhere
    secret = settings.api_key.get_secret_value()
    if len(secret) < MIN_MASKED_KEY_LEN:
        return text  # "k" or "sandbox" would rewrite ordinary words; check_key warns about such a key instead
    return re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", mask_key(secret), text)


def render_text(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{MARKS[c.status]} {c.name.ljust(width)}  {c.detail}" for c in checks]
    failed = [c.name for c in checks if not c.ok]
    lines.append("healthy" if not failed else f"not healthy: {', '.join(failed)}")
    return "\n".join(lines)


def render_json(checks: list[Check], settings: Settings) -> str:
    return json.dumps(
        {
            "ok": all(c.ok for c in checks),
            "version": __version__,
            "base_url": safe_url(settings.base_url),
            "checks": [{**asdict(c), "ok": c.ok} for c in checks],
        },
        indent=2,
        ensure_ascii=False,
    )


async def doctor(settings: Settings, *, as_json: bool = False) -> tuple[int, str]:
    """Run every check; return the exit code (0 healthy, 1 not) and the text to print."""
    checks = await run_checks(settings)
    out = render_json(checks, settings) if as_json else render_text(checks)
    return (0 if all(c.ok for c in checks) else 1), scrub(out, settings)
