"""The sandbox over real HTTP: shapes, status codes, money, time, faults and limits as a client sees them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from databar_mcp.sandbox import Fault, SandboxConfig, SandboxServer
from databar_mcp.sandbox.catalog import WATERFALLS
from databar_mcp.sandbox.providers import waterfall_row

SEED_TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
BULK = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK = "GET /v1/tasks/{task_id}"
DAY = 86400.0


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def client(sb: SandboxServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sb.base_url, headers={"x-apikey": sb.api_key}, timeout=5) as c:
        yield c


def person(first: str, last: str, company: str) -> dict[str, str]:
    return {"first_name": first, "last_name": last, "company": company}


def bulk(client: httpx2.Client, rows: list[dict[str, str]], **extra: Any) -> httpx2.Response:
    body: dict[str, Any] = {"params": rows, "enrichments": [833, 966]}
    body.update(extra)
    return client.post("waterfalls/email_getter/bulk-run", json=body)


def submit(client: httpx2.Client, rows: list[dict[str, str]], **extra: Any) -> str:
    response = bulk(client, rows, **extra)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processing"
    return response.json()["task_id"]


def finish(sb: SandboxServer, client: httpx2.Client, task_id: str) -> dict[str, Any]:
    sb.state.clock.advance(3600)
    response = client.get(f"tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


# auth and account


def test_wrong_or_missing_key_is_forbidden_on_every_route(sb: SandboxServer) -> None:
    for headers in ({"x-apikey": "nope"}, {}):
        with httpx2.Client(base_url=sb.base_url, headers=headers) as c:
            for response in (c.get("user/me"), c.post("waterfalls/email_getter/bulk-run", json={}), c.get("x")):
                assert response.status_code == 403
                assert response.json() == {"detail": "Forbidden"}
    assert sb.state.tasks == {}


def test_a_bearer_key_is_accepted_under_the_same_rules(sb: SandboxServer) -> None:
    """Issue 27: Databar's MCP client sends the key as `Authorization: Bearer` too; x-apikey, when sent, decides."""
    for headers, status in (
        ({"authorization": f"Bearer {sb.api_key}"}, 200),
        ({"authorization": "Bearer nope"}, 403),
        ({"authorization": sb.api_key}, 403),  # not a Bearer token
        ({"x-apikey": "nope", "authorization": f"Bearer {sb.api_key}"}, 403),
        ({"x-apikey": sb.api_key, "authorization": f"Bearer {sb.api_key}"}, 200),
    ):
        with httpx2.Client(base_url=sb.base_url, headers=headers) as c:
            assert c.get("user/me").status_code == status, headers


def test_a_bulk_waterfall_without_providers_runs_the_default_cascade(sb: SandboxServer, client: httpx2.Client) -> None:
    """Issue 27: Databar's SDK and CLI send no `enrichments` for the default cascade (the providers enabled by
    default); wrong types stay 422."""
    rows = [person("John", "Doe", "nowhere.invalid")]
    task_id = submit_body(client, {"params": rows})
    steps = finish(sb, client, task_id)["data"]
    assert steps == [None]
    assert sb.state.balance == pytest.approx(1000 - 3.0)  # 833 (1.00) and 966 (2.00) tried; 1001 is off by default
    assert submit_body(client, {"params": rows, "enrichments": None})
    for body in ({"params": rows, "enrichments": []}, {"params": rows, "enrichments": "833"}):
        assert client.post("waterfalls/email_getter/bulk-run", json=body).status_code == 422, body


def submit_body(client: httpx2.Client, body: dict[str, Any]) -> str:
    response = client.post("waterfalls/email_getter/bulk-run", json=body)
    assert response.status_code == 200, response.text
    return response.json()["task_id"]


def test_user_me_reports_the_balance(client: httpx2.Client) -> None:
    me = client.get("user/me").json()
    assert me == {
        "first_name": "Sandbox",
        "email": "sandbox@example.com",
        "balance": 1000.0,
        "plan": "sandbox",
        "workspace": "Sandbox workspace",
    }


# catalog


