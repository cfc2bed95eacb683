"""Contract test: Databar's official Python SDK (databar 2.8.0) is the judge of the sandbox's replies.

Every public call below parses the sandbox's reply with the SDK's own pydantic models, so a reply shape the
real API would not send fails here. The SDK is a judge we did not write; its models are the best evidence
of the real API we have (see API_NOTES, "Reply shapes as Databar's own clients read them").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

import httpx
import pytest
from databar import DatabarClient as SdkClient
from databar import models as sdk
from databar.exceptions import (
    DatabarAuthError,
    DatabarConflictError,
    DatabarError,
    DatabarInsufficientCreditsError,
    DatabarNotFoundError,
)

from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY

PERSON = {"first_name": "John", "last_name": "Doe", "company": "example.com"}


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002)) as sb:
        yield sb


@pytest.fixture
def official(server: SandboxServer) -> Iterator[SdkClient]:
    client = SdkClient(api_key=server.api_key, base_url=server.base_url, poll_interval_s=0.02, max_poll_attempts=500)
    yield client
    client.close()


def test_account_and_catalog(official: SdkClient) -> None:
    user = official.get_user()
    assert isinstance(user, sdk.User) and user.balance == 1000.0

    listed = official.list_enrichments()
    assert isinstance(listed, list) and all(isinstance(e, sdk.EnrichmentSummary) for e in listed)
    assert {c.name for c in listed[0].category} == {"email"}
    assert all(e.pricing is not None for e in listed)
    paged = official.list_enrichments(page=1, limit=3)
    assert isinstance(paged, sdk.EnrichmentListResponse)
    assert (len(paged.items), paged.has_next_page) == (3, True)

    techno = official.get_enrichment(121)
    choice_param = next(p for p in techno.params or [] if p.name == "tech_category")
    assert choice_param.choices is not None and choice_param.choices.mode == "inline"
    assert [c.name for c in choice_param.choices.items or []][:2] == ["Analytics", "CRM"]
    assert techno.pagination is not None and techno.pagination.supported is False

    people = official.get_enrichment(500)
    country = next(p for p in people.params or [] if p.name == "country")
    assert country.choices is not None and country.choices.mode == "remote" and country.choices.endpoint
    choices = official.get_param_choices(500, "country", q="united", limit=2)
    assert isinstance(choices, sdk.ChoicesResponse) and choices.items[0].name == "United Arab Emirates"

    per_person = official.get_enrichment(510)
    assert per_person.pricing == sdk.PricingInfo(type="per_parameter", parameter="max_results")
    assert per_person.pagination is not None and per_person.pagination.per_page == 25

    waterfalls = official.list_waterfalls()
    assert {w.identifier for w in waterfalls} >= {"email_getter", "phone_getter"}
    email = official.get_waterfall("email_getter")
    assert [(e.id, e.price, e.enabled_by_default) for e in email.available_enrichments] == [
        (833, "1.00", True),
        (966, "2.00", True),
        (1001, "1.50", False),
    ]
    assert all(isinstance(p, dict) and p["required"] is True for p in email.input_params)

    with pytest.raises(DatabarNotFoundError):
        official.get_waterfall("no_such_waterfall")


def test_runs_and_tasks(official: SdkClient, server: SandboxServer) -> None:
    single = official.run_waterfall_sync("email_getter", PERSON, [833], email_verifier=10)
    assert isinstance(single, list) and len(single) == 1
    entry = single[0]
    assert entry["result"] == {"email": "john.doe@example.com"}
    assert sum(float(step["cost"]) for step in entry["steps"]) == pytest.approx(1.5)

    bulk = official.run_waterfall_bulk_sync(
        "email_getter", [PERSON, {**PERSON, "company": "nowhere.invalid"}], [833, 966]
    )
    assert len(bulk) == 2 and bulk[1] is None and bulk[0]["result_field"] == ["email"]

    company = official.run_enrichment_sync(120, {"domain": "example.com"})
    assert company["name"] == "Example"
    many = official.run_enrichment_bulk_sync(120, [{"domain": "a.invalid"}, {"domain": "example.com"}])
    assert many == [None, company]

    handle = official.run_waterfall_bulk("email_getter", [PERSON], [833])
    assert isinstance(handle, sdk.RunResponse)
    polled = official.poll_task(handle.task_id)
    task = official.get_task(handle.task_id)
    assert isinstance(task, sdk.TaskResponse) and task.status == "completed" and task.data == polled
    assert task.progress == {"total": 1, "completed": 1, "no_data": 0, "failed": 0, "processing": 0}

    server.state.config.task_base_seconds = 30
    slow = official.run_enrichment_bulk(120, [{"domain": "example.com"}] * 3)
    cancelled = official.cancel_task(slow.task_id)
    assert cancelled.status == "cancelled"
    with pytest.raises(DatabarConflictError):
        official.cancel_task(slow.task_id)


def test_tables_and_rows(official: SdkClient) -> None:
    table = official.create_table(name="Leads", columns=["email", "name"])
    assert isinstance(table, sdk.Table) and table.identifier in {t.identifier for t in official.list_tables()}
    columns = official.get_columns(table.identifier)
    assert [c.name for c in columns] == ["email", "name"] and all(isinstance(c, sdk.Column) for c in columns)

    inserted = official.create_rows(
        table.identifier, [sdk.InsertRow(fields={"email": f"p{i}@x.io", "name": f"P{i}"}) for i in range(60)]
    )
    assert [r.index for r in inserted.results] == list(range(60))
    assert {r.action for r in inserted.results} == {"created"}

    rows = official.get_rows(table.identifier, per_page=500)
    assert isinstance(rows, sdk.RowsResponse) and rows.total_count == 60
    first_id = str(rows.data[0]["id"])

    patched = official.patch_rows(
        table.identifier,
        [sdk.BatchUpdateRow(id=first_id, fields={"name": "Ann"}), sdk.BatchUpdateRow(id="missing", fields={})],
    )
    ok, missing = patched.results
    assert ok.ok and not missing.ok
    assert missing.error is not None and missing.error["code"] == "ROW_NOT_FOUND"

    upserted = official.upsert_rows(
        table.identifier,
        [
            sdk.UpsertRow(key={"email": "p1@x.io"}, fields={"name": "Updated"}),
            sdk.UpsertRow(key={"email": "new@x.io"}, fields={"name": "New"}),
        ],
    )
    assert [r.action for r in upserted.results] == ["updated", "created"]

    official.delete_rows(table.identifier, [first_id, "missing"])
    assert official.get_rows(table.identifier).total_count == 60  # 60 + 1 upserted - 1 deleted


def test_connectors_crud(official: SdkClient) -> None:
    created = official.create_connector(
        name="Scoring",
        method="post",
        url="https://api.example.com/score",
        headers=[{"name": "Authorization", "value": "Bearer sk-secret"}],
        body=[{"name": "domain", "value": ""}],
        rate_limit=60,
    )
    assert isinstance(created, sdk.Connector) and created.id > 0
    assert created.id in {c.id for c in official.list_connectors()}
    assert official.get_connector(created.id).name == "Scoring"
    updated = official.update_connector(created.id, name="Scoring v2", method="post", url="https://api.example.com/s2")
    assert updated.name == "Scoring v2"
    official.delete_connector(created.id)
    with pytest.raises(DatabarNotFoundError):
        official.get_connector(created.id)


def test_a_wrong_key_is_an_auth_error(server: SandboxServer) -> None:
    with SdkClient(api_key="not-the-key", base_url=server.base_url) as wrong, pytest.raises(DatabarAuthError):
        wrong.get_user()


# ---- table enrichments, columns, tables, exports, flows, folders, exporters (issue 15) --------------------


def _wait_rows(official: SdkClient, table: str, column: str, rows: int) -> list[dict[str, object]]:
    """Read until no row of `column` is processing any more (the run has no task to poll)."""
    for _ in range(500):
        data = official.get_rows(table, per_page=500).data
        if all(r.get(column) != "processing" for r in data):
            return data
        time.sleep(0.01)
    raise AssertionError("the table enrichment did not finish")


def test_table_enrichments_and_waterfalls(official: SdkClient, server: SandboxServer) -> None:
    table = official.create_table(name="Leads", columns=["first_name", "last_name", "company", "email"])
    people = [("John", "Doe", "example.com"), ("Ann", "Lee", "nowhere.invalid"), ("Bob", "Fail", "x.fail")]
    official.create_rows(
        table.identifier,
        [sdk.InsertRow(fields={"first_name": f, "last_name": lst, "company": c}) for f, lst, c in people],
    )
    balance = official.get_user().balance

    waterfall = official.add_waterfall(
        table.identifier,
        "email_getter",
        [833],
        mapping={"first_name": "first_name", "last_name": "last_name", "company": "company"},
    )
    assert isinstance(waterfall, sdk.AddWaterfallResponse) and waterfall.waterfall_name == "Email getter"
    installed = official.get_table_waterfalls(table.identifier)
    assert [(w.id, w.waterfall_name) for w in installed] == [(waterfall.id, "Email getter")]
    columns = official.get_columns(table.identifier)
    filled_by = {c.name: c.data_processor_id for c in columns}
    assert filled_by["Email getter"] == waterfall.id and filled_by["email (2)"] == waterfall.id
    assert filled_by["email"] is None

    started = official.run_table_enrichment(table.identifier, str(waterfall.id), run_strategy="run_all")
    assert isinstance(started, sdk.RunEnrichmentResponse) and started.status == "processing"
    assert started.processing_rows == 3
    rows = _wait_rows(official, table.identifier, "Email getter", 3)
    assert [r["Email getter"] for r in rows][:2] == ["completed", "no_data"]
    assert str(rows[2]["Email getter"]).startswith("error: ")
    assert rows[0]["email (2)"] == "john.doe@example.com"
    assert official.get_user().balance == pytest.approx(balance - 2.0)  # two rows tried one provider; a failure is free

    again = official.run_table_enrichment(table.identifier, str(waterfall.id), run_strategy="run_errors")
    assert again.processing_rows == 1
    with pytest.raises(DatabarConflictError):  # one run at a time per enrichment
        official.run_table_enrichment(table.identifier, str(waterfall.id))
    _wait_rows(official, table.identifier, "Email getter", 3)
    empty = official.run_table_enrichment(table.identifier, str(waterfall.id), run_strategy="run_empty")
    assert (empty.status, empty.processing_rows) == ("completed", 0)

    enrichment = official.add_enrichment(
        table.identifier, 120, mapping={"domain": {"type": "mapping", "value": "company"}}
    )
    assert (
        isinstance(enrichment, sdk.AddEnrichmentResponse)
        and enrichment.enrichment_name == "Company profile from domain"
    )
    assert [e.id for e in official.get_table_enrichments(table.identifier)] == [enrichment.id]
    updated = official.update_enrichment(
        table.identifier, enrichment.id, mapping={"domain": {"type": "simple", "value": "example.com"}}
    )
    assert updated.id == enrichment.id
    first = official.get_rows(table.identifier).data[0]
    official.run_table_enrichment(table.identifier, str(enrichment.id), row_ids=[str(first["id"])])
    rows = _wait_rows(official, table.identifier, "Company profile from domain", 3)
    assert rows[0]["name"] == "Example" and rows[1]["Company profile from domain"] is None

    server.state.balance = 0.5
    with pytest.raises(DatabarInsufficientCreditsError):
        official.run_table_enrichment(table.identifier, str(enrichment.id))
    with pytest.raises(DatabarNotFoundError):
        official.run_table_enrichment(table.identifier, "999")


def test_columns_tables_dedupe_and_export(official: SdkClient, server: SandboxServer) -> None:
    table = official.create_table(name="Scratch", columns=["email"])
    official.create_rows(table.identifier, [sdk.InsertRow(fields={"email": e}) for e in ("a@x.io", "A@x.io", "b@x.io")])
    column = official.create_column(table.identifier, "score", type="number")
    assert isinstance(column, sdk.CreateColumnResponse) and column.type_of_value == "number"
    renamed = official.rename_column(table.identifier, column.identifier, "lead score")
    assert renamed.name == "lead score"
    assert [c.name for c in official.get_columns(table.identifier)] == ["email", "lead score"]
    official.delete_column(table.identifier, column.identifier)
    assert [c.name for c in official.get_columns(table.identifier)] == ["email"]

    assert official.rename_table(table.identifier, "Scratch v2").name == "Scratch v2"
    deduped = official.dedupe_table_rows(table.identifier, columns=["email"])
    assert deduped == sdk.DedupeResult(count_all_rows=3, count_rows_delete=1)
    assert official.get_rows(table.identifier).total_count == 2

    started = official.export_table(table.identifier)
    assert isinstance(started, sdk.ExportStatus) and started.status == "processing"
    server.state.clock.advance(server.state.config.export_seconds)
    done = official.get_table_export(table.identifier)
    assert done.status == "completed" and done.file_id is not None and done.file
    assert httpx.get(done.file).text.splitlines()[1:] == [
        f"{r['id']},{r['email']}" for r in official.get_rows(table.identifier).data
    ]

    official.delete_table(table.identifier)
    assert table.identifier not in {t.identifier for t in official.list_tables()}
    with pytest.raises(DatabarNotFoundError):
        official.get_rows(table.identifier)


def test_flows(official: SdkClient) -> None:
    flows = official.list_flows()
    assert all(isinstance(f, sdk.Flow) for f in flows) and len(flows) == 2
    email = next(f for f in flows if f.name == "Find and verify work email")
    detail = official.get_flow(email.id)
    assert isinstance(detail, sdk.FlowDetail) and [i.id for i in detail.inputs] == ["first_name", "last_name", "domain"]
    assert all(i.required for i in detail.inputs) and [o.id for o in detail.outputs] == ["email", "email_status"]
    estimate = official.estimate_flow_cost(detail.config)
    assert estimate == sdk.FlowCostEstimate(min="1.00", max="3.50", currency="credits")

    found = official.run_flow_sync(email.id, {"first_name": "John", "last_name": "Doe", "domain": "example.com"})
    assert found["email"] == "john.doe@example.com" and found["email_status"] in ("valid", "invalid")
    many = official.run_flow_bulk_sync(
        email.id,
        [
            {"first_name": "A", "last_name": "B", "domain": "nobody.invalid"},
            {"first_name": "John", "last_name": "Doe", "domain": "example.com"},
        ],
    )
    assert many[0] is None and many[1] == found
    with pytest.raises(DatabarError) as refused:
        official.run_flow(email.id, {"first_name": "John"})
    assert refused.value.status_code == 400


def test_folders_and_exporters(official: SdkClient) -> None:
    folder = official.create_folder("Prospects")
    assert isinstance(folder, sdk.Folder) and folder.table_count == 0
    table = official.create_table(name="In a folder", columns=["email"])
    official.move_table_to_folder(table.identifier, folder.id)
    assert [f.table_count for f in official.list_folders() if f.id == folder.id] == [1]
    official.move_table_to_folder(table.identifier)
    assert official.rename_folder(folder.id, "Old prospects").table_count == 0
    official.delete_folder(folder.id)
    assert official.list_folders() == []

    exporters = official.list_exporters()
    assert isinstance(exporters, list) and all(isinstance(e, sdk.Exporter) for e in exporters)
    paged = official.list_exporters(q="hubspot", page=1, limit=10)
    assert isinstance(paged, sdk.ExporterListResponse) and paged.total_count == 1
    hubspot = official.get_exporter(paged.items[0].id)
    assert isinstance(hubspot, sdk.ExporterDetail) and hubspot.authorization.required
    table = official.create_table(name="To CRM", columns=["email", "name"])
    official.create_rows(
        table.identifier, [sdk.InsertRow(fields={"email": "a@x.io"}), sdk.InsertRow(fields={"name": "x"})]
    )
    added = official.add_exporter(
        table.identifier, hubspot.id, mapping={"email": {"type": "mapping", "value": "email"}}
    )
    assert isinstance(added, sdk.AddExporterResponse)
    assert [e.id for e in official.get_table_exporters(table.identifier)] == [added.id]
    assert official.run_table_enrichment(table.identifier, str(added.id)).processing_rows == 2
    rows = _wait_rows(official, table.identifier, hubspot.name, 2)
    assert rows[0][hubspot.name] == "completed" and str(rows[1][hubspot.name]).startswith("error: ")


# ---- every public method of the SDK, counted (issue 27) ---------------------------------------------------

EXPECTED_REFUSALS = {"cancel_task#2": 409, "get_user(wrong key)": 403}  # correct answers, not gaps


class Sweep:
    """Calls SDK methods, recording each call's outcome instead of stopping at the first failure, so one run
    gives the whole count (what works, what is a refusal, what is a gap)."""

    def __init__(self, client: SdkClient) -> None:
        self.client = client
        self.outcomes: dict[str, str] = {}
        self.methods: set[str] = set()

    def __call__(self, label: str, method: str, /, *args: object, **kwargs: object) -> object:
        self.methods.add(method)
        key, n = label, 2
        while key in self.outcomes:
            key, n = f"{label}#{n}", n + 1
        try:
            result = getattr(self.client, method)(*args, **kwargs)
        except DatabarError as exc:
            self.outcomes[key] = f"{exc.status_code}: {exc}"[:200]
            return None
        self.outcomes[key] = "ok"
        return result

    def failures(self) -> dict[str, str]:
        return {k: v for k, v in self.outcomes.items() if v != "ok"}


def _sdk_methods() -> set[str]:
    return {n for n, v in vars(SdkClient).items() if callable(v) and not n.startswith("_")}


def _id(value: object, attr: str = "identifier", fallback: object = "00000000-0000-0000-0000-000000000000") -> object:
    return getattr(value, attr, fallback) if value is not None else fallback


FLOW_CONFIG = {
    "inputs": [{"id": "domain", "description": "Company domain", "type": "text", "required": True}],
    "nodes": [{"id": "profile", "type": "enrichment", "enrichment": 120, "inputs": {"domain": "{{input.domain}}"}}],
    "outputs": {"name": "profile.name"},
}


def _sweep_catalog_and_runs(call: Sweep, server: SandboxServer) -> None:
    call("get_user", "get_user")
    call("list_enrichments", "list_enrichments")
    call("list_enrichments(page)", "list_enrichments", page=1, limit=3)
    call("list_enrichments(q)", "list_enrichments", q="email")
    call("get_enrichment", "get_enrichment", 121)
    call("get_enrichment(per parameter)", "get_enrichment", 510)
    call("get_param_choices", "get_param_choices", 500, "country", q="united", limit=2)
    call("list_waterfalls", "list_waterfalls")
    call("get_waterfall", "get_waterfall", "email_getter")
    call("get_waterfall(phone)", "get_waterfall", "phone_getter")
    call("run_waterfall", "run_waterfall", "email_getter", PERSON, [833])
    call("run_waterfall(default cascade)", "run_waterfall", "email_getter", PERSON)
    call("run_waterfall_bulk", "run_waterfall_bulk", "email_getter", [PERSON], [833])
    call("run_waterfall_bulk(default cascade)", "run_waterfall_bulk", "email_getter", [PERSON])
    call("run_waterfall_sync", "run_waterfall_sync", "email_getter", PERSON, [833], email_verifier=10)
    call("run_waterfall_bulk_sync", "run_waterfall_bulk_sync", "email_getter", [PERSON], [833, 966])
    call("run_waterfall_bulk_sync(default cascade)", "run_waterfall_bulk_sync", "email_getter", [PERSON])
    call("run_enrichment", "run_enrichment", 120, {"domain": "example.com"})
    handle = call("run_enrichment_bulk", "run_enrichment_bulk", 120, [{"domain": "example.com"}])
    call("run_enrichment_sync", "run_enrichment_sync", 120, {"domain": "example.com"})
    call("run_enrichment_bulk_sync", "run_enrichment_bulk_sync", 120, [{"domain": "example.com"}])
    task_id = _id(handle, "task_id")
    call("poll_task", "poll_task", task_id)
    call("get_task", "get_task", task_id)
    call("get_task(include_partial)", "get_task", task_id, include_partial=True)
    server.state.config.task_base_seconds = 30
    slow = call("run_enrichment_bulk(slow)", "run_enrichment_bulk", 120, [{"domain": "example.com"}] * 2)
    call("cancel_task", "cancel_task", _id(slow, "task_id"))
    call("cancel_task", "cancel_task", _id(slow, "task_id"))  # finished: 409
    server.state.config.task_base_seconds = 0.05


def _sweep_flows(call: Sweep) -> None:
    flows = cast(list[sdk.Flow], call("list_flows", "list_flows") or [])
    seeded = flows[0].id if flows else "missing"
    detail = cast(sdk.FlowDetail | None, call("get_flow", "get_flow", seeded))
    call("get_flow(second)", "get_flow", flows[-1].id if flows else "missing")
    call("estimate_flow_cost(saved)", "estimate_flow_cost", detail.config if detail else {})
    call("estimate_flow_cost", "estimate_flow_cost", FLOW_CONFIG)
    call("validate_flow_config", "validate_flow_config", FLOW_CONFIG)
    made = cast(sdk.FlowDetail | None, call("create_flow", "create_flow", "Profile", FLOW_CONFIG, "A company"))
    flow_id = str(_id(made, "id", "missing"))
    renamed = cast(sdk.FlowDetail | None, call("update_flow", "update_flow", flow_id, name="Company profile"))
    token = str(_id(renamed, "internal_version", ""))
    replaced = call("replace_flow", "replace_flow", flow_id, "Company profile", FLOW_CONFIG, token, description="v3")
    ops = [{"op": "set_output_field", "name": "industry", "ref": "profile.industry"}]
    call("patch_flow_config", "patch_flow_config", flow_id, ops, internal_version=_id(replaced, "internal_version"))
    call("list_flow_versions", "list_flow_versions", flow_id)
    call("get_flow_version", "get_flow_version", flow_id, 1)
    call("restore_flow_version", "restore_flow_version", flow_id, 1)
    person = {"first_name": "John", "last_name": "Doe", "domain": "example.com"}
    call("run_flow", "run_flow", seeded, person)
    call("run_flow_sync", "run_flow_sync", seeded, person)
    call("run_flow_bulk", "run_flow_bulk", seeded, [person])
    call("run_flow_bulk_sync", "run_flow_bulk_sync", seeded, [person, {**person, "domain": "nobody.invalid"}])
    call("delete_flow", "delete_flow", flow_id)


def _sweep_tables(call: Sweep) -> str:
    table = call("create_table", "create_table", name="Sweep", columns=["email", "company"])
    table_id = str(_id(table))
    call("list_tables", "list_tables")
    call("rename_table", "rename_table", table_id, "Sweep v2")
    rows = [sdk.InsertRow(fields={"email": f"p{i}@x.io", "company": "example.com"}) for i in range(3)]
    call("create_rows", "create_rows", table_id, rows)
    page = cast(sdk.RowsResponse | None, call("get_rows", "get_rows", table_id))
    row_id = str(page.data[0]["id"]) if page and page.data else "missing"
    call("get_rows(filter)", "get_rows", table_id, filter='{"email": {"contains": "p1"}}')
    call("get_rows(page 2)", "get_rows", table_id, page=2, per_page=2)
    call("patch_rows", "patch_rows", table_id, [sdk.BatchUpdateRow(id=row_id, fields={"company": "acme.com"})])
    call("upsert_rows", "upsert_rows", table_id, [sdk.UpsertRow(key={"email": "p9@x.io"}, fields={})])
    call("delete_rows", "delete_rows", table_id, [row_id])
    call("dedupe_table_rows", "dedupe_table_rows", table_id, columns=["email"])
    call("get_columns", "get_columns", table_id)
    column = call("create_column", "create_column", table_id, "score", type="number")
    column_id = str(_id(column))
    call("rename_column", "rename_column", table_id, column_id, "lead score")
    call("reorder_column", "reorder_column", table_id, column_id, 0)
    call("get_columns(reordered)", "get_columns", table_id)
    call("delete_column", "delete_column", table_id, column_id)
    added = call("add_enrichment", "add_enrichment", table_id, 120, {"domain": {"type": "mapping", "value": "company"}})
    call("get_table_enrichments", "get_table_enrichments", table_id)
    added_id = cast(int, _id(added, "id", 999))
    call("update_enrichment", "update_enrichment", table_id, added_id, launch_strategy="run_on_click")
    call("run_table_enrichment", "run_table_enrichment", table_id, str(added_id))
    mapping = {"first_name": "email", "last_name": "email", "company": "company"}
    call("add_waterfall", "add_waterfall", table_id, "email_getter", [833], mapping)
    call("get_table_waterfalls", "get_table_waterfalls", table_id)
    call("list_exporters", "list_exporters")
    call("list_exporters(page)", "list_exporters", q="hubspot", page=1, limit=10)
    call("get_exporter", "get_exporter", 41)
    call("add_exporter", "add_exporter", table_id, 43, {"url": {"type": "simple", "value": "https://e.x/h"}})
    call("get_table_exporters", "get_table_exporters", table_id)
    call("export_table", "export_table", table_id)
    call("get_table_export", "get_table_export", table_id)
    copy = call("duplicate_table", "duplicate_table", table_id)
    call("clear_table", "clear_table", str(_id(copy)))
    call("move_table", "move_table", str(_id(copy)), new_workbook=True, name="Copies")
    return table_id


def _sweep_connectors_folders_workbooks_trash(call: Sweep, table_id: str) -> None:
    made = call("create_connector", "create_connector", name="Score", method="get", url="https://api.example.com/s")
    connector = cast(int, _id(made, "id", 999))
    call("list_connectors", "list_connectors")
    call("get_connector", "get_connector", connector)
    call("update_connector", "update_connector", connector, name="Score 2", method="get", url="https://e.x/2")
    call("delete_connector", "delete_connector", connector)

    folder = cast(int, _id(call("create_folder", "create_folder", "Prospects"), "id", 999))
    call("list_folders", "list_folders")
    call("move_table_to_folder", "move_table_to_folder", table_id, folder)
    call("rename_folder", "rename_folder", folder, "Old prospects")
    call("move_table_to_folder", "move_table_to_folder", table_id)
    call("delete_folder", "delete_folder", folder)
    call("list_folders(after delete)", "list_folders")

    books = cast(list[sdk.Workbook], call("list_workbooks", "list_workbooks") or [])
    mine = next((b.identifier for b in books if table_id in {t.identifier for t in b.tables}), "wb_missing")
    call("get_workbook", "get_workbook", mine)
    call("rename_workbook", "rename_workbook", mine, "Sweep book")
    sheet = cast(dict[str, object], call("add_workbook_table", "add_workbook_table", mine, name="Sheet 2") or {})
    call("reorder_workbook_tables", "reorder_workbook_tables", mine, [sheet.get("identifier"), table_id])
    twin = call("duplicate_workbook", "duplicate_workbook", mine)
    call("merge_workbooks", "merge_workbooks", mine, [str(_id(twin, fallback="wb_missing"))])
    call("delete_table", "delete_table", table_id)
    call("delete_workbook", "delete_workbook", mine)
    trash = cast(list[sdk.TrashItem], call("list_trash", "list_trash") or [])
    call("restore_trash", "restore_trash", tables=[i.identifier for i in trash if i.kind == "table"])
    call("purge_trash", "purge_trash", workbooks=[i.identifier for i in trash if i.kind == "workbook"])
    call("list_tables(after trash)", "list_tables")
    call("get_user(balance after)", "get_user")


def test_every_public_method_of_the_sdk(official: SdkClient, server: SandboxServer) -> None:
    """Issue 27: every public method of Databar's SDK, driven against the sandbox; 104 of 106 calls succeed and
    the two others are the refusals Databar gives (cancelling a finished task: 409; a wrong key: 403)."""
    call = Sweep(official)
    _sweep_catalog_and_runs(call, server)
    _sweep_flows(call)
    _sweep_connectors_folders_workbooks_trash(call, _sweep_tables(call))
    with SdkClient(api_key="not-the-key", base_url=server.base_url) as wrong:
        wrong_call = Sweep(wrong)
        wrong_call("get_user(wrong key)", "get_user")
        call.outcomes.update(wrong_call.outcomes)
    call("close", "close")

    assert call.methods == _sdk_methods()
    refused = {k: int(v.split(":")[0]) for k, v in call.failures().items()}
    ok = len(call.outcomes) - len(refused)
    print(f"SDK sweep: {ok}/{len(call.outcomes)} calls succeeded; refused: {call.failures()}")
    assert refused == EXPECTED_REFUSALS, call.failures()
    assert (ok, len(call.outcomes)) == (104, 106)


def test_flow_versions_increase_on_every_change_and_a_restore_is_a_new_version(official: SdkClient) -> None:
    made = official.create_flow("Profile", FLOW_CONFIG, "A company")
    assert isinstance(made, sdk.FlowDetail) and [i.id for i in made.inputs] == ["domain"]
    assert official.run_flow_sync(made.id, {"domain": "example.com"}) == {"name": "Example"}

    renamed = official.update_flow(made.id, name="Company profile")
    assert renamed.internal_version != made.internal_version
    with pytest.raises(DatabarConflictError):  # edited from a stale read
        official.update_flow(made.id, config=FLOW_CONFIG, internal_version=made.internal_version)
    tech = {"id": "tech", "type": "enrichment", "enrichment": 121, "inputs": {"domain": "{{input.domain}}"}}
    patched = official.patch_flow_config(
        made.id,
        [{"op": "add_node", "node": tech}, {"op": "set_node_output", "id": "tech", "field": "technologies"}],
    )
    assert patched.valid and patched.flow is not None
    assert [o.id for o in patched.flow.outputs] == ["name", "technologies"]
    assert official.estimate_flow_cost(patched.config) == sdk.FlowCostEstimate(min="3.50", max="3.50")
    dry = official.patch_flow_config(made.id, [{"op": "remove_node", "id": "profile"}], validate_only=True)
    assert not dry.valid and dry.flow is None and any("profile" in e for e in dry.errors)

    versions = official.list_flow_versions(made.id)
    assert [(v.number, v.changed_fields) for v in versions] == [(3, ["config"]), (2, ["name"]), (1, ANY_FIELDS)]
    first = official.get_flow_version(made.id, 1)
    assert first.config == FLOW_CONFIG and first.name == "Profile"
    restored = official.restore_flow_version(made.id, 1)
    assert (restored.version.number, restored.version.restored_from) == (4, 1)
    assert restored.flow.config == FLOW_CONFIG and restored.flow.name == "Profile"
    assert [v.number for v in official.list_flow_versions(made.id, limit=2)] == [4, 3]

    checked = official.validate_flow_config({"nodes": [{"id": "x", "type": "enrichment", "enrichment": 120}]})
    assert not checked.valid and {e.node_id for e in checked.errors} >= {"x"}
    official.delete_flow(made.id)
    with pytest.raises(DatabarNotFoundError):
        official.get_flow(made.id)


ANY_FIELDS = ["name", "description", "config"]


def test_workbooks_own_tables_and_the_trash_keeps_rows_until_purged(official: SdkClient) -> None:
    table = official.create_table(name="Leads", columns=["email", "company"])
    assert table.workbook is not None and table.workbook.startswith("wb_")
    official.create_rows(table.identifier, [sdk.InsertRow(fields={"email": f"p{i}@x.io"}) for i in range(3)])
    book = official.get_workbook(table.workbook)
    assert [t.identifier for t in book.tables] == [table.identifier] and book.tables_count == 1

    sheet = official.add_workbook_table(book.identifier, name="Sheet 2")
    assert sheet["workbook"] == book.identifier
    reordered = official.reorder_workbook_tables(book.identifier, [sheet["identifier"], table.identifier])
    assert [(t.name, t.position) for t in reordered.tables] == [("Sheet 2", 0), ("Leads", 1)]
    with pytest.raises(DatabarError):  # must list every table exactly once
        official.reorder_workbook_tables(book.identifier, [table.identifier])

    enrichment = official.add_enrichment(table.identifier, 120, {"domain": {"type": "mapping", "value": "company"}})
    copy = official.duplicate_table(table.identifier)
    assert copy.workbook not in (None, book.identifier) and copy.name == "Leads (copy)"
    assert official.get_rows(copy.identifier).total_count == 3
    assert [e.name for e in official.get_table_enrichments(copy.identifier)] == [enrichment.enrichment_name]
    cleared = official.clear_table(copy.identifier)
    assert cleared["deleted_rows"] == 3 and official.get_rows(copy.identifier).total_count == 0
    assert len(official.get_columns(copy.identifier)) == len(official.get_columns(table.identifier))
    assert len(official.get_table_enrichments(copy.identifier)) == 1  # clear keeps columns and enrichments

    moved = official.move_table(copy.identifier, workbook=book.identifier)
    assert moved["workbook"] == book.identifier
    assert official.get_workbook(book.identifier).tables_count == 3
    fresh = official.move_table(copy.identifier, new_workbook=True, name="Copies")
    assert fresh["workbook"] != book.identifier
    assert official.get_workbook(fresh["workbook"]).name == "Copies"
    merged = official.merge_workbooks(book.identifier, [fresh["workbook"]])
    assert merged.tables_count == 3 and fresh["workbook"] not in {w.identifier for w in official.list_workbooks()}
    twin = official.duplicate_workbook(book.identifier)
    assert twin.tables_count == 3 and twin.identifier != book.identifier
    assert official.rename_workbook(twin.identifier, "Twin").name == "Twin"

    official.delete_table(table.identifier)
    official.delete_workbook(twin.identifier)
    trash = official.list_trash()
    assert {(i.kind, i.identifier) for i in trash} == {("table", table.identifier), ("workbook", twin.identifier)}
    assert next(i for i in trash if i.kind == "workbook").tables_count == 3
    with pytest.raises(DatabarNotFoundError):
        official.get_rows(table.identifier)
    official.restore_trash(tables=[table.identifier])
    assert official.get_rows(table.identifier).total_count == 3  # the rows came back with it
    assert {t.identifier: t.workbook for t in official.list_tables()}[table.identifier] == book.identifier
    official.purge_trash(workbooks=[twin.identifier])
    assert official.list_trash() == []
    with pytest.raises(DatabarNotFoundError):
        official.restore_trash(workbooks=[twin.identifier])
