"""A fault storm over every billable path, on both ledgers, with its figures (issues 13 and 22).

Each run picks a billable tool (bulk waterfall, bulk enrichment, bulk flow, table enrichment, table exporter),
plainly or as an MCP task, and a fault of its own: everything the sandbox can do to a billable POST (lost and
odd replies after the work, a 404 maintenance page after the work, an empty 404, a gateway's JSON 403, 5xx, 429
bursts, slow replies), and on PostgreSQL a real restart of the database while the POST is in flight or the
database stopped for a whole call. Three identical calls follow, as an agent re-calls after trouble,
alternating between two servers that share one ledger (a state dir's SQLite file, or one PostgreSQL database).
The user never acknowledges a re-send, so a second piece of work for one run is a double billing. Runs are
sequential so the work the sandbox did is pinned to its run. A per-call cap is set, so the rows that would pass
it must be refused before anything is sent.

    python -m bench.fault_storm [--runs 40] [--seed 1] [--ledger sqlite|postgresql|both]

Prints, per ledger and in total: faults injected, runs, billable POSTs, double billings, lost task ids (work
Databar did that the ledger neither holds nor records as a submission of unknown outcome), untyped errors
("Error executing tool" or an error without a structured body), credits past the cap.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import TOOLSETS, Settings
from databar_mcp.core.ledger.postgres import to_pg
from databar_mcp.sandbox import Fault, SandboxConfig, SandboxServer
from databar_mcp.sandbox.config import FaultKind

DEADLINE_S = 4.0
SLOW_S = 6.0
CAP = 40.0  # credits per call (DATABAR_MCP_MAX_CREDITS_PER_CALL)
EMAIL_FLOW = "3f1c9a52-7b2e-4d8a-9c61-0e5b2a7d4f10"
TERMINAL = {"completed", "failed", "cancelled"}

ROUTES = {
    "run_bulk_waterfall": "POST /v1/waterfalls/{identifier}/bulk-run",
    "run_bulk_enrichment": "POST /v1/enrichments/{enrichment_id}/bulk-run",
    "run_bulk_flow": "POST /v1/flows/{flow_id}/bulk-run",
    "run_table_enrichment": "POST /v1/table/{table_uuid}/run-enrichment/{processor_id}",
    "run_table_exporter": "POST /v1/table/{table_uuid}/run-exporter/{processor_id}",
}
AS_TASK = {"run_bulk_waterfall", "run_bulk_enrichment", "run_bulk_flow", "run_table_enrichment"}
TASK_TOOLS = {"run_bulk_waterfall", "run_bulk_enrichment", "run_bulk_flow"}  # those with a Databar task id


@dataclass(frozen=True)
class StormFault:
    name: str
    kind: FaultKind | None  # None: no HTTP fault (a ledger fault, or none at all)
    status: int = 503
    body: object = None
    times: int = 1
    ledger: str | None = None  # "restart" (PostgreSQL restarted mid-POST) or "down" (stopped for a call)


FAULTS: list[StormFault] = [
    StormFault("submit: reply lost after the work", "reset_after"),
    StormFault("submit: reset before the work", "reset_before"),
    StormFault("submit: 404 HTML maintenance page after the work", "status_after", 404),
    StormFault("submit: 404 empty body after the work", "status_after", 404, ""),
    StormFault("submit: 403 gateway JSON after the work", "status_after", 403, {"message": "Forbidden"}),
    StormFault("submit: 500", "status", 500),
    StormFault("submit: 502", "status", 502),
    StormFault("submit: slow past the deadline", "slow"),
    StormFault("submit: truncated JSON after the work", "truncated_after"),
    StormFault("submit: HTML 200 after the work", "html_after"),
    StormFault("submit: 302 after the work", "status_after", 302),
    StormFault("submit: 408 after the work", "status_after", 408),
    StormFault("submit: 429 Retry-After 0 x2", "rate_limit", times=2),
    StormFault("submit: Databar's own 404 (a refusal)", "status", 404),
    StormFault("ledger: PostgreSQL restarted while the POST is in flight", None, ledger="restart"),
    StormFault("ledger: PostgreSQL stopped for a call", None, ledger="down"),
    StormFault("none", None),
]


@dataclass
class Figures:
    faults: int = 0
    runs: int = 0
    posts: int = 0
    work: int = 0
    double_billed: list[str] = field(default_factory=lambda: list[str]())
    lost: list[str] = field(default_factory=lambda: list[str]())
    untyped: list[str] = field(default_factory=lambda: list[str]())
    past_cap: float = 0.0
    restarts: int = 0
    slowest: float = 0.0
    codes: dict[str, int] = field(default_factory=lambda: dict[str, int]())

    def add(self, other: Figures) -> None:
        for name in ("faults", "runs", "posts", "work", "past_cap", "restarts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.double_billed += other.double_billed
        self.lost += other.lost
        self.untyped += other.untyped
        self.slowest = max(self.slowest, other.slowest)
        for code, n in other.codes.items():
            self.codes[code] = self.codes.get(code, 0) + n


def settings(sandbox: SandboxServer, state: Path, database_url: str | None) -> Settings:
    return Settings(
        base_url=sandbox.base_url,
        api_key=SecretStr(sandbox.api_key),
        state_dir=state,
        database_url=SecretStr(database_url) if database_url else None,
        tool_deadline_s=DEADLINE_S,
        deadline_margin_s=0.5,
        backoff_base_s=0.05,
        backoff_cap_s=0.2,
        poll_first_s=0.05,
        poll_cap_s=0.5,
        read_timeout_s=5.0,
        connect_timeout_s=1.0,
        tracker_interval_s=0.5,
        toolsets=TOOLSETS,
        max_credits_per_call=CAP,
    )


class Ledger:
    """Read-only SQL on the ledger the servers share (SQLite file or PostgreSQL database)."""

    def __init__(self, state: Path, database_url: str | None) -> None:
        self.state, self.url = state, database_url

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        if self.url is None:
            with sqlite3.connect(self.state / "ledger.sqlite3") as conn:
                return list(conn.execute(sql, params).fetchall())
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(to_pg(sql), params).fetchall())


def is_untyped(result: CallToolResult | dict[str, Any]) -> bool:
    """An error the agent cannot act on: the SDK's "Error executing tool", or no structured error body."""
    if isinstance(result, dict):
        is_error, texts = bool(result.get("isError")), [str(c.get("text", "")) for c in result.get("content", [])]
    else:
        is_error, texts = bool(result.is_error), [c.text for c in result.content if isinstance(c, TextContent)]
    if any("Error executing tool" in t for t in texts):
        return True
    if not is_error:
        return False
    try:
        return not (texts[0].startswith("Error [") and "code" in json.loads(texts[1]))
    except (IndexError, ValueError):
        return True


