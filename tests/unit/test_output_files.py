"""The output of a file run (issue 25): the input's own columns in their order, then the result's, in the
input's format, formulas defused, written whole or not at all; and where an output may be written."""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from databar_mcp.core.files import (
    FileRefused,
    InputFile,
    aligned_results,
    iter_rows,
    open_input,
    output_path,
    result_columns,
    write_output,
)

RESULTS: list[object | None] = [
    {"email": "ann@acme.com", "company": {"name": "Acme", "size": 50}},
    None,
    {"email": '=HYPERLINK("http://evil")', "company": {"name": "B", "size": None}},
]


def leads(
    tmp_path: Path, name: str = "leads.csv", *, encoding: str = "utf-8", bom: bytes = b"", delimiter: str = ","
) -> InputFile:
    d = delimiter
    text = (
        f"First Name{d}Company Domain{d}email{d}=SUM(A1)\r\n"
        f"Ann{d}acme.com{d}{d}-3\r\n"
        f"Bob{d}b.io{d}old@b.io{d}x\r\n"
        f"Élodie{d}c.fr{d}{d}+y\r\n"
    )
    path = tmp_path / name
    path.write_bytes(bom + text.encode(encoding))
    return open_input(path)


def written_csv(path: Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> list[list[str]]:
    import csv

    with path.open(encoding=encoding, newline="") as f:
        return list(csv.reader(f, delimiter=delimiter))


# ---- CSV -------------------------------------------------------------------------------------------------------


def test_csv_output_keeps_the_input_columns_in_order_then_the_result_columns(tmp_path: Path) -> None:
    source = leads(tmp_path)
    out = tmp_path / "out.csv"
    written = write_output(source, out, "csv", RESULTS, columns=result_columns(RESULTS))
    assert (written.rows, written.rows_with_data, written.path, written.bytes) == (3, 2, out, out.stat().st_size)
    rows = written_csv(out, "utf-8")
    assert not out.read_bytes().startswith(codecs.BOM_UTF8)  # the input had none
    assert rows[0] == [
        "First Name",
        "Company Domain",
        "email",
        "'=SUM(A1)",
        "result.email",
        "company.name",
        "company.size",
    ]
    assert rows[1] == ["Ann", "acme.com", "", "'-3", "ann@acme.com", "Acme", "50"]
    assert rows[2] == ["Bob", "b.io", "old@b.io", "x", "", "", ""]  # no result: its input kept, result empty
    assert rows[3] == ["Élodie", "c.fr", "", "'+y", '\'=HYPERLINK("http://evil")', "B", ""]
    assert written.columns == [*rows[0][:3], "=SUM(A1)", "result.email", "company.name", "company.size"]


def test_csv_output_keeps_a_semicolon_dialect_and_the_byte_order_mark(tmp_path: Path) -> None:
    source = leads(tmp_path, bom=codecs.BOM_UTF8, delimiter=";")
    out = tmp_path / "out.csv"
    write_output(source, out, "csv", RESULTS, columns=["email"])
    assert out.read_bytes().startswith(codecs.BOM_UTF8)
    assert written_csv(out, delimiter=";")[1] == ["Ann", "acme.com", "", "'-3", "ann@acme.com"]


@pytest.mark.parametrize(("encoding", "bom"), [("utf-16-le", codecs.BOM_UTF16_LE), ("cp1252", b"")])
def test_utf16_and_cp1252_inputs_come_out_as_utf8_with_a_bom_for_excel(
    tmp_path: Path, encoding: str, bom: bytes
) -> None:
    source = leads(tmp_path, encoding=encoding, bom=bom, delimiter="\t")
    out = tmp_path / "out.csv"
    write_output(source, out, "csv", RESULTS, columns=["email"])
    assert out.read_bytes().startswith(codecs.BOM_UTF8)
    assert written_csv(out, delimiter="\t")[3][0] == "Élodie"


# ---- Excel and JSON Lines ----------------------------------------------------------------------------------------


def test_xlsx_stays_xlsx_with_types_kept_and_formulas_defused(tmp_path: Path) -> None:
    path = tmp_path / "leads.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    for row in (("First Name", "Phone", "Note"), ("Ann", 14155550100, "=1+1"), ("Bob", 7, "bell")):
        sheet.append(row)
    book.save(path)
    source = open_input(path)
    out = tmp_path / "out.xlsx"
    results: list[object | None] = [{"email": "=cmd|' /C calc'!A0"}, {"email": "b@b.io", "note": "tab\x0bhere"}]
    written = write_output(source, out, "xlsx", results, columns=result_columns(results))
    assert (written.format, written.rows) == ("xlsx", 2)
    back = load_workbook(out)
    sheet = back["Leads"]  # the sheet keeps its name
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["First Name", "Phone", "Note", "email", "note"]
    # Ann's note was a formula with no computed value (None); no cell is ever a formula
    assert cells[1] == ["Ann", 14155550100, None, "'=cmd|' /C calc'!A0", None]
    assert cells[2] == ["Bob", 7, "bell", "b@b.io", "tabhere"]  # control characters Excel refuses are dropped
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_jsonl_stays_jsonl_each_object_the_input_then_the_result(tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text('{"email": "a@x.io", "n": 1}\n{"email": "b@y.io", "extra": [1]}\n', encoding="utf-8")
    source = open_input(path)
    out = tmp_path / "out.jsonl"
    results: list[object | None] = [{"name": "Ann", "email": "A@X.IO"}, None]
    write_output(source, out, "jsonl", results, columns=result_columns(results))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"email": "a@x.io", "n": 1, "name": "Ann", "result.email": "A@X.IO"},
        {"email": "b@y.io", "extra": [1]},
    ]
    assert list(lines[0]) == ["email", "n", "name", "result.email"]  # input keys first, in order


