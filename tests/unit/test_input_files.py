"""Reading list files (issue 25): every common CSV dialect and encoding, JSON Lines and .xlsx, streamed; a
malformed file named by its line; and where a file may be read at all (stdio vs HTTP and the import folder)."""

from __future__ import annotations

import codecs
import os
import socket
import tracemalloc
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook

from databar_mcp.config import Settings
from databar_mcp.core.files import (
    FileProblem,
    FileRefused,
    InputSpec,
    UnreadableFile,
    check_rows,
    input_path,
    iter_rows,
    map_columns,
    open_input,
    open_regular,
)

LEADS = [("Ann", "Lee", "acme.com"), ("Bob", "Smith, Jr.", "b.io"), ("Élodie", "Müller", "münchen.de")]
INPUTS = [InputSpec("first_name", True), InputSpec("last_name", True), InputSpec("company", True)]


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def leads_text(delimiter: str, newline: str = "\r\n") -> str:
    def quote(v: str) -> str:
        return f'"{v}"' if delimiter in v or "," in v else v

    lines = [delimiter.join(("First Name", "Last Name", "Company Domain"))]
    lines += [delimiter.join(quote(v) for v in row) for row in LEADS]
    return newline.join(lines) + newline


def values(path: Path) -> list[tuple[object, ...]]:
    source = open_input(path)
    return [tuple(row.values.values()) for row in iter_rows(source)]


# ---- CSV dialects and encodings --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = write_csv(tmp_path / "leads.csv", leads_text(delimiter))
    source = open_input(path)
    assert source.csv is not None and source.csv.delimiter == delimiter
    assert source.columns == ("First Name", "Last Name", "Company Domain")
    assert values(path) == LEADS


def test_semicolon_file_with_decimal_commas_is_read_as_semicolons(tmp_path: Path) -> None:
    """Excel on a German machine: ';' between values, ',' inside numbers."""
    path = write_csv(tmp_path / "de.csv", "Name;Umsatz;Domain\nAnn;1,5;acme.com\nBob;2,75;b.io\n")
    assert values(path) == [("Ann", "1,5", "acme.com"), ("Bob", "2,75", "b.io")]


@pytest.mark.parametrize(
    ("encoding", "bom", "codec"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),  # Excel's "CSV UTF-8"
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"),  # Excel's "Unicode Text"
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16"),
    ],
)
def test_csv_encodings_by_byte_order_mark(tmp_path: Path, encoding: str, bom: bytes, codec: str) -> None:
    delimiter = "\t" if encoding.startswith("utf-16") else ","
    path = tmp_path / "leads.csv"
    path.write_bytes(bom + leads_text(delimiter).encode(encoding))
    source = open_input(path)
    assert source.csv is not None and (source.csv.encoding, source.csv.bom) == (codec, bool(bom))
    assert source.columns[0] == "First Name"  # no BOM left on the first header
    assert values(path) == LEADS


def test_cp1252_is_found_even_when_its_first_accent_is_far_down(tmp_path: Path) -> None:
    rows = [f"Person{i},Last{i},c{i}.com" for i in range(5_000)] + ["Renée,Dupré,café.fr"]
    path = write_csv(tmp_path / "old.csv", "first,last,company\r\n" + "\r\n".join(rows) + "\r\n", "cp1252")
    source = open_input(path)
    assert source.csv is not None and source.csv.encoding == "cp1252" and not source.csv.bom
    *_, last = iter_rows(source)
    assert tuple(last.values.values()) == ("Renée", "Dupré", "café.fr")
    assert last.number == 5_002


def test_quoted_values_keep_delimiters_quotes_and_line_breaks(tmp_path: Path) -> None:
    text = 'name,note,domain\n"Smith, Ann","said ""hi""\nthen left",acme.com\nBob,plain,b.io\n'
    source = open_input(write_csv(tmp_path / "q.csv", text))
    rows = list(iter_rows(source))
    assert rows[0].values == {"name": "Smith, Ann", "note": 'said "hi"\nthen left', "domain": "acme.com"}
    assert [(r.position, r.number) for r in rows] == [(0, 2), (1, 4)]  # Bob's record starts on line 4


