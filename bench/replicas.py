"""Replicas behind a real load balancer (issue 18): many agents, one replica killed and restarted mid-run.

    .venv/bin/python -m bench.replicas                          # 50 agents, 60 s: PostgreSQL x3, then SQLite x1
    .venv/bin/python -m bench.replicas --agents 10 --seconds 10 # a quick look
    .venv/bin/python -m bench.replicas --json bench/results/replicas.json
    .venv/bin/python -m bench.replicas --out /tmp/replicas      # where logs and tracebacks are kept
    .venv/bin/python -m bench.replicas --ledger-runs 1000000    # the same load on an empty and a 1M-run ledger

Everything a run leaves is kept in its output folder (default bench/results/replicas.tmp/, git-ignored), one
folder per backend: every replica's stderr, haproxy's, and errors.log with the full traceback of every
unexpected error an agent met, so a figure that looks wrong can be investigated. The machine's load average
before and during the run is recorded next to the figures.

What it does: starts the sandbox in this process, a PostgreSQL server from Debian (tests/postgres_server.py)
and N replicas of our server as their own processes (`python -m databar_mcp --transport http`, stateless, one
ledger database, shared request-state keys), behind haproxy from Debian on loopback (round-robin, health
checks on /readyz). Agents (official MCP clients over streamable HTTP through haproxy) call run_bulk_waterfall
in a loop: half of the calls repeat one of a few shared inputs (identical runs, which must be billed once),
half send an input of their own. At 40% of the time one replica is killed (SIGKILL) and at 60% it is started
again on its port. Then every task id is read back through every replica directly.

The counts that must be 0: double billings (an input Databar received more than once), lost task ids (a task
Databar created that the ledger does not hold, or an id an agent got that the ledger does not hold), and tasks
some replica could not read. Errors are calls that failed (a call in flight on the killed replica fails: the
client sees its connection drop); they are reported, not hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.big_ledger import build_postgres, sample_runs, sqlite_ledger
from databar_mcp.core.tracker import BATCH as TRACKER_BATCH
from databar_mcp.sandbox import SandboxConfig, SandboxServer

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_POLL = "GET /v1/tasks/{task_id}"
CATCH_UP_S = 600.0  # the most a prefilled ledger's backlog may take the tracker before the load starts
KEY = "sk-replicas-bench-0a1b2c3d4e"
SHARED_INPUTS = 5  # identical runs are drawn from these
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "replicas.tmp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def haproxy_binary() -> str | None:
    """haproxy from Debian: installed here (as root, with apt-get) only when it is missing."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    apt = shutil.which("apt-get")
    if found is None and os.geteuid() == 0 and apt is not None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [apt, "install", "-y", "-qq", "haproxy"]
        if subprocess.run(install, env=env, capture_output=True, timeout=600, check=False).returncode != 0:
            subprocess.run([apt, "update", "-qq"], env=env, capture_output=True, timeout=300, check=False)
            subprocess.run(install, env=env, capture_output=True, timeout=600, check=False)
        found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    return found


HAPROXY_CONFIG = """\
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout check 2s
    retries 3
    option redispatch
frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 500ms fall 3 rise 2
{servers}
"""


