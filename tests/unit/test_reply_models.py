"""Reply models read every documented variant (API_NOTES, "Reply shapes ..."), and say what did not fit."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from databar_mcp.api import DatabarClient
from databar_mcp.api.errors import DatabarError, status_error
from databar_mcp.api.json_members import json_members
from databar_mcp.api.models import Enrichment, RowWriteResult, Task, Waterfall, waterfall_entry
from databar_mcp.core.catalog import plan_bulk_run, plan_enrichment_run
from databar_mcp.core.rows import present_entry, present_rows

pytestmark = pytest.mark.anyio

ENTRY: dict[str, Any] = {
    "enrichment_data": {"first_name": "Ann"},
    "result": {"email": "ann@acme.com"},
    "steps": [
        {"action": "enrichment", "provider": "A", "result": "not_found", "cost": "1.00", "is_verified": False},
        {"action": "enrichment", "provider": "B", "result": "found", "cost": "2.00", "is_verified": False},
        {"action": "email_verification", "provider": "V", "result": "valid", "cost": 0.5, "is_verified": True},
    ],
    "result_field": ["email"],
}


@pytest.mark.parametrize("category", [[{"id": 3, "name": "company"}], ["company"], "company"])
def test_categories_as_objects_or_strings(category: object) -> None:
    e = Enrichment.model_validate({"id": 1, "name": "x", "price": "1.5", "category": category})
    assert e.category_names == ["company"] and e.price == 1.5


def test_per_parameter_pricing_multiplies_by_the_param() -> None:
    e = Enrichment.model_validate(
        {"id": 1, "name": "x", "price": 0.2, "pricing": {"type": "per_parameter", "parameter": "limit"}}
    )
    assert plan_enrichment_run(e, [{"limit": 10}, {"limit": "5"}]).estimated_credits == pytest.approx(3.0)
    assert plan_enrichment_run(e, [{"limit": "many"}]).estimated_credits is None  # never guessed low
    fixed = Enrichment.model_validate({"id": 1, "name": "x", "price": 0.2, "pricing": {"type": "fixed"}})
    assert plan_enrichment_run(fixed, [{}, {}]).estimated_credits == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("choices", "refused"),
    [
        ({"mode": "inline", "items": [{"id": "a", "name": "Alpha"}, {"id": "b", "name": "Beta"}]}, True),
        ([{"id": "a", "name": "Alpha"}, {"id": "b", "name": "Beta"}], True),  # a short plain list is all of them
        ([{"id": str(i), "name": f"C{i}"} for i in range(10)], False),  # a long plain list may be a first page
        ({"mode": "remote", "endpoint": "/v1/enrichments/1/params/p/choices"}, False),  # Databar checks these
    ],
)
def test_choices_in_each_shape(choices: object, refused: bool) -> None:
    e = Enrichment.model_validate(
        {
            "id": 1,
            "name": "x",
            "params": [{"name": "p", "is_required": True, "type_field": "select", "choices": choices}],
        }
    )
    assert bool(plan_enrichment_run(e, [{"p": "Zeta"}]).issues) is refused
    assert not plan_enrichment_run(e, [{"p": "a" if refused else "C1"}]).issues


@pytest.mark.parametrize(
    ("inputs", "required", "unclear"),
    [
        ([{"name": "a", "required": True}, {"name": "b", "required": False}], ["a"], []),
        ([{"name": "a", "is_required": True}, {"name": "b", "is_required": False}], ["a"], []),
        ([{"name": "a"}, {"name": "b", "type": "text"}], ["a", "b"], ["a", "b"]),  # never silently optional
    ],
)
def test_waterfall_input_requiredness(inputs: list[dict[str, Any]], required: list[str], unclear: list[str]) -> None:
    wf = Waterfall.model_validate(
        {
            "identifier": "w",
            "name": "W",
            "input_params": inputs,
            "available_enrichments": [{"id": 7, "name": "P", "description": "", "price": "1.00", "params": ["a"]}],
            "email_verifiers": [{"id": 9, "name": "V", "price": "0.50"}, {"name": "no id"}],
        }
    )
    assert [p.name for p in wf.input_params if p.must_have] == required
    assert wf.unreadable_requiredness == unclear
    provider = wf.available_enrichments[0]
    assert (provider.price, provider.enabled_by_default, provider.params) == (1.0, True, ["a"])
    plan = plan_bulk_run(wf, [{"a": "x"}, {"b": "y"}], [7], 9)
    assert plan.estimated_credits == pytest.approx(3.0)
    expected = (["params[0]"] if "b" in required else []) + ["params[1]"]
    assert [i.path for i in plan.issues] == expected


@pytest.mark.parametrize(
    ("error", "text"),
    [({"code": "ROW_NOT_FOUND", "message": "Row not found."}, "ROW_NOT_FOUND: Row not found."), ("Gone", "Gone")],
)
def test_row_errors_as_objects_or_strings(error: object, text: str) -> None:
    assert RowWriteResult.model_validate({"id": "r", "ok": False, "error": error}).error == text


def test_error_bodies_with_fields_keep_the_fields() -> None:
    body = {
        "error": "VALIDATION_ERROR",
        "detail": "Invalid parameters.",
        "fields": [{"field": "domain", "message": "bad"}],
    }
    exc = status_error(400, body)
    assert [(i.path, i.message) for i in exc.issues] == [("domain", "bad")]
    assert "VALIDATION_ERROR: Invalid parameters." in exc.message


@pytest.mark.parametrize(
    ("status", "terminal"), [("success", "completed"), ("error", "failed"), ("processing", "processing")]
)
def test_status_synonyms(status: str, terminal: str) -> None:
    task = Task.model_validate({"request_id": "t1", "status": status})
    assert (task.task_id, task.status) == ("t1", terminal)
    assert task.is_terminal is (terminal != "processing")


def test_waterfall_entries_become_rows_and_credits() -> None:
    task = Task.model_validate({"task_id": "t", "status": "completed", "data": [ENTRY, None]})
    assert task.credits_spent == pytest.approx(3.5)  # no credits_spent in the reply: the steps' sum
    rows = present_rows(task.data)
    assert rows == [{"email": "ann@acme.com", "provider": "B", "credits": 3.5, "verified": True}, None]
    stated = Task.model_validate({"task_id": "t", "status": "completed", "data": ENTRY, "credits_spent": 9})
    assert stated.credits_spent == 9
    assert present_rows({"name": "Acme"}) == [{"name": "Acme"}]  # plain enrichment data is unchanged


_ODD: list[Any] = [None, True, 0, 1.5, "1.00", " 2 ", "free", "", [], {}, ["x"], {"a": 1}, 3]
_STEP = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["enrichment", "email_verification", None]),
        "provider": st.sampled_from(["A", "B", "", None]),
        "cost": st.sampled_from(["1.00", 2, 0.5, None]),
        "is_verified": st.sampled_from([True, False, None]),
    }
)
# Databar's shape, sometimes with one value of any other kind in one place: both readings must agree.
_ENTRY = st.fixed_dictionaries(
    {
        "result": st.sampled_from([{"email": "a@b.c"}, {"email": "x", "provider": "own"}, {}, None]),
        "steps": st.lists(_STEP, max_size=3),
    },
    optional={"enrichment_data": st.just({"first_name": "Ann"}), "result_field": st.sampled_from([["email"], "email"])},
)


@st.composite
def _entries(draw: st.DrawFn) -> Any:
    entry: dict[str, Any] = draw(_ENTRY)
    if draw(st.booleans()):
        odd = draw(st.sampled_from(_ODD))
        where = draw(st.sampled_from(["result", "steps", "result_field", "step", "item"]))
        if where == "item":
            return odd
        if where == "step" and entry["steps"]:
            step = draw(st.sampled_from(["action", "provider", "cost", "is_verified"]))
            entry["steps"][0][step] = odd
        elif where != "step":
            entry[where] = odd
    return entry


@given(st.lists(_entries(), max_size=4))
def test_rows_read_straight_from_json_are_what_the_model_reads(items: list[Any]) -> None:
    """Issue 28 (10,000-row results): rows are presented straight from the JSON where the reply has Databar's
    shape, and through the lenient model otherwise; both ways give the same rows, in the same key order."""
    by_model: list[Any] = []
    for item in items:
        entry = waterfall_entry(item)
        by_model.append(present_entry(entry) if entry is not None else item)
    presented = present_rows(items)
    assert presented == by_model
    assert [list(r) if isinstance(r, dict) else r for r in presented or []] == [
        list(r) if isinstance(r, dict) else r for r in by_model
    ]
    assert present_rows([ENTRY]) == [{"email": "ann@acme.com", "provider": "B", "credits": 3.5, "verified": True}]


async def test_a_reply_that_fits_no_variant_names_the_field_and_type() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": 1, "name": "x", "category": 42, "data_source": "secret-ish"})

    client = DatabarClient(
        base_url="http://databar.test/v1", api_key=SecretStr("k"), transport=httpx2.MockTransport(handler)
    )
    async with client:
        with pytest.raises(DatabarError) as caught:
            await client.get_enrichment(1)
    assert "category" in caught.value.message and "got int" in caught.value.message
    assert "42" not in caught.value.message and "secret-ish" not in caught.value.message


@pytest.mark.parametrize(
    ("body", "scrubbed"),
    [
        (b'{"task_id": "t", "status": "completed", "data": [{"k": "sk-LIVE-0123456789"}]}', True),
        (b'{"task_id": "t", "status": "completed", "data": [{"k": "sk-LIVE-\\u0030123456789"}]}', True),
        (b'{"task_id": "t", "status": "completed", "data": [{"sk-LIVE-0123456789": 1}]}', True),
        (b'{"task_id": "t", "status": "completed", "data": [{"k": "nothing secret"}]}', False),
    ],
    ids=["plain", "json-escaped", "as-a-key", "none"],
)
async def test_a_reply_is_scrubbed_of_the_key_however_it_spells_it(body: bytes, scrubbed: bool) -> None:
    """Issue 28: a reply is checked for the key on its bytes before it is copied whole to scrub it (a 10,000-row
    task holds none); a key spelt with JSON escapes is still found, so still scrubbed."""
    key = "sk-LIVE-0123456789"

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "application/json"})

    client = DatabarClient(
        base_url="http://databar.test/v1", api_key=SecretStr(key), transport=httpx2.MockTransport(handler)
    )
    async with client:
        task = await client.get_task("t")
    assert key not in repr(task.data)
    assert ("[REDACTED]" in repr(task.data)) is scrubbed
    # The data's text as it came (what the ledger then stores as is) is kept only when nothing was scrubbed.
    assert (task.data_json is None) is scrubbed
    assert task.data_json is None or json.loads(bytes(task.data_json)) == task.data


_MEMBER = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=4), _MEMBER, max_size=5), st.sampled_from([None, 0, 2]), st.booleans())
def test_an_object_read_member_by_member_is_what_json_reads(
    obj: dict[str, Any], indent: int | None, ascii_: bool
) -> None:
    """Issue 28: a task reply is read by members, so its `data` can be stored as the text it came in; each span
    holds exactly its member's value, and the whole reads as json.loads reads it."""
    text = json.dumps(obj, indent=indent, ensure_ascii=ascii_)
    members, spans = json_members(f" {text}\n")
    assert members == json.loads(text)
    assert {k: json.loads(f" {text}\n"[a:b]) for k, (a, b) in spans.items()} == members


