"""Pydantic models that match the Databar API's request and response schemas.

Requests are strict (they mirror the API's limits, so invalid input is stopped before it is sent);
responses are lenient (`extra="allow"`): the API is in beta and may add fields, and we must not break on them.
Each reply field accepts every variant that Databar's own clients read (SDK 2.8.0 models and the MCP server
1.4.0 types, see API_NOTES) and normalises it to one shape, so the layers above see a single form.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from databar_mcp import config
from databar_mcp.api.statuses import NOT_REUSABLE_STATUSES as NOT_REUSABLE_STATUSES  # re-exported, as before
from databar_mcp.api.statuses import STATUS_SYNONYMS, TERMINAL_STATUSES, TaskStatus


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


# ---- tasks ---------------------------------------------------------------------------------------------


class TaskHandle(_Response):
    """What a run endpoint answers: the task to poll."""

    task_id: str
    status: str = TaskStatus.PROCESSING


class TaskProgress(_Response):
    total: int = 0
    completed: int = 0
    no_data: int = 0
    failed: int = 0
    processing: int = 0

    @property
    def finished(self) -> int:
        return self.completed + self.no_data + self.failed


def _number(value: object) -> object:
    """Credits arrive as numbers or as decimal strings ("1.00"); both mean the same amount."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


class Task(_Response):
    task_id: str
    request_id: str | None = None
    status: str
    progress: TaskProgress | None = None
    data: Any = None
    error: str | list[str] | None = None
    credits_spent: float | None = None
    # Not from the API: False when Databar answered 404 for a task we just submitted (not visible there yet).
    visible: bool = Field(default=True, exclude=True)
    # Not from the API either: `data`'s JSON as Databar sent it (a view of the reply's bytes, set by the client),
    # so the ledger stores a 10,000-row result without writing it out again. Private: no reply can set it.
    _data_json: memoryview | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _task_id_from_request_id(cls, raw: object) -> object:
        if isinstance(raw, dict):
            body = cast(dict[str, Any], raw)
            if "task_id" not in body and "request_id" in body:
                return {**body, "task_id": body["request_id"]}
        return cast(object, raw)

    @field_validator("status", mode="before")
    @classmethod
    def _one_spelling(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return STATUS_SYNONYMS.get(lowered, lowered)
        return value

    @field_validator("credits_spent", mode="before")
    @classmethod
    def _credits(cls, value: object) -> object:
        return _number(value)

    @model_validator(mode="after")
    def _credits_from_steps(self) -> Task:
        """Databar's MCP server totals a waterfall's cost from its steps; do so when the task states none."""
        if not self.credits_spent:
            data: object = self.data
            items = cast(list[Any], data) if isinstance(data, list) else [data]
            entries = [e for e in (waterfall_entry(i) for i in items) if e is not None]
            if entries:
                self.credits_spent = round(sum(e.cost for e in entries), 6)
        return self

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def data_json(self) -> memoryview | None:
        """`data`'s JSON as received, UTF-8 (None: not kept, e.g. a reply that had to be scrubbed)."""
        return self._data_json

    def keep_data_json(self, view: memoryview | None) -> None:
        """Keep (or, with None, let go of: it holds the whole reply) `data`'s JSON as received."""
        self._data_json = view

    @property
    def errors(self) -> list[str]:
        if self.error is None:
            return []
        return [self.error] if isinstance(self.error, str) else list(self.error)


# ---- account -------------------------------------------------------------------------------------------


class User(_Response):
    first_name: str | None = None
    email: str | None = None
    balance: float  # required: a reply without it is not an account (never show a made-up 0)
    plan: str | None = None
    workspace: str | None = None


# ---- catalog -------------------------------------------------------------------------------------------


LIST_CHOICES_MAYBE_CUT = 10  # a plain choices list this long may be a first page, not the whole set


class Choice(_Response):
    id: str | int | None = None
    name: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, raw: object) -> object:
        return {"id": raw, "name": raw} if isinstance(raw, str | int) else raw