@dataclass
class Replica:
    port: int
    env: dict[str, str]
    stderr: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        with self.stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "databar_mcp", "--transport", "http", "--port", str(self.port)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica did not start: {self.stderr.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Cluster:
    lb_url: str
    replicas: list[Replica]
    haproxy: subprocess.Popen[bytes]


@contextmanager
def cluster(
    sandbox: SandboxServer, workdir: Path, *, replicas: int, database_url: str | None, haproxy: str
) -> Iterator[Cluster]:
    """N replicas on one ledger (PostgreSQL, or one SQLite state dir when database_url is None) behind haproxy."""
    state_keys = ",".join(secrets.token_urlsafe(32) for _ in range(2))
    shared_state = workdir / "state"
    members: list[Replica] = []
    for i in range(replicas):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABAR_API_KEY": sandbox.api_key,
            "DATABAR_BASE_URL": sandbox.base_url,
            "DATABAR_MCP_STATE_DIR": str(shared_state if database_url is None else workdir / f"state{i}"),
            "DATABAR_MCP_TRACKER_INTERVAL": "2",
            "DATABAR_MCP_HTTP_STATELESS": "1",
            "DATABAR_MCP_REQUEST_STATE_KEYS": state_keys,
            "DATABAR_MCP_LOG_LEVEL": os.environ.get("REPLICA_LOG_LEVEL", "WARNING"),
        }
        if database_url is not None:
            env["DATABAR_MCP_DATABASE_URL"] = database_url
        members.append(Replica(free_port(), env, workdir / f"replica{i}.stderr"))
    lb_port = free_port()
    servers = "\n".join(f"    server r{i} 127.0.0.1:{r.port} check" for i, r in enumerate(members))
    config = workdir / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=lb_port, servers=servers))
    started: list[Replica] = []
    proxy: subprocess.Popen[bytes] | None = None
    try:
        for member in members:
            member.start()
            started.append(member)
        with (workdir / "haproxy.log").open("ab") as proxy_log:
            proxy = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=proxy_log, stderr=proxy_log)
        lb = f"http://127.0.0.1:{lb_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(lb + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if proxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start")
            time.sleep(0.05)
        yield Cluster(lb_url=lb + "/mcp", replicas=members, haproxy=proxy)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for member in started:
            member.stop()


def run_input(tag: str) -> dict[str, Any]:
    rows = [{"first_name": f"{tag}-{i}", "last_name": "Doe", "company": "example.com"} for i in range(2)]
    return {"waterfall": "email_getter", "params": rows, "enrichments": [833], "wait_seconds": 5}


@dataclass
class Load:
    calls: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    task_ids: dict[str, str] = field(default_factory=dict)  # task id -> the input tag that got it
    reused: int = 0
    tracebacks: list[str] = field(default_factory=list)  # every unexpected error, whole (written to errors.log)
    loads: list[float] = field(default_factory=list)  # the load average, sampled each second of the run
    ready_ms: list[float] = field(default_factory=list)  # each replica's /readyz, asked directly 4 times a second
    ready_failures: int = 0  # /readyz answers other than 200 from a replica that was running

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def unexpected(self, exc: BaseException) -> None:
        self.error(leaf(exc))
        stamp = time.strftime("%H:%M:%S")
        self.tracebacks.append(f"--- {stamp} {leaf(exc)}\n{''.join(traceback.format_exception(exc))}")


