"""The parameter types tools share, each with the constraints and the words the model reads in tools/list.

A parameter whose bounds come from the settings (the wait, bounded by the configured deadline) is marked
`SettingsBound`: the Toolbox resolves it when it registers the tool, so a tool can still be written, and
imported, as a plain function.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    return Field(
        ge=0,
        le=settings.tool_deadline_s,
        description=f"Seconds to wait for the task to finish before answering (0..{settings.tool_deadline_s:g}).",
    )


# ---- tasks ---------------------------------------------------------------------------------------------

TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The task_id returned by a run tool (or listed by list_recent_tasks).",
    ),
]
Offset = Annotated[
    int, Field(ge=0, le=config.MAX_OFFSET, description="Index of the first result row to return (paging).")
]
Limit = Annotated[
    int | None,
    Field(ge=1, le=10_000, description="Most rows to return; default: as many as fit the result budget."),
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
        description="Waterfall identifier from list_waterfalls, e.g. 'email_getter'.",
    ),
]
InputValue = str | int | float | bool | None
Row = Annotated[
    dict[str, InputValue],
    Field(
        description='The input fields, e.g. {"first_name": "Jane", "last_name": "Doe", "company": "acme.com"}.',
    ),
]
Rows = Annotated[
    list[dict[str, InputValue]],
    Field(
        min_length=1,
        max_length=config.MAX_BULK_ROWS,
        description="One object per row with the input fields, e.g. "
        '{"first_name": "Jane", "last_name": "Doe", "company": "acme.com"}.',
    ),
]
FORCE_DESCRIPTION = (
    "Submit even if an identical run is running or finished within the duplicate window (it bills again). "
    "Leave false: a repeated call then returns the earlier task for free. After submission_unknown the user "
    "is asked first (or see acknowledge_possible_double_billing)."
)
ACKNOWLEDGE_DESCRIPTION = (
    "Only with force=true, after submission_unknown, and only when this client cannot ask the user: true "
    "means the user checked the Databar web app and found no run started at the time the error gave, and "
    "accepts paying twice if there was one. Never set it on your own judgement."
)
ForceFlag = Annotated[bool, Field(description=FORCE_DESCRIPTION)]
AcknowledgeFlag = Annotated[bool, Field(description=ACKNOWLEDGE_DESCRIPTION)]


# ---- tables --------------------------------------------------------------------------------------------

TableId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="The table's UUID (its identifier in Databar).",
    ),
]
ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


class FilterCondition(BaseModel):
    """One column's condition; give one operator (several must all hold)."""

    model_config = ConfigDict(extra="forbid")

    equals: str | int | float | bool | None = Field(default=None, description="Equal (case-insensitive).")
    not_equals: str | int | float | bool | None = Field(default=None, description="Not equal (case-insensitive).")
    contains: str | None = Field(default=None, min_length=1, description="Contains this text (case-insensitive).")
    is_empty: bool | None = Field(default=None, description="true: the cell is empty.")
    is_not_empty: bool | None = Field(default=None, description="true: the cell has a value.")

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give an operator: equals, not_equals, contains, is_empty or is_not_empty")
        return self


RowFilter = Annotated[
    dict[ColumnName, FilterCondition] | None,
    Field(
        max_length=20,
        description='Only rows matching every condition, column → operator, e.g. {"email": {"is_empty": true}} '
        'or {"company": {"contains": "acme"}}.',
    ),
]
