"""Tables toolset through a real MCP client → our server → the sandbox over HTTP: chunked writes that account
for every row (including a failure in the third batch), column checks before sending, filters, and the
pure chunker underneath."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from databar_mcp.api.errors import BadRequestError, ServerError, status_error
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.batching import Chunk, RowOutcome, index_ranges, write_in_chunks
from databar_mcp.sandbox import Fault, SandboxServer
from tests.conftest import error_body, make_settings, structured, text_of, whole

pytestmark = pytest.mark.anyio

TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
SEED_ROWS = 2345
INSERT = "POST /v1/table/{table_uuid}/rows"
COLUMNS = "GET /v1/table/{table_uuid}/columns"


def people(n: int, tag: str = "p") -> list[dict[str, Any]]:
    return [
        {"first_name": f"F{i}", "last_name": f"L{i}", "company": "chunk.test", "email": f"{tag}{i}@chunk.test"}
        for i in range(n)
    ]


async def call(mcp: Client, settings: Settings, name: str, args: dict[str, Any]) -> CallToolResult:
    """Call a tool and check the result fits the budget, as every result must."""
    result = await mcp.call_tool(name, args)
    assert len(whole(result)) <= settings.result_budget_chars, (name, len(whole(result)))
    return result


def table_size(sandbox: SandboxServer, table: str = TABLE) -> int:
    with sandbox.state.lock:
        return len(sandbox.state.tables[table].rows)


def emails_in(sandbox: SandboxServer, table: str = TABLE) -> list[Any]:
    with sandbox.state.lock:
        return [row.get("email") for row in sandbox.state.tables[table].rows]


# ---- insert_rows: chunking -----------------------------------------------------------------------------


async def test_insert_one_row(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": people(1)})

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert out["complete"] is True
    assert out["counts"] == {"created": 1}
    assert out["batches_sent"] == 1
    [row] = out["rows"]
    assert row["index"] == 0 and row["action"] == "created" and row["id"]
    assert sandbox.state.counts[INSERT] == 1
    assert sandbox.state.counts[COLUMNS] == 1  # the columns are checked once, before sending
    assert table_size(sandbox) == SEED_ROWS + 1
    with sandbox.state.lock:
        assert sandbox.state.tables[TABLE].rows[-1]["id"] == row["id"]


async def test_insert_237_rows_goes_out_in_five_batches(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    rows = people(237)
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows})

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert sandbox.state.counts[INSERT] == 5
    assert out["batches_sent"] == 5
    assert out["counts"] == {"created": 237}
    assert out["rows_omitted"] == 0
    assert sorted(r["index"] for r in out["rows"]) == list(range(237))  # every index, once
    assert all(r["action"] == "created" for r in out["rows"])
    assert len({r["id"] for r in out["rows"]}) == 237
    # the rows really are in the table, in order, and each id belongs to the row at its index
    assert table_size(sandbox) == SEED_ROWS + 237
    assert emails_in(sandbox)[SEED_ROWS:] == [r["email"] for r in rows]
    with sandbox.state.lock:
        by_id = {row["id"]: row for row in sandbox.state.tables[TABLE].rows}
    for r in out["rows"]:
        assert by_id[r["id"]]["email"] == rows[r["index"]]["email"]


async def test_failure_in_the_third_batch_says_which_rows_landed(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    sandbox.state.inject(Fault(route=INSERT, kind="status", status=500, after=2))
    rows = people(237)
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows})

    assert result.is_error
    body = error_body(result)
    assert body["code"] == "upstream_error"
    assert body["http_status"] == 500
    details = body["details"]
    assert details["written"] == ["0-99"]
    assert details["uncertain"] == ["100-149"]
    assert details["not_written"] == ["150-236"]
    assert details["failed_batch"] == {"number": 3, "rows": "100-149"}
    assert details["batches_sent"] == 3
    written = details["rows"]
    assert [r["index"] for r in written] == list(range(100))
    assert all(r["action"] == "created" and r["id"] for r in written)
    assert details["rows_omitted"] == 0
    # never re-sent, and the sandbox holds exactly the 100 rows reported written, with the reported ids
    assert sandbox.state.counts[INSERT] == 3
    assert table_size(sandbox) == SEED_ROWS + 100
    assert emails_in(sandbox)[SEED_ROWS:] == [r["email"] for r in rows[:100]]
    with sandbox.state.lock:
        new_ids = [row["id"] for row in sandbox.state.tables[TABLE].rows[SEED_ROWS:]]
    assert new_ids == [r["id"] for r in written]
    # what to do next is explicit
    steps = " ".join(body["next_steps"])
    assert "rows[150:237]" in steps and "rows[100:150]" in steps and "dedupe_keys" in steps
    text = text_of(result)
    assert "UNCERTAIN: 100-149" in text and "NOT written: 150-236" in text


async def test_reply_lost_after_the_work_counts_the_batch_as_uncertain(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    sandbox.state.inject(Fault(route=INSERT, kind="reset_after", after=1))
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": people(120)})

    body = error_body(result)
    assert result.is_error
    assert body["code"] == "upstream_error"
    assert body["details"]["written"] == ["0-49"]
    assert body["details"]["uncertain"] == ["50-99"]
    assert body["details"]["not_written"] == ["100-119"]
    assert sandbox.state.counts[INSERT] == 2  # the lost batch was not re-sent
    assert table_size(sandbox) == SEED_ROWS + 100  # ...and it had in fact landed: hence "uncertain"


async def test_failure_in_the_first_batch_writes_nothing(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    sandbox.state.inject(Fault(route=INSERT, kind="rate_limit", retry_after=120))  # longer than we wait
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": people(70)})

    body = error_body(result)
    assert body["code"] == "rate_limited"
    assert body["details"]["written"] == [] and body["details"]["uncertain"] == []
    assert body["details"]["not_written"] == ["0-69"]
    assert table_size(sandbox) == SEED_ROWS


async def test_dedupe_keys_skip_rows_already_there(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    rows = people(60)
    await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows[:30]})
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows, "dedupe_keys": ["email"]})

    out = structured(result)
    assert out["counts"] == {"created": 30, "skipped_duplicate": 30}
    actions = {r["index"]: r["action"] for r in out["rows"]}
    assert all(actions[i] == "skipped_duplicate" for i in range(30))
    assert all(actions[i] == "created" for i in range(30, 60))
    assert table_size(sandbox) == SEED_ROWS + 60


# ---- columns are checked before anything is sent -------------------------------------------------------


async def test_unknown_columns_are_refused_before_sending(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    rows = people(120)
    rows[73]["linkedin"] = "https://linkedin.com/in/x"
    rows[101]["linkedin"] = "https://linkedin.com/in/y"
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows})

    body = error_body(result)
    assert result.is_error
    assert body["code"] == "validation_error"
    assert body["details"]["unknown_columns"] == ["linkedin"]
    assert body["details"]["rows"] == {"linkedin": ["73", "101"]}
    assert body["fields"][0]["field"] == "rows[73].linkedin"
    assert "email" in body["details"]["known_columns"]
    assert any("allow_new_columns" in step for step in body["next_steps"])
    assert sandbox.state.counts[INSERT] == 0
    assert table_size(sandbox) == SEED_ROWS


async def test_allow_new_columns_adds_them(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    rows = people(3)
    rows[1]["linkedin"] = "https://linkedin.com/in/x"
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows, "allow_new_columns": True})

    assert structured(result)["counts"] == {"created": 3}
    assert sandbox.state.counts[COLUMNS] == 0  # nothing to check up front
    columns = structured(await call(mcp, settings, "get_table_columns", {"table_uuid": TABLE}))
    assert "linkedin" in [c["name"] for c in columns["columns"]]


async def test_unknown_table_is_not_found_and_nothing_is_sent(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    result = await call(mcp, settings, "insert_rows", {"table_uuid": missing, "rows": people(2)})

    body = error_body(result)
    assert body["code"] == "not_found"
    assert any("list_tables" in step for step in body["next_steps"])
    assert sandbox.state.counts[INSERT] == 0


async def test_nested_values_are_refused_by_the_schema(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    sandbox.state.reset_counts()
    result = await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": [{"email": {"nested": "no"}}]})
    assert error_body(result)["code"] == "validation_error"
    assert sandbox.state.total_requests() == 0


# ---- update, upsert, delete ----------------------------------------------------------------------------


async def _insert(mcp: Client, settings: Settings, rows: list[dict[str, Any]]) -> list[str]:
    out = structured(await call(mcp, settings, "insert_rows", {"table_uuid": TABLE, "rows": rows}))
    return [r["id"] for r in sorted(out["rows"], key=lambda r: r["index"])]


async def test_update_rows_maps_indexes_and_reports_unknown_ids(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    ids = await _insert(mcp, settings, people(55))
    updates: list[dict[str, Any]] = [
        {"id": row_id, "fields": {"company": f"new{i}.test"}} for i, row_id in enumerate(ids)
    ]
    updates[52]["id"] = "no-such-row"
    sandbox.state.reset_counts()
    result = await call(mcp, settings, "update_rows", {"table_uuid": TABLE, "rows": updates})

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert sandbox.state.counts["PATCH /v1/table/{table_uuid}/rows"] == 2
    assert out["counts"] == {"failed": 1, "updated": 54}
    assert out["failed"] == ["52"]
    first = out["rows"][0]  # failures come first
    assert first == {"index": 52, "id": "no-such-row", "action": "failed", "error": "ROW_NOT_FOUND: Row not found."}
    by_index = {r["index"]: r for r in out["rows"]}
    assert by_index[53]["id"] == ids[53] and by_index[53]["action"] == "updated"
    with sandbox.state.lock:
        rows = {row["id"]: row for row in sandbox.state.tables[TABLE].rows}
    assert rows[ids[53]]["company"] == "new53.test"
    assert rows[ids[52]]["company"] == "chunk.test"


async def test_update_with_an_unknown_column_sends_nothing(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    ids = await _insert(mcp, settings, people(2))
    result = await call(
        mcp,
        settings,
        "update_rows",
        {
            "table_uuid": TABLE,
            "rows": [{"id": ids[0], "fields": {"email": "a@b.c"}}, {"id": ids[1], "fields": {"nope": 1}}],
        },
    )
    body = error_body(result)
    assert body["code"] == "validation_error"
    assert body["fields"][0]["field"] == "rows[1].fields.nope"
    assert sandbox.state.counts["PATCH /v1/table/{table_uuid}/rows"] == 0


async def test_upsert_rows_creates_or_updates_by_key(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    existing = people(30)
    await _insert(mcp, settings, existing)
    upserts = [{"key": {"email": f"p{i}@chunk.test"}, "fields": {"company": "upserted.test"}} for i in range(60)]
    result = await call(mcp, settings, "upsert_rows", {"table_uuid": TABLE, "rows": upserts})

    out = structured(result)
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows/upsert"] == 2
    assert out["counts"] == {"created": 30, "updated": 30}
    actions = {r["index"]: r["action"] for r in out["rows"]}
    assert [actions[i] for i in range(60)] == ["updated"] * 30 + ["created"] * 30  # index 50.. mapped past batch 1
    assert table_size(sandbox) == SEED_ROWS + 60


async def test_upsert_key_must_name_exactly_one_column(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    sandbox.state.reset_counts()
    result = await call(
        mcp,
        settings,
        "upsert_rows",
        {"table_uuid": TABLE, "rows": [{"key": {"email": "a@b.c", "company": "x"}, "fields": {}}]},
    )
    assert error_body(result)["code"] == "validation_error"
    assert sandbox.state.total_requests() == 0


async def test_delete_rows_reports_unknown_ids_per_id(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    ids = await _insert(mcp, settings, people(60))
    row_ids = [*ids[:25], "ghost-1", *ids[25:], "ghost-2"]
    result = await call(mcp, settings, "delete_rows", {"table_uuid": TABLE, "row_ids": row_ids})

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows/delete"] == 2
    assert out["counts"] == {"deleted": 60, "failed": 2}
    assert out["failed"] == ["25", "61"]
    assert [(r["index"], r["id"]) for r in out["rows"][:2]] == [(25, "ghost-1"), (61, "ghost-2")]
    assert all(r["error"] == "ROW_NOT_FOUND: Row not found." for r in out["rows"][:2])
    assert table_size(sandbox) == SEED_ROWS


async def test_write_tools_are_annotated_honestly(mcp: Client) -> None:
    assert not (await mcp.call_tool("enable_toolsets", {"toolsets": ["tables"]})).is_error  # not listed by default
    hints = {t.name: t.annotations for t in (await mcp.list_tools()).tools}
    for name in ("list_tables", "get_table_columns", "list_table_rows"):
        annotations = hints[name]
        assert annotations is not None and annotations.read_only_hint is True
    for name in ("update_rows", "upsert_rows", "delete_rows"):
        annotations = hints[name]
        assert annotations is not None
        assert annotations.read_only_hint is False and annotations.destructive_hint is True
    for name in ("insert_rows", "create_table"):
        annotations = hints[name]
        assert annotations is not None
        assert annotations.destructive_hint is False and annotations.idempotent_hint is False


# ---- tables and columns --------------------------------------------------------------------------------


async def test_create_table_then_list_and_columns(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    created = await call(mcp, settings, "create_table", {"name": "Leads", "columns": ["name", "email"]})
    assert not created.is_error, text_of(created)
    table = structured(created)
    assert table["name"] == "Leads" and table["columns"] == ["name", "email"]
    assert table["identifier"] in table["next_step"]

    listed = structured(await call(mcp, settings, "list_tables", {}))
    assert listed["total"] == 2
    assert {t["identifier"] for t in listed["tables"]} == {TABLE, table["identifier"]}

    columns = structured(await call(mcp, settings, "get_table_columns", {"table_uuid": table["identifier"]}))
    assert [c["name"] for c in columns["columns"]] == ["name", "email"]
    assert columns["total"] == 2

    inserted = await call(
        mcp, settings, "insert_rows", {"table_uuid": table["identifier"], "rows": [{"name": "Jane", "email": "j@x.io"}]}
    )
    assert structured(inserted)["counts"] == {"created": 1}


async def test_create_table_refuses_repeated_columns(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    result = await call(mcp, settings, "create_table", {"name": "T", "columns": ["a", "b", "a"]})
    body = error_body(result)
    assert body["code"] == "validation_error"
    assert "a" in body["fields"][0]["problem"]
    assert sandbox.state.counts["POST /v1/table/create"] == 0


async def test_columns_of_an_unknown_table(mcp: Client, settings: Settings) -> None:
    result = await call(mcp, settings, "get_table_columns", {"table_uuid": "00000000-0000-4000-8000-000000000000"})
    assert error_body(result)["code"] == "not_found"


async def test_tables_are_listed_with_their_folders_even_when_folders_fail(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    """list_tables answers with the folders update_table takes; folders Databar will not list leave the tables."""
    listed = structured(await call(mcp, settings, "list_tables", {}))
    assert TABLE in {t["identifier"] for t in listed["tables"]} and listed["folders"] == []
    sandbox.state.inject(Fault(route="GET /v1/folders", kind="status", status=404))
    degraded = await call(mcp, settings, "list_tables", {})
    assert not degraded.is_error and structured(degraded)["folders"] is None
    assert structured(degraded)["tables"] == listed["tables"] and "did not list" in text_of(degraded)


# ---- list_table_rows filter ----------------------------------------------------------------------------


async def test_list_table_rows_with_filter(mcp: Client, sandbox: SandboxServer, settings: Settings) -> None:
    args = {"table_uuid": TABLE, "per_page": 100, "filter": {"email": {"empty": True}}}
    out = structured(await call(mcp, settings, "list_table_rows", args))

    empty = len([i for i in range(SEED_ROWS) if i % 9 == 8])
    assert out["total_count"] == empty
    assert out["filter"] == {"email": {"empty": True}}  # in the tool's words, as next_call repeats it
    assert len(out["rows"]) == 100 and all(row["email"] == "" for row in out["rows"])
    assert out["next_call"] == (
        f'list_table_rows(table_uuid="{TABLE}", filter={{"email":{{"empty":true}}}}, page=2, per_page=100)'
    )
    filled = {"table_uuid": TABLE, "filter": {"email": {"empty": False}}}  # the API's is_not_empty
    assert structured(await call(mcp, settings, "list_table_rows", filled))["total_count"] == SEED_ROWS - empty

    contains = {"table_uuid": TABLE, "filter": {"company": {"contains": "acme"}, "first_name": {"equals": "john"}}}
    found = structured(await call(mcp, settings, "list_table_rows", contains))
    assert found["rows"] and all(r["company"] == "acme.com" and r["first_name"] == "John" for r in found["rows"])


@pytest.mark.parametrize(
    "bad",
    [
        {"email": {"starts_with": "a"}},  # not an operator
        {"email": {"is_empty": True}},  # the API's word; the tool's is `empty`
        {"email": {}},  # no operator
        {"email": "x"},  # not a condition
        {"": {"equals": "x"}},  # no column name
    ],
)
async def test_invalid_filter_is_refused_before_any_request(
    mcp: Client, sandbox: SandboxServer, settings: Settings, bad: dict[str, Any]
) -> None:
    sandbox.state.reset_counts()
    result = await call(mcp, settings, "list_table_rows", {"table_uuid": TABLE, "filter": bad})
    assert result.is_error
    assert error_body(result)["code"] == "validation_error"
    assert sandbox.state.total_requests() == 0


async def test_filter_on_an_unknown_column_is_the_apis_validation_error(mcp: Client, settings: Settings) -> None:
    args = {"table_uuid": TABLE, "filter": {"nope": {"equals": "x"}}}
    body = error_body(await call(mcp, settings, "list_table_rows", args))
    assert body["code"] == "validation_error"
    assert body["fields"][0]["field"] == "filter"


# ---- the result budget ---------------------------------------------------------------------------------


async def test_small_budget_fits_per_row_lists_and_says_what_was_left_out(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = make_settings(sandbox, tmp_path, result_budget_chars=4_000)
    async with Client(build_server(settings)) as small:
        ok = await call(small, settings, "insert_rows", {"table_uuid": TABLE, "rows": people(237)})
        out = structured(ok)
        assert out["counts"] == {"created": 237}
        assert 0 < len(out["rows"]) < 237
        assert out["rows_omitted"] == 237 - len(out["rows"])

        sandbox.state.inject(Fault(route=INSERT, kind="status", status=500, after=2))
        failed = await call(small, settings, "insert_rows", {"table_uuid": TABLE, "rows": people(237, "q")})
        details = error_body(failed)["details"]
        assert details["written"] == ["0-99"] and details["uncertain"] == ["100-149"]
        assert 0 < len(details["rows"]) < 100
        assert details["rows_omitted"] == 100 - len(details["rows"])


# ---- the chunker alone ---------------------------------------------------------------------------------


async def test_chunker_maps_indexes_and_never_drops_a_row() -> None:
    sent: list[tuple[int, int]] = []

    async def send(chunk: Chunk[int]) -> Sequence[RowOutcome]:
        sent.append((chunk.start, len(chunk.items)))
        # answers out of order, forgets the row at local index 3 of the second batch
        answered = [RowOutcome(i, True, "created", f"id{chunk.start + i}") for i in range(len(chunk.items))]
        return [o for o in reversed(answered) if not (chunk.number == 1 and o.index == 3)]

    report = await write_in_chunks(list(range(12)), send, batch_size=5)
    assert sent == [(0, 5), (5, 5), (10, 2)]
    assert [o.index for o in report.outcomes] == list(range(12))
    assert all(o.id == f"id{o.index}" for o in report.outcomes if o.ok)
    assert [(o.index, o.action) for o in report.failed] == [(8, "unreported")]
    assert report.complete and report.counts() == {"created": 11, "unreported": 1}


@pytest.mark.parametrize(
    ("error", "uncertain", "not_written"),
    [
        (status_error(500, {"detail": "boom"}), range(10, 15), range(15, 17)),
        (status_error(400, {"error": "INVALID_DATA", "index": 2}), range(0), range(10, 17)),
    ],
)
async def test_chunker_stops_at_a_failed_batch(error: Exception, uncertain: range, not_written: range) -> None:
    async def send(chunk: Chunk[int]) -> Sequence[RowOutcome]:
        if chunk.number == 2:
            raise error
        return [RowOutcome(i, True, "created") for i in range(len(chunk.items))]

    report = await write_in_chunks(list(range(17)), send, batch_size=5)
    assert report.sent == 3 and report.written == list(range(10))
    assert report.uncertain == uncertain and report.not_written == not_written
    assert isinstance(error, ServerError | BadRequestError)


async def test_chunker_stops_before_a_batch_that_would_end_past_the_deadline() -> None:
    now = [0.0]

    async def send(chunk: Chunk[int]) -> Sequence[RowOutcome]:
        now[0] += 4.0  # each batch takes 4 s
        return [RowOutcome(i, True, "created") for i in range(len(chunk.items))]

    report = await write_in_chunks(list(range(50)), send, batch_size=10, deadline=10.0, clock=lambda: now[0])
    assert report.sent == 2 and report.written == list(range(20))
    assert not report.complete and report.uncertain == range(0) and report.not_written == range(20, 50)


def test_index_ranges() -> None:
    assert index_ranges([5, 0, 1, 2, 7, 8]) == ["0-2", "5", "7-8"]
    assert index_ranges([]) == []
    assert index_ranges([0, 2, 4, 6], limit=2) == ["0", "2", "...and 2 more rows"]


def test_batch_errors_name_the_callers_row() -> None:
    from databar_mcp.core.batching import Stop, WriteReport
    from databar_mcp.tools.kit.row_writes import batch_error_fields

    invalid = status_error(400, {"error": "INVALID_DATA", "message": "fields must be scalars.", "index": 2})
    report = WriteReport(total=237, batch_size=50, batches=5, sent=3)
    report.stop = Stop(2, 100, 150, error=invalid, uncertain=False)
    [problem] = batch_error_fields(invalid, report, "rows")
    assert problem.field == "rows[102]" and problem.problem == "fields must be scalars."

    unknown = status_error(400, {"error": "UNKNOWN_COLUMNS", "columns": ["linkedin"]})
    [problem] = batch_error_fields(unknown, report, "rows")
    assert problem.field == "rows[100:150]" and "linkedin" in problem.problem
