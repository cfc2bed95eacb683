"""Every setting, default and limit in one place.

Settings come from the environment (`DATABAR_*`) and are overridden by command-line flags. The API key is a
`SecretStr`, so it never shows in a repr, a log line or an exception.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_BASE_URL = "https://api.databar.ai/v1"

# Tool-call limits
TOOL_DEADLINE_S = 25.0  # below the ~60 s at which Claude Desktop gives up on a tool call
# Kept back from the deadline for Databar I/O, to record and render the answer (at most a quarter of it).
DEADLINE_MARGIN_S = 1.0
RESULT_BUDGET_CHARS = 40_000  # ≈ 10k tokens per tool result
# A task result longer than INLINE_ROWS_MAX rows, read without a `limit`, answers with a summary, a sample of
# SAMPLE_ROWS rows and the exact export and paging calls (pages of PAGE_ROWS): a status check or a finished
# 1,000-row run must not pour thousands of characters of rows into the conversation (issue 23).
INLINE_ROWS_MAX = 25
SAMPLE_ROWS = 10
PAGE_ROWS = 50
# Results too large for the budget are kept whole in memory (databar://results/{id}): the last N, up to M chars.
OVERSIZED_KEPT = 32
OVERSIZED_KEPT_CHARS = 16_000_000
ERROR_DETAIL_STRING_CHARS = 1_000  # an error body over budget cuts each detail string to this first
CLIENT_LOG_BUFFER = 1_000  # log records queued for MCP clients (logging/setLevel); beyond it they are dropped

# HTTP
# Secrets shorter than this are never searched for in text (logs, replies, doctor): "k" or "sandbox" would
# rewrite ordinary words, and doctor warns about a key that short instead.
MIN_SECRET_LEN = 8

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_RETRIES = 3
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
RETRY_AFTER_CAP_S = 60.0

# Incoming HTTP (streamable HTTP transport)
HTTP_MAX_SESSIONS = 1000  # live stateful sessions in all (the SDK's default is 10,000)
HTTP_SESSIONS_PER_CLIENT = 32  # per client (address + bearer token): one client cannot take them all
HTTP_SESSION_IDLE_S = 300.0  # a session with no request for this long is closed (the SDK's default: 30 min)
# A sealed requestState (a question's round trip, 2026-07-28) is accepted this long after it was sealed, and each
# is accepted once: its digest is kept for this long plus the clock skew the SDK allows at most.
REQUEST_STATE_TTL_S = 600.0
REQUEST_STATE_SKEW_S = 60.0
HTTP_EVICT_IDLE_S = 60.0  # at the global cap, the longest-idle session idle at least this long makes room
HTTP_HEADER_TIMEOUT_S = 10.0  # a request's headers must arrive within this (slowloris)
HTTP_BODY_TIMEOUT_S = 30.0  # and its body within this
HTTP_SSE_RETRY_MS = 1000  # the `retry:` an SSE reply suggests: how soon a dropped client reconnects to resume
HTTP_SSE_EVENTS_MAX = 1000  # SSE events kept for resumption, in all sessions (see app/sse_resume.py)
HTTP_SSE_EVENTS_KEEP_S = 300.0  # and for at most this long

# Polling a task: fast at first, then backing off to the cap; progress counts steer it near the end.
POLL_FIRST_S = 0.1
POLL_GROWTH = 2.0
POLL_CAP_S = 2.0
POLL_MIN_S = 0.05
# A running task's finished rows (Databar's include_partial, costly for the API): at most once per task this often.
PARTIAL_READ_INTERVAL_S = 5.0

# API limits (seeds + API notes)
ROW_WRITE_BATCH = 50
TABLE_PAGE_MAX = 1000
MAX_BULK_ROWS = 10_000
MAX_OFFSET = 1_000_000_000  # paging offsets: far beyond any ledger, far below SQLite's 64-bit integers
# Files in and out (issue 25). A file is sent as bulk runs of at most FILE_PART_ROWS rows: Databar's own SDK
# and CLI send a whole CSV in one bulk-run request, and its MCP server says there is no backend size limit on
# bulk runs (only row writes are limited, to 50); the one ceiling we know is our own request model's
# MAX_BULK_ROWS (the sandbox enforces the same), so a part is that size unless DATABAR_MCP_FILE_PART_ROWS says.
FILE_PART_ROWS = MAX_BULK_ROWS
FILE_VALUE_MAX_CHARS = 1_000  # an input value longer than this is a bad row (often a quote that swallowed lines)
FILE_BAD_ROWS_SHOWN = 20  # bad rows listed by number in one answer (all are counted)
CONNECTOR_NAME_MAX = 256
CONNECTOR_URL_MAX = 512
CONNECTOR_BODY_TEMPLATE_MAX = 2048

# Duplicate guard: an identical run finished less than this long ago is returned instead of billed again.
DUPLICATE_WINDOW_S = 30 * 60.0
# Background tracking of unfinished tasks (so results are captured even if no one calls get_task again).
TRACKER_INTERVAL_S = 15.0
# A task id Databar gave us may answer 404 for a while (eventual consistency): it is polled through 404s, with
# backoff, this long after its submission before it is given up as unknown to Databar.
TASK_UNSEEN_GRACE_S = 10 * 60.0
# Databar keeps task data this long; the ledger keeps it after that.
API_RETENTION_S = 24 * 3600.0
# How long the ledger keeps a finished task's result past Databar's 24 hours (DATABAR_MCP_RESULT_RETENTION_DAYS,
# "forever" to keep everything): long enough that nobody loses a result they still want, short enough that a
# team's year of runs does not fill the disk. The task's summary (status, counts, credits, dates) stays.
RESULT_RETENTION_DAYS = 90.0
PRUNE_BATCH = 25  # tasks a tracker pass prunes in one transaction: the writer is held ~6 ms at 1M runs
# Tasks pruned a second, whatever the tracker's interval: a backlog (a ledger upgraded with a year of results)
# drains in the background (~144,000 an hour) while taking about 1% of the writer from tool calls.
PRUNE_TASKS_PER_S = 40.0
PRUNE_CLI_BATCH = 100  # `databar-mcp ledger prune`: on demand, larger transactions
# /readyz answers from a check made off the event loop this often; a check that hangs makes it not ready once the
# last good one is READY_STALE_S old (a failed check at once).
READY_CHECK_INTERVAL_S = 0.25
READY_STALE_S = 3.0

# PostgreSQL ledger (DATABAR_MCP_DATABASE_URL), shared by replicas.
DATABASE_POOL_MAX = 10  # connections per replica
DATABASE_CONNECT_TIMEOUT_S = 10.0
DATABASE_STATEMENT_TIMEOUT_S = 15.0  # a stuck database is an error, never a hung tool call (includes lock waits)
DATABASE_IDLE_IN_TRANSACTION_S = 60.0  # a replica stuck inside a transaction lets go of its locks

# OAuth resource server (databar_mcp/auth.py)
OAUTH_JWKS_CACHE_S = 300.0  # the issuer's keys are refetched this often (and at once for an unknown key id)
OAUTH_JWKS_TIMEOUT_S = 5.0
OAUTH_LEEWAY_S = 10.0  # clock skew allowed on exp / nbf
OAUTH_VERIFIED_CACHE = 1024  # verified tokens remembered (by digest) until they expire


# Toolsets a user can load (DATABAR_MCP_TOOLSETS / --toolsets, or `all`). Without a choice the server lists the
# default ones and offers the rest through enable_toolsets: every tool definition costs the model context.
class Toolset(StrEnum):
    """A toolset's name: tools declare theirs, settings choose them, enable_toolsets lists them (in this order)."""

    DISCOVER = "discover"
    ENRICH = "enrich"
    TASKS = "tasks"
    TABLES = "tables"
    CONNECTORS = "connectors"
    ACCOUNT = "account"
    TABLE_ENRICH = "table_enrich"
    TABLE_ADMIN = "table_admin"
    EXPORTERS = "exporters"
    FLOWS = "flows"