class ParamChoices(_Response):
    """A select param's allowed values: `inline` lists them all; `remote` must be fetched (get_param_choices).

    A bare list (the older spelling) may be the first page only: with 10 or more items it is not `complete`.
    """

    mode: Literal["inline", "remote"] = "inline"
    items: list[Choice] = Field(default_factory=lambda: list[Choice]())
    endpoint: str | None = None
    complete: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, raw: object) -> object:
        if isinstance(raw, list):
            items = cast(list[Any], raw)
            return {"mode": "inline", "items": items, "complete": len(items) < LIST_CHOICES_MAYBE_CUT}
        return raw

    @field_validator("items", mode="before")
    @classmethod
    def _no_items(cls, value: object) -> object:
        return [] if value is None else value


class EnrichmentParam(_Response):
    name: str
    is_required: bool = False
    type_field: str | None = None
    description: str | None = None
    choices: ParamChoices | None = None

    @field_validator("choices", mode="before")
    @classmethod
    def _empty_choices(cls, value: object) -> object:
        return None if value == [] else value


class WaterfallInput(_Response):
    """A waterfall input. Databar's SDK reads `is_required`, its MCP server `required`: either counts.

    When neither is present the input is treated as required (`requiredness_known` False says so): an
    input we cannot read must never silently become optional.
    """

    name: str
    is_required: bool | None = None
    required: bool | None = None
    type_field: str | None = None
    type: str | None = None
    description: str | None = None
    label: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, raw: object) -> object:
        return {"name": raw} if isinstance(raw, str) else raw

    @property
    def requiredness_known(self) -> bool:
        return self.is_required is not None or self.required is not None

    @property
    def must_have(self) -> bool:
        if self.is_required is not None:
            return self.is_required
        return True if self.required is None else self.required

    @property
    def kind(self) -> str | None:
        return self.type_field or self.type

    @property
    def text(self) -> str | None:
        return self.description or self.label


class ResponseField(_Response):
    name: str
    display_name: str | None = None
    type_field: str | None = None


class Category(_Response):
    id: int | str | None = None
    name: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, raw: object) -> object:
        return {"name": raw} if isinstance(raw, str) else raw


class Pricing(_Response):
    """`fixed`: `price` per input. `per_parameter`: `price × params[parameter]` per input."""

    type: str = "fixed"
    parameter: str | None = None


class PaginationInfo(_Response):
    supported: bool = False
    per_page: int | None = None


class Enrichment(_Response):
    """An enrichment as listed (summary) or fetched (with params and response fields)."""

    id: int
    name: str
    description: str | None = None
    data_source: str | None = None
    price: float | None = None
    auth_method: str | None = None
    pricing: Pricing | None = None
    category: list[Category] = Field(default_factory=lambda: list[Category]())
    params: list[EnrichmentParam] | None = None
    response_fields: list[ResponseField] | None = None
    pagination: PaginationInfo | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: object) -> object:
        return _number(value)

    @field_validator("category", mode="before")
    @classmethod
    def _categories(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, str | dict):
            return [cast(object, value)]
        return value

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.category]

    @property
    def price_parameter(self) -> str | None:
        """The param whose value multiplies the price, for per-parameter pricing."""
        if self.pricing is not None and self.pricing.type == "per_parameter":
            return self.pricing.parameter
        return None


class ChoicesPage(_Response):
    items: list[Choice] = Field(default_factory=lambda: list[Choice]())
    page: int = 1
    limit: int | None = None
    has_next_page: bool = False
    total_count: int | None = None