def test_catalog_search_paging_and_detail(client: httpx2.Client) -> None:
    items = client.get("enrichments/").json()
    assert {833, 966, 1001, 10} <= {i["id"] for i in items}
    assert "params" not in items[0]
    found = client.get("enrichments/", params={"q": "EMAIL FINDER"}).json()
    assert sorted(i["id"] for i in found) == [833, 966, 1001]
    page = client.get("enrichments/", params={"page": 1, "limit": 5}).json()
    assert page["total_count"] == len(items)
    assert page["has_next_page"] is True
    assert len(page["items"]) == 5
    assert client.get("enrichments/", params={"limit": 501}).status_code == 422
    detail = client.get("enrichments/833").json()
    assert detail["price"] == 1.0
    assert [p["name"] for p in detail["params"]] == ["first_name", "last_name", "company"]
    assert client.get("enrichments/4242").status_code == 404
    choices = client.get("enrichments/500/params/country/choices", params={"limit": 10, "page": 2}).json()
    assert choices["page"] == 2
    assert len(choices["items"]) == 10
    assert choices["has_next_page"] is True
    assert client.get("enrichments/", params={"authorized_only": "true"}).json()
    assert all(i["auth_method"] == "none" for i in client.get("enrichments/?authorized_only=true").json())


def test_waterfall_detail(client: httpx2.Client) -> None:
    wf = client.get("waterfalls/email_getter").json()
    # Databar's shapes: prices as decimal strings, provider params as names, inputs with `required`
    assert [(e["id"], e["price"], e["enabled_by_default"]) for e in wf["available_enrichments"]] == [
        (833, "1.00", True),
        (966, "2.00", True),
        (1001, "1.50", False),
    ]
    assert wf["available_enrichments"][0]["params"] == ["first_name", "last_name", "company"]
    assert wf["input_params"][0] == {
        "name": "first_name",
        "type": "text",
        "description": "First name of the person",
        "required": True,
    }
    assert wf["is_email_verifying"] is True
    assert wf["email_verifiers"][0]["id"] == 10
    assert {w["identifier"] for w in client.get("waterfalls/").json()} >= {"email_getter", "phone_getter"}
    assert client.get("waterfalls/nope").status_code == 404


# bulk runs and tasks


def test_bulk_run_happy_path(sb: SandboxServer, client: httpx2.Client) -> None:
    rows = [
        person("John", "Doe", "example.com"),
        person("Jane", "Roe", "nowhere.invalid"),
        person("Ann", "Lee", "example.com"),
    ]
    task_id = submit(client, rows, email_verifier=10)
    first = client.get(f"tasks/{task_id}").json()
    assert first["status"] == "processing"
    assert first["data"] is None
    task = finish(sb, client, task_id)
    assert task["status"] == "completed"
    assert task["task_id"] == task["request_id"] == task_id
    john, nobody, ann = task["data"]
    assert nobody is None
    assert john["result"] == {"email": "john.doe@example.com"}
    assert john["result_field"] == ["email"]
    assert john["enrichment_data"] == rows[0]
    found, verification = john["steps"]
    assert (found["provider"], found["result"], found["cost"]) == ("LeadMagic email finder", "found", "1.00")
    assert verification["action"] == "email_verification" and verification["cost"] == "0.50"
    assert isinstance(verification["is_verified"], bool)
    assert ann["result"]["email"] == "ann.lee@example.com"
    # found rows: 833 + verifier; the .invalid row tried both providers and found nothing
    assert task["credits_spent"] == pytest.approx(2 * (1.0 + 0.5) + (1.0 + 2.0))
    assert task["progress"] == {"total": 3, "completed": 2, "no_data": 1, "failed": 0, "processing": 0}
    assert sb.state.balance == pytest.approx(1000 - task["credits_spent"])
    assert client.get("user/me").json()["balance"] == pytest.approx(sb.state.balance)


def test_same_input_gives_same_output(sb: SandboxServer, client: httpx2.Client) -> None:
    rows = [person(f"P{i}", f"Q{i}", f"firm{i}.com") for i in range(30)]
    a = finish(sb, client, submit(client, rows))
    b = finish(sb, client, submit(client, rows))
    assert a["data"] == b["data"]
    assert a["credits_spent"] == b["credits_spent"]
    assert any(d is None for d in a["data"])
    assert any(d is not None for d in a["data"])


def test_failing_rows_give_partial_or_failed_status(sb: SandboxServer, client: httpx2.Client) -> None:
    mixed = finish(sb, client, submit(client, [person("A", "B", "example.com"), person("C", "D", "down.fail")]))
    assert mixed["status"] == "partially_completed"
    assert mixed["data"][1] is None
    assert mixed["progress"]["failed"] == 1
    assert isinstance(mixed["error"], list)
    assert mixed["error"]
    failed = finish(sb, client, submit(client, [person("C", "D", "down.fail")]))
    assert failed["status"] == "failed"
    assert failed["credits_spent"] == 0.0