@asynccontextmanager
async def mcp_session(url: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def agent(url: str, index: int, until: float, load: Load, rng: random.Random) -> None:
    n = 0
    while time.monotonic() < until:
        try:
            async with mcp_session(url) as client:
                while time.monotonic() < until:
                    n += 1
                    tag = f"shared{rng.randrange(SHARED_INPUTS)}" if rng.random() < 0.5 else f"a{index}-{n}"
                    started = time.monotonic()
                    result = await client.call_tool("run_bulk_waterfall", run_input(tag))
                    load.calls += 1
                    body = result.structured_content or {}
                    if result.is_error:  # error results carry their body as text: the first line names the code
                        summary = next((getattr(b, "text", "") for b in result.content), "")
                        load.error(summary.split("\n", 1)[0][:80] or "tool_error")
                        continue
                    load.latencies_ms.append((time.monotonic() - started) * 1000)
                    load.task_ids[str(body["task_id"])] = tag
                    load.reused += bool(body.get("reused"))
        except Exception as exc:  # the replica under this call was killed: count it, open a new session
            load.calls += 1
            load.unexpected(exc)
            await anyio.sleep(0.1)


async def sample_ready(replicas: list[Replica], until: float, load: Load, folder: Path) -> None:
    """What haproxy's health check sees, timed from a process of its own (bench/readyz_probe.py): timed in this
    process, the figure also held this event loop, busy with every agent's client and the sandbox."""
    out = folder / "readyz.json"
    ports = ",".join(str(r.port) for r in replicas)
    seconds = max(0.0, until - time.monotonic())
    command = [sys.executable, "-m", "bench.readyz_probe", "--ports", ports, "--seconds", f"{seconds:.1f}"]
    await anyio.run_process([*command, "--out", str(out)], stdout=None, stderr=None, cwd=ROOT)
    figures = json.loads(out.read_text())
    load.ready_ms.extend(float(ms) for ms in figures["ms"])
    load.ready_failures += int(figures["not_ready"])


async def sample_load(until: float, load: Load) -> None:
    while time.monotonic() < until:
        load.loads.append(os.getloadavg()[0])
        await anyio.sleep(1.0)


def leaf(exc: BaseException) -> str:
    """The innermost exception of an exception group (what actually went wrong), by type and message."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {str(exc)[:80]}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Figures:
    backend: str
    replicas: int
    agents: int
    seconds: float
    calls: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int]
    reused: int
    submissions_sent: int  # bulk-run POSTs that reached the sandbox
    submissions_billed: int  # those it answered 2xx: the ones that created a task (a 429 or a cut POST did not)
    double_billings: int
    lost_task_ids: int
    orphaned_by_kill: int  # tasks whose id died with the killed replica (their runs stay unsettled)
    unsettled_submissions: int
    unreadable_tasks: int
    tasks_checked: int
    killed_and_restarted: bool
    load_before: float  # the one-minute load average as the run began
    load_during_mean: float
    load_during_max: float
    logs: str  # the folder holding every replica's stderr, haproxy's log and errors.log
    ledger_runs: int = 0  # runs already in the ledger when the load began (bench/big_ledger.py)
    readyz_p50_ms: float = 0.0
    readyz_p99_ms: float = 0.0
    readyz_max_ms: float = 0.0
    readyz_failures: int = 0
    task_polls: int = 0  # GET /v1/tasks/{id} the sandbox answered in the window (calls' waits and the tracker's)
    tracker_caught_up_s: float = 0.0  # how long the tracker took to reach every task the ledger came with


OVERDUE = "SELECT COUNT(*) FROM tasks WHERE next_poll_at IS NOT NULL AND next_poll_at <= ?"


def overdue(database_url: str | None, state_dir: Path) -> int:
    """Unfinished tasks whose poll is due and not yet made (the tracker's backlog)."""
    now = time.time()
    if database_url is None:
        with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
            return int(conn.execute(OVERDUE, (now,)).fetchone()[0])
    with psycopg.connect(database_url) as conn:
        row = conn.execute(OVERDUE.replace("?", "%s"), (now,)).fetchone()  # pyright: ignore[reportArgumentType]
    return int(row[0]) if row else 0


async def tracker_caught_up(database_url: str | None, state_dir: Path) -> float:
    """Wait (and return how long) until the tracker has taken every task the prefilled ledger came with: fewer
    than one pass's worth left overdue (the newest few, inside Databar's grace period, are polled every pass).

    The built ledger's newest 1,000 runs are still processing, as task ids the sandbox never issued: the tracker
    polls them 50 a pass (each a 404, then settled as unknown to Databar), about 40 s of extra work that has
    nothing to do with the ledger's size. The load starts once that is done, so the two phases compare the same
    work on a small and a big ledger; how long it took is reported (issue 26: the tracker reaches every task).
    """
    started = time.monotonic()
    while (left := await anyio.to_thread.run_sync(overdue, database_url, state_dir)) >= TRACKER_BATCH:
        if time.monotonic() - started > CATCH_UP_S:
            raise RuntimeError(f"the tracker left {left} tasks unpolled for {CATCH_UP_S:g} s: see the replicas' logs")
        await anyio.sleep(1.0)
    say(f"the tracker reached every task the ledger came with in {time.monotonic() - started:.0f} s")
    return time.monotonic() - started


LEDGER_QUERIES = (
    "SELECT task_id FROM tasks",
    "SELECT fingerprint, COUNT(*) FROM submissions WHERE outcome = 'accepted' GROUP BY fingerprint",
    "SELECT COUNT(*) FROM submissions WHERE outcome IN ('pending', 'unknown')",
)


def ledger_tasks(database_url: str | None, state_dir: Path) -> tuple[set[str], dict[str, int], int]:
    """Every task id in the ledger, the accepted submissions per fingerprint, and the unsettled submissions."""
    tasks_q, fps_q, unsettled_q = LEDGER_QUERIES
    if database_url is None:
        with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
            tasks = {str(r[0]) for r in conn.execute(tasks_q)}
            fps = {str(r[0]): int(r[1]) for r in conn.execute(fps_q)}
            unsettled = int(conn.execute(unsettled_q).fetchone()[0])
        return tasks, fps, unsettled
    with psycopg.connect(database_url) as conn:
        tasks = {str(r[0]) for r in conn.execute(tasks_q)}
        fps = {str(r[0]): int(r[1]) for r in conn.execute(fps_q)}
        row = conn.execute(unsettled_q).fetchone()
    return tasks, fps, int(row[0]) if row else 0


READERS = 8  # requests reading back at once, per replica
RPC_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


async def reads_back(http: httpx2.AsyncClient, replica: Replica, task_id: str) -> bool:
    """One get_task as a single JSON-RPC POST (the replicas are stateless): the task comes back, not an error.
    An MCP client session per read costs the bench's own process more than the replica's answer."""
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_task", "arguments": {"task_id": task_id, "limit": 1}},
    }
    reply = await http.post(replica.url, json=call, headers=RPC_HEADERS)
    text = reply.text
    payloads = [line[5:] for line in text.splitlines() if line.startswith("data:")] or [text]
    for payload in payloads:
        try:
            message = json.loads(payload)
        except ValueError:
            continue
        result = message.get("result") if isinstance(message, dict) else None
        if isinstance(result, dict):
            body = result.get("structuredContent") or {}
            return not result.get("isError") and body.get("task_id") == task_id
    return False


async def unreadable(replicas: list[Replica], task_ids: list[str], *, readers: int = READERS) -> int:
    """How many (task, replica) pairs fail to read the task: each replica is asked for every task.

    `readers` requests at a time per replica, every replica at once, each read one POST: one MCP call after
    another, the ~7,000 reads after a 50-agent minute took 8 minutes on an idle machine, the run looking hung."""
    failures = 0

    async def reader(http: httpx2.AsyncClient, replica: Replica, share: list[str]) -> None:
        nonlocal failures
        for task_id in share:
            if not await reads_back(http, replica, task_id):
                failures += 1

    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60)) as http, anyio.create_task_group() as tg:
        for replica in replicas:
            for i in range(readers):
                if share := task_ids[i::readers]:
                    tg.start_soon(reader, http, replica, share)
    return failures