def test_blank_lines_are_skipped_but_keep_their_numbers(tmp_path: Path) -> None:
    source = open_input(write_csv(tmp_path / "b.csv", "\n\na,b\n1,2\n\n,\n3,4\n"))
    assert source.columns == ("a", "b")
    assert [(r.position, r.number, dict(r.values)) for r in iter_rows(source)] == [
        (0, 4, {"a": "1", "b": "2"}),
        (1, 7, {"a": "3", "b": "4"}),
    ]


def test_header_names_are_made_unique_and_blank_ones_named(tmp_path: Path) -> None:
    source = open_input(write_csv(tmp_path / "h.csv", "Email,,Email, email \nx,y,z,w\n"))
    assert source.header == ("Email", "", "Email", " email ")
    assert source.columns == ("Email", "column 2", "Email (2)", "email")
    (row,) = iter_rows(source)
    assert row.values == {"Email": "x", "column 2": "y", "Email (2)": "z", "email": "w"}


def test_short_rows_read_as_empty_and_extra_cells_are_counted(tmp_path: Path) -> None:
    source = open_input(write_csv(tmp_path / "s.csv", "a,b,c\n1\n1,2,3,4,\n1,2,3,,\n"))
    rows = list(iter_rows(source))
    assert rows[0].values == {"a": "1"} and rows[0].surplus == 0
    assert rows[1].surplus == 1  # "4" beyond the header; the trailing empty cell is not counted
    assert rows[2].surplus == 0


# ---- malformed CSV: named by its line ----------------------------------------------------------------------


def test_unclosed_quote_is_reported_as_such_with_its_line(tmp_path: Path) -> None:
    """Regression: the quote on line 3 swallowed the rest of the file into one cell, which then read as rows
    missing their inputs. It must be named for what it is, before any mapping or spend."""
    text = 'first_name,last_name,company\nAnn,Lee,acme.com\nBob,"Smith,b.io\nCid,Ng,c.io\n'
    source = open_input(write_csv(tmp_path / "broken.csv", text))
    with pytest.raises(UnreadableFile) as caught:
        check_rows(source, map_columns(source.columns, INPUTS), INPUTS)
    message = caught.value.message
    assert "unclosed quote" in message and "line 3" in message and "broken.csv" in message
    assert "required" not in message
    assert caught.value.details["line"] == 3


def test_quote_closed_lines_later_is_named_as_a_probable_unclosed_quote(tmp_path: Path) -> None:
    text = 'name,domain\nAnn,"acme.com\nBob,b.io\nCid,c"x.io\nDee,d.io\n'
    source = open_input(write_csv(tmp_path / "late.csv", text))
    with pytest.raises(UnreadableFile, match=r"probably an unclosed quote on line 2.*runs to line 4"):
        list(iter_rows(source))


def test_stray_quote_after_a_quoted_value_names_its_line(tmp_path: Path) -> None:
    source = open_input(write_csv(tmp_path / "stray.csv", 'name,domain\nAnn,acme.com\n"Bob"x,b.io\n'))
    with pytest.raises(UnreadableFile, match=r"line 3 is not valid CSV"):
        list(iter_rows(source))


def test_unclosed_quote_running_past_the_field_limit_is_named(tmp_path: Path) -> None:
    filler = "\n".join(f"row{i},value{i}" for i in range(20_000))
    source = open_input(write_csv(tmp_path / "huge.csv", f'name,domain\nAnn,acme.com\nBob,"{filler}\n'))
    with pytest.raises(UnreadableFile, match=r"unclosed quote on line 3"):
        list(iter_rows(source))


def test_workbook_named_csv_and_binary_files_are_refused(tmp_path: Path) -> None:
    book = tmp_path / "really.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("x", "y")
    renamed = tmp_path / "leads.csv"
    renamed.write_bytes(book.read_bytes())
    with pytest.raises(FileRefused, match=r"Excel workbook.*name it \.xlsx"):
        open_input(renamed)
    with pytest.raises(UnreadableFile, match=r"NUL bytes"):
        open_input(write_csv(tmp_path / "nul.csv", "a,b\n1,2\n", "utf-16-le"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("old.xls", r"save it as \.xlsx"), ("list.json", r"\.jsonl"), ("notes.docx", r"CSV .*JSON Lines .*Excel")],
)
def test_unsupported_extensions_say_what_to_do(tmp_path: Path, name: str, expected: str) -> None:
    path = write_csv(tmp_path / name, "a,b\n1,2\n")
    with pytest.raises(FileRefused, match=expected):
        open_input(path)