@pytest.mark.parametrize("text", ["[1]", '{"a": 1} x', '{"a" 1}', '{"a": 1,}', "", "{", '{"a": 1', "{1: 2}", "{} {}"])
def test_anything_but_one_json_object_is_refused_member_by_member(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|Expecting|not a JSON object|extra data"):
        json_members(text)


def test_a_reply_holds_each_repeated_text_once() -> None:
    """Issue 28 (peak memory of a 10,000-row run): rows repeat their provider, its logo, the step's cost and the
    input's company, and often whole steps; read member by member, each equal text, step and list is one object
    shared by every row, and the rows still read as json.loads reads them (1, 1.0 and "1.00" kept apart)."""
    row = {
        "enrichment_data": {"company": "acme.com"},
        "result": {"email": None},
        "steps": [{"provider": "LeadMagic", "cost": "1.00", "is_verified": False}],
        "result_field": ["email"],
    }
    text = json.dumps({"task_id": "t", "status": "completed", "data": [row, row, None]})
    members, _ = json_members(text)
    first, second = members["data"][0], members["data"][1]
    assert members == json.loads(text)
    assert first["steps"][0]["provider"] is second["steps"][0]["provider"]
    assert first["steps"][0]["cost"] is second["steps"][0]["cost"]
    assert first["enrichment_data"]["company"] is second["enrichment_data"]["company"]
    assert first["result_field"] is second["result_field"]
    assert first["steps"] is second["steps"]  # a step met before: the same object, read by both rows
    other = {**row, "steps": [{"provider": "LeadMagic", "cost": 1.0, "is_verified": False}]}
    members, _ = json_members(json.dumps({"data": [row, other, {**row, "steps": [{"cost": 1}]}]}))
    costs = [r["steps"][0]["cost"] for r in members["data"]]
    assert costs == ["1.00", 1.0, 1] and [type(c) for c in costs] == [str, float, int]  # equal in Python, not JSON