async def measure(
    sandbox: SandboxServer,
    workdir: Path,
    *,
    backend: str,
    replicas: int,
    agents: int,
    seconds: float,
    database_url: str | None,
    haproxy: str,
    kill: bool = True,
    ledger_runs: int = 0,
) -> Figures:
    before = set(sandbox.state.tasks)
    load = Load()
    load_before = os.getloadavg()[0]
    with cluster(sandbox, workdir, replicas=replicas, database_url=database_url, haproxy=haproxy) as group:
        caught_up_s = await tracker_caught_up(database_url, workdir / "state") if ledger_runs else 0.0
        sandbox.state.reset_counts()
        say(f"{backend} x{replicas}, {ledger_runs:,} runs in the ledger: {agents} agents for {seconds:g} s")
        started = time.monotonic()
        until = started + seconds
        victim = group.replicas[-1]
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample_load, until, load)
            tg.start_soon(sample_ready, group.replicas, until, load, workdir)
            for i in range(agents):
                tg.start_soon(agent, group.lb_url, i, until, load, random.Random(i))
            if kill:
                await anyio.sleep(seconds * 0.4)
                victim.kill()
                await anyio.sleep(seconds * 0.2)
                await anyio.to_thread.run_sync(victim.start)
        elapsed = time.monotonic() - started
        await anyio.sleep(3)  # the trackers store what calls left unfinished
        created = set(sandbox.state.tasks) - before
        in_ledger, per_fingerprint, unsettled = ledger_tasks(database_url, workdir / "state")
        returned = set(load.task_ids)
        # A POST in flight when its replica was killed may have created a task whose id never came back: it
        # is not lost silently as long as its run is in the ledger as unsettled (never re-sent, listed for
        # the user to check). Lost: ids an agent got that the ledger lacks, and orphans beyond those runs.
        orphaned = len(created - in_ledger)
        lost = len(returned - in_ledger) + max(0, orphaned - unsettled)
        double = sum(n - 1 for n in per_fingerprint.values() if n > 1)
        check = sorted(created | returned)  # the runs whose caller died with the replica too
        say(f"{backend}: {load.calls} calls; reading {len(check)} tasks back through each of {replicas} replicas")
        broken = await unreadable(group.replicas, check)
    (workdir / "errors.log").write_text("".join(load.tracebacks) or "no unexpected errors\n")
    loads = load.loads or [load_before]
    return Figures(
        backend=backend,
        replicas=replicas,
        agents=agents,
        seconds=round(elapsed, 1),
        calls=load.calls,
        calls_per_s=round(load.calls / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(percentile(load.latencies_ms, 0.5), 1),
        p99_ms=round(percentile(load.latencies_ms, 0.99), 1),
        errors=load.errors,
        error_kinds=load.error_kinds,
        reused=load.reused,
        submissions_sent=sandbox.state.counts[BULK_RUN],
        submissions_billed=sandbox.state.work[BULK_RUN],
        task_polls=sandbox.state.counts[TASK_POLL],
        tracker_caught_up_s=round(caught_up_s, 1),
        double_billings=double,
        lost_task_ids=lost,
        orphaned_by_kill=orphaned,
        unsettled_submissions=unsettled,
        unreadable_tasks=broken,
        tasks_checked=len(check),
        killed_and_restarted=kill and replicas > 1,
        load_before=round(load_before, 2),
        load_during_mean=round(sum(loads) / len(loads), 2),
        load_during_max=round(max(loads), 2),
        logs=str(workdir),
        ledger_runs=ledger_runs,
        readyz_p50_ms=round(percentile(load.ready_ms, 0.5), 1),
        readyz_p99_ms=round(percentile(load.ready_ms, 0.99), 1),
        readyz_max_ms=round(max(load.ready_ms, default=0.0), 1),
        readyz_failures=load.ready_failures,
    )


def sandbox_config() -> SandboxConfig:
    return SandboxConfig(api_key=KEY, task_base_seconds=0.05, row_seconds=0.002, balance=10_000_000.0)


async def main_async(args: argparse.Namespace) -> list[Figures]:
    from tests.postgres_server import PostgresServer, start_postgres

    haproxy = haproxy_binary()
    if haproxy is None:
        raise SystemExit("haproxy is not installed (apt-get install haproxy, as root)")
    sizes = [0] + ([args.ledger_runs] if args.ledger_runs else [])
    samples = await sample_runs() if args.ledger_runs else None
    figures: list[Figures] = []
    server: PostgresServer = start_postgres()
    try:
        with SandboxServer(sandbox_config()) as sandbox:
            for backend in args.backends.split(","):
                for runs in sizes:
                    folder = fresh(args.out / (backend if not runs else f"{backend}-{runs}"))
                    url = server.new_database() if backend == "postgresql" else None
                    if runs and samples is not None:
                        say(f"{backend}: building a {runs:,}-run ledger")
                        started = time.monotonic()
                        if url is not None:
                            await anyio.to_thread.run_sync(build_postgres, url, runs, samples, time.time())
                        else:
                            (folder / "state").mkdir()
                            path = folder / "state" / "ledger.sqlite3"
                            await anyio.to_thread.run_sync(sqlite_ledger, path, runs, samples, args.sqlite_ledger_cache)
                        say(f"{backend}: a {runs:,}-run ledger ready in {time.monotonic() - started:.0f} s")
                    figures.append(
                        await measure(
                            sandbox,
                            folder,
                            backend=backend,
                            replicas=3 if backend == "postgresql" else 1,
                            agents=args.agents,
                            seconds=args.seconds,
                            database_url=url,
                            haproxy=haproxy,
                            kill=backend == "postgresql",
                            ledger_runs=runs,
                        )
                    )
    finally:
        server.stop()
    return figures


def say(line: str) -> None:
    """A step of the run as it happens, with the time: a long step shows which one it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def fresh(folder: Path) -> Path:
    """An empty folder for one backend's run (an earlier run's logs there are replaced, not mixed in)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description="Replicas behind haproxy: double billings, lost and unread tasks.")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--backends", default="postgresql,sqlite", help="which to run, in this order")
    parser.add_argument("--out", type=Path, default=OUT, help=f"logs and tracebacks are kept here (default {OUT})")
    parser.add_argument(
        "--ledger-runs", type=int, default=0, help="also run the same load on a ledger holding this many runs"
    )
    parser.add_argument(
        "--sqlite-ledger-cache",
        type=Path,
        default=None,
        help="keep the prefilled SQLite ledger here and copy it on later runs (built first when missing)",
    )
    args = parser.parse_args()
    began = time.monotonic()
    figures = anyio.run(main_async, args)
    say(f"done in {time.monotonic() - began:.0f} s")
    for f in figures:
        print(
            f"{f.backend:10} x{f.replicas}, {f.ledger_runs:,} runs in the ledger: {f.calls} calls in {f.seconds}s = "
            f"{f.calls_per_s}/s, p50 {f.p50_ms} ms, "
            f"p99 {f.p99_ms} ms, errors {f.errors} {f.error_kinds}, reused {f.reused}, sent {f.submissions_sent} "
            f"(billed {f.submissions_billed}), "
            f"double billings {f.double_billings}, lost task ids {f.lost_task_ids} (orphaned by the kill "
            f"{f.orphaned_by_kill}, unsettled runs {f.unsettled_submissions}), "
            f"unreadable {f.unreadable_tasks}/{f.tasks_checked * f.replicas}; load average {f.load_before} before, "
            f"{f.load_during_mean} mean / {f.load_during_max} max during; /readyz p50 {f.readyz_p50_ms} ms, p99 "
            f"{f.readyz_p99_ms} ms, max {f.readyz_max_ms} ms, {f.readyz_failures} not ready; task polls "
            f"{f.task_polls}, tracker caught up in {f.tracker_caught_up_s} s; logs in {f.logs}"
        )
    for backend in dict.fromkeys(f.backend for f in figures):
        empty, *big = [f for f in figures if f.backend == backend]
        for f in big:
            ratio = f.calls_per_s / empty.calls_per_s if empty.calls_per_s else 0.0
            print(f"{backend}: calls/s with {f.ledger_runs:,} runs / empty = {ratio:.2f}x (target >= 0.9x)")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    bad = any(f.double_billings or f.lost_task_ids or f.unreadable_tasks for f in figures)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
