"""A ledger of a year of a team's runs, built by SQL bulk insert (issue 26): 1,000,000 runs, 50 users.

Each run copies one of a few real runs: the sandbox enriches lead lists through our own server, and what it
left in the ledger (the request, the task's counts and credits, the compressed result) is the template. Runs
spread evenly over the past year, oldest first; the newest UNFINISHED are still processing (the tracker's
work), the rest completed with their results stored. The zlib ratio of those real results is measured too.

    .venv/bin/python -m bench.big_ledger --runs 1000000 --sqlite /tmp/big/ledger.sqlite3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psycopg
import psycopg.errors
from mcp import Client
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.ledger.postgres import PostgresBackend
from databar_mcp.core.ledger.sqlite import SqliteBackend
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.sandbox import SandboxConfig, SandboxServer

YEAR_S = 365 * 24 * 3600.0
USERS = 50
UNFINISHED = 1_000
CHUNK = 20_000

SUBMISSION_COLUMNS = (
    "id", "tool", "endpoint", "fingerprint", "request_json", "rows", "estimated_credits", "created_at", "outcome",
    "task_id", "owner",
)  # fmt: skip
TASK_COLUMNS = (
    "task_id", "submission_id", "status", "progress_json", "credits_spent", "rows_total", "rows_with_data",
    "submitted_at", "updated_at", "completed_at", "owner", "next_poll_at",
)  # fmt: skip
RESULT_COLUMNS = ("task_id", "data_json", "data_z", "saved_at")


@dataclass(frozen=True)
class Template:
    """One real sandbox run as the ledger stored it."""

    tool: str
    endpoint: str
    request_json: str
    rows: int
    estimated_credits: float | None
    progress_json: str | None
    credits_spent: float | None
    rows_total: int | None
    rows_with_data: int | None
    data_z: bytes
    data_json_len: int


@dataclass(frozen=True)
class Samples:
    templates: list[Template]
    json_bytes: int  # the results as JSON
    zlib_bytes: int  # the same, as stored

    @property
    def ratio(self) -> float:
        return self.json_bytes / self.zlib_bytes if self.zlib_bytes else 0.0


def leads(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    first = ["John", "Ann", "Mary", "Bob", "Li", "Sara", "Omar", "Eva", "Raj", "Kim"]
    last = ["Doe", "Lee", "Major", "Stone", "Chen", "Novak", "Haddad", "Berg", "Patel", "Park"]
    domains = ["example.com", "acme.io", "globex.com", "initech.net", "nowhere.invalid", "umbrella.org"]
    return [
        {"first_name": rng.choice(first), "last_name": rng.choice(last), "company": rng.choice(domains)}
        for _ in range(n)
    ]


async def sample_runs(count: int = 12) -> Samples:
    """Real runs through our server against the sandbox; the ledger rows they left, as templates."""
    config = SandboxConfig(api_key="sandbox", task_base_seconds=0.01, row_seconds=0.0, balance=1e9)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(config) as sandbox:
        settings = Settings(
            base_url=sandbox.base_url, api_key=SecretStr(sandbox.api_key), state_dir=Path(tmp), tracker_interval_s=3600
        )
        async with Client(build_server(settings)) as client:
            for i in range(count):
                size = (4, 10, 25, 50)[i % 4]
                args = {"waterfall": "email_getter", "params": leads(size, i), "enrichments": [833, 966]}
                result = await client.call_tool("run_bulk_waterfall", args)
                assert not result.is_error, result.content
        with sqlite3.connect(settings.ledger_path) as conn:
            rows = conn.execute(
                """SELECT s.tool, s.endpoint, s.request_json, s.rows, s.estimated_credits, t.progress_json,
                          t.credits_spent, t.rows_total, t.rows_with_data, r.data_z
                   FROM tasks t JOIN submissions s ON s.id = t.submission_id JOIN results r ON r.task_id = t.task_id"""
            ).fetchall()
    templates = [
        Template(*row[:9], data_z=bytes(row[9]), data_json_len=len(zlib.decompress(bytes(row[9])))) for row in rows
    ]
    return Samples(
        templates,
        json_bytes=sum(t.data_json_len for t in templates),
        zlib_bytes=sum(len(t.data_z) for t in templates),
    )


def generate(runs: int, samples: Samples, now: float, seed: int = 26) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """(submission, task, result or None) rows, oldest first."""
    rng = random.Random(seed)
    templates = samples.templates
    for i in range(runs):
        t = templates[i % len(templates)]
        created = now - YEAR_S * (1 - i / runs) - 60
        owner = f"user{rng.randrange(USERS):02d}"
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        fingerprint = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        unfinished = i >= runs - UNFINISHED
        sub = (i + 1, t.tool, t.endpoint, fingerprint, t.request_json, t.rows, t.estimated_credits, created,
               "accepted", task_id, owner)  # fmt: skip
        if unfinished:
            task = (task_id, i + 1, "processing", None, None, None, None, created, created, None, owner, created)
            yield sub, task, ()
            continue
        done = created + 30
        task = (task_id, i + 1, "completed", t.progress_json, t.credits_spent, t.rows_total, t.rows_with_data,
                created, done, done, owner, None)  # fmt: skip
        yield sub, task, (task_id, "", t.data_z, done)


def chunks(rows: Iterator[tuple[tuple[Any, ...], ...]]) -> Iterator[list[tuple[tuple[Any, ...], ...]]]:
    chunk: list[tuple[tuple[Any, ...], ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


async def create_schema(ledger: Ledger) -> None:
    await ledger.open()
    await ledger.aclose()


def build_sqlite(path: Path, runs: int, samples: Samples, now: float) -> float:
    """The ledger file at `path` (created and migrated by our own code first); returns seconds taken."""
    started = time.monotonic()
    anyio.run(create_schema, Ledger(path))
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        # Indexes are built once at the end (much faster than maintained row by row): the ledger's own ones.
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        indexes = indexes.fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        for chunk in chunks(generate(runs, samples, now)):
            conn.execute("BEGIN")
            conn.executemany(insert_sql("submissions", SUBMISSION_COLUMNS), [c[0] for c in chunk])
            conn.executemany(insert_sql("tasks", TASK_COLUMNS), [c[1] for c in chunk])
            conn.executemany(insert_sql("results", RESULT_COLUMNS), [c[2] for c in chunk if c[2]])
            conn.execute("COMMIT")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.monotonic() - started


def sqlite_ledger(path: Path, runs: int, samples: Samples, cache: Path | None) -> None:
    """Build the prefilled SQLite ledger at `path`, or copy it from `cache` (built there first when missing:
    building a million runs takes minutes, copying seconds). The cache's name should say its size."""
    if cache is None:
        build_sqlite(path, runs, samples, time.time())
        return
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name + ".partial")
        partial.unlink(missing_ok=True)
        build_sqlite(partial, runs, samples, time.time())
        partial.rename(cache)
    # A cache built by older code is migrated here, once: otherwise every copy is, by the first replica to open
    # it, and the bench's first seconds on the big ledger measure a migration (v7 rewrites every task row).
    anyio.run(create_schema, Ledger(SqliteBackend(cache)))
    shutil.copyfile(cache, path)