TOOLSETS: tuple[str, ...] = tuple(Toolset)
DEFAULT_TOOLSETS: tuple[str, ...] = (Toolset.DISCOVER, Toolset.ENRICH, Toolset.TASKS, Toolset.ACCOUNT)
# The tools this server exists to offer (DESIGN.md's card): listed whenever their toolset is loaded, so the
# default listing shows them even where their toolset waits behind enable_toolsets.
CORE_TOOLS: tuple[str, ...] = ("run_bulk_waterfall", "get_task", "create_connector", "list_table_rows")

# How long a waterfall's catalog entry is reused to validate inputs and estimate cost before a run.
CATALOG_TTL_S = 600.0
# get_task answers on finished tasks kept in memory (tools/kit/finished_answers.py): how many, for how long.
FINISHED_ANSWERS_MAX = 64
FINISHED_ANSWER_TTL_S = 60.0

# MCP tasks (issue 16): how long a task handle stays readable, how long tasks/result may block, poll hints
MCP_TASK_TTL_DEFAULT_MS = 24 * 3600 * 1000
MCP_TASK_TTL_MAX_MS = 30 * 24 * 3600 * 1000
MCP_TASK_TTL_MIN_MS = 1000
MCP_TASK_RESULT_WAIT_S = 600.0  # tasks/result blocks at most this long, then answers "still working"
MCP_TASK_POLL_MIN_MS = 250
MCP_TASK_POLL_MAX_MS = 30_000
MCP_TASK_LIST_PAGE = 50
MCP_TASK_NOTIFY_TIMEOUT_S = 5.0  # a notification to a client that stopped reading is given up after this
MCP_TASK_LISTEN_MAX_STREAMS = 256  # open subscriptions/listen streams that follow tasks, per process
MCP_TASK_LISTEN_BUFFER = 256  # events queued for one listen stream before a stalled reader's stream is ended
MCP_TASK_LISTEN_MAX_IDS = 100  # task ids one listen request may name


