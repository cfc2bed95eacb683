"""A list file's columns mapped to a run's inputs, every row checked before anything is sent, and the file
cut into parts whose fingerprints let a resumed job skip what Databar already accepted (issue 25)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databar_mcp import config
from databar_mcp.core.files import (
    FileProblem,
    InputSpec,
    MissingColumns,
    check_rows,
    map_columns,
    open_input,
    param_text,
    part_fingerprint,
    part_params,
    rows_of,
    split_parts,
)

EMAIL_GETTER = [InputSpec("first_name", True), InputSpec("last_name", True), InputSpec("company", True)]


def csv_file(tmp_path: Path, text: str, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- column mapping -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "input_name"),
    [
        ("First Name", "first_name"),
        ("first_name", "first_name"),
        ("FirstName", "first_name"),
        ("FIRST-NAME", "first_name"),
        ("Given name", "first_name"),
        ("Surname", "last_name"),
        ("Company Domain", "company"),
        ("domain", "company"),
        ("Website", "company"),
        ("Company Name", "company"),
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("Contact Email", "email"),
        ("Work Email", "email"),
        ("LinkedIn URL", "linkedin_url"),
        ("linkedin", "linkedin_url"),
        ("Company Website", "domain"),
        ("Job Title", "job_title"),
        ("Mobile Phone", "phone"),
    ],
)
def test_common_header_spellings_are_matched(header: str, input_name: str) -> None:
    mapping = map_columns(["Notes", header, "Id"], [InputSpec(input_name, True)])
    assert dict(mapping.used) == {input_name: header}


def test_the_same_name_wins_over_a_synonym_and_each_column_feeds_one_input() -> None:
    mapping = map_columns(["Website", "Company", "Domain"], [InputSpec("company", True), InputSpec("domain")])
    assert dict(mapping.used) == {"company": "Company", "domain": "Domain"}
    mapping = map_columns(["Company", "Website"], [InputSpec("company", True), InputSpec("domain")])
    assert dict(mapping.used) == {"company": "Company", "domain": "Website"}


def test_a_required_input_chooses_before_an_optional_one_of_equal_fit() -> None:
    mapping = map_columns(["Website"], [InputSpec("domain"), InputSpec("company", True)])
    assert dict(mapping.used) == {"company": "Website"}
    assert mapping.unmapped == ("domain",)


def test_the_mapping_used_is_stated_in_one_line() -> None:
    mapping = map_columns(
        ["First Name", "last_name", "Company Domain", "Notes"],
        [*EMAIL_GETTER, InputSpec("email_hint")],
        {"first_name": "First Name"},
    )
    assert mapping.text() == (
        "Columns used: first_name ← 'First Name' (given), last_name ← 'last_name', company ← 'Company Domain' "
        "(matched); no column for optional email_hint."
    )
    assert mapping.ignored == ("Notes",)


def test_a_given_mapping_wins_and_tolerates_spelling() -> None:
    mapping = map_columns(["Given", "E-mail", "Email"], [InputSpec("email", True)], {"email": "e-mail"})
    assert dict(mapping.used) == {"email": "E-mail"} and mapping.how["email"] == "given"


def test_a_missing_required_input_lists_the_columns_found_and_the_inputs_needed() -> None:
    with pytest.raises(MissingColumns) as caught:
        map_columns(["Name", "Org", "Phone"], EMAIL_GETTER)
    error = caught.value
    assert error.message.startswith("No column for required input(s) first_name, last_name.")
    assert "The file's columns: 'Name', 'Org', 'Phone'." in error.message
    assert "Needed: first_name (required), last_name (required), company (required)." in error.message
    assert 'columns={"first_name": "<column name>", ...}' in error.message
    assert error.details["missing_inputs"] == ["first_name", "last_name"]
    assert error.details["columns_found"] == ["Name", "Org", "Phone"]
    assert error.details["mapped"] == {"company": "Org"}


def test_a_given_mapping_to_an_unknown_column_or_input_is_refused() -> None:
    with pytest.raises(MissingColumns, match=r"maps email to 'Mail', which the file does not have.*'E-post'"):
        map_columns(["E-post"], [InputSpec("email", True)], {"email": "Mail"})
    with pytest.raises(MissingColumns, match=r"names 'emial', which is not an input here. Inputs: email \(required\)"):
        map_columns(["email"], [InputSpec("email", True)], {"emial": "email"})


def test_a_file_of_many_long_columns_gets_a_bounded_message() -> None:
    columns = [f"{'x' * 5_000} {i}" for i in range(500)]
    with pytest.raises(MissingColumns) as caught:
        map_columns(columns, EMAIL_GETTER)
    assert len(caught.value.message) < 6_000
    assert caught.value.details["column_count"] == 500 and len(caught.value.details["columns_found"]) == 50  # type: ignore[arg-type]


# ---- row checks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("  ann@x.io ", "ann@x.io"),
        (14155550100.0, "14155550100"),
        (2.5, "2.5"),
        (7, "7"),
        (True, "true"),
        (date(2026, 1, 2), "2026-01-02"),
        (datetime(2026, 1, 2, 3, 4), "2026-01-02T03:04:00"),
        (["a", 1], '["a", 1]'),
    ],
)
def test_cells_become_the_text_databar_inputs_take(value: object, text: str) -> None:
    assert param_text(value) == text


def test_bad_rows_are_named_by_file_row_and_counted(tmp_path: Path) -> None:
    long = "x" * (config.FILE_VALUE_MAX_CHARS + 1)
    text = (
        "First Name,Last Name,Website\n"
        "Ann,Lee,acme.com\n"
        ",Smith,b.io\n"  # row 3: no first name
        f"Cid,Ng,{long}\n"  # row 4: over-long
        "Dee,Ora,d.io,extra\n"  # row 5: a value beyond the header
        "Eve,  ,e.io\n"  # row 6: blank last name
    )
    source = open_input(csv_file(tmp_path, text))
    report = check_rows(source, map_columns(source.columns, EMAIL_GETTER), EMAIL_GETTER)
    assert (report.rows, report.bad, report.sendable, report.ok) == (5, 4, 1, False)
    assert report.text() == (
        "4 of 5 rows of leads.csv cannot be sent: "
        "row 3: no value for required first_name (column 'First Name'); "
        f"row 4: company is {len(long):,} characters (at most {config.FILE_VALUE_MAX_CHARS:,}; an unclosed quote?); "
        "row 5: 1 value(s) beyond the header's columns (a stray delimiter or quote?); "
        "row 6: no value for required last_name (column 'Last Name')."
    )
    assert long not in report.text()  # values are never quoted


def test_the_bad_row_list_is_capped_but_every_bad_row_counted(tmp_path: Path) -> None:
    rows = "".join(f"Person{i},,c{i}.io\n" for i in range(1_000))
    source = open_input(csv_file(tmp_path, "first_name,last_name,company\n" + rows))
    report = check_rows(source, map_columns(source.columns, EMAIL_GETTER), EMAIL_GETTER)
    assert (report.rows, report.bad, len(report.shown)) == (1_000, 1_000, config.FILE_BAD_ROWS_SHOWN)
    assert report.text().startswith(
        f"1,000 of 1,000 rows of leads.csv cannot be sent (the first {config.FILE_BAD_ROWS_SHOWN} listed): row 2:"
    )
    assert len(report.text()) < 3_000


def test_a_clean_file_says_so(tmp_path: Path) -> None:
    source = open_input(csv_file(tmp_path, "first_name,last_name,company\nAnn,Lee,acme.com\n"))
    report = check_rows(source, map_columns(source.columns, EMAIL_GETTER), EMAIL_GETTER)
    assert report.ok and report.text() == "All 1 rows of leads.csv can be sent."


# ---- parts ----------------------------------------------------------------------------------------------------


def test_the_default_part_is_the_largest_bulk_request_we_send() -> None:
    """Databar's SDK and CLI send a whole CSV as one bulk run; our own request model caps one at MAX_BULK_ROWS."""
    assert config.FILE_PART_ROWS == config.MAX_BULK_ROWS == 10_000
    assert config.Settings().file_part_rows == config.FILE_PART_ROWS


