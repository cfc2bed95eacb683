"""The demo (`databar-mcp demo`): find work emails for a CSV of leads through the server, as any MCP client would.

The script launches `python -m databar_mcp` as a subprocess over stdio with the official MCP client,
discovers the `email_getter` waterfall, runs it on every row with one `run_bulk_waterfall` call (keeping
on with `get_task` when the run outlasts the wait), reads every page of results and writes them to a CSV.

    databar-mcp demo                                     # the bundled leads on the local sandbox: no credits
    databar-mcp demo --input my.csv --output out.csv --wait-seconds 20 --quiet
    DATABAR_API_KEY=... databar-mcp demo --real          # the real Databar API: spends credits, asks first

The input (CSV in any common dialect and encoding, JSON Lines or .xlsx) needs columns for first_name,
last_name and company (a domain such as acme.com); common spellings ("First Name", "Company Domain") are
matched, and a missing one is refused naming the columns the file has. Other columns are carried through to
the output unchanged. The output adds email, provider and verified.

Interrupted (Ctrl-C, a crash)? Run it again: the server's ledger hands back the task it already started for
the same rows, so nothing is paid twice (the in-process sandbox keeps its state in the state dir too).
Copy this file (examples/enrich_leads.py runs it) and adapt WATERFALL and the output columns to run another
waterfall.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, cast

import anyio
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import CallToolResult, TextContent

DEFAULT_INPUT = Path(__file__).resolve().parent / "demo_leads.csv"
DEFAULT_OUTPUT = Path("leads_enriched.csv")  # in the current folder
MAX_WAIT_SECONDS = 25.0  # the server's tool deadline: a longer wait would be cut there anyway
WATERFALL = "email_getter"
OUTPUT_COLUMNS = ("email", "provider", "verified")
BAR_WIDTH = 30


class ToolFailed(Exception):
    """A tool answered with a structured error: {code, http_status, message, next_steps, task_id?}."""

    def __init__(self, tool: str, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "unknown error")))
        self.tool = tool
        self.error = error

    def describe(self) -> str:
        e = self.error
        status = f" (HTTP {e['http_status']})" if e.get("http_status") else ""
        lines = [f"Error from {self.tool} [{e.get('code', 'unknown')}]{status}: {e.get('message', '')}"]
        if e.get("task_id"):
            lines.append(f"  task_id: {e['task_id']}")
        fields = cast(list[dict[str, Any]], e.get("fields") or [])
        lines.extend(f"  - {csv_lines(str(f.get('field')))}: {f.get('problem')}" for f in fields)
        if e.get("next_steps"):
            lines.append("  Next steps:")
            lines.extend(f"  - {step}" for step in e["next_steps"])
        return "\n".join(lines)


class InputProblem(Exception):
    """The input CSV cannot be used (for example a required column is missing)."""


class ProgressBar:
    """An MCP progress callback that draws one line on stderr: [#####.....] 23/50 rows, 12 found so far."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._drawn = False
        self._width = 0

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        if not self.enabled:
            return
        share = min(1.0, progress / total) if total else 0.0
        filled = round(share * BAR_WIDTH)
        label = message or (f"{progress:g}/{total:g} rows" if total else f"{progress:g} rows")
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {label}"
        self._width = max(self._width, len(line))
        sys.stderr.write("\r" + line.ljust(self._width))
        sys.stderr.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Find work emails for a CSV of leads with databar-mcp.")
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="CSV to enrich (default: 50 bundled leads)")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"CSV to write (default ./{DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--wait-seconds", type=float, default=20.0, help="seconds each tool call waits for the task (default 20)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or notes, only the summary")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sandbox", action="store_true", help="use the local sandbox even if DATABAR_API_KEY is set")
    mode.add_argument(
        "--real", action="store_true", help="use the real Databar API (needs DATABAR_API_KEY; spends credits)"
    )
    parser.add_argument("--yes", action="store_true", help="with --real: do not ask before spending")
    args = parser.parse_args(argv)
    if args.wait_seconds > MAX_WAIT_SECONDS or args.wait_seconds < 0:
        clamped = min(max(args.wait_seconds, 0.0), MAX_WAIT_SECONDS)
        print(
            f"--wait-seconds {args.wait_seconds:g} is outside 0..{MAX_WAIT_SECONDS:g} (a tool call answers by the "
            f"server's {MAX_WAIT_SECONDS:g} s deadline); using {clamped:g} and waiting again with get_task as needed.",
            file=sys.stderr,
        )
        args.wait_seconds = clamped
    return args


def use_real_api(args: argparse.Namespace) -> bool:
    """The real API only when asked with --real: a key in the environment alone never spends credits."""
    if not args.real and os.environ.get("DATABAR_API_KEY") and not args.sandbox:
        note(args, "DATABAR_API_KEY is set, but the demo uses the local sandbox unless you pass --real.")
    return bool(args.real)


def confirm_spending(args: argparse.Namespace, rows: int) -> bool:
    """Ask before a real run spends credits (--yes skips the question; no terminal means no)."""
    return ask_to_spend(bool(args.yes), f"Enrich {rows} rows")