def test_empty_files_and_header_only_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="is empty"):
        open_input(write_csv(tmp_path / "empty.csv", "\n\n"))
    source = open_input(write_csv(tmp_path / "header.csv", "first_name,last_name,company\n"))
    with pytest.raises(UnreadableFile, match="no rows below it"):
        check_rows(source, map_columns(source.columns, INPUTS), INPUTS)


def test_a_file_changed_after_it_was_read_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", leads_text(","))
    source = open_input(path)
    path.write_text(leads_text(",") + "Dee,Ng,d.io\r\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="changed since it was read"):
        list(iter_rows(source))
    path.unlink()
    with pytest.raises(FileProblem, match="is gone since it was read"):
        list(iter_rows(source))


# ---- JSON Lines ------------------------------------------------------------------------------------------


def test_jsonl_rows_keep_their_types_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b'{"email": "a@x.io", "n": 1}\n\n{"email": "b@y.io", "tags": ["x"]}\n')
    source = open_input(path)
    assert source.columns == ("email", "n", "tags")
    rows = list(iter_rows(source))
    assert [(r.number, dict(r.values)) for r in rows] == [
        (1, {"email": "a@x.io", "n": 1}),
        (3, {"email": "b@y.io", "tags": ["x"]}),
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (b'{"a": 1}\n{"a": 2,\n', r"line 2 is not valid JSON"),
        (b'{"a": 1}\n\n["a"]\n', r"line 3 is a JSON list, not an object"),
        (b'{"a": 1}\n{"a": "\xe9"}\n', r"line 2 is not UTF-8"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, lines: bytes, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(lines)
    with pytest.raises(UnreadableFile, match=expected):
        list(iter_rows(open_input(path)))


# ---- Excel ---------------------------------------------------------------------------------------------------


def make_workbook(path: Path, sheets: dict[str, Sequence[Sequence[object]]], *, start_row: int = 1) -> Path:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is not None:
                    sheet.cell(row=start_row + i, column=j + 1, value=value)  # type: ignore[arg-type]
    book.save(path)
    return path


def test_xlsx_rows_carry_the_sheet_row_numbers(tmp_path: Path) -> None:
    path = make_workbook(
        tmp_path / "leads.xlsx",
        {
            "Leads": [
                ("First Name", "Phone", "Company"),
                ("Ann", 14155550100.0, "acme.com"),
                (None, None, None),
                ("Bob", 7, "b.io"),
            ]
        },
        start_row=3,
    )
    source = open_input(path)
    assert (source.format, source.sheet, source.columns) == ("xlsx", "Leads", ("First Name", "Phone", "Company"))
    rows = list(iter_rows(source))
    assert [(r.position, r.number) for r in rows] == [(0, 4), (1, 6)]
    assert rows[0].values == {"First Name": "Ann", "Phone": 14155550100, "Company": "acme.com"}


def test_xlsx_sheet_is_chosen_by_name_and_an_unknown_one_lists_the_sheets(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "two.xlsx", {"Notes": [("x",), ("y",)], "Leads": [("email",), ("a@x.io",)]})
    assert open_input(path).sheet == "Notes"  # the first sheet, when none is named
    source = open_input(path, sheet="Leads")
    assert [dict(r.values) for r in iter_rows(source)] == [{"email": "a@x.io"}]
    with pytest.raises(FileRefused, match=r"no worksheet 'Contacts'; its sheets: 'Notes', 'Leads'"):
        open_input(path, sheet="Contacts")


def test_corrupt_xlsx_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(UnreadableFile, match=r"not a readable Excel workbook"):
        open_input(path)


# ---- memory: 100,000 rows are streamed -----------------------------------------------------------------


def test_a_100000_row_csv_is_read_in_small_memory(tmp_path: Path) -> None:
    """Reading, checking and iterating 100,000 rows holds one row at a time: the peak Python allocation stays
    far below the file's size (a list of the rows as dicts would take over 50 MB)."""
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("First Name,Last Name,Company Domain,Notes\r\n")
        for i in range(100_000):
            f.write(f"Person{i},Surname{i},company{i}.example.com,some note about lead number {i}\r\n")
    size = path.stat().st_size
    assert size > 7_000_000
    tracemalloc.start()
    try:
        source = open_input(path)
        mapping = map_columns(source.columns, INPUTS)
        report = check_rows(source, mapping, INPUTS)  # reads every row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report.rows, report.bad) == (100_000, 0)
    assert peak < 2_000_000, f"peak {peak:,} bytes for a {size:,}-byte file"


# ---- where a file may be read ---------------------------------------------------------------------------------


def test_stdio_reads_any_regular_file_with_home_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_csv(tmp_path / "leads.csv", leads_text(","))
    assert input_path("~/leads.csv", local=True, import_dir=None) == (tmp_path / "leads.csv").resolve()
    monkeypatch.chdir(tmp_path)
    assert input_path("leads.csv", local=True, import_dir=None) == (tmp_path / "leads.csv").resolve()


def test_stdio_refuses_folders_devices_fifos_sockets_and_missing_files(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.csv"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for requested, expected in (
            (str(tmp_path), "is a folder"),
            ("/dev/null", "is a device"),
            (str(fifo), "named pipe"),  # and it does not hang waiting for a writer
            (str(sock_path), "is a socket"),
            (str(tmp_path / "missing.csv"), "No file at"),
            ("  ", "input_file is empty"),
        ):
            with pytest.raises(FileRefused, match=expected):
                input_path(requested, local=True, import_dir=None)
    finally:
        sock.close()


def test_open_regular_refuses_a_fifo_or_link_swapped_in_after_the_check(tmp_path: Path) -> None:
    fifo = tmp_path / "later.csv"
    os.mkfifo(fifo)
    with pytest.raises(FileRefused, match="named pipe"):
        open_regular(fifo)  # O_NONBLOCK: refused at once, never blocks
    real = write_csv(tmp_path / "real.csv", "a\n1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with pytest.raises(FileRefused, match="cannot be opened"):
        open_regular(link)


def test_over_http_reading_is_off_without_an_import_folder(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", leads_text(","))
    with pytest.raises(FileRefused, match="DATABAR_MCP_IMPORT_DIR") as caught:
        input_path(str(path), local=False, import_dir=None)
    assert caught.value.details == {"setting": "DATABAR_MCP_IMPORT_DIR"}


def test_over_http_files_inside_the_import_folder_are_read(tmp_path: Path) -> None:
    root = tmp_path / "imports"
    (root / "q3").mkdir(parents=True)
    inside = write_csv(root / "q3" / "leads.csv", leads_text(","))
    (root / "alias.csv").symlink_to(inside)  # a link that stays inside is fine
    for requested in ("q3/leads.csv", str(inside), "alias.csv", "./q3/leads.csv"):
        assert input_path(requested, local=False, import_dir=root) == inside.resolve()


def test_over_http_traversal_and_links_out_of_the_import_folder_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "imports"
    root.mkdir()
    secret = write_csv(tmp_path / "secret.csv", "key\nhunter2\n")
    (root / "escape.csv").symlink_to(secret)
    (root / "dir-link").symlink_to(tmp_path)
    (root / "folder").mkdir()
    for requested, expected in (
        ("../secret.csv", r"'\.\.' is not allowed"),
        ("folder/../../secret.csv", r"'\.\.' is not allowed"),
        (str(secret), "outside the import folder"),
        ("escape.csv", "leads outside the import folder"),
        ("dir-link/secret.csv", "leads outside the import folder"),
        ("~/secret.csv", "'~' means nothing on the server"),
        ("folder", "is a folder"),
        ("absent.csv", "No file at"),
    ):
        with pytest.raises(FileRefused, match=expected):
            input_path(requested, local=False, import_dir=root)


def test_settings_read_the_import_folder_and_part_size_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATABAR_MCP_IMPORT_DIR": str(tmp_path), "DATABAR_MCP_FILE_PART_ROWS": "500"})
    assert (settings.import_dir, settings.file_part_rows) == (tmp_path, 500)
    assert Settings.from_env({}).import_dir is None