def code_of(result: CallToolResult | dict[str, Any]) -> str:
    if isinstance(result, dict):
        is_error, texts = bool(result.get("isError")), [str(c.get("text", "")) for c in result.get("content", [])]
        body: dict[str, Any] = result.get("structuredContent") or {}
    else:
        is_error, texts = bool(result.is_error), [c.text for c in result.content if isinstance(c, TextContent)]
        body = result.structured_content or {}
    if is_error:
        try:
            return str(json.loads(texts[1])["code"])
        except (IndexError, ValueError, KeyError):
            return "untyped"
    return str(body.get("status") or ("done" if body.get("done") else "ok"))


async def raw(client: Client, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One raw request through the session (task requests: the typed client has no task support)."""
    session = client.session
    data: dict[str, Any] = {"method": method, "params": dict(params)}
    opts: dict[str, Any] = {}
    session._stamp(data, opts)  # pyright: ignore[reportPrivateUsage, reportArgumentType]
    if method.startswith("tasks/") and "taskId" in params:
        opts.setdefault("headers", {})["Mcp-Name"] = params["taskId"]
    dispatcher = session._dispatcher  # pyright: ignore[reportPrivateUsage]
    return await dispatcher.send_raw_request(method, data["params"], opts)  # pyright: ignore[reportArgumentType]


async def as_task(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """The tool called as an MCP task (2025-11-25), followed to its end; its result as a raw dict."""
    created = await raw(client, "tools/call", {"name": tool, "arguments": args, "task": {}})
    if "task" not in created:
        return created  # answered at once (e.g. refused before any task was made)
    task_id = created["task"]["taskId"]
    with anyio.fail_after(60):
        while (await raw(client, "tasks/get", {"taskId": task_id}))["status"] not in TERMINAL:  # noqa: ASYNC110
            await anyio.sleep(0.1)  # polling is what a tasks client does
    return await raw(client, "tasks/result", {"taskId": task_id})


async def setup_args(client: Client, tool: str, i: int, rng: random.Random) -> dict[str, Any]:
    """Arguments of one run of `tool`, unique to run `i` (a table of its own for the table tools)."""

    async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await client.call_tool(name, arguments)
        assert not result.is_error and result.structured_content is not None, (name, result.content)
        return result.structured_content

    n = rng.randint(1, 16)  # enough rows, at times, to pass the cap
    if tool == "run_bulk_waterfall":
        rows = [{"first_name": f"P{i}x{j}", "last_name": "Storm", "company": "example.com"} for j in range(n)]
        return {"waterfall": "email_getter", "params": rows, "enrichments": [833, 966]}
    if tool == "run_bulk_enrichment":
        return {"enrichment_id": 120, "params": [{"domain": f"s{i}x{j}.example.com"} for j in range(n)]}
    if tool == "run_bulk_flow":
        people = [{"first_name": f"P{i}x{j}", "last_name": "Storm", "domain": "example.com"} for j in range(n)]
        return {"flow_id": EMAIL_FLOW, "inputs": people}
    if tool == "run_table_enrichment":
        columns = ["First name", "Last name", "Domain"]
        table = (await call("create_table", {"name": f"Storm {i}", "columns": columns}))["identifier"]
        people = [{"First name": f"F{i}x{j}", "Last name": "Storm", "Domain": "example.com"} for j in range(n)]
        await call("insert_rows", {"table_uuid": table, "rows": people})
        mapping = {"first_name": {"column": "First name"}, "last_name": {"column": "Last name"}}
        mapping["company"] = {"column": "Domain"}
        added = await call(
            "add_table_enrichment",
            {"table_uuid": table, "enrichment": "email_getter", "mapping": mapping, "enrichments": [833, 966]},
        )
        return {"table_uuid": table, "enrichment_id": int(added["enrichment_id"])}
    table = (await call("create_table", {"name": f"Export {i}", "columns": ["Email"]}))["identifier"]
    await call("insert_rows", {"table_uuid": table, "rows": [{"Email": f"s{i}x{j}@example.com"} for j in range(n)]})
    mapping = {"email": {"column": "Email"}}
    added = await call("add_table_exporter", {"table_uuid": table, "exporter_id": 41, "mapping": mapping})
    return {"table_uuid": table, "table_exporter_id": added["table_exporter_id"], "confirm": True}


async def storm_one_ledger(runs: int, seed: int, backend: str) -> Figures:
    rng = random.Random(f"{seed}:{backend}")
    figures = Figures()
    config = SandboxConfig(api_key="storm", task_base_seconds=0.3, row_seconds=0.01, balance=1e9)
    postgres: Any = None
    database_url: str | None = None
    if backend == "postgresql":
        from tests.postgres_server import start_postgres  # a real PostgreSQL from Debian's packages

        postgres = start_postgres()
        database_url = postgres.new_database()
    faults = [f for f in FAULTS if f.ledger is None or backend == "postgresql"]
    tools = list(ROUTES)
    try:
        with tempfile.TemporaryDirectory() as tmp, SandboxServer(config) as sandbox:
            state = Path(tmp) / "state"
            ledger = Ledger(state, database_url)
            async with (
                Client(build_server(settings(sandbox, state, database_url)), mode="legacy") as a,
                Client(build_server(settings(sandbox, state, database_url)), mode="legacy") as b,
            ):
                for i in range(runs):
                    fault = faults[i % len(faults)] if i < len(faults) else rng.choice(faults)
                    tool = tools[i % len(tools)] if i < len(faults) else rng.choice(tools)
                    plain = tool not in AS_TASK or rng.random() < 0.5
                    await one_run(a, b, sandbox, ledger, postgres, figures, i, rng, tool, fault, plain=plain)
    finally:
        if postgres is not None:
            postgres.stop()
    return figures


async def one_run(
    a: Client,
    b: Client,
    sandbox: SandboxServer,
    ledger: Ledger,
    postgres: Any,
    figures: Figures,
    i: int,
    rng: random.Random,
    tool: str,
    fault: StormFault,
    *,
    plain: bool,
) -> None:
    route = ROUTES[tool]
    args = await setup_args(a, tool, i, rng)
    before_posts, before_work = sandbox.state.counts[route], sandbox.state.work[route]
    before_tasks, before_balance = set(sandbox.state.tasks), sandbox.state.balance
    label = f"run {i}: {tool}{'' if plain else ' (MCP task)'}, {fault.name}"
    if fault.name != "none":
        figures.faults += max(1, fault.times)
    if fault.kind is not None:
        delay = SLOW_S if fault.kind == "slow" else 0.0
        sandbox.state.inject(
            Fault(
                route=route, kind=fault.kind, status=fault.status, body=fault.body, times=fault.times, delay=delay,
                retry_after=0,
            )
        )  # fmt: skip
    restart: Callable[[], Awaitable[None]] | None = None
    if fault.ledger == "restart":
        sandbox.state.inject(Fault(route=route, kind="slow", delay=1.5))  # the POST is in flight during the restart

        async def restart_mid_post() -> None:
            with anyio.fail_after(30):
                while sandbox.state.counts[route] == before_posts:  # noqa: ASYNC110 - the sandbox's own counter
                    await anyio.sleep(0.01)
            await anyio.to_thread.run_sync(postgres.restart)
            figures.restarts += 1

        restart = restart_mid_post
    for n, (client, wait) in enumerate(((a, rng.choice([0, 1, 3])), (b, 0), (a, 3))):
        arguments = {**args, "wait_seconds": wait}
        started = time.monotonic()
        down = fault.ledger == "down" and n == 0
        if down:
            await anyio.to_thread.run_sync(postgres.halt)
        result: CallToolResult | dict[str, Any] = {"isError": True, "content": [{"type": "text", "text": "no answer"}]}
        try:
            async with anyio.create_task_group() as tg:
                if restart is not None and n == 0:
                    tg.start_soon(restart)
                result = (
                    await client.call_tool(tool, arguments) if plain or n else await as_task(client, tool, arguments)
                )
        except MCPError as exc:  # a protocol error for what is no bug of ours: as untyped as it gets
            result = {"isError": True, "content": [{"type": "text", "text": f"protocol error: {exc}"}]}
        finally:
            if down:
                await anyio.to_thread.run_sync(postgres.resume)
                figures.restarts += 1
        figures.slowest = max(figures.slowest, time.monotonic() - started) if plain or n else figures.slowest
        code = code_of(result)
        figures.codes[code] = figures.codes.get(code, 0) + 1
        if is_untyped(result):
            figures.untyped.append(f"{label}: {str(result)[:200]}")
    if fault.kind == "slow":
        await anyio.sleep(SLOW_S - 2)  # let the sandbox finish the slow request it is still serving
    await anyio.sleep(0.8)  # a tracker pass, and the tasks' billing
    figures.runs += 1
    figures.posts += sandbox.state.counts[route] - before_posts
    work = sandbox.state.work[route] - before_work
    figures.work += work
    if work > 1:
        figures.double_billed.append(label)
    figures.past_cap += max(0.0, (before_balance - sandbox.state.balance) - CAP)
    created = set(sandbox.state.tasks) - before_tasks
    figures.lost += [f"{label}: {lost}" for lost in lost_work(ledger, tool, created, work)]


def lost_work(ledger: Ledger, tool: str, created: set[str], work: int) -> list[str]:
    """Work Databar did for the run that the ledger neither holds (its task id) nor records as a submission of
    unknown outcome (the reply was lost or odd, or still 'pending': never re-sent)."""
    if not work:
        return []
    last = ledger.rows(
        """SELECT s.outcome, s.task_id, t.status FROM submissions s LEFT JOIN tasks t ON t.task_id = s.task_id
           WHERE s.tool = ? ORDER BY s.id DESC LIMIT 1""",
        tool,
    )
    if not last:
        return ["no submission recorded"]
    outcome, task_id, status = last[0]
    if outcome in ("unknown", "pending") or status == "unknown_to_databar":
        return []  # recorded as may-have-billed: never sent again unasked
    if tool not in TASK_TOOLS:
        return [] if outcome == "accepted" else [f"recorded {outcome}"]
    held = {str(r[0]) for r in ledger.rows("SELECT task_id FROM tasks")}
    return sorted(created - held) + ([] if task_id in created else [f"recorded task {task_id} is not the run's"])


def report(name: str, f: Figures) -> None:
    print(f"== {name}")
    print(f"faults injected       {f.faults} ({f.restarts} PostgreSQL stops/restarts)")
    print(f"runs                  {f.runs} (3 identical calls each, 2 servers, 1 ledger)")
    print(f"billable POSTs        {f.posts} (work done {f.work})")
    print(f"double billings       {len(f.double_billed)} {f.double_billed[:3]}")
    print(f"lost task ids         {len(f.lost)} {f.lost[:3]}")
    print(f"untyped errors        {len(f.untyped)} {f.untyped[:3]}")
    print(f"credits past the cap  {f.past_cap:g} (cap {CAP:g} per call)")
    print(f"slowest plain call    {f.slowest:.2f} s against a {DEADLINE_S:g} s deadline")
    print(f"outcomes              {dict(sorted(f.codes.items()))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=40, help="runs per ledger")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ledger", choices=["sqlite", "postgresql", "both"], default="both")
    ns = parser.parse_args()
    total = Figures()
    for backend in ("sqlite", "postgresql") if ns.ledger == "both" else (ns.ledger,):
        figures = anyio.run(storm_one_ledger, ns.runs, ns.seed, backend)
        report(f"{backend} ledger", figures)
        total.add(figures)
    report("total", total)
    failed = total.double_billed or total.lost or total.untyped or total.past_cap > 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