# ---- written whole or not at all ------------------------------------------------------------------------------------


def test_a_failure_midway_leaves_no_file_and_no_partial_file(tmp_path: Path) -> None:
    source = leads(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "out.csv"

    def failing() -> Iterator[object | None]:
        yield RESULTS[0]
        raise RuntimeError("the ledger went away")

    for fmt in ("csv", "xlsx", "jsonl"):
        with pytest.raises(RuntimeError, match="ledger"):
            write_output(source, out, fmt, failing(), columns=["email"])
        assert os.listdir(out_dir) == []


def test_an_existing_output_is_replaced_only_once_the_new_one_is_complete(tmp_path: Path) -> None:
    source = leads(tmp_path)
    out = tmp_path / "out.csv"
    out.write_text("the previous complete output\n", encoding="utf-8")
    with pytest.raises(ValueError, match="zip"):  # fewer results than rows: our bug, and nothing is published
        write_output(source, out, "csv", RESULTS[:2], columns=["email"])
    assert out.read_text(encoding="utf-8") == "the previous complete output\n"
    assert sorted(os.listdir(tmp_path)) == ["leads.csv", "out.csv"]


def test_results_are_aligned_to_rows_across_parts_and_skipped_rows(tmp_path: Path) -> None:
    parts = [([0, 2], [{"a": 1}, {"a": 3}]), ([3, 5], [{"a": 4}]), ([6], [None])]
    assert list(aligned_results(parts, 8)) == [{"a": 1}, None, {"a": 3}, {"a": 4}, None, None, None, None]


def test_result_columns_are_flattened_in_order_of_first_appearance() -> None:
    assert result_columns([None, {"b": 1, "a": {"x": 1}}, {"c": [1], "b": 2}]) == ["b", "a.x", "c"]


# ---- where an output may be written -----------------------------------------------------------------------------


def test_no_name_claims_a_new_file_in_the_exports_folder_named_after_the_input(tmp_path: Path) -> None:
    source = leads(tmp_path, name="Q3 leads (final).tsv", delimiter="\t")
    exports = tmp_path / "exports"
    names = []
    for local in (True, False, True):
        place = output_path(None, local=local, exports_dir=exports, input_file=source.path, input_format=source.format)
        assert (place.format, place.claimed, place.path.parent) == ("csv", True, exports.resolve())
        assert place.path.stat().st_size == 0  # claimed: no other output takes the name
        write_output(source, place.path, place.format, [None, None, None], columns=[])
        names.append(place.path.name)
    assert names == [
        "Q3_leads_final-enriched.tsv",
        "Q3_leads_final-enriched-1.tsv",
        "Q3_leads_final-enriched-2.tsv",
    ]
    assert written_csv(exports / names[0], "utf-8", "\t")[0][:2] == ["First Name", "Company Domain"]


def test_a_plain_name_goes_to_the_exports_folder_in_the_format_it_names(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    place = output_path(
        "enriched.xlsx", local=False, exports_dir=exports, input_file=tmp_path / "l.csv", input_format="csv"
    )
    assert (place.path, place.format) == (exports.resolve() / "enriched.xlsx", "xlsx")
    place = output_path(
        "enriched", local=True, exports_dir=exports, input_file=tmp_path / "l.jsonl", input_format="jsonl"
    )
    assert (place.path.name, place.format) == ("enriched.jsonl", "jsonl")


@pytest.mark.parametrize("requested", ["../out.csv", "/tmp/out.csv", "sub/out.csv", "~/out.csv", ".hidden.csv"])
def test_over_http_an_output_is_only_a_plain_name_in_the_exports_folder(tmp_path: Path, requested: str) -> None:
    with pytest.raises(FileRefused, match=r"plain (file )?name"):
        output_path(
            requested, local=False, exports_dir=tmp_path / "exports", input_file=tmp_path / "l.csv", input_format="csv"
        )


def test_on_stdio_a_path_the_user_names_is_used_unless_it_exists_or_is_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    source = leads(tmp_path)
    kwargs = {
        "local": True,
        "exports_dir": tmp_path / "exports",
        "input_file": source.path,
        "input_format": source.format,
    }
    with pytest.raises(FileRefused, match="does not exist"):
        output_path("~/out/enriched.xlsx", **kwargs)  # type: ignore[arg-type]
    (tmp_path / "out").mkdir()
    place = output_path("~/out/enriched.xlsx", **kwargs)  # type: ignore[arg-type]
    assert (place.path, place.format, place.claimed) == (tmp_path / "out" / "enriched.xlsx", "xlsx", False)
    place.path.write_text("x", encoding="utf-8")
    with pytest.raises(FileRefused, match="already exists"):
        output_path(str(place.path), **kwargs)  # type: ignore[arg-type]
    assert output_path(str(place.path), overwrite=True, **kwargs).path == place.path  # type: ignore[arg-type]
    with pytest.raises(FileRefused, match="is the input file"):
        output_path(str(source.path), overwrite=True, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(FileRefused, match="is a folder"):
        output_path(str(tmp_path / "out") + "/", overwrite=True, **kwargs)  # type: ignore[arg-type]


def test_reading_back_an_output_gives_the_same_rows(tmp_path: Path) -> None:
    source = leads(tmp_path)
    out = tmp_path / "round.csv"
    write_output(source, out, "csv", RESULTS, columns=["email"])
    again = open_input(out)
    assert [r.values["First Name"] for r in iter_rows(again)] == ["Ann", "Bob", "Élodie"]
