"""Table runs as MCP tasks: Databar gives a table run no task id, so its handle follows the table's rows.

The handle keeps the tool's immediate (wait 0) answer while it works: it names the table and the enrichment and
says whether the call returned an identical earlier run. What the run covers (its rows, the table's counts
before it) is the ledger's submission record, the same one `wait_table_enrichment` reads, so a watcher resumed
after a restart reports exactly what the tool would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from databar_mcp.mcp_tasks.handles import Handle

if TYPE_CHECKING:  # a start needs only the names below; a watcher imports the table kit (see table_follow)
    from databar_mcp.core.table_runs import RunScope
    from databar_mcp.tools.kit.context import Services

# Tools whose task follows a table run (keyed by name: the tools themselves know nothing of tasks).
TABLE_TOOLS: frozenset[str] = frozenset({"run_table_enrichment", "wait_table_enrichment"})

NO_CANCEL = (
    "Cancel requested, but Databar has no cancel for a table run: its rows keep processing (and billing) until "
    "they are done, and this task keeps following them."
)


@dataclass(frozen=True)
class TableFollow:
    """What a table handle's watcher needs: the run's scope, its estimate, and whose run it is."""

    scope: RunScope
    estimate: float | None
    reused: bool
    owner: str | None


def immediate_view(handle: Handle) -> dict[str, Any]:
    """The TableRunView of the tool's immediate answer, kept in the handle while it works."""
    return cast(dict[str, Any], (handle.result or {}).get("structuredContent") or {})


async def table_follow(svc: Services, handle: Handle) -> TableFollow:
    """The run the handle follows: our ledger's record of it, else (nothing of ours) the rows processing now."""
    from databar_mcp.core.table_runs import RowStates, RunScope
    from databar_mcp.tools.kit.table_kit import run_endpoint

    view = immediate_view(handle)
    table_uuid, enrichment_id = str(view["table_uuid"]), int(view["enrichment_id"])
    endpoints = (run_endpoint(table_uuid, enrichment_id), run_endpoint(table_uuid, enrichment_id, exporter=True))
    found = [s for s in [await svc.ledger.latest_submission(e) for e in endpoints] if s is not None]
    latest = max(found, key=lambda s: s.created_at) if found else None
    estimate = cast(float | None, view.get("estimated_credits"))
    reused = bool(view.get("reused"))
    if latest is not None and latest.outcome == "accepted" and "scope" in latest.request:
        scope = RunScope.from_json(latest.request["scope"])
        return TableFollow(scope, estimate if estimate is not None else latest.estimated_credits, reused, latest.owner)
    rows = int(view.get("rows_in_run") or 0)
    empty = RowStates(total=rows, processing=0, completed=0, no_data=0, errors=0, never_run=0)
    scope = RunScope(  # the table-wide scope wait_table_enrichment uses when no run of ours is on record
        table_uuid=table_uuid,
        processor_id=enrichment_id,
        name=str(view.get("name") or view["status_column"]),
        status_column=str(view["status_column"]),
        output_columns=tuple(str(c) for c in cast(list[Any], view.get("output_columns") or [])),
        strategy="run_all",
        row_ids=0,
        rows=rows,
        before=empty,
    )
    return TableFollow(scope, estimate, reused, None)


def table_progress(done: int, total: int) -> dict[str, Any]:
    return {"total": total, "finished": done, "still_processing": max(0, total - done)}
