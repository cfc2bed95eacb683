"""The API layer builds every path and body: run requests (sent and fingerprinted as one value) and row writes.

No sockets: these are the values the client sends; the end-to-end suites check Databar's emulator takes them.
"""

from __future__ import annotations

import pytest

from databar_mcp.api import models, runs
from databar_mcp.api.errors import DatabarError


def test_a_run_request_is_sent_without_unset_options_and_recorded_in_full() -> None:
    body = models.BulkWaterfallRequest(params=[{"email": "a@b"}], enrichments=[833], email_verifier=None)
    run = runs.bulk_waterfall("email_getter", body)
    assert run.endpoint == "waterfalls/email_getter/bulk-run"
    assert run.body == {"params": [{"email": "a@b"}], "enrichments": [833]}  # never "email_verifier": null
    # The ledger's (and the fingerprint's) form keeps every field: what earlier versions recorded.
    assert run.request == body.model_dump(mode="json") and run.request["email_verifier"] is None


def test_a_big_runs_rows_are_held_once_by_what_is_sent_and_what_is_recorded() -> None:
    """Issue 28: a 10,000-row run's rows were copied three times more (the request model, sent, recorded) and held
    through its wait; rows that are not objects with text keys are refused as before."""
    rows = [{"name": f"Ann{i}", "n": i, "ok": True, "note": None} for i in range(3)]
    body = models.BulkWaterfallRequest(params=rows, enrichments=[1])
    run = runs.bulk_waterfall("email_getter", body)
    assert run.body["params"] is body.params and run.request["params"] is body.params
    assert all(kept is given for kept, given in zip(body.params, rows, strict=True))  # the rows as the call got them
    assert run.body == {"params": rows, "enrichments": [1]}
    assert run.request == {"params": rows, "enrichments": [1], "email_verifier": None}
    for bad in ([1], [{1: "a"}], [None]):
        with pytest.raises(ValueError, match="row 0"):
            models.BulkWaterfallRequest(params=bad, enrichments=[1])


def test_rows_that_are_not_plain_json_are_still_dumped_as_json() -> None:
    nested = models.BulkEnrichmentRequest(params=[{"tags": ["a"], "x": float("nan")}])
    run = runs.bulk_enrichment(7, nested)
    assert run.body["params"] is not nested.params
    assert run.body["params"] == nested.model_dump(mode="json")["params"]


def test_every_run_has_its_path_from_one_place() -> None:
    bulk = models.BulkEnrichmentRequest(params=[{"q": 1}])
    assert runs.bulk_enrichment(7, bulk).endpoint == "enrichments/7/bulk-run"
    flow = runs.bulk_flow("f1", models.BulkFlowRunRequest(inputs=[{"a": None}]))
    assert (flow.endpoint, flow.body, flow.request) == (
        "flows/f1/bulk-run",
        {"inputs": [{"a": None}]},
        {"inputs": [{"a": None}]},
    )
    table = runs.table_enrichment("t-1", 5, "run_all", None)
    assert (table.endpoint, table.body) == ("table/t-1/run-enrichment/5", {"run_strategy": "run_all"})
    assert runs.table_enrichment("t-1", 5, "run_all", ["r1"]).body == {"run_strategy": "run_all", "row_ids": ["r1"]}
    exporter = runs.table_exporter("t-1", 9)
    assert (exporter.endpoint, exporter.body) == ("table/t-1/run-exporter/9", {})
    assert runs.table_run_path("t-1", 9, exporter=True) == exporter.endpoint  # how its runs are looked up


def test_an_identifier_can_never_change_the_path() -> None:
    assert runs.table_enrichment("a/../b", 1, "run_all", None).endpoint == "table/a%2F..%2Fb/run-enrichment/1"
    with pytest.raises(DatabarError):
        runs.table_exporter("..", 1)


def test_row_write_bodies_are_the_ones_databar_takes() -> None:
    insert = models.InsertRowsRequest(
        rows=[models.NewRow(fields={"name": "Jane", "n": 1.5, "ok": True, "gone": None})],
        options=models.InsertOptions(allow_new_columns=False),
    )
    assert insert.model_dump(mode="json", exclude_none=True) == {
        "rows": [{"fields": {"name": "Jane", "n": 1.5, "ok": True, "gone": None}}],  # a null cell stays null
        "options": {"allow_new_columns": False},
    }
    deduped = models.InsertOptions(allow_new_columns=True, dedupe=models.RowDedupe(keys=["email"]))
    assert deduped.model_dump(mode="json", exclude_none=True) == {
        "allow_new_columns": True,
        "dedupe": {"enabled": True, "keys": ["email"]},
    }
    update = models.UpdateRowsRequest(rows=[models.RowChange(id=3, fields={"a": "x"})], overwrite=False)
    assert update.model_dump(mode="json", exclude_none=True) == {
        "rows": [{"id": 3, "fields": {"a": "x"}}],
        "overwrite": False,
        "return_rows": False,
    }
    upsert = models.UpsertRowsRequest(rows=[models.RowByKey(key={"email": "a@b"}, fields={"a": 1})])
    assert upsert.model_dump(mode="json", exclude_none=True) == {
        "rows": [{"key": {"email": "a@b"}, "fields": {"a": 1}}],
        "return_rows": False,
    }
    assert models.DeleteRowsRequest(row_ids=["r1", 2]).model_dump(mode="json") == {"row_ids": ["r1", 2]}
