"""Serves the results view as a `ui://` resource and links it from the tools whose results it renders.

The page is plain HTML/JS/CSS shipped in the package: no remote scripts, no network (its CSP declares no
domains, so hosts apply the spec's restrictive default), and it talks only to the host over postMessage
JSON-RPC. It reads the tool result the host hands it, follows a running task through get_task, pages in
the remaining rows, and exports CSV through export_task_result. Hosts without Apps support ignore the link
and show the text result as before.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, cast

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

RESULTS_URI = "ui://databar/results.html"
APP_TOOLS: frozenset[str] = frozenset({"run_bulk_waterfall", "run_bulk_enrichment", "get_task"})


def results_html() -> str:
    return resources.files("databar_mcp.ui").joinpath("results.html").read_text(encoding="utf-8")


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
