#!/usr/bin/env python3
"""Write examples/agent_transcript.md from a real agent session against the local sandbox.

The transcript is generated, never hand-written, so it cannot drift from what the server really answers:
each step is a real MCP tool call (through the official client, in-process) and the markdown shows what
the model sent and what came back. Run it again after changing a tool:

    python examples/make_transcript.py            # rewrites examples/agent_transcript.md
    python examples/make_transcript.py -o out.md  # anywhere else

Task ids, ages and timings differ between runs; the sandbox's providers are deterministic, so the
enriched rows do not.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, TextContent
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import TOOL_DEADLINE_S, Settings
from databar_mcp.sandbox import SandboxConfig, SandboxServer

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "agent_transcript.md"
LEADS = [
    {"first_name": "John", "last_name": "Doe", "company": "example.com"},
    {"first_name": "Priya", "last_name": "Raman", "company": "northwind-analytics.com"},
    {"first_name": "Marcus", "last_name": "Feld", "company": "brightpath.io"},
    {"first_name": "Sofia", "last_name": "Lindqvist", "company": "nordhaven.se"},
    {"first_name": "Samuel", "last_name": "Adeyemi", "company": "unknown-co.invalid"},
    {"first_name": "Chloe", "last_name": "Martin", "company": "example.com"},
]
# Slow enough that a short first wait ends with status "processing", as real providers do.
SANDBOX = SandboxConfig(task_base_seconds=1.0, row_seconds=0.15)
FIRST_WAIT_S = 0  # the call returns once Databar has the task: the same answer however busy the machine
LIST_ITEMS = 3  # items shown per list in the abbreviated structured content
TEXT_CHARS = 160


@dataclass
class Step:
    title: str
    why: str
    tool: str
    arguments: dict[str, Any]
    result: CallToolResult
    progress: list[str] = field(default_factory=list[str])
    note: str = ""


def abbreviate(value: Any, depth: int = 0) -> Any:
    """Shorten long lists and strings so a reader sees the shape, not every row."""
    if isinstance(value, dict):
        return {str(k): abbreviate(v, depth + 1) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        items: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        shown = [abbreviate(v, depth + 1) for v in items[:LIST_ITEMS]]
        return shown + ([f"… {len(items) - LIST_ITEMS} more"] if len(items) > LIST_ITEMS else [])
    if isinstance(value, str) and len(value) > TEXT_CHARS:
        return value[:TEXT_CHARS] + "…"
    return value


def compact(value: Any, indent: int = 0, width: int = 100) -> str:
    """JSON indented like json.dumps(indent=2), but any object or list that fits on one line stays on one."""
    flat = json.dumps(value, ensure_ascii=False)
    if indent + len(flat) <= width or not isinstance(value, dict | list) or not value:
        return flat
    pad, end = " " * (indent + 2), " " * indent
    if isinstance(value, dict):
        pairs: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
        items = [f"{pad}{json.dumps(k)}: {compact(v, indent + 2, width)}" for k, v in pairs.items()]
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    elements: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
    return "[\n" + ",\n".join(f"{pad}{compact(v, indent + 2, width)}" for v in elements) + f"\n{end}]"


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


class Session:
    """Calls tools the way a model does, and records every call for the transcript."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.steps: list[Step] = []

    async def call(self, title: str, why: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        seen: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            text = message or f"{progress:g}/{total or 0:g}"
            if not seen or seen[-1] != text:  # a poll that saw no change says nothing new
                seen.append(text)

        result = await self.client.call_tool(tool, arguments, progress_callback=on_progress)
        self.steps.append(Step(title, why, tool, arguments, result, seen))
        if result.is_error or result.structured_content is None:
            raise RuntimeError(f"{tool} failed: {text_of(result)}")
        return result.structured_content


async def agent_session(client: Client) -> list[Step]:
    """What a model does when asked: "find work emails for these six leads and give me a CSV"."""
    s = Session(client)
    listing = await s.call(
        "Find the right waterfall",
        "The model needs the waterfall's required inputs and its providers' ids and prices.",
        "list_waterfalls",
        {"query": "email"},
    )
    waterfall = listing["waterfalls"][0]
    providers = [p["id"] for p in waterfall["providers"][:2]]
    verifier = waterfall["email_verifiers"][0]["id"] if waterfall["email_verifiers"] else None
    await s.call(
        "Check the balance",
        "Six rows × the chosen providers' prices must fit the balance.",
        "get_account",
        {},
    )
    run = await s.call(
        "Run the waterfall on six leads",
        "No wait (wait_seconds=0): the call returns as soon as Databar has accepted the task, with its id.",
        "run_bulk_waterfall",
        {
            "waterfall": waterfall["identifier"],
            "params": LEADS,
            "enrichments": providers,
            "email_verifier": verifier,
            "wait_seconds": FIRST_WAIT_S,
        },
    )
    task_id = run["task_id"]
    await s.call(
        "Keep waiting with the call it named",
        'The run answered status "processing" and the exact get_task call; the model makes it.',
        "get_task",
        {"task_id": task_id, "wait_seconds": int(TOOL_DEADLINE_S)},
    )
    await s.call(
        "Find the task again later",
        "After a lost conversation or a client timeout, the ledger still lists the task and its stored result.",
        "list_recent_tasks",
        {"limit": 5},
    )
    await s.call(
        "Hand the user a file",
        "Every row, joined to its input, written to a CSV in the server's exports folder.",
        "export_task_result",
        {"task_id": task_id, "format": "csv", "filename": "leads_enriched"},
    )
    return s.steps


def fence(lang: str, body: str) -> list[str]:
    return [f"```{lang}", body.rstrip(), "```", ""]


def render(steps: list[Step], state_dir: Path, export_head: str) -> str:
    def hide(text: str) -> str:
        return text.replace(str(state_dir), "<state_dir>")

    out = [
        "# An agent session, tool by tool",
        "",
        "Generated by [`make_transcript.py`](make_transcript.py) from a real run of the databar-mcp server against",
        "the local sandbox (fake, deterministic providers; no key, no credits). Each step shows what the model",
        "sent and what came back: the text content the model reads, and the structured content (abbreviated:",
        f"lists cut to {LIST_ITEMS} items). Task ids and timings change from run to run.",
        "",
    ]
    for number, step in enumerate(steps, start=1):
        out += [f"## {number}. {step.title}: `{step.tool}`", "", step.why, "", "**The model sent**", ""]
        out += fence("json", compact({"tool": step.tool, "arguments": step.arguments}))
        if step.progress:
            shown = step.progress if len(step.progress) <= 4 else [*step.progress[:2], "…", step.progress[-1]]
            out += [f"**Progress notifications** ({len(step.progress)}): " + " · ".join(shown), ""]
        label = "**Came back: an error**" if step.result.is_error else "**Came back: text**"
        out += [label, "", *fence("text", hide(text_of(step.result)))]
        if step.result.structured_content is not None:
            abbreviated = abbreviate(step.result.structured_content)
            out += ["**Structured content** (abbreviated)", ""]
            out += fence("json", hide(compact(abbreviated)))
    out += ["The exported file starts:", "", *fence("csv", export_head)]
    return "\n".join(out)


async def generate() -> str:
    """Run the session on a fresh sandbox and ledger (both gone afterwards); return the markdown."""
    with tempfile.TemporaryDirectory(prefix="databar-transcript-") as tmp, SandboxServer(SANDBOX) as sandbox:
        state_dir = Path(tmp) / "state"
        settings = Settings(
            base_url=sandbox.base_url,
            api_key=SecretStr(sandbox.api_key),
            api_key_source="sandbox",
            state_dir=state_dir,
        )
        async with Client(build_server(settings)) as client:
            steps = await agent_session(client)
        exported = Path(str(steps[-1].result.structured_content["path"]))  # type: ignore[index]
        head = "\n".join((await anyio.Path(exported).read_text(encoding="utf-8")).splitlines()[:4])
        return render(steps, state_dir, head)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT.name}")
    args = parser.parse_args(argv)
    markdown = anyio.run(generate)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