def test_progress_midway_and_include_partial(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.config.task_base_seconds = 0.0
    sb.state.config.row_seconds = 100.0
    rows = [person("John", "Doe", "example.com") for _ in range(5)]
    task_id = submit(client, rows)
    sb.state.clock.advance(150)  # rows 0 and 1 are done
    plain = client.get(f"tasks/{task_id}").json()
    assert plain["status"] == "processing"
    assert plain["data"] is None
    assert plain["progress"] == {"total": 5, "completed": 2, "no_data": 0, "failed": 0, "processing": 3}
    partial = client.get(f"tasks/{task_id}", params={"include_partial": "true"}).json()
    assert len(partial["data"]) == 5
    assert partial["data"][2:] == [None, None, None]
    assert all(d["result"]["email"] == "john.doe@example.com" for d in partial["data"][:2])
    assert sb.state.balance == pytest.approx(1000 - 2 * 1.0)  # charged as rows finish


def test_schema_errors_are_422(client: httpx2.Client) -> None:
    rows = [person("A", "B", "c.com")]
    empty = bulk(client, rows, enrichments=[])
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body", "enrichments"]
    assert {"loc", "msg", "type"} <= set(empty.json()["detail"][0])
    for body in (
        {"params": "x", "enrichments": [833]},
        {"params": rows, "enrichments": ["abc"]},
        {"params": rows, "enrichments": [833], "email_verifier": "ten"},
    ):
        assert client.post("waterfalls/email_getter/bulk-run", json=body).status_code == 422, body
    assert client.post("waterfalls/email_getter/bulk-run", content=b"{nope").status_code == 422


def test_param_errors_are_400(sb: SandboxServer, client: httpx2.Client) -> None:
    rows = [person("A", "B", "c.com"), {"last_name": "B", "company": "c.com"}]
    missing = bulk(client, rows)
    assert missing.status_code == 400
    assert missing.json() == {"detail": {"params[1].first_name": ["This field is required."]}}
    unknown = bulk(client, rows[:1], enrichments=[833, 5])
    assert unknown.json() == {"detail": {"enrichments": ["Enrichment 5 is not available for this waterfall."]}}
    assert "email_verifier" in bulk(client, rows[:1], email_verifier=833).json()["detail"]
    sb.state.config.max_bulk_rows = 3
    too_many = bulk(client, rows[:1] * 4)
    assert too_many.json() == {"detail": {"params": ["Ensure this field has no more than 3 items."]}}
    assert client.post("waterfalls/nope/bulk-run", json={"params": rows, "enrichments": [833]}).status_code == 404
    assert sb.state.tasks == {}


def test_insufficient_credits_is_406_and_creates_nothing(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.balance = 5.0
    rows = [person("A", "B", "c.com")] * 2  # worst case 2 × (1 + 2 + 0.5) = 7
    response = bulk(client, rows, email_verifier=10)
    assert response.status_code == 406
    assert response.json() == {"detail": "Check the number of remaining credits or the tariff plan."}
    assert sb.state.tasks == {}
    assert sb.state.balance == 5.0
    assert bulk(client, rows[:1], email_verifier=10).status_code == 200  # 3.5 fits


@pytest.mark.parametrize("style", ["http_410", "status_gone"])
def test_expired_task(sb: SandboxServer, client: httpx2.Client, style: str) -> None:
    sb.state.config.gone_style = style  # type: ignore[assignment]
    task_id = submit(client, [person("A", "B", "example.com")])
    assert finish(sb, client, task_id)["status"] == "completed"
    sb.state.clock.advance(DAY)
    response = client.get(f"tasks/{task_id}")
    if style == "http_410":
        assert response.status_code == 410
        assert response.json() == {"detail": "Task data has expired."}
    else:
        assert response.status_code == 200
        assert response.json()["status"] == "gone"
        assert response.json()["data"] is None
    assert client.get("tasks/00000000-0000-4000-8000-000000000000").status_code == 404


def test_cancel_then_409(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.config.task_base_seconds = 0.0
    sb.state.config.row_seconds = 100.0
    task_id = submit(client, [person("John", "Doe", "example.com")] * 4)
    sb.state.clock.advance(50)  # only row 0 is done
    cancelled = client.post(f"tasks/{task_id}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["credits_spent"] == 1.0
    sb.state.clock.advance(1000)
    assert client.get(f"tasks/{task_id}").json()["status"] == "cancelled"
    assert sb.state.balance == pytest.approx(999.0)  # unfinished rows never charged
    again = client.post(f"tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert again.json() == {"detail": "Task is already cancelled."}
    done_id = submit(client, [person("A", "B", "example.com")])
    sb.state.clock.advance(1000)
    assert client.post(f"tasks/{done_id}/cancel").json() == {"detail": "Task is already completed."}


def test_single_runs(sb: SandboxServer, client: httpx2.Client) -> None:
    run = client.post("waterfalls/email_getter/run", json={"params": person("John", "Doe", "example.com")})
    task = finish(sb, client, run.json()["task_id"])
    # a single waterfall run answers a list of one entry, as Databar's MCP server reads it (data[0])
    assert [entry["result"]["email"] for entry in task["data"]] == ["john.doe@example.com"]
    assert "progress" not in task
    enrich = client.post("enrichments/120/run", json={"params": {"domain": "example.com"}})
    company = finish(sb, client, enrich.json()["task_id"])["data"]
    assert company["name"] == "Example"
    assert isinstance(company["employees"], int)
    many = client.post(
        "enrichments/120/bulk-run", json={"params": [{"domain": "a.invalid"}, {"domain": "example.com"}]}
    )
    data = finish(sb, client, many.json()["task_id"])["data"]
    assert data[0] is None
    assert data[1] == company
    assert client.post("enrichments/120/run", json={"params": {}}).json() == {
        "detail": {"params.domain": ["This field is required."]}
    }


# counting and faults


def test_counts_per_route_template(sb: SandboxServer, client: httpx2.Client) -> None:
    task_id = submit(client, [person("A", "B", "example.com")])
    client.get(f"tasks/{task_id}")
    client.get(f"tasks/{task_id}")
    client.get(f"table/{SEED_TABLE}/rows", params={"per_page": 1})
    client.post("connectors/", json={"name": "x", "method": "get", "url": "https://e.com"})
    client.get("no/such/path")
    with httpx2.Client(base_url=sb.base_url) as anonymous:
        anonymous.get(f"tasks/{task_id}")  # counted before auth
    assert sb.state.counts == {
        BULK: 1,
        TASK: 3,
        "GET /v1/table/{table_uuid}/rows": 1,
        "POST /v1/connectors/": 1,
        "GET <unmatched>": 1,
    }
    assert sb.state.total_requests() == 7
    assert client.get("no/such/path").json() == {"detail": "Not Found"}
    assert client.put("user/me").status_code == 405
    assert sb.state.counts["PUT /v1/user/me"] == 1
    sb.state.reset_counts()
    assert sb.state.total_requests() == 0


def test_status_fault(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.inject(Fault(BULK, "status", times=2, status=502))
    rows = [person("A", "B", "example.com")]
    assert [bulk(client, rows).status_code for _ in range(3)] == [502, 502, 200]
    assert len(sb.state.tasks) == 1
    assert sb.state.counts[BULK] == 3


def test_reset_before_does_no_work(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.inject(Fault(BULK, "reset_before"))
    with pytest.raises(httpx2.TransportError):
        bulk(client, [person("A", "B", "example.com")])
    assert sb.state.tasks == {}
    assert sb.state.counts[BULK] == 1


def test_reset_after_does_the_work_and_loses_the_reply(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.inject(Fault(BULK, "reset_after"))
    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
        bulk(client, [person("A", "B", "example.com")])
    assert len(sb.state.tasks) == 1
    (task_id,) = sb.state.tasks
    assert finish(sb, client, task_id)["status"] == "completed"
    assert sb.state.balance == pytest.approx(999.0)  # the lost reply still billed
    assert bulk(client, [person("A", "B", "example.com")]).status_code == 200  # fault used up


def test_slow_fault_delays_then_answers(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.inject(Fault("GET /v1/user/me", "slow", delay=0.3))
    started = time.monotonic()
    assert client.get("user/me").status_code == 200
    assert time.monotonic() - started >= 0.3
    sb.state.inject(Fault("GET /v1/user/me", "slow", delay=0.5))
    with pytest.raises(httpx2.ReadTimeout):
        client.get("user/me", timeout=0.1)


def test_rate_limit_fault(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.inject(Fault(BULK, "rate_limit", retry_after=2.5))
    response = bulk(client, [person("A", "B", "example.com")])
    assert response.status_code == 429
    assert response.json() == {"detail": "Too many requests"}
    assert response.headers["Retry-After"] == "3"
    assert sb.state.tasks == {}


def test_configured_rate_limits(sb: SandboxServer, client: httpx2.Client) -> None:
    sb.state.config.rate_limit_per_second = 3
    time.sleep(0.05)  # nothing counted yet: the window starts empty
    statuses = [client.get("user/me") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[0].headers["X-RateLimit-Remaining"] == "2"
    limited = statuses[-1]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    sb.state.config.rate_limit_per_second = None
    sb.state.config.table_rate_limit_per_second = 2
    url = f"table/{SEED_TABLE}/rows"
    assert [client.get(url, params={"per_page": 1}).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("user/me").status_code == 200  # other routes unaffected


# tables


def test_rows_paging_and_filters(client: httpx2.Client) -> None:
    url = f"table/{SEED_TABLE}/rows"
    first = client.get(url).json()
    assert len(first["data"]) == 1000
    assert first["total_count"] == 2345
    assert first["has_next_page"] is True
    assert set(first["data"][0]) == {"id", "first_name", "last_name", "company", "email"}
    last = client.get(url, params={"page": 3}).json()
    assert len(last["data"]) == 345
    assert last["has_next_page"] is False
    assert last["page"] == 3
    assert client.get(url, params={"per_page": 1001}).status_code == 422
    assert client.get(url, params={"page": 0}).status_code == 422
    empty = client.get(url, params={"filter": '{"email": {"is_empty": true}}', "per_page": 5}).json()
    assert empty["total_count"] == 2345 // 9
    assert all(r["email"] == "" for r in empty["data"])
    assert client.get(url, params={"filter": "{bad"}).status_code == 400
    assert client.get("table/00000000-0000-4000-8000-000000000000/rows").status_code == 404
    columns = client.get(f"table/{SEED_TABLE}/columns").json()
    assert [c["name"] for c in columns] == ["first_name", "last_name", "company", "email"]


def test_row_writes(client: httpx2.Client) -> None:
    created = client.post("table/create", json={"name": "Leads", "columns": ["name", "email"]}).json()
    url = f"table/{created['identifier']}/rows"
    too_many = client.post(url, json={"rows": [{"fields": {"name": "x"}}] * 51})
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "BATCH_TOO_LARGE", "max_size": 50}
    unknown = client.post(url, json={"rows": [{"fields": {"name": "x", "age": 3}}]})
    assert unknown.json() == {"error": "UNKNOWN_COLUMNS", "columns": ["age"]}
    assert client.post(url, json={"rows": [{"fields": {"name": {"x": 1}}}]}).json()["error"] == "INVALID_DATA"
    dedupe = {"dedupe": {"enabled": True, "keys": ["email"]}}
    rows = [{"fields": {"name": "A", "email": "a@x.com"}}, {"fields": {"name": "A2", "email": "a@x.com"}}]
    results = client.post(url, json={"rows": rows, "options": dedupe}).json()["results"]
    assert [r["action"] for r in results] == ["created", "skipped_duplicate"]
    assert results[0]["id"] == results[1]["id"]
    new_col = client.post(url, json={"rows": [{"fields": {"age": 3}}], "options": {"allow_new_columns": True}})
    assert new_col.status_code == 200
    row_id = results[0]["id"]
    patched = client.patch(url, json={"rows": [{"id": row_id, "fields": {"name": "B"}}], "return_rows": True})
    assert patched.json()["results"][0]["row_data"]["name"] == "B"
    upsert = client.post(f"{url}/upsert", json={"rows": [{"key": {"email": "a@x.com"}, "fields": {"name": "C"}}]})
    assert upsert.json()["results"][0]["action"] == "updated"
    assert client.post(f"{url}/delete", json={"row_ids": [row_id]}).json()["deleted"] == 1
    assert client.get(url).json()["total_count"] == 1


# connectors


def test_connector_create_echoes_headers_and_caps_limits(client: httpx2.Client) -> None:
    spec = {
        "name": "My Scoring API",
        "method": "post",
        "url": "https://api.example.com/v1/score",
        "headers": [{"name": "Authorization", "value": "Bearer sk-xxx"}],
        "rate_limit": 60,
        "max_concurrency": 5,
    }
    response = client.post("connectors/", json=spec)
    assert response.status_code == 201
    created = response.json()
    assert created["headers"] == [{"name": "Authorization", "value": "Bearer sk-xxx"}]
    assert created["rate_limit"] == 10
    assert created["max_concurrency"] == 5
    assert created["type"] == "enrichment"
    assert isinstance(created["id"], int)
    assert created["created_at"]
    assert client.get(f"connectors/{created['id']}").json() == created
    assert client.get("connectors/").json() == [created]
    bad = client.post("connectors/", json={**spec, "name": "n" * 257, "method": "delete", "rate_limit": 0})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {
        ("body", "name"),
        ("body", "method"),
        ("body", "rate_limit"),
    }
    assert client.delete(f"connectors/{created['id']}").status_code == 204
    assert client.get(f"connectors/{created['id']}").status_code == 404


# servers


def test_two_servers_at_once_and_clean_stop() -> None:
    before = set(threading.enumerate())
    with SandboxServer(SandboxConfig(api_key="k1")) as one, SandboxServer(SandboxConfig(balance=7)) as two:
        assert one.port != two.port
        assert two.base_url == f"http://127.0.0.1:{two.port}/v1"
        with httpx2.Client(base_url=one.base_url, headers={"x-apikey": "k1"}) as c:
            assert c.get("user/me").json()["balance"] == 1000.0
            assert c.get(f"{two.base_url}/user/me").status_code == 403
            submit(c, [person("A", "B", "example.com")])  # runs work off the event loop
        with httpx2.Client(headers={"x-apikey": "sandbox"}) as c:
            assert c.get(f"{two.base_url}/user/me").json()["balance"] == 7.0
        assert one.state.total_requests() == 2
        assert len(one.state.tasks) == 1
        assert two.state.tasks == {}
        assert two.state.total_requests() == 2
    assert set(threading.enumerate()) <= before


def test_run_sandbox_prints_its_url_and_serves() -> None:
    code = "from databar_mcp.sandbox import run_sandbox; run_sandbox('127.0.0.1', 0, 'cli-key')"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # printed once the port is bound and listening
            assert "cli-key" in line
            base_url = next(word for word in line.split() if word.startswith("http://"))
            with httpx2.Client(base_url=base_url, timeout=10) as c:
                assert c.get("user/me", headers={"x-apikey": "cli-key"}).status_code == 200
                assert c.get("user/me", headers={"x-apikey": "sandbox"}).status_code == 403
        finally:
            proc.terminate()
            proc.wait(timeout=5)


# the fake providers, without HTTP

names = st.text(alphabet="abcdefghij", min_size=1, max_size=8)


@given(first=names, last=names, host=names)
def test_magic_companies(first: str, last: str, host: str) -> None:
    wf = WATERFALLS["email_getter"]
    missing = waterfall_row(wf, person(first, last, f"{host}.invalid"), [833, 966, 1001], 10)
    assert missing.data is None and not missing.failed
    assert missing.cost == 1.0 + 2.0 + 1.5  # every provider tried is paid, the verifier is not
    found = waterfall_row(wf, person(first, last, "example.com"), [966, 833], None)
    assert found.data is not None
    assert found.data["result"] == {"email": f"{first}.{last}@example.com"}
    steps = found.data["steps"]
    assert isinstance(steps, list) and [s["provider"] for s in steps if isinstance(s, dict)] == ["Prospeo email finder"]
    assert found.cost == 2.0
    failed = waterfall_row(wf, person(first, last, f"{host}.fail"), [833], 10)
    assert failed.failed and failed.data is None and failed.cost == 0.0
    row = person(first, last, f"{host}.com")
    assert waterfall_row(wf, row, [833, 966], 10) == waterfall_row(wf, dict(row), [833, 966], 10)


def test_phone_getter(sb: SandboxServer, client: httpx2.Client) -> None:
    rows = [{"linkedin_url": f"https://www.linkedin.com/in/person-{i}"} for i in range(20)]
    response = client.post("waterfalls/phone_getter/bulk-run", json={"params": rows, "enrichments": [1201, 1202]})
    task = finish(sb, client, response.json()["task_id"])
    found = [d for d in task["data"] if d is not None]
    assert found
    assert {d["steps"][-1]["provider"] for d in found} <= {"Wiza mobile phone finder", "Kaspr phone finder"}
    assert all(d["result"]["phone"].startswith("+1 ") for d in found)
    verifier = client.post(
        "waterfalls/phone_getter/bulk-run", json={"params": rows, "enrichments": [1201], "email_verifier": 10}
    )
    assert verifier.json() == {"detail": {"email_verifier": ["This waterfall does not verify emails."]}}
