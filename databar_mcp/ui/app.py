"""Serves the results view as a `ui://` resource and links it from the tools whose results it renders.

The page is plain HTML/JS/CSS shipped in the package: no remote scripts, no network (its CSP declares no
domains, so hosts apply the spec's restrictive default; its own script runs by hash, nothing else inline),
and it talks only to the host over postMessage JSON-RPC. It reads the tool result the host hands it, follows
a running task through get_task, pages in the remaining rows, and exports CSV through export_task_result.
Hosts without Apps support ignore the link and show the text result as before.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from typing import Any, cast

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

RESULTS_URI = "ui://databar/results.html"
APP_TOOLS: frozenset[str] = frozenset({"run_bulk_waterfall", "run_bulk_enrichment", "get_task"})


SCRIPT_HASH_SLOT = "'sha256-SCRIPT_SHA256'"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def results_html() -> str:
    """The page, its CSP allowing exactly its own inline script by hash (CSP 3): markup that escaping missed
    (a hostile value from a row) can still not run a script, as it could under `'unsafe-inline'`. The hash is
    computed here, so an edit of the script never leaves a stale one behind."""
    page = resources.files("databar_mcp.ui").joinpath("results.html").read_text(encoding="utf-8")
    hashes = " ".join(f"'sha256-{script_hash(body)}'" for body in _INLINE_SCRIPT.findall(page))
    return page.replace(SCRIPT_HASH_SLOT, hashes, 1)


def script_hash(body: str) -> str:
    """The CSP source hash of an inline script: base64 SHA-256 of its text as UTF-8."""
    return base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")


def results_app() -> Apps:
    apps = Apps()
    apps.add_html_resource(
        RESULTS_URI,
        results_html(),
        name="databar_run_results",
        title="Databar run results",
        description="Progress and the enriched rows of a Databar run: sortable, filterable, exportable as CSV.",
        csp=ResourceCsp(),
        prefers_border=True,
    )
    return apps


class AppLinks:
    """ServerMiddleware stamping `_meta.ui.resourceUri` on the tools the view renders (tools/list only)."""

    def __init__(self, tools: frozenset[str] = APP_TOOLS, uri: str = RESULTS_URI) -> None:
        self.tools = tools
        self.uri = uri

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict):
            for tool in cast(list[dict[str, Any]], result.get("tools") or []):
                if tool.get("name") in self.tools:
                    meta = cast(dict[str, Any], tool.get("_meta") or {})
                    tool["_meta"] = {**meta, "ui": {"resourceUri": self.uri}, "ui/resourceUri": self.uri}
        return result
