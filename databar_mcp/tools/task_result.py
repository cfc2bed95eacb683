"""The `databar://tasks/{task_id}/result` resource: every row of a finished task as JSON, from the ledger.

Kept apart from the tools of the tasks toolset because a start registers it (recorded, given to the SDK on the
first resources/* request) even when it imports no tool module, its listing being cached: so this module
imports only what registering needs, and reading a result imports the task kit (issue 14).
"""

import json
from typing import TYPE_CHECKING, Any, cast

from mcp.server.mcpserver.exceptions import ResourceError

from databar_mcp.config import Toolset
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.registry import Toolbox

if TYPE_CHECKING:
    from databar_mcp.api.models import Task


def full_result_json(task: "Task", inputs: list[Any] | None, served_from: str) -> str:
    """Every row; `raw_data` adds Databar's own entries when they were reduced (waterfall steps and costs)."""
    from databar_mcp.tools.kit.task_view import result_rows

    rows = result_rows(task) or []
    data: object = task.data
    raw: list[Any] | None = None if data is None else cast(list[Any], data) if isinstance(data, list) else [data]
    return json.dumps(
        {
            "task_id": task.task_id,
            "status": task.status,
            "served_from": served_from,
            "credits_spent": task.credits_spent,
            "rows_total": len(rows),
            "rows_with_data": sum(1 for r in rows if r is not None),
            "inputs": inputs,
            "data": rows,
            **({"raw_data": raw} if raw is not None and rows != raw else {}),
        },
        ensure_ascii=False,
    )


def register_resources(box: Toolbox) -> None:
    if not box.enabled(Toolset.TASKS, read_only=True):
        return

    @box.server.resource(
        "databar://tasks/{task_id}/result",
        name="task_result",
        title="Full task result",
        description="Every row of a finished task as JSON (inputs and data aligned by position), from the ledger.",
        mime_type="application/json",
    )
    async def task_result_resource(task_id: str, ctx: ToolContext) -> str:
        from databar_mcp.api.errors import DatabarError
        from databar_mcp.core.files.export_writing import SAFE_NAME
        from databar_mcp.tools.kit.failures import from_api_error
        from databar_mcp.tools.kit.results import ToolFailure
        from databar_mcp.tools.kit.task_kit import finished_task, inputs_of

        if not SAFE_NAME.fullmatch(task_id):
            raise ResourceError(f"Invalid task id {task_id[:100]!r}.")
        svc = services(ctx)
        try:
            task, source = await finished_task(svc, task_id)
        except ToolFailure as failure:
            raise ResourceError(failure.body.message) from None
        except DatabarError as exc:
            raise ResourceError(from_api_error(exc, task_id=task_id).message) from None
        return full_result_json(task, await inputs_of(svc, task_id), source)
