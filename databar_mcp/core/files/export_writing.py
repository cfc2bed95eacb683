"""Write a task's result as CSV or JSONL, each row joined to its input by position.

The structured JSONL keeps every value exactly; CSV flattens nested objects into dotted columns and defuses
spreadsheet formulas in text, header cells included (provider data and column names are third-party text: a
cell must never execute). Files are created exclusively, so an export never overwrites another.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

ExportFormat = Literal["csv", "jsonl"]
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UnsafeName(ValueError):
    """A file name that could leave the exports folder or is not a plain name."""


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': 1}, 'c': [1]} -> {'a.b': 1, 'c': '[1]'}; a non-object value becomes {prefix or 'value': v}."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in cast(dict[str, Any], value).items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(inner, name))
        return out
    if isinstance(value, list):
        return {prefix or "value": json.dumps(value, ensure_ascii=False)}
    return {prefix or "value": value}


def cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def export_stem(default: str, name: str | None, fmt: str) -> str:
    """The file stem for an export: the agent's plain name (or `default`), checked before anything is read."""
    stem = name or default
    if not SAFE_NAME.fullmatch(stem) or ".." in stem:
        raise UnsafeName(
            "filename must be a plain name of letters, digits, '.', '_' and '-' (no folders), up to 100 characters"
        )
    if stem.lower().endswith(f".{fmt}"):
        stem = stem[: -(len(fmt) + 1)]
    return stem


def claim_new_file(folder: Path, stem: str, fmt: str) -> Path:
    """Create a new, empty file `stem.fmt` (or `stem-N.fmt`) in `folder` and return it; never an existing one.

    Creation is exclusive (O_EXCL), so concurrent exports with the same name each get their own file: a
    check-then-write would let them pick the same free name and overwrite each other.
    """
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    n = 0
    while True:
        candidate = root / (f"{stem}.{fmt}" if n == 0 else f"{stem}-{n}.{fmt}")
        if candidate.parent != root:  # defence in depth: the pattern already forbids separators
            raise UnsafeName("filename resolves outside the exports folder")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            n += 1
            continue
        return candidate


def export_path(folder: Path, task_id: str, name: str | None, fmt: ExportFormat) -> Path:
    """A new file of our own inside `folder`: the agent's plain name (or the task id), never an existing file."""
    return claim_new_file(folder, export_stem(task_id, name, fmt), fmt)


def _pairs(inputs: Sequence[object] | None, results: Sequence[object]) -> Iterable[tuple[int, object, object]]:
    for i, result in enumerate(results):
        yield i, (inputs[i] if inputs is not None and i < len(inputs) else None), result


def each_result(result: object) -> list[object]:
    """A row's results one by one: the items of a list of objects (an enrichment answering many results per
    input, e.g. the employees of a company), else the row's one result."""
    if isinstance(result, list) and result and all(isinstance(item, dict) for item in cast(list[object], result)):
        return list(cast(list[object], result))
    return [result]


def _lines(inputs: Sequence[object] | None, results: Sequence[object]) -> Iterable[tuple[int, object, object]]:
    """One CSV line per result: a row with many results repeats its index and input on each."""
    for i, given, result in _pairs(inputs, results):
        for item in each_result(result):
            yield i, given, item


def csv_columns(inputs: Sequence[object] | None, results: Sequence[object]) -> tuple[list[str], list[str]]:
    """Input columns as given; output columns flattened, prefixed 'result.' when a name collides."""
    input_cols: dict[str, None] = {}
    for row in inputs or ():
        input_cols.update(dict.fromkeys(flatten(row)))
    output_cols: dict[str, None] = {}
    for result in results:
        for item in each_result(result):
            if item is not None:
                output_cols.update(dict.fromkeys(flatten(item)))
    return list(input_cols), list(output_cols)


def _atomic_write(path: Path, write: Any) -> int:
    """Write into a temporary file, then move it over `path` (a file this export claimed): never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def write_export(
    path: Path, fmt: ExportFormat, inputs: Sequence[object] | None, results: Sequence[object]
) -> tuple[int, list[str]]:
    """Write every row; returns (bytes written, column names)."""
    if fmt == "jsonl":

        def write_jsonl(f: Any) -> None:
            for i, given, result in _pairs(inputs, results):
                f.write(json.dumps({"index": i, "input": given, "result": result}, ensure_ascii=False) + "\n")

        return _atomic_write(path, write_jsonl), ["index", "input", "result"]

    input_cols, output_cols = csv_columns(inputs, results)
    taken = {"index", "found", *input_cols}
    out_names = {c: (f"result.{c}" if c in taken else c) for c in output_cols}
    header = ["index", *input_cols, "found", *out_names.values()]

    def write_csv(f: Any) -> None:
        writer = csv.writer(f)
        writer.writerow([cell(name) for name in header])  # keys are provider/agent text too: defused like cells
        for i, given, result in _lines(inputs, results):
            flat_in = flatten(given) if given is not None else {}
            flat_out = flatten(result) if result is not None else {}
            writer.writerow(
                [i]
                + [cell(flat_in.get(c)) for c in input_cols]
                + [result is not None]
                + [cell(flat_out.get(c)) for c in output_cols]
            )

    return _atomic_write(path, write_csv), header


def table_export_path(folder: Path, table_uuid: str, name: str | None, fmt: ExportFormat, *, resume: bool) -> Path:
    """A new file for a table export (claimed exclusively), or (resuming) the one the previous call started."""
    stem = export_stem(f"table-{table_uuid}", name, fmt)
    if not resume:
        return claim_new_file(folder, stem, fmt)
    path = folder.resolve() / f"{stem}.{fmt}"
    if not path.is_file():
        raise UnsafeName(f"cannot resume: {path.name} does not exist in the exports folder")
    return path


def append_table_rows(path: Path, fmt: ExportFormat, columns: Sequence[str], rows: Sequence[dict[str, object]]) -> int:
    """Append one page of table rows (CSV header written when the file is new); returns the file's size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0  # a freshly claimed file is empty
    with path.open("a", newline="", encoding="utf-8") as f:
        if fmt == "jsonl":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.writer(f)
            if new:
                writer.writerow([cell(name) for name in columns])
            for row in rows:
                writer.writerow([cell(row.get(c)) for c in columns])
    return path.stat().st_size
