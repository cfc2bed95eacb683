"""Which rows of a table a run sends: by id, by the same filter list_table_rows reads with, or both.

A filter becomes the ids it matches, read now, so the rows the user confirmed are the rows sent (a filter
sent to Databar would be re-read later, when the table may have changed), and the count in the question is
the count of ids that go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from databar_mcp import config
from databar_mcp.api import DatabarClient


@dataclass(frozen=True)
class RowSelection:
    """The row ids a run is narrowed to (None: every row), and how many rows that is."""

    row_ids: list[str] | None
    rows: int
    too_many: bool = False  # the filter matched more rows than one run takes by id


async def ids_matching(client: DatabarClient, table_uuid: str, filter_json: str, limit: int) -> tuple[list[str], bool]:
    """The ids of the rows the filter matches, page by page, at most `limit` (True: more matched)."""
    ids: list[str] = []
    page = 1
    while True:
        got = await client.list_table_rows(
            table_uuid, page=page, per_page=config.TABLE_PAGE_MAX, filter_json=filter_json
        )
        ids.extend(str(row["id"]) for row in got.data if row.get("id") is not None)
        if len(ids) > limit:
            return ids[:limit], True
        if not got.has_next_page or not got.data:
            return ids, False
        page += 1


async def select_rows(
    client: DatabarClient,
    table_uuid: str,
    *,
    row_ids: Sequence[str] | None,
    filter_json: str | None,
    table_rows: int,
) -> RowSelection:
    """The selection: the filter's rows (among row_ids when both are given), the ids given, or every row."""
    given = list(dict.fromkeys(row_ids)) if row_ids is not None else None
    if filter_json is None:
        return RowSelection(row_ids=given, rows=table_rows if given is None else len(given))
    matched, too_many = await ids_matching(client, table_uuid, filter_json, config.TABLE_RUN_ROW_IDS_MAX)
    if given is not None:
        wanted = set(given)
        matched = [i for i in matched if i in wanted]
    return RowSelection(row_ids=matched, rows=len(matched), too_many=too_many)
