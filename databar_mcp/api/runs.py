"""Billable run requests: where each run goes and what it carries, built once, here in the API layer.

The same value is what the client sends and what the runner fingerprints and the ledger records, so the duplicate
guard always keys a run by the path it actually went to. Identifiers are quoted as path segments (`segment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from pydantic import BaseModel

from databar_mcp.api.errors import DatabarError

if TYPE_CHECKING:  # the request models are built by the caller; the client imports this module at start
    from databar_mcp.api import models


def segment(value: str | int) -> str:
    """Quote one path segment so an identifier can never change the path (`../user/me`, `.`, `..`)."""
    text = str(value)
    if text.strip(".") == "":  # "", "." and ".." are path navigation, not identifiers, even when quoted
        raise DatabarError(f"Invalid identifier {text!r}: it must contain a letter, digit, '_' or '-'.")
    return quote(text, safe="")


@dataclass(frozen=True)
class RunRequest:
    """One billable POST: its path under the API base and the JSON sent; `request` is what the ledger records
    and the duplicate guard fingerprints."""

    endpoint: str
    body: dict[str, Any]
    # The request model with every field, None included: the form earlier versions recorded and fingerprinted,
    # so an identical run sent before an upgrade is still recognised (None: the body sent).
    full: dict[str, Any] | None = None

    @property
    def request(self) -> dict[str, Any]:
        return self.full if self.full is not None else self.body


def _of(endpoint: str, body: BaseModel) -> RunRequest:
    # Unset options are left out of what is sent, as Databar's SDK and MCP server send them (never null).
    rows = getattr(body, "params", None)
    if not isinstance(rows, list) or not _plain_rows(cast(list[Any], rows)):
        return RunRequest(endpoint, body.model_dump(mode="json", exclude_none=True), body.model_dump(mode="json"))
    # The rows, already JSON, are shared by what is sent and what is recorded: a 10,000-row run held as one copy
    # through its wait, not three (issue 28: the server's peak memory on big runs).
    sent = body.model_dump(mode="json", exclude_none=True, exclude={"params"})
    full = body.model_dump(mode="json", exclude={"params"})
    return RunRequest(endpoint, {"params": rows, **sent}, {"params": rows, **full})


_SCALARS = (str, int, float, bool, type(None))


def _plain_rows(rows: list[Any]) -> bool:
    """Every row a dict of JSON scalars: what model_dump(mode="json") would give back unchanged."""
    for row in rows:
        if not isinstance(row, dict):
            return False
        for value in cast(dict[str, Any], row).values():
            if not isinstance(value, _SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
                return False
    return True


def bulk_waterfall(identifier: str, body: models.BulkWaterfallRequest) -> RunRequest:
    return _of(f"waterfalls/{segment(identifier)}/bulk-run", body)


def bulk_enrichment(enrichment_id: int, body: models.BulkEnrichmentRequest) -> RunRequest:
    return _of(f"enrichments/{int(enrichment_id)}/bulk-run", body)


def bulk_flow(flow_id: str, body: models.BulkFlowRunRequest) -> RunRequest:
    return RunRequest(f"flows/{segment(flow_id)}/bulk-run", body.model_dump(mode="json"))


def table_run_path(table_uuid: str, table_enrichment_id: int, *, exporter: bool = False) -> str:
    """Where a table enrichment (or exporter) attached to a table is run: also the key its runs are found by."""
    verb = "run-exporter" if exporter else "run-enrichment"
    return f"table/{segment(table_uuid)}/{verb}/{int(table_enrichment_id)}"


def table_enrichment(
    table_uuid: str, table_enrichment_id: int, run_strategy: models.RunStrategy, row_ids: list[str] | None
) -> RunRequest:
    """Run an attached enrichment or waterfall on the table's rows (row_ids: only those)."""
    body: dict[str, Any] = {"run_strategy": run_strategy}
    if row_ids is not None:
        body["row_ids"] = row_ids
    return RunRequest(table_run_path(table_uuid, table_enrichment_id), body)


def table_exporter(table_uuid: str, table_exporter_id: int, row_ids: list[str] | None = None) -> RunRequest:
    """Send the table's rows to an attached exporter's destination (row_ids: only those; none: an empty body).

    Assumed, not documented: Databar documents `row_ids` for run-enrichment only, and its SDK sends run-exporter
    no body; an exporter is a table processor run by the same machinery, so the same `row_ids` is sent here.
    """
    body: dict[str, Any] = {} if row_ids is None else {"row_ids": row_ids}
    return RunRequest(table_run_path(table_uuid, table_exporter_id, exporter=True), body)