class BuildStalled(RuntimeError):
    """The bulk load waited on a lock held by another session: the message names that session and its query."""


class LockWatch:
    """Watches one session from a connection of its own: once it has waited on a lock for `patience_s`, the
    sessions blocking it are written down and its statement is cancelled, so a build fails loudly with the
    blocking query instead of sitting at no CPU (a live replica's transaction, the tracker's claim, a DDL)."""

    def __init__(self, url: str, pid: int, *, patience_s: float, every_s: float = 1.0) -> None:
        self.url = url
        self.pid = pid
        self.patience_s = patience_s
        self.every_s = every_s
        self.finding: str | None = None  # why the session was cancelled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="build-lock-watch", daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        waiting_since: float | None = None
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.every_s):
                row = conn.execute(
                    "SELECT wait_event_type, wait_event, query, pg_blocking_pids(pid) FROM pg_stat_activity"
                    " WHERE pid = %s",
                    (self.pid,),
                ).fetchone()
                if row is None or row[0] != "Lock":
                    waiting_since = None
                    continue
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since < self.patience_s:
                    continue
                blockers = conn.execute(
                    "SELECT pid, datname, application_name, state, now() - xact_start, query FROM pg_stat_activity"
                    " WHERE pid = ANY(%s)",
                    (list(row[3]),),
                ).fetchall()
                held = "; ".join(
                    f"pid {b[0]} on {b[1]} ({b[2] or 'no name'}, {b[3]}, transaction open {b[4]}): "
                    f"{' '.join(str(b[5]).split())[:300]}"
                    for b in blockers
                )
                self.finding = (
                    f"the build waited {self.patience_s:g} s on a {row[1]} lock for "
                    f"{' '.join(str(row[2]).split())[:200]!r}, blocked by {held or 'sessions now gone'}"
                )
                conn.execute("SELECT pg_cancel_backend(%s)", (self.pid,))
                return


