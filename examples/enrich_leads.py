#!/usr/bin/env python3
"""Find work emails for a CSV of leads through the databar-mcp server, as any MCP client would.

The script launches `python -m databar_mcp` as a subprocess over stdio with the official MCP client,
discovers the `email_getter` waterfall, runs it on every row with one `run_bulk_waterfall` call (keeping
on with `get_task` when the run outlasts the wait), reads every page of results and writes them to a CSV.

    python examples/enrich_leads.py                      # the local sandbox: no key, no credits
    DATABAR_API_KEY=... python examples/enrich_leads.py  # the real Databar API: spends credits
    python examples/enrich_leads.py --input my.csv --output out.csv --wait-seconds 20 --quiet

The input CSV needs the columns first_name, last_name and company (a domain such as acme.com); other
columns are carried through to the output unchanged. The output adds email, provider and verified.

Interrupted (Ctrl-C, a crash)? Run it again: the server's ledger hands back the task it already started for
the same rows, so nothing is paid twice. (With the default in-process sandbox the sandbox itself dies with
the script; resuming works against the real API or a standalone `databar-mcp sandbox`.)
Copy it and adapt WATERFALL and the output columns to run another waterfall.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import CallToolResult, TextContent

HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = HERE / "leads.csv"
DEFAULT_OUTPUT = HERE / "out" / "leads_enriched.csv"
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
        lines.extend(f"  - {f.get('field')}: {f.get('problem')}" for f in e.get("fields") or [])
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
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help=f"CSV to enrich (default {DEFAULT_INPUT})")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"CSV to write (default {DEFAULT_OUTPUT})")
    parser.add_argument(
        "--wait-seconds", type=float, default=20.0, help="seconds each tool call waits for the task (default 20)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or notes, only the summary")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sandbox", action="store_true", help="use the local sandbox even if DATABAR_API_KEY is set")
    mode.add_argument("--real", action="store_true", help="use the real Databar API (needs DATABAR_API_KEY)")
    return parser.parse_args(argv)


def use_real_api(args: argparse.Namespace) -> bool:
    return bool(args.real or (os.environ.get("DATABAR_API_KEY") and not args.sandbox))


def server_parameters(real: bool) -> StdioServerParameters:
    """Our server as a subprocess; the environment passes through (DATABAR_API_KEY, DATABAR_MCP_* ...)."""
    env = dict(os.environ)
    args = ["-m", "databar_mcp"]
    if not real:
        args.append("--sandbox")
        env.setdefault("DATABAR_MCP_LOG_LEVEL", "ERROR")  # the server would announce the sandbox on stderr
    return StdioServerParameters(command=sys.executable, args=args, env=env)


def read_leads(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return columns, rows


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
    missing = [name for name in waterfall["required_inputs"] if name not in columns]
    if missing:
        raise InputProblem(f"{args.input} lacks the column(s) {', '.join(missing)} that {WATERFALL} needs.")
    inputs = [*waterfall["required_inputs"], *waterfall["optional_inputs"]]
    params = [{k: row[k] for k in inputs if row.get(k)} for row in leads]
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
    columns, leads = read_leads(args.input)
    if not leads:
        print(f"{args.input} has no rows to enrich.", file=sys.stderr)
        return 1
    real = use_real_api(args)
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


def output_fields(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return dict.fromkeys(OUTPUT_COLUMNS, "")
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
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
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


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse_args()))