@settings(deadline=None)  # hashing thousands of parts on a busy machine: a property, not a timing
@given(total=st.integers(0, 3_000), size=st.integers(1, 1_200))
def test_parts_cover_every_row_once_in_order_and_at_most_n_rows(total: int, size: int) -> None:
    parts = list(split_parts(total, file_sha256="f", mapping={"email": "E-mail"}, target="t", part_rows=size))
    assert [p.number for p in parts] == list(range(len(parts)))
    assert [p.start for p in parts] == list(range(0, total, size))
    assert all(0 < p.rows <= size for p in parts)
    assert sum(p.rows for p in parts) == total and (not parts or parts[-1].stop == total)
    again = list(split_parts(total, file_sha256="f", mapping={"email": "E-mail"}, target="t", part_rows=size))
    assert [p.fingerprint for p in again] == [p.fingerprint for p in parts]  # stable across calls
    assert len({p.fingerprint for p in parts}) == len(parts)


def test_a_part_fingerprint_changes_with_the_content_range_mapping_and_target() -> None:
    base = {"file_sha256": "a" * 64, "start": 0, "stop": 100, "mapping": {"email": "E-mail"}, "target": {"w": 1}}
    fp = part_fingerprint(**base)  # type: ignore[arg-type]
    assert fp == part_fingerprint(**{**base, "mapping": {"email": "E-mail"}})  # type: ignore[arg-type]
    for change in (
        {"file_sha256": "b" * 64},
        {"start": 1},
        {"stop": 99},
        {"mapping": {"email": "Email"}},
        {"target": {"w": 2}},
    ):
        assert part_fingerprint(**{**base, **change}) != fp, change  # type: ignore[arg-type]


def test_part_params_send_each_parts_rows_and_skip_bad_ones_only_when_asked(tmp_path: Path) -> None:
    text = "first_name,last_name,company,notes\n" + "".join(
        f"P{i},{'' if i == 3 else f'L{i}'},c{i}.io,n{i}\n" for i in range(7)
    )
    source = open_input(csv_file(tmp_path, text))
    mapping = map_columns(source.columns, EMAIL_GETTER)
    parts = list(split_parts(7, file_sha256=source.sha256, mapping=mapping.used, target="x", part_rows=3))
    assert [[r.number for r in rows_of(source, p)] for p in parts] == [[2, 3, 4], [5, 6, 7], [8]]
    second = part_params(source, parts[1], mapping, EMAIL_GETTER, skip_bad=True)
    assert second.params == [
        {"first_name": "P4", "last_name": "L4", "company": "c4.io"},
        {"first_name": "P5", "last_name": "L5", "company": "c5.io"},
    ]
    assert (second.positions, second.skipped) == ([4, 5], [5])  # row 5 of the file is position 3
    with pytest.raises(FileProblem, match=r"row 5 cannot be sent \(no value for required last_name"):
        part_params(source, parts[1], mapping, EMAIL_GETTER, skip_bad=False)
    first = part_params(source, parts[0], mapping, EMAIL_GETTER, skip_bad=False)
    assert first.positions == [0, 1, 2] and first.skipped == []
