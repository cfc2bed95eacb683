"""import_rows (issue 25): a file into a table, with no row in the conversation (the body: file_tables)."""

from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from databar_mcp.config import Toolset
from databar_mcp.tools.kit.context import ToolContext
from databar_mcp.tools.kit.file_tables import ImportOut, import_file
from databar_mcp.tools.kit.params import ColumnMap, ColumnName, TableId
from databar_mcp.tools.kit.registry import tool

IMPORT_DESCRIPTION = """\
Add every row of a CSV/JSONL/.xlsx file to a table, without the rows passing through the conversation: \
file columns matched to the table's (stated). Free. Bad rows refused by file row number before anything \
is sent. Batches of 50, each row accounted for; at the deadline, the answer gives the same call to continue."""


@tool(
    Toolset.TABLES,
    name="import_rows",
    title="Import a file into a table",
    description=IMPORT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def import_rows(
    table_uuid: TableId,
    input_file: Annotated[str, Field(min_length=1, description="Path of the file.")],
    ctx: ToolContext,
    columns: ColumnMap = None,
    skip_bad_rows: bool = False,
    allow_new_columns: Annotated[bool, Field(description="Add file columns the table lacks.")] = False,
    dedupe_keys: Annotated[
        list[ColumnName] | None, Field(min_length=1, max_length=10, description="Skip rows matching these columns.")
    ] = None,
) -> Annotated[CallToolResult, ImportOut]:
    return await import_file(
        ctx,
        tool_name="import_rows",
        table_uuid=table_uuid,
        input_file=input_file,
        columns=columns,
        skip_bad_rows=skip_bad_rows,
        mode="insert",
        allow_new_columns=allow_new_columns,
        dedupe_keys=dedupe_keys,
    )