class WaterfallProvider(_Response):
    id: int
    name: str
    description: str | None = None
    price: float | None = None
    params: list[str] = Field(default_factory=lambda: list[str]())
    enabled_by_default: bool = True  # Databar's SDK: absent means on

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: object) -> object:
        return _number(value)

    @field_validator("params", mode="before")
    @classmethod
    def _param_names(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        names: list[object] = []
        for item in cast(list[object], value):
            names.append(cast(dict[str, object], item).get("name") if isinstance(item, dict) else item)
        return names

    @field_validator("enabled_by_default", mode="before")
    @classmethod
    def _default_on(cls, value: object) -> object:
        return True if value is None else value


class EmailVerifier(_Response):
    id: int
    name: str | None = None
    price: float | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: object) -> object:
        return _number(value)


class Waterfall(_Response):
    identifier: str
    name: str
    description: str | None = None
    input_params: list[WaterfallInput] = Field(default_factory=lambda: list[WaterfallInput]())
    output_fields: list[Any] = Field(default_factory=lambda: list[Any]())
    available_enrichments: list[WaterfallProvider] = Field(default_factory=lambda: list[WaterfallProvider]())
    is_email_verifying: bool = False
    email_verifiers: list[EmailVerifier] = Field(default_factory=lambda: list[EmailVerifier]())

    @field_validator("email_verifiers", mode="before")
    @classmethod
    def _verifier_objects(cls, value: object) -> object:
        """Free-form objects in the SDK; a bare id is read as {id}. Entries without an id are not choosable."""
        if not isinstance(value, list):
            return value
        out: list[object] = []
        for item in cast(list[object], value):
            if isinstance(item, int) and not isinstance(item, bool):
                out.append({"id": item})
            elif isinstance(item, dict):
                entry = cast(dict[str, object], item)
                if isinstance(entry.get("id"), int):
                    out.append(entry)
        return out

    def output_field_names(self) -> list[str]:
        names: list[str] = []
        for field in self.output_fields:
            if isinstance(field, str):
                names.append(field)
            elif isinstance(field, dict) and "name" in field:
                names.append(str(field["name"]))  # pyright: ignore[reportUnknownArgumentType]
        return names

    @property
    def unreadable_requiredness(self) -> list[str]:
        return [p.name for p in self.input_params if not p.requiredness_known]


class WaterfallStep(_Response):
    """One provider tried on one input of a waterfall run."""

    action: str | None = None
    provider: str | None = None
    result: Any = None
    details: Any = None
    cost: float = 0.0
    is_verified: bool | None = None

    @field_validator("cost", mode="before")
    @classmethod
    def _cost(cls, value: object) -> object:
        value = _number(value)
        return 0.0 if value is None else value


class WaterfallEntry(_Response):
    """One input's outcome in a waterfall task: the found values are in `result`."""

    enrichment_data: Any = None
    result: dict[str, Any] | None = None
    steps: list[WaterfallStep] = Field(default_factory=lambda: list[WaterfallStep]())
    result_field: list[str] | str | None = None

    @property
    def cost(self) -> float:
        return round(sum(step.cost for step in self.steps), 6)

    @property
    def found_by(self) -> str | None:
        """The provider of the last step tried: a waterfall stops at the first provider that finds the data."""
        if not self.result:
            return None
        tried = [s.provider for s in self.steps if s.provider]
        return tried[-1] if tried else None


def waterfall_entry(item: object) -> WaterfallEntry | None:
    """`item` read as a waterfall entry, when it has that shape (a `result` object beside `steps`)."""
    if not isinstance(item, dict):
        return None
    raw = cast(dict[str, Any], item)
    if "steps" not in raw or not isinstance(raw.get("result", {}), dict | None):
        return None
    try:
        return WaterfallEntry.model_validate(raw)
    except ValueError:
        return None


# ---- runs ----------------------------------------------------------------------------------------------

EnrichmentId = Annotated[int, Field(ge=1, description="A provider (enrichment) id from list_waterfalls.")]


def _objects_with_text_keys(rows: list[Any]) -> list[Any]:
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(isinstance(k, str) for k in cast(dict[Any, Any], row)):
            raise ValueError(f"row {i} must be an object whose keys are text")
    return rows