def ask_to_spend(yes: bool, what: str) -> bool:
    """`what` on the real Databar API, asked at the terminal: --yes skips the question; no terminal means no."""
    if yes:
        return True
    if not sys.stdin.isatty():
        print("--real spends credits: pass --yes to run without a terminal to confirm on.", file=sys.stderr)
        return False
    answer = input(f"{what} on the real Databar API, spending credits? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def server_parameters(real: bool) -> StdioServerParameters:
    """Our server as a subprocess; the environment passes through (DATABAR_API_KEY, DATABAR_MCP_* ...)."""
    env = dict(os.environ)
    args = ["-m", "databar_mcp"]
    if not real:
        args.append("--sandbox")
        env.setdefault("DATABAR_MCP_LOG_LEVEL", "ERROR")  # the server would announce the sandbox on stderr
    return StdioServerParameters(command=sys.executable, args=args, env=env)


def read_leads(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The file's columns and rows (core.files: CSV in any common dialect and encoding, JSON Lines or .xlsx),
    read strictly: an unclosed quote is reported as such, with its line, never as a missing input."""
    from databar_mcp.core.files import FileProblem, iter_rows, open_input

    if not path.exists():
        raise InputProblem(f"{path}: no such file.")
    try:
        source = open_input(path)
        rows = [
            {column: ("" if value is None else str(value)).strip() for column, value in row.values.items()}
            for row in iter_rows(source)
        ]
    except FileNotFoundError:
        raise InputProblem(f"{path}: no such file.") from None
    except FileProblem as exc:
        raise InputProblem(exc.message if str(path) in exc.message else f"{path}: {exc.message}") from None
    except OSError as exc:
        raise InputProblem(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    return list(source.columns), rows


def mapped_params(
    path: Path, columns: list[str], leads: list[dict[str, str]], waterfall: dict[str, Any]
) -> list[dict[str, str]]:
    """Each row's inputs, from the columns that hold them: the same names, or common spellings ("First Name",
    "Company Domain"); a missing one is refused naming the columns the file has."""
    from databar_mcp.core.files import InputSpec, MissingColumns, map_columns

    specs = [InputSpec(n, True) for n in waterfall["required_inputs"]]
    specs += [InputSpec(n) for n in waterfall["optional_inputs"]]
    try:
        mapping = map_columns(columns, specs)
    except MissingColumns as exc:
        raise InputProblem(f"{path}: {exc.message}") from None
    return [{name: row[column] for name, column in mapping.used.items() if row.get(column)} for row in leads]


def csv_lines(text: str) -> str:
    """Row errors name `params[i]`: say the CSV line instead (line 1 is the header)."""
    return re.sub(r"params\[(\d+)\]", lambda m: f"CSV line {int(m.group(1)) + 2}", text)


def error_body(result: CallToolResult) -> dict[str, Any]:
    """An error result's body: its first text block is a one-line summary, the second the body as JSON."""
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    try:
        return json.loads(texts[1])
    except (IndexError, ValueError):
        return {"code": "unknown", "message": " ".join(texts) or "the tool failed without a message"}


def structured(tool: str, result: CallToolResult) -> dict[str, Any]:
    """The structured content of a tool result; a structured error becomes ToolFailed."""
    content = result.structured_content
    if result.is_error:
        raise ToolFailed(tool, error_body(result))
    if content is None:
        raise ToolFailed(tool, {"code": "unexpected", "message": "the tool returned no structured content"})
    return content


async def call(client: Client, tool: str, arguments: dict[str, Any], bar: ProgressBar | None = None) -> dict[str, Any]:
    try:
        result = await client.call_tool(tool, arguments, progress_callback=bar)
    finally:
        if bar is not None:
            bar.finish()
    return structured(tool, result)


async def find_waterfall(client: Client) -> dict[str, Any]:
    listing = await call(client, "list_waterfalls", {"query": WATERFALL})
    for waterfall in listing["waterfalls"]:
        if waterfall["identifier"] == WATERFALL:
            return waterfall
    raise ToolFailed("list_waterfalls", {"code": "not_found", "message": f"no waterfall named {WATERFALL}"})


def note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


async def run(
    client: Client, args: argparse.Namespace, columns: list[str], leads: list[dict[str, str]], real: bool
) -> tuple[dict[int, Any], dict[str, Any]]:
    """Discover, run, wait and page: every result row by input index, and the last task view."""
    bar = ProgressBar(enabled=not args.quiet)
    waterfall = await find_waterfall(client)
    params = mapped_params(args.input, columns, leads, waterfall)
    providers = [p for p in waterfall["providers"] if p["enabled_by_default"]] or waterfall["providers"][:1]
    verifier = waterfall["email_verifiers"][0] if waterfall["email_verifiers"] else None
    arguments: dict[str, Any] = {
        "waterfall": WATERFALL,
        "params": params,
        "enrichments": [p["id"] for p in providers],
        "wait_seconds": args.wait_seconds,
    }
    if verifier is not None:
        arguments["email_verifier"] = verifier["id"]
    note(
        args,
        f"Enriching {len(leads)} rows with {WATERFALL} on {'the real Databar API' if real else 'the local sandbox'}"
        f" (providers: {', '.join(p['name'] for p in providers)}"
        + (f"; verifier: {verifier['name'] or verifier['id']}" if verifier else "")
        + ")",
    )

    view = await call(client, "run_bulk_waterfall", arguments, bar)
    task_id = view["task_id"]
    if view.get("reused"):
        # Interrupted earlier? The server's ledger returns that run instead of paying for the rows again.
        note(args, f"Picked up task {task_id} from an earlier run of the same rows: no new credits spent.")
    while not view["done"]:
        note(args, f"Task {task_id} is {view['status']}; waiting with get_task.")
        view = await call(client, "get_task", {"task_id": task_id, "wait_seconds": args.wait_seconds}, bar)

    results: dict[int, Any] = {row["index"]: row["data"] for row in view["rows"]}
    while view.get("next_offset") is not None:
        offset = view["next_offset"]
        view = await call(client, "get_task", {"task_id": task_id, "offset": offset})
        if not view["rows"]:
            raise ToolFailed("get_task", {"code": "unexpected", "message": f"an empty page at offset {offset}"})
        results.update((row["index"], row["data"]) for row in view["rows"])
    return results, view


async def enrich(args: argparse.Namespace) -> int:
    try:
        columns, leads = read_leads(args.input)
    except InputProblem as exc:
        print(exc, file=sys.stderr)
        return 2
    if not leads:
        print(f"{args.input} has no rows to enrich.", file=sys.stderr)
        return 1
    real = use_real_api(args)
    if real and not confirm_spending(args, len(leads)):
        print("Nothing was sent.", file=sys.stderr)
        return 1
    if not real:
        refill_sandbox_credits(args)
    started = time.monotonic()
    async with Client(server_parameters(real)) as client:
        # Handled inside the block: an exception leaving it would come out wrapped in an ExceptionGroup.
        try:
            results, view = await run(client, args, columns, leads, real)
        except ToolFailed as exc:
            print(exc.describe(), file=sys.stderr)
            return 1
        except InputProblem as exc:
            print(exc, file=sys.stderr)
            return 2

    write_output(args.output, columns, leads, results)
    found = sum(1 for i in range(len(leads)) if results.get(i) is not None)
    credits = view.get("credits_spent")
    spent = "unknown" if credits is None else f"{credits:g}"
    print(
        f"{found}/{len(leads)} rows enriched, {spent} credits spent, {time.monotonic() - started:.1f} s"
        f" -> {display_path(args.output)}"
    )
    return 0


def refill_sandbox_credits(args: argparse.Namespace) -> None:
    """The local sandbox keeps its state in the state dir, credits included (a demo run again finds its run):
    after about nine demos it had none left and refused the next. Its credits are an emulator's, never the
    user's, so the demo puts them back to the sandbox's starting balance, and says so."""
    from databar_mcp.app.cli import sandbox_state_path
    from databar_mcp.config import Settings
    from databar_mcp.sandbox import SandboxConfig
    from databar_mcp.sandbox.state import SandboxState

    path = sandbox_state_path(Settings.from_env().state_dir)
    if not path.exists():
        return
    starting = SandboxConfig().balance
    state = SandboxState(SandboxConfig(), persist_path=path)
    left = state.balance
    if left >= starting:
        return
    state.balance = starting
    state.save()
    note(args, f"The local sandbox's credits had run down to {left:,.4g} over earlier runs: put back to {starting:,g}.")


def output_fields(found: Any) -> dict[str, str]:
    if not isinstance(found, dict):
        return dict.fromkeys(OUTPUT_COLUMNS, "")
    data = cast(dict[str, Any], found)
    verified = data.get("verified")
    return {
        "email": str(data.get("email") or ""),
        "provider": str(data.get("provider") or ""),
        "verified": "" if verified is None else str(verified).lower(),
    }


def write_output(path: Path, columns: list[str], leads: list[dict[str, str]], results: dict[int, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [*columns, *(c for c in OUTPUT_COLUMNS if c not in columns)]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for index, lead in enumerate(leads):
            writer.writerow({**lead, **output_fields(results.get(index))})


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        group = cast(BaseExceptionGroup[BaseException], exc)
        return [leaf for inner in group.exceptions for leaf in leaves(inner)]
    return [exc]


async def main(args: argparse.Namespace) -> int:
    try:
        return await enrich(args)
    except (MCPError, OSError, ExceptionGroup) as exc:
        problems = [e for e in leaves(exc) if isinstance(e, MCPError | OSError)]
        if not problems:
            raise
        print(f"Could not talk to the databar-mcp server: {problems[0]}", file=sys.stderr)
        return 1


def run_demo(argv: list[str] | None = None) -> int:
    """`databar-mcp demo [flags]` and examples/enrich_leads.py."""
    return anyio.run(main, parse_args(argv))
