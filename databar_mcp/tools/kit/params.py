"""The parameter types tools share, each with the constraints and the words the model reads in tools/list.

A parameter whose bounds come from the settings (the wait, bounded by the configured deadline) is marked
`SettingsBound`: the Toolbox resolves it when it registers the tool, so a tool can still be written, and
imported, as a plain function.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema

from databar_mcp import config
from databar_mcp.config import Settings


@dataclass(frozen=True)
class SettingsBound:
    """Marks a parameter whose constraints and default the Toolbox takes from the settings at registration."""

    field: Callable[[Settings], Any]  # the pydantic Field for these settings
    default: Callable[[Settings], Any]

    def bind(self, base: Any, settings: Settings) -> tuple[Any, Any]:
        """The parameter's annotation and default under `settings`."""
        return Annotated[base, self.field(settings)], self.default(settings)


def wait_field(settings: Settings) -> Any:
    """The wait_seconds parameter: bounded by the configured deadline, so no call outlives the client."""
    return Field(ge=0, le=settings.tool_deadline_s)  # each tool's description says what it waits for


def in_place(model: type[BaseModel]) -> WithJsonSchema:
    """`Annotated[M, in_place(M)]`: M's schema written where it is used. A `$defs` entry and the `$ref` to it
    cost the listing more than a definition a tool uses once; validation stays the model's own."""
    return WithJsonSchema(model.model_json_schema())


# ---- tasks ---------------------------------------------------------------------------------------------

TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="task_id from a run tool or list_recent_tasks.",
    ),
]
Offset = Annotated[int, Field(ge=0, le=config.MAX_OFFSET, description="First result row to return.")]
Limit = Annotated[
    int | None,
    Field(ge=1, le=10_000, description="Most rows to return; default: as many as fit."),
]
WaitSeconds = Annotated[float, SettingsBound(wait_field, lambda settings: settings.tool_deadline_s)]
WAIT_DEFAULT = config.TOOL_DEADLINE_S  # the written default; the Toolbox sets the configured deadline


# ---- runs ----------------------------------------------------------------------------------------------

EnrichmentId = Annotated[int, Field(ge=1, le=10_000_000, description="Enrichment id from search_enrichments.")]
WaterfallId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        description="Waterfall identifier, e.g. 'email_getter'.",
    ),
]
InputValue = str | int | float | bool | None
Row = Annotated[
    dict[str, InputValue],
    Field(
        description='Input fields, e.g. {"first_name": "Jane", "last_name": "Doe", "company": "acme.com"}.',
    ),
]
Rows = Annotated[
    list[dict[str, InputValue]],
    Field(
        min_length=1,
        max_length=config.MAX_BULK_ROWS,
        description="One object of input fields per row.",
    ),
]
# The file form of a run (issue 25): rows read from a file the user has, results written to a file.
InputFilePath = Annotated[
    SkipJsonSchema[None] | Annotated[str, Field(min_length=1)],
    Field(description="A CSV/JSONL/.xlsx file of rows, instead of params."),
]
# A run's input file: its results go to another file (the run tools' descriptions leave that to this line).
RunInputFile = Annotated[
    SkipJsonSchema[None] | Annotated[str, Field(min_length=1)],
    Field(description="A CSV/JSONL/.xlsx file of rows, instead of params; results go to a file."),
]
ColumnMap = Annotated[SkipJsonSchema[None] | dict[str, str], Field(description="input -> file column, if unmatched.")]
SkipBadRows = bool  # the name says it; the refusal that needs it says when
OutputFilePath = Annotated[SkipJsonSchema[None] | Annotated[str, Field(min_length=1)], Field()]
OptionalRows = Annotated[SkipJsonSchema[None] | Rows, Field(description="One object of input fields per row.")]
FORCE_DESCRIPTION = "true: resubmit an identical recent run (bills again)."
# How a run answers, said fully once in the server instructions; each run tool names it in one line.
WAIT_AND_NEXT = 'Waits up to wait_seconds; on "processing", call the get_task it names (never re-run to retry).'
ForceFlag = Annotated[bool, Field(description=FORCE_DESCRIPTION)]
# Listed without a description: only a refused re-send's next_steps tell the model to set it, and say why.
AcknowledgeFlag = bool


# ---- tables --------------------------------------------------------------------------------------------

TableId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    ),  # named table_uuid, as list_tables calls it: the name says it all
]
ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


FilterValue = str | int | float | bool


class FilterCondition(BaseModel):
    """All given must hold (equals, contains: case-insensitive)."""

    model_config = ConfigDict(extra="forbid")

    # A null operand is no operator (as if omitted), so the listing shows none: one branch fewer per operator.
    equals: SkipJsonSchema[None] | FilterValue = None
    not_equals: SkipJsonSchema[None] | FilterValue = None
    contains: SkipJsonSchema[None] | Annotated[str, Field(min_length=1)] = None
    empty: SkipJsonSchema[None] | Annotated[bool, Field(description="true: no value; false: any value.")] = None

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give an operator: equals, not_equals, contains or empty")
        return self

    def api(self) -> dict[str, FilterValue]:
        """The condition in the API's words (`is_empty` / `is_not_empty` for `empty`)."""
        out: dict[str, FilterValue] = self.model_dump(exclude_none=True, exclude={"empty"})
        if self.empty is not None:
            out["is_empty" if self.empty else "is_not_empty"] = True
        return out


RowFilter = Annotated[
    dict[ColumnName, Annotated[FilterCondition, in_place(FilterCondition)]] | None,
    Field(max_length=20, description='Column → condition, e.g. {"email": {"empty": true}}.'),
]