def build_postgres(url: str, runs: int, samples: Samples, now: float, *, lock_patience_s: float = 180.0) -> float:
    """The ledger in the database at `url` (migrated by our own code first, then COPY); returns seconds taken.

    Raises BuildStalled, naming the blocking session and its query, when a statement waits on a lock for
    `lock_patience_s` (nothing else should be using a database being built)."""
    started = time.monotonic()
    anyio.run(create_schema, Ledger(PostgresBackend(url)))
    with (
        psycopg.connect(url, autocommit=True) as conn,
        LockWatch(url, conn.info.backend_pid, patience_s=lock_patience_s) as watch,
    ):
        try:
            _load(conn, runs, samples, now)
        except psycopg.errors.QueryCanceled as exc:
            if watch.finding is None:
                raise
            raise BuildStalled(watch.finding) from exc
    return time.monotonic() - started


def _load(conn: psycopg.Connection[Any], runs: int, samples: Samples, now: float) -> None:
    """COPY the runs in, with the ledger's indexes dropped first and built again at the end."""
    indexes = conn.execute(
        """SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
           AND tablename IN ('submissions', 'tasks', 'results') AND indexname NOT LIKE '%%_pkey'"""
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")  # pyright: ignore[reportCallIssue, reportArgumentType]
    for chunk in chunks(generate(runs, samples, now)):
        with conn.transaction(), conn.cursor() as cur:
            for table, columns, index in (
                ("submissions", SUBMISSION_COLUMNS, 0),
                ("tasks", TASK_COLUMNS, 1),
                ("results", RESULT_COLUMNS, 2),
            ):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # pyright: ignore[reportArgumentType]
                    for row in chunk:
                        if row[index]:
                            copy.write_row(row[index])
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("SELECT setval(pg_get_serial_sequence('submissions', 'id'), (SELECT MAX(id) FROM submissions))")
    # What autovacuum would do over the next minutes, done now: a ledger a year old is vacuumed (visibility map,
    # hint bits, frozen rows) and its pages are on disk. Left to autovacuum and the checkpointer, that work ran
    # inside the replicas bench's timed minute on the big ledger and cut its calls/s, not the ledger's size.
    conn.execute("VACUUM (FREEZE, ANALYZE)")
    conn.execute("CHECKPOINT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--sqlite", type=Path, default=None)
    parser.add_argument("--postgres", default=None, help="a database URL")
    args = parser.parse_args()
    samples = anyio.run(sample_runs)
    print(
        f"{len(samples.templates)} real sandbox results: {samples.json_bytes:,} B as JSON, {samples.zlib_bytes:,} B "
        f"compressed: {samples.ratio:.1f}x"
    )
    now = time.time()
    if args.sqlite is not None:
        print(f"sqlite: {args.runs:,} runs in {build_sqlite(args.sqlite, args.runs, samples, now):.0f} s")
    if args.postgres is not None:
        print(f"postgresql: {args.runs:,} runs in {build_postgres(args.postgres, args.runs, samples, now):.0f} s")
    print(json.dumps({"ratio": round(samples.ratio, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