# A bulk run's input rows, checked as `list[dict[str, Any]]` would check them but held as given, not copied: the
# rows a tool call received are the rows sent and recorded (issue 28: a 10,000-row run held one copy fewer).
Rows = Annotated[list[Any], AfterValidator(_objects_with_text_keys)]


class BulkWaterfallRequest(_Request):
    """`app__api__v1__waterfall__BulkRequest` from the OpenAPI seed."""

    params: Rows = Field(max_length=config.MAX_BULK_ROWS)
    enrichments: list[EnrichmentId] = Field(min_length=1)
    email_verifier: int | None = None


class Pagination(_Request):
    pages: int = Field(ge=1, le=100)


class BulkEnrichmentRequest(_Request):
    params: Rows = Field(min_length=1, max_length=config.MAX_BULK_ROWS)
    pagination: Pagination | None = None


# ---- tables --------------------------------------------------------------------------------------------


class Table(_Response):
    identifier: str
    name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    workspace_identifier: str | None = None
    workbook: str | None = None
    table_url: str | None = None


class TableColumn(_Response):
    identifier: str | None = None
    internal_name: str | None = None
    name: str
    type_of_value: str | None = None
    data_processor_id: int | None = None


Scalar = str | int | float | bool | None


class RowWriteResult(_Response):
    """One row's outcome in a batch write (insert, patch, upsert or delete answer)."""

    index: int | None = None
    id: str | int | None = None
    action: str | None = None
    ok: bool | None = None
    error: str | None = None
    row_data: dict[str, Any] | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _error_text(cls, value: object) -> object:
        """Databar sends `{code, message}` (its MCP server's reading) or a string; both become one line."""
        if isinstance(value, dict):
            err = cast(dict[str, object], value)
            code, message = err.get("code"), err.get("message")
            parts = [str(p) for p in (code, message) if p not in (None, "")]
            return ": ".join(parts) if parts else str(err)
        return value


class RowWriteBatch(_Response):
    results: list[RowWriteResult] = Field(default_factory=lambda: list[RowWriteResult]())
    deleted: int | None = None


# Row writes: at most config.ROW_WRITE_BATCH rows per request; the client owns their paths.
RowValue = str | int | float | bool | None


class NewRow(_Request):
    fields: dict[str, RowValue]


class RowDedupe(_Request):
    enabled: bool = True
    keys: list[str]


class InsertOptions(_Request):
    allow_new_columns: bool = False
    dedupe: RowDedupe | None = None  # left out when not asked for


class InsertRowsRequest(_Request):
    """POST table/<uuid>/rows."""

    rows: list[NewRow]
    options: InsertOptions


class RowChange(_Request):
    id: str | int
    fields: dict[str, RowValue]


class UpdateRowsRequest(_Request):
    """PATCH table/<uuid>/rows: overwrite=false only fills empty cells."""

    rows: list[RowChange]
    overwrite: bool = True
    return_rows: bool = False


class RowByKey(_Request):
    key: dict[str, RowValue]
    fields: dict[str, RowValue]


class UpsertRowsRequest(_Request):
    """POST table/<uuid>/rows/upsert."""

    rows: list[RowByKey]
    return_rows: bool = False


class DeleteRowsRequest(_Request):
    """POST table/<uuid>/rows/delete."""

    row_ids: list[str | int]


RowWrite = InsertRowsRequest | UpdateRowsRequest | UpsertRowsRequest | DeleteRowsRequest


class TableRowsPage(_Response):
    data: list[dict[str, Any]] = Field(default_factory=lambda: list[dict[str, Any]]())
    has_next_page: bool = False
    total_count: int | None = None
    page: int | None = None


# ---- connectors ----------------------------------------------------------------------------------------


class ConnectorMethod(StrEnum):
    GET = "get"
    POST = "post"
    PUT = "put"
    PATCH = "patch"


class ConnectorType(StrEnum):
    SIMPLE = "simple"
    ENRICHMENT = "enrichment"
    EXPORTER = "exporter"


