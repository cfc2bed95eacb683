"""`databar-mcp enrich`: a list file through a waterfall, an enrichment or a flow, from a script.

    databar-mcp enrich --waterfall email_getter --input leads.csv --output out.csv
    databar-mcp enrich --enrichment 123 --input people.xlsx --columns linkedin_url=Profile --skip-bad-rows
    DATABAR_API_KEY=... databar-mcp enrich --flow FLOW_ID --input in.jsonl --output out.jsonl --real --yes

It goes through the same code as the tools: it launches the server over stdio (as the demo does) and calls the
file form of the run tool (input_file, output_file) until the job is done, so the spend guard, the ledger, the
duplicate guard and resuming are the server's own. Interrupted? Run the same command again: the job continues
where it stopped and no part is sent twice. On the sandbox unless --real (which asks before spending, or
takes --yes). A progress bar on a terminal; one summary line otherwise.

Exit codes: 0 done, 1 failed, 2 bad input (the file, its rows, the mapping), 3 needs the user's confirmation
or refused by the spend guard.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, MCPError
from mcp.client.session import ElicitationFnT
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from databar_mcp.app.demo import ProgressBar, error_body, leaves, server_parameters

DONE, FAILED, BAD_INPUT, REFUSED = 0, 1, 2, 3
BAD_INPUT_CODES = frozenset({"validation_error", "not_found"})
REFUSED_CODES = frozenset({"spend_limit", "confirmation_required", "spend_guard_unavailable", "insufficient_credits"})
WAIT_SECONDS = 20.0
MAX_CALLS = 10_000  # a job that never ends is our bug: stop rather than loop forever


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="databar-mcp enrich", description="Enrich a CSV, JSON Lines or .xlsx list through databar-mcp."
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--waterfall", help="waterfall identifier, e.g. email_getter")
    what.add_argument("--enrichment", type=int, help="enrichment id")
    what.add_argument("--flow", help="flow id")
    parser.add_argument("--input", type=Path, required=True, help="the list: .csv, .tsv, .jsonl or .xlsx")
    parser.add_argument("--output", type=Path, help="where results go (default: the server's exports folder)")
    parser.add_argument("--columns", help="input=column pairs, comma separated, e.g. company=Website,first_name=Given")
    parser.add_argument("--skip-bad-rows", action="store_true", help="send the good rows, leave bad ones empty")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sandbox", action="store_true", help="use the local sandbox (the default)")
    mode.add_argument("--real", action="store_true", help="use the real Databar API (DATABAR_API_KEY; spends credits)")
    parser.add_argument("--yes", action="store_true", help="with --real: do not ask before spending")
    return parser.parse_args(argv)


def column_map(text: str | None) -> dict[str, str] | None:
    """`a=b,c=d` -> {"a": "b", "c": "d"}; ValueError naming a pair without '='."""
    if not text:
        return None
    out: dict[str, str] = {}
    for pair in text.split(","):
        name, sep, column = pair.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ValueError(f"--columns: {pair!r} is not input=column")
        out[name.strip()] = column.strip()
    return out


def tool_call(args: argparse.Namespace, columns: dict[str, str] | None) -> tuple[str, dict[str, Any]]:
    """The run tool and its file-form arguments: absolute paths (the server's working folder is not ours)."""
    arguments: dict[str, Any] = {"input_file": str(args.input.expanduser().absolute())}
    if args.output is not None:
        arguments["output_file"] = str(args.output.expanduser().absolute())
    if columns:
        arguments["columns"] = columns
    if args.skip_bad_rows:
        arguments["skip_bad_rows"] = True
    arguments["wait_seconds"] = WAIT_SECONDS
    if args.waterfall is not None:
        return "run_bulk_waterfall", {"waterfall": args.waterfall, **arguments}
    if args.enrichment is not None:
        return "run_bulk_enrichment", {"enrichment_id": args.enrichment, **arguments}
    return "run_bulk_flow", {"flow_id": args.flow, **arguments}


def confirm_real(args: argparse.Namespace) -> bool:
    from databar_mcp.app.demo import ask_to_spend  # the demo's rule: --real asks, --yes skips the question

    return ask_to_spend(bool(args.yes), f"Enrich {args.input}")


def ask_user(args: argparse.Namespace) -> ElicitationFnT:
    """The spend guard's question, put to the person at the terminal (--yes answers it; no terminal: declined)."""

    async def elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        if args.yes:
            return ElicitResult(action="accept", content={"confirm": True})
        if not sys.stdin.isatty():
            return ElicitResult(action="decline")
        answer = await anyio.to_thread.run_sync(lambda: input(f"{params.message} [y/N] "))
        yes = answer.strip().lower() in ("y", "yes")
        return ElicitResult(action="accept", content={"confirm": yes})

    return elicit


def exit_code(body: dict[str, Any]) -> int:
    code = str(body.get("code", ""))
    if code in REFUSED_CODES:
        return REFUSED
    if code in BAD_INPUT_CODES:
        return BAD_INPUT
    return FAILED


def describe(body: dict[str, Any]) -> str:
    lines = [f"Error [{body.get('code', 'unknown')}]: {body.get('message', '')}"]
    steps: list[Any] = list(body.get("next_steps") or [])
    lines += [f"  - {step}" for step in steps]
    return "\n".join(lines)


async def drive(args: argparse.Namespace, tool: str, arguments: dict[str, Any]) -> int:
    """Call the file form until the job is done; the summary line on stdout."""
    bar = ProgressBar(enabled=not args.quiet and sys.stderr.isatty())
    started = time.monotonic()
    async with Client(server_parameters(args.real), elicitation_callback=ask_user(args)) as client:
        for _ in range(MAX_CALLS):
            try:
                result: CallToolResult = await client.call_tool(tool, arguments, progress_callback=bar)
            finally:
                bar.finish()
            if result.is_error:
                body = error_body(result)
                print(describe(body), file=sys.stderr)
                return exit_code(body)
            view: dict[str, Any] = dict(result.structured_content or {})
            if view.get("done"):
                print(summary(view, result, time.monotonic() - started))
                return DONE
        print(f"The job did not finish after {MAX_CALLS} calls.", file=sys.stderr)
        return FAILED


def summary(view: dict[str, Any], result: CallToolResult, seconds: float) -> str:
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    output = text.split("Output: ", 1)[1].split(" (", 1)[0] if "Output: " in text else "?"
    credits = view.get("credits_spent")
    spent = "unknown" if credits is None else f"{credits:g}"
    return (
        f"{view.get('status')}: {view.get('rows_with_data', 0):,}/{view.get('rows_total', 0):,} rows with data, "
        f"{spent} credits spent, {seconds:.1f} s -> {output} (job {view.get('task_id')})"
    )


async def main(args: argparse.Namespace) -> int:
    try:
        columns = column_map(args.columns)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return BAD_INPUT
    if not args.input.expanduser().is_file():
        print(f"{args.input}: no such file.", file=sys.stderr)
        return BAD_INPUT
    if args.real and not os.environ.get("DATABAR_API_KEY") and not os.environ.get("DATABAR_API_KEY_FILE"):
        print("--real needs DATABAR_API_KEY.", file=sys.stderr)
        return BAD_INPUT
    if args.real and not confirm_real(args):
        print("Nothing was sent.", file=sys.stderr)
        return REFUSED
    tool, arguments = tool_call(args, columns)
    try:
        return await drive(args, tool, arguments)
    except (MCPError, OSError, ExceptionGroup) as exc:
        problems = [e for e in leaves(exc) if isinstance(e, MCPError | OSError)]
        if not problems:
            raise
        print(f"Could not talk to the databar-mcp server: {problems[0]}", file=sys.stderr)
        return FAILED


def run_enrich(argv: list[str]) -> int:
    """`databar-mcp enrich [flags]`."""
    return anyio.run(main, parse_args(argv))
