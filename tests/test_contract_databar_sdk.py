"""Contract test: Databar's official Python SDK (databar 2.8.0) is the judge of the sandbox's replies.

Every public call below parses the sandbox's reply with the SDK's own pydantic models, so a reply shape the
real API would not send fails here. The SDK is a judge we did not write; its models are the best evidence
of the real API we have (see API_NOTES, "Reply shapes as Databar's own clients read them").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from databar import DatabarClient as SdkClient
from databar import models as sdk
from databar.exceptions import DatabarAuthError, DatabarConflictError, DatabarNotFoundError

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