def default_state_dir() -> Path:
    """The platform's user data dir, without a dependency for three lines of logic."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "databar-mcp"


class KeyFileError(ValueError):
    """The key file named by DATABAR_API_KEY_FILE cannot be used (the message never holds its content)."""


def read_key_file(path: Path) -> SecretStr:
    """A key from a file (Docker/Kubernetes secrets), so it never shows in `ps` or the environment."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read DATABAR_API_KEY_FILE {path}: {exc.strerror or type(exc).__name__}") from None
    if not text or "\n" in text:
        raise KeyFileError(f"DATABAR_API_KEY_FILE {path} must hold exactly one non-empty line (the API key)")
    return SecretStr(text)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    api_key_source: str = "unset"
    # A PostgreSQL URL for a ledger shared by replicas (it may hold a password, so it is a secret); unset: SQLite.
    database_url: SecretStr | None = None
    # Per-user Databar keys and credit caps, chosen by the OAuth token's subject (see users.py).
    users_file: Path | None = None
    # JSON lines: who ran what, for how many credits (default with a users file: the state dir's audit.jsonl).
    audit_log: Path | None = None
    base_url: str = DEFAULT_BASE_URL
    state_dir: Path = Field(default_factory=default_state_dir)
    tool_deadline_s: float = Field(default=TOOL_DEADLINE_S, gt=0)
    deadline_margin_s: float = Field(default=DEADLINE_MARGIN_S, ge=0)
    result_budget_chars: int = Field(default=RESULT_BUDGET_CHARS, ge=2_000)
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    max_retries: int = Field(default=MAX_RETRIES, ge=0)
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_cap_s: float = BACKOFF_CAP_S
    retry_after_cap_s: float = RETRY_AFTER_CAP_S
    poll_first_s: float = POLL_FIRST_S
    poll_cap_s: float = POLL_CAP_S
    log_level: str = "WARNING"
    duplicate_window_s: float = Field(default=DUPLICATE_WINDOW_S, ge=0)
    tracker_interval_s: float = Field(default=TRACKER_INTERVAL_S, gt=0)
    # None: results are kept forever; else days past a task's end (at least one: Databar keeps them 24 hours)
    result_retention_days: float | None = Field(default=RESULT_RETENTION_DAYS, ge=1)
    task_unseen_grace_s: float = Field(default=TASK_UNSEEN_GRACE_S, ge=0)
    partial_read_interval_s: float = Field(default=PARTIAL_READ_INTERVAL_S, ge=0)
    # None: list DEFAULT_TOOLSETS and let the model enable the others; a choice loads exactly those toolsets.
    toolsets: tuple[str, ...] | None = None
    read_only: bool = False
    # Spend guard (credits): refuse above max per call or below the balance floor; ask the user above confirm.
    max_credits_per_call: float | None = Field(default=None, ge=0)
    min_balance: float | None = Field(default=None, ge=0)
    confirm_above: float | None = Field(default=None, ge=0)

    @field_validator("toolsets", mode="before")
    @classmethod
    def _parse_toolsets(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            names = [str(v).lower() for v in cast(list[object], value)]
            if "all" in names:
                return TOOLSETS
            unknown = sorted(set(names) - set(TOOLSETS))
            if unknown:
                raise ValueError(f"unknown toolset(s) {', '.join(unknown)}; choose from {', '.join(TOOLSETS)} or all")
            return tuple(t for t in TOOLSETS if t in names)
        return value

    @field_validator("result_retention_days", mode="before")
    @classmethod
    def _parse_retention(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("forever", "never", "none", "off"):
            return None
        return value

    @property
    def result_retention_s(self) -> float | None:
        """Seconds a finished task's result is kept in the ledger; None: forever."""
        return None if self.result_retention_days is None else self.result_retention_days * 24 * 3600.0

    @property
    def io_deadline_s(self) -> float:
        """How long a tool call may spend on Databar: the deadline less the margin to answer in."""
        return self.tool_deadline_s - min(self.deadline_margin_s, self.tool_deadline_s / 4)

    @property
    def listed_toolsets(self) -> tuple[str, ...]:
        """The toolsets listed from the start."""
        return DEFAULT_TOOLSETS if self.toolsets is None else self.toolsets

    @property
    def dynamic_toolsets(self) -> bool:
        """True when the unlisted toolsets are loaded too, for enable_toolsets to list on request."""
        return self.toolsets is None

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite3"

    @property
    def audit_path(self) -> Path | None:
        if self.audit_log is not None:
            return self.audit_log
        return self.state_dir / "audit.jsonl" if self.users_file is not None else None

    @property
    def exports_dir(self) -> Path:
        return self.state_dir / "exports"

    # Over HTTP, files are read only from here (DATABAR_MCP_IMPORT_DIR); unset: reading files is off there.
    import_dir: Path | None = None
    file_part_rows: int = Field(default=FILE_PART_ROWS, ge=1, le=MAX_BULK_ROWS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if key := env.get("DATABAR_API_KEY"):
            values["api_key"] = SecretStr(key.strip())
            values["api_key_source"] = "env DATABAR_API_KEY"
        elif key_file := env.get("DATABAR_API_KEY_FILE"):
            values["api_key"] = read_key_file(Path(key_file))
            values["api_key_source"] = f"file {key_file} (DATABAR_API_KEY_FILE)"
        if url := env.get("DATABAR_BASE_URL"):
            values["base_url"] = url
        if database_url := env.get("DATABAR_MCP_DATABASE_URL"):
            values["database_url"] = SecretStr(database_url.strip())
        elif url_file := env.get("DATABAR_MCP_DATABASE_URL_FILE"):  # a mounted secret: the URL holds a password
            try:
                values["database_url"] = SecretStr(Path(url_file).read_text(encoding="utf-8").strip())
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise KeyFileError(f"cannot read DATABAR_MCP_DATABASE_URL_FILE {url_file}: {reason}") from None
        if users_file := env.get("DATABAR_MCP_USERS_FILE"):
            values["users_file"] = Path(users_file)
        if audit_log := env.get("DATABAR_MCP_AUDIT_LOG"):
            values["audit_log"] = Path(audit_log)
        if state := env.get("DATABAR_MCP_STATE_DIR"):
            values["state_dir"] = Path(state)
        if import_dir := env.get("DATABAR_MCP_IMPORT_DIR"):
            values["import_dir"] = Path(import_dir)
        for name, var in (
            ("tool_deadline_s", "DATABAR_MCP_TOOL_DEADLINE"),
            ("result_budget_chars", "DATABAR_MCP_RESULT_BUDGET"),
            ("read_timeout_s", "DATABAR_MCP_READ_TIMEOUT"),
            ("duplicate_window_s", "DATABAR_MCP_DUPLICATE_WINDOW"),
            ("tracker_interval_s", "DATABAR_MCP_TRACKER_INTERVAL"),
            ("result_retention_days", "DATABAR_MCP_RESULT_RETENTION_DAYS"),
            ("toolsets", "DATABAR_MCP_TOOLSETS"),
            ("read_only", "DATABAR_MCP_READ_ONLY"),
            ("max_credits_per_call", "DATABAR_MCP_MAX_CREDITS_PER_CALL"),
            ("min_balance", "DATABAR_MCP_MIN_BALANCE"),
            ("confirm_above", "DATABAR_MCP_CONFIRM_ABOVE"),
            ("file_part_rows", "DATABAR_MCP_FILE_PART_ROWS"),
        ):
            if raw := env.get(var):
                values[name] = raw
        if level := env.get("DATABAR_MCP_LOG_LEVEL"):
            values["log_level"] = level.upper()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


# Table enrichments (runs inside Databar with no task id; progress is read from the table's rows).
TABLE_READS_PER_SECOND = 4.0  # progress reads of one table stay below the API's 5 requests/s per table
TABLE_READ_SLOWDOWN = 2.0  # a 429 on a progress read multiplies the interval between reads by this
TABLE_READ_INTERVAL_CAP_S = 5.0
TABLE_RUN_ROW_IDS_MAX = 10_000
TABLE_PREPARED_TTL_S = 10.0  # a run's pre-flight counts are reused this long (spend check, then the body)
TABLE_FINAL_READS_RESERVE_S = 2.5  # of a call's deadline, kept for counting a finished run's rows
