"""Tables and their rows: paging, filters and the batch write rules (≤50 rows, known columns)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

from databar_mcp.sandbox.errors import MAX_BATCH, Json, batch_error, field_errors

SEED_TABLE_ID = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
SEED_COLUMNS = ("first_name", "last_name", "company", "email")
_SEED_FIRST = ("John", "Jane", "Ana", "Liam", "Mei", "Omar", "Priya", "Sven", "Zoe", "Kofi", "Lucia")
_SEED_LAST = ("Doe", "Smith", "Ivanova", "Brown", "Chen", "Haddad", "Patel", "Berg", "Martin", "Mensah")
_SEED_COMPANIES = ("acme.com", "globex.io", "initech.com", "umbrella.co", "hooli.xyz", "stark.dev", "wayne.org")
T = TypeVar("T")
_FILTER_OPS = frozenset({"equals", "contains", "not_equals", "is_empty", "is_not_empty"})


@dataclass
class Column:
    identifier: str
    internal_name: str
    name: str
    type_of_value: str = "text"
    data_processor_id: int | None = None  # the table enrichment that fills this column (see processors.py)

    def as_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {
            "identifier": self.identifier,
            "internal_name": self.internal_name,
            "name": self.name,
            "type_of_value": self.type_of_value,
        }
        if self.data_processor_id is not None:
            out["data_processor_id"] = self.data_processor_id
        return out


# A row-level error as Databar's MCP server reads it (`{code, message}`); routes flatten it in variant mode.
ROW_NOT_FOUND: dict[str, Json] = {"code": "ROW_NOT_FOUND", "message": "Row not found."}


def _is_empty(value: Json) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _norm(value: Json) -> str:
    return "" if value is None else str(value).strip().lower()


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


@dataclass
class Table:
    identifier: str
    name: str
    created_at: str
    updated_at: str
    columns: list[Column] = field(default_factory=list[Column])
    rows: list[dict[str, Json]] = field(default_factory=list[dict[str, Json]])
    counter: int = 0
    workbook: str | None = None  # the workbook that owns it (see workbooks.py)
    position: int = 0  # its sheet's place in that workbook

    def as_json(self) -> dict[str, Json]:
        return {
            "identifier": self.identifier,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "workspace_identifier": "sandbox",
            "workbook": self.workbook,
            "table_url": f"https://app.databar.ai/table/{self.identifier}",
        }

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def add_column(self, name: str) -> None:
        index = len(self.columns) + 1
        ident = str(uuid.uuid5(uuid.UUID(self.identifier), f"column:{name}"))
        self.columns.append(Column(ident, f"column_{index}", name))
        for row in self.rows:
            row.setdefault(name, None)

    def new_row(self, fields: Mapping[str, Json]) -> dict[str, Json]:
        self.counter += 1
        row: dict[str, Json] = {"id": str(uuid.uuid5(uuid.UUID(self.identifier), f"row:{self.counter}"))}
        row.update({c: fields.get(c) for c in self.column_names})
        self.rows.append(row)
        return row

    def _find(self, row_id: Json) -> dict[str, Json] | None:
        return next((r for r in self.rows if r["id"] == row_id), None)

    def _check_columns(self, names: Sequence[str], allow_new: bool = False) -> None:
        unknown = sorted({n for n in names if n not in self.column_names})
        if unknown and not allow_new:
            raise batch_error("UNKNOWN_COLUMNS", columns=list[Json](unknown))
        for name in unknown:
            self.add_column(name)

    # reads

    def page(self, page: int, per_page: int, raw_filter: str | None) -> dict[str, Json]:
        rows = self.rows
        if raw_filter:
            conditions = parse_filter(raw_filter, self.column_names)
            rows = [r for r in rows if _matches(r, conditions)]
        start = (page - 1) * per_page
        data: list[Json] = [dict(r) for r in rows[start : start + per_page]]
        return {"data": data, "has_next_page": start + per_page < len(rows), "total_count": len(rows), "page": page}

    # writes (callers validate the body shape first)

    def insert(self, rows: Sequence[Mapping[str, Json]], allow_new: bool, dedupe_keys: Sequence[str]) -> list[Json]:
        fields_list = [_fields(row, i) for i, row in enumerate(_batch(rows))]
        self._check_columns([k for f in fields_list for k in f] + list(dedupe_keys), allow_new)
        results: list[Json] = []
        for index, fields in enumerate(fields_list):
            twin = self._duplicate(fields, dedupe_keys) if dedupe_keys else None
            if twin is not None:
                results.append({"index": index, "id": twin["id"], "action": "skipped_duplicate"})
                continue
            row = self.new_row(fields)
            results.append({"index": index, "id": row["id"], "action": "created", "row_data": dict(row)})
        return results

    def _duplicate(self, fields: Mapping[str, Json], keys: Sequence[str]) -> dict[str, Json] | None:
        want = [_norm(fields.get(k)) for k in keys]
        return next((r for r in self.rows if [_norm(r.get(k)) for k in keys] == want), None)

    def patch(self, rows: Sequence[Mapping[str, Json]], overwrite: bool, return_rows: bool) -> list[Json]:
        batch = _batch(rows)
        fields_list = [_fields(row, i) for i, row in enumerate(batch)]
        self._check_columns([k for f in fields_list for k in f])
        results: list[Json] = []
        for row_in, fields in zip(batch, fields_list, strict=True):
            target = self._find(row_in.get("id"))
            if target is None:
                results.append({"id": row_in.get("id"), "ok": False, "error": ROW_NOT_FOUND})
                continue
            for key, value in fields.items():
                if overwrite or _is_empty(target.get(key)):
                    target[key] = value
            result: dict[str, Json] = {"id": target["id"], "ok": True}
            if return_rows:
                result["row_data"] = dict(target)
            results.append(result)
        return results

    def upsert(self, rows: Sequence[Mapping[str, Json]], return_rows: bool) -> list[Json]:
        batch = _batch(rows)
        keys: list[tuple[str, Json]] = []
        for index, row in enumerate(batch):
            key = row.get("key")
            if not isinstance(key, dict) or len(key) != 1:
                raise batch_error("INVALID_DATA", message="key must have exactly one column.", index=index)
            keys.append(next(iter(key.items())))
        fields_list = [_fields(row, i) for i, row in enumerate(batch)]
        self._check_columns([k for k, _ in keys] + [k for f in fields_list for k in f])
        results: list[Json] = []
        for index, ((column, value), fields) in enumerate(zip(keys, fields_list, strict=True)):
            target = next((r for r in self.rows if _norm(r.get(column)) == _norm(value)), None)
            action = "updated"
            if target is None:
                target, action = self.new_row({column: value, **fields}), "created"
            else:
                target.update(fields)
            result: dict[str, Json] = {
                "index": index,
                "match_on": {column: value},
                "id": target["id"],
                "action": action,
                "ok": True,
            }
            if return_rows:
                result["row_data"] = dict(target)
            results.append(result)
        return results

    def delete(self, row_ids: Sequence[Json]) -> list[Json]:
        results: list[Json] = []
        for row_id in _batch(row_ids):
            target = self._find(row_id)
            if target is None:
                results.append({"id": row_id, "ok": False, "error": ROW_NOT_FOUND})
            else:
                self.rows.remove(target)
                results.append({"id": row_id, "ok": True})
        return results


def _batch(items: Sequence[T]) -> Sequence[T]:
    if len(items) > MAX_BATCH:
        raise batch_error("BATCH_TOO_LARGE", max_size=MAX_BATCH)
    return items


def _fields(row: Mapping[str, Json], index: int) -> dict[str, Json]:
    fields = row.get("fields", {})
    if not isinstance(fields, dict) or not all(_is_scalar(v) for v in fields.values()):
        raise batch_error("INVALID_DATA", message="fields must be an object of scalar values.", index=index)
    return fields


def _matches(row: Mapping[str, Json], conditions: Mapping[str, Mapping[str, Json]]) -> bool:
    return all(_holds(op, row.get(col), arg) for col, cond in conditions.items() for op, arg in cond.items())


def _holds(op: str, value: Json, arg: Json) -> bool:
    if op == "equals":
        return _norm(value) == _norm(arg)
    if op == "not_equals":
        return _norm(value) != _norm(arg)
    if op == "contains":
        return _norm(arg) in _norm(value)
    return _is_empty(value) == bool(arg) if op == "is_empty" else _is_empty(value) != bool(arg)


def parse_filter(raw: str, columns: Sequence[str]) -> dict[str, dict[str, Json]]:
    """`{"column": {"equals": "x"}}`; anything else is a 400 on `filter`."""
    try:
        parsed = cast(Json, json.loads(raw))
    except ValueError:
        raise field_errors({"filter": ["Invalid JSON."]}) from None
    if not isinstance(parsed, dict):
        raise field_errors({"filter": ["Must be a JSON object of column → condition."]})
    out: dict[str, dict[str, Json]] = {}
    for column, cond in parsed.items():
        if column not in columns:
            raise field_errors({"filter": [f"Unknown column: {column}."]})
        if not isinstance(cond, dict) or not cond or not set(cond) <= _FILTER_OPS:
            ops = ", ".join(sorted(_FILTER_OPS))
            raise field_errors({"filter": [f"Condition for {column} must use one of: {ops}."]})
        out[column] = cond
    return out


def seed_table(rows: int) -> Table:
    """The fixed "Sandbox leads" table; every 9th row has no email, so empty filters have something to find."""
    table = Table(SEED_TABLE_ID, "Sandbox leads", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
    for name in SEED_COLUMNS:
        table.add_column(name)
    for i in range(rows):
        first = _SEED_FIRST[i % len(_SEED_FIRST)]
        last = _SEED_LAST[(i // len(_SEED_FIRST)) % len(_SEED_LAST)]
        company = _SEED_COMPANIES[(i * 3) % len(_SEED_COMPANIES)]
        email = "" if i % 9 == 8 else f"{first}.{last}{i}@{company}".lower()
        table.new_row({"first_name": first, "last_name": last, "company": company, "email": email})
    return table
