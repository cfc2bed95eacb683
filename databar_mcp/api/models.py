"""Pydantic models that match the Databar API's request and response schemas.

Requests are strict (they mirror the API's limits, so invalid input is stopped before it is sent);
responses are lenient (`extra="allow"`): the API is in beta and may add fields, and we must not break on them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from databar_mcp import config


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- tasks ---------------------------------------------------------------------------------------------


class TaskStatus(StrEnum):
    CREATED = "created"
    PROCESSING = "processing"
    NO_DATA = "no_data"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    GONE = "gone"


TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.PARTIALLY_COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.GONE,
    }
)


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


class Task(_Response):
    task_id: str
    request_id: str | None = None
    status: str
    progress: TaskProgress | None = None
    data: Any = None
    error: str | list[str] | None = None
    credits_spent: float | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

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


class Choice(_Response):
    id: str | int | None = None
    name: str


class EnrichmentParam(_Response):
    name: str
    is_required: bool = False
    type_field: str | None = None
    description: str | None = None
    choices: list[Choice] | None = None


class ResponseField(_Response):
    name: str
    display_name: str | None = None
    type_field: str | None = None


class Enrichment(_Response):
    """An enrichment as listed (summary) or fetched (with params and response fields)."""

    id: int
    name: str
    description: str | None = None
    data_source: str | None = None
    price: float | None = None
    auth_method: str | None = None
    category: list[str] = Field(default_factory=lambda: list[str]())
    params: list[EnrichmentParam] | None = None
    response_fields: list[ResponseField] | None = None


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
    enabled_by_default: bool = False


class EmailVerifier(_Response):
    id: int
    name: str | None = None
    price: float | None = None


class Waterfall(_Response):
    identifier: str
    name: str
    description: str | None = None
    input_params: list[EnrichmentParam] = Field(default_factory=lambda: list[EnrichmentParam]())
    output_fields: list[Any] = Field(default_factory=lambda: list[Any]())
    available_enrichments: list[WaterfallProvider] = Field(default_factory=lambda: list[WaterfallProvider]())
    is_email_verifying: bool = False
    email_verifiers: list[EmailVerifier] = Field(default_factory=lambda: list[EmailVerifier]())

    def output_field_names(self) -> list[str]:
        names: list[str] = []
        for field in self.output_fields:
            if isinstance(field, str):
                names.append(field)
            elif isinstance(field, dict) and "name" in field:
                names.append(str(field["name"]))  # pyright: ignore[reportUnknownArgumentType]
        return names


# ---- runs ----------------------------------------------------------------------------------------------

EnrichmentId = Annotated[int, Field(ge=1, description="A provider (enrichment) id from list_waterfalls.")]


class BulkWaterfallRequest(_Request):
    """`app__api__v1__waterfall__BulkRequest` from the OpenAPI seed."""

    params: list[dict[str, Any]] = Field(max_length=config.MAX_BULK_ROWS)
    enrichments: list[EnrichmentId] = Field(min_length=1)
    email_verifier: int | None = None


class WaterfallRunRequest(_Request):
    params: dict[str, Any]
    enrichments: list[EnrichmentId] | None = Field(default=None, min_length=1)
    email_verifier: int | None = None


class Pagination(_Request):
    pages: int = Field(ge=1, le=100)


class EnrichmentRunRequest(_Request):
    params: dict[str, Any]
    pagination: Pagination | None = None


class BulkEnrichmentRequest(_Request):
    params: list[dict[str, Any]] = Field(min_length=1, max_length=config.MAX_BULK_ROWS)
    pagination: Pagination | None = None


# ---- tables --------------------------------------------------------------------------------------------


class Table(_Response):
    identifier: str
    name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    workspace_identifier: str | None = None
    table_url: str | None = None


class TableColumn(_Response):
    identifier: str | None = None
    internal_name: str | None = None
    name: str
    type_of_value: str | None = None


Scalar = str | int | float | bool | None


class RowWriteResult(_Response):
    """One row's outcome in a batch write (insert, patch, upsert or delete answer)."""

    index: int | None = None
    id: str | int | None = None
    action: str | None = None
    ok: bool | None = None
    error: str | None = None
    row_data: dict[str, Any] | None = None


class RowWriteBatch(_Response):
    results: list[RowWriteResult] = Field(default_factory=lambda: list[RowWriteResult]())
    deleted: int | None = None


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
    model_config = ConfigDict(extra="forbid")

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