class NameValue(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str = Field(min_length=1, max_length=256)
    value: str = Field(default="", max_length=4096)


class ConnectorCreate(_Request):
    name: str = Field(min_length=1, max_length=config.CONNECTOR_NAME_MAX)
    method: ConnectorMethod
    url: str = Field(min_length=1, max_length=config.CONNECTOR_URL_MAX, pattern=r"^https?://\S+$")
    type: ConnectorType = ConnectorType.ENRICHMENT
    headers: list[NameValue] = Field(default_factory=lambda: list[NameValue](), max_length=100)
    parameters: list[NameValue] = Field(default_factory=lambda: list[NameValue](), max_length=100)
    body: list[NameValue] = Field(default_factory=lambda: list[NameValue](), max_length=100)
    body_template: str | None = Field(default=None, max_length=config.CONNECTOR_BODY_TEMPLATE_MAX)
    rate_limit: int | None = Field(default=None, ge=1)
    max_concurrency: int | None = Field(default=None, ge=1)


class ResponseNameValue(_Response):
    name: str
    value: str | None = None


class Connector(_Response):
    id: int
    name: str
    type: str
    method: str
    url: str
    headers: list[ResponseNameValue] = Field(default_factory=lambda: list[ResponseNameValue]())
    parameters: list[ResponseNameValue] = Field(default_factory=lambda: list[ResponseNameValue]())
    body: list[ResponseNameValue] = Field(default_factory=lambda: list[ResponseNameValue]())
    body_template: str | None = None
    rate_limit: int | None = None
    max_concurrency: int | None = None
    created_at: str | None = None


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


# ---- table enrichments, waterfalls and exporters (issue 15) --------------------------------------------

RunStrategy = Literal["run_all", "run_empty", "run_errors"]
LaunchStrategy = Literal["run_on_click", "run_on_update"]


class ParamMapping(_Request):
    """Where a table enrichment reads one param: a column of the row (`mapping`) or a constant (`simple`)."""

    type: Literal["mapping", "simple"]
    value: str | int | float | bool


class AttachedEnrichment(_Response):
    """An enrichment, waterfall or exporter on a table. `id` is the table-enrichment id (not the catalog id).

    Databar names it `name` in lists and `enrichment_name` / `waterfall_name` / `exporter_name` when it is
    added; every spelling becomes `name`.
    """

    id: int
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _one_name(cls, raw: object) -> object:
        if isinstance(raw, dict):
            body = cast(dict[str, Any], raw)
            if not body.get("name"):
                for key in ("enrichment_name", "waterfall_name", "exporter_name"):
                    if body.get(key):
                        return {**body, "name": body[key]}
        return cast(object, raw)


class TableRunStarted(_Response):
    """What a table-enrichment run answers: no task id; `processing_rows` is how many rows it queued."""

    status: str = "processing"
    processing_rows: int | None = None


class CreatedColumn(_Response):
    identifier: str
    name: str
    type_of_value: str | None = None


class TableExport(_Response):
    """Databar's own export of a table: `processing`, then `completed` with a file URL."""

    status: str
    file_id: int | str | None = None
    file: str | None = None
    message: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class DedupeResult(_Response):
    count_all_rows: int
    count_rows_delete: int


class Folder(_Response):
    id: int
    name: str
    created_at: str | None = None
    updated_at: str | None = None
    table_count: int | None = None


class TableCleared(_Response):
    """What clearing a table answers; Databar documents no shape beyond a dict (the count when it says it)."""

    status: str | None = None
    deleted_rows: int | None = None


class WorkbookSheet(_Response):
    identifier: str
    name: str | None = None
    position: int | None = None


class Workbook(_Response):
    """A document that owns tables (one sheet each)."""

    identifier: str
    name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    folder_id: int | None = None
    tables: list[WorkbookSheet] = Field(default_factory=lambda: list[WorkbookSheet]())
    tables_count: int | None = None


class TrashItem(_Response):
    """A deleted workbook or table, restorable until it is deleted forever."""

    kind: str
    identifier: str
    name: str | None = None
    trashed_at: str | None = None
    tables_count: int | None = None
    workbook: dict[str, Any] | None = None


# ---- exporters -----------------------------------------------------------------------------------------


class Exporter(_Response):
    id: int
    name: str
    description: str | None = None
    dataset: int | None = None


class ExporterField(_Response):
    name: str
    label: str | None = None
    display_name: str | None = None
    type_field: str | None = None


class ExporterConnection(_Response):
    id: int
    name: str | None = None
    type: str | None = None


class ExporterAuthorization(_Response):
    required: bool = False
    connections: list[ExporterConnection] = Field(default_factory=lambda: list[ExporterConnection]())


class ExporterDetail(Exporter):
    params: list[EnrichmentParam] = Field(default_factory=lambda: list[EnrichmentParam]())
    additional_params: list[ExporterField] = Field(default_factory=lambda: list[ExporterField]())
    response_fields: list[ExporterField] = Field(default_factory=lambda: list[ExporterField]())
    authorization: ExporterAuthorization = Field(default_factory=ExporterAuthorization)


# ---- flows ---------------------------------------------------------------------------------------------


class FlowInput(_Response):
    """A flow's declared input; `id` is the key in a run's inputs. Absent `required` counts as required."""

    id: str
    description: str | None = None
    type: str | None = None
    required: bool = True

    @field_validator("required", mode="before")
    @classmethod
    def _required_unless_said(cls, value: object) -> object:
        return True if value is None else value


class FlowOutput(_Response):
    id: str
    response_field_id: int | None = None


class Flow(_Response):
    """A saved flow (list item or detail; the detail adds `config`, its graph, and `internal_version`)."""

    id: str
    name: str
    description: str | None = None
    inputs: list[FlowInput] = Field(default_factory=lambda: list[FlowInput]())
    outputs: list[FlowOutput] = Field(default_factory=lambda: list[FlowOutput]())
    created_at: str | None = None
    updated_at: str | None = None
    config: dict[str, Any] | None = None
    internal_version: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _id_from_identifier(cls, raw: object) -> object:
        if isinstance(raw, dict):
            body = cast(dict[str, Any], raw)
            if "id" not in body and "identifier" in body:
                return {**body, "id": body["identifier"]}
        return cast(object, raw)


class FlowCostEstimate(_Response):
    """Credits one run of a flow may cost: `min` when waterfalls stop early and branches skip, else `max`."""

    min: float
    max: float
    currency: str = "credits"

    @field_validator("min", "max", mode="before")
    @classmethod
    def _amount(cls, value: object) -> object:
        return _number(value)


class FlowProblem(_Response):
    """One reason a flow config would be refused on save; `node_id` names the step when one is at fault."""

    node_id: str | None = None
    message: str


class FlowValidation(_Response):
    valid: bool
    errors: list[FlowProblem] = Field(default_factory=lambda: list[FlowProblem]())

    @field_validator("errors", mode="before")
    @classmethod
    def _messages(cls, value: object) -> object:
        """Plain strings (the config-ops reply's spelling) become problems without a node."""
        if isinstance(value, list):
            return [{"message": v} if isinstance(v, str) else v for v in cast(list[object], value)]
        return value


class FlowVersion(_Response):
    """One saved version; numbers rise with every change and a restore is a new version (`restored_from`)."""

    number: int
    name: str | None = None
    description: str | None = None
    changed_fields: list[str] = Field(default_factory=lambda: list[str]())
    source: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    restored_from: int | None = None


class FlowRestored(_Response):
    flow: Flow
    version: FlowVersion


class BulkFlowRunRequest(_Request):
    inputs: list[dict[str, Any]] = Field(min_length=1, max_length=config.MAX_BULK_ROWS)
