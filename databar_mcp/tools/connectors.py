"""Connectors toolset: register a custom HTTP API as a Databar connector. Header values are write-only."""

import re
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import BaseModel, Field, ValidationError, WithJsonSchema

from databar_mcp import config
from databar_mcp.api.models import Connector, ConnectorCreate, ConnectorMethod, ConnectorType, NameValue
from databar_mcp.config import Toolset
from databar_mcp.core.logs import add_secrets
from databar_mcp.core.shaping import escape_text
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, FieldProblem, ToolFailure, fitted_result, ok_result

MASK = "********"


class NameValueOut(BaseModel):
    name: str
    value: str | None


class ConnectorOut(BaseModel):
    id: int
    name: str
    type: str
    method: str
    url: str
    headers: list[NameValueOut] = Field(description="Header names; values are write-only and always masked.")
    parameters: list[NameValueOut]
    body: list[NameValueOut]
    body_template: str | None = None
    rate_limit: int | None = None
    max_concurrency: int | None = None
    created_at: str | None = None
    notes: list[str] = Field(default_factory=lambda: list[str]())


def connector_out(connector: Connector, requested: ConnectorCreate | None = None) -> ConnectorOut:
    """The connector as the agent may see it: every header value replaced by a mask."""
    notes: list[str] = []
    if requested is not None:
        for field in ("rate_limit", "max_concurrency"):
            asked, got = getattr(requested, field), getattr(connector, field)
            if asked is not None and got is not None and got != asked:
                notes.append(f"{field}: asked {asked}, the plan allows {got}.")
    return ConnectorOut(
        id=connector.id,
        name=connector.name,
        type=connector.type,
        method=connector.method,
        url=connector.url,
        headers=[NameValueOut(name=h.name, value=MASK) for h in connector.headers],
        parameters=[NameValueOut(name=p.name, value=p.value) for p in connector.parameters],
        body=[NameValueOut(name=b.name, value=b.value) for b in connector.body],
        body_template=connector.body_template,
        rate_limit=connector.rate_limit,
        max_concurrency=connector.max_concurrency,
        created_at=connector.created_at,
        notes=notes,
    )


def render(c: ConnectorOut) -> str:
    lines = [
        f"Connector {c.id} '{c.name}' ({c.type}): {c.method.upper()} {c.url}",
        f"Headers: {', '.join(f'{h.name}={MASK}' for h in c.headers) or 'none'} (values are write-only)",
        f"Query parameters: {', '.join(p.name for p in c.parameters) or 'none'}; "
        f"body fields: {', '.join(b.name for b in c.body) or 'none'}",
        f"Rate limit: {c.rate_limit or 'plan default'}/min; max concurrency: {c.max_concurrency or 'plan default'}",
    ]
    lines.extend(c.notes)
    return escape_text("\n".join(lines))


CREATE_CONNECTOR_DESCRIPTION = """\
Register your own HTTP API as a Databar connector, called per table row. Free; each call makes a new one. \
Header values are write-only (always masked); your plan may lower rate_limit and max_concurrency (the \
answer says so)."""

LIST_CONNECTORS_DESCRIPTION = """\
List the workspace's connectors in full (header values masked), or just connector_id's. Free."""

UPDATE_CONNECTOR_DESCRIPTION = """\
Change a connector: only the fields given (headers replaces the whole list). Free; limits as create_connector."""

DELETE_CONNECTOR_DESCRIPTION = """\
Delete a connector (irreversible: tables and flows using it stop working). Free. Confirm with the user \
first."""


class ConnectorList(BaseModel):
    connectors: list[ConnectorOut]
    total: int
    omitted: int = 0


class Deleted(BaseModel):
    id: int
    deleted: bool
    message: str


ConnectorId = Annotated[int, Field(ge=1)]
# The enums inline: a `$ref` to `$defs` costs the listing more than the few values it names.
Method = Annotated[ConnectorMethod, WithJsonSchema({"enum": [m.value for m in ConnectorMethod], "type": "string"})]
Kind = Annotated[ConnectorType, WithJsonSchema({"enum": [t.value for t in ConnectorType], "type": "string"})]
NameValues = Annotated[list[NameValue] | None, Field(max_length=100)]
MASK_LIKE = re.compile(r"^[*•·xX]{3,}$")


def merged(current: Connector, changes: dict[str, object]) -> ConnectorCreate:
    """The full body a PUT needs: the current connector with the caller's changes applied."""
    if "headers" not in changes and any(MASK_LIKE.match(h.value or "") for h in current.headers):
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Databar returned this connector's header values masked, so they cannot be kept as they "
                "are by an update; nothing was changed.",
                fields=[FieldProblem(field="headers", problem="required for this connector: pass every header")],
                next_steps=["Call update_connector again with the full `headers` list (values included)."],
            )
        )
    add_secrets(*(h.value for h in current.headers))  # the log masks them from here on, wherever they appear
    base: dict[str, object] = {
        "name": current.name,
        "method": current.method,
        "url": current.url,
        "type": current.type,
        "headers": [{"name": h.name, "value": h.value or ""} for h in current.headers],
        "parameters": [{"name": p.name, "value": p.value or ""} for p in current.parameters],
        "body": [{"name": b.name, "value": b.value or ""} for b in current.body],
        "body_template": current.body_template,
        "rate_limit": current.rate_limit,
        "max_concurrency": current.max_concurrency,
    }
    base.update(changes)
    try:
        return ConnectorCreate.model_validate(base)
    except ValidationError as exc:
        # The stored connector breaks our request limits (e.g. a header value over 4,096 characters). The error
        # names fields only: its values are the connector's secrets (pydantic would quote their ends).
        problems = [
            FieldProblem(field=".".join(str(p) for p in e["loc"]), problem=e["msg"])
            for e in exc.errors(include_input=False, include_url=False)[:20]
        ]
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="The connector as stored at Databar cannot be sent back as it is; nothing was changed.",
                fields=problems,
                next_steps=["Pass the listed fields (e.g. the full `headers` list) with valid values and call again."],
            )
        ) from None


@tool(
    Toolset.CONNECTORS,
    name="create_connector",
    title="Create a connector",
    description=CREATE_CONNECTOR_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def create_connector(
    name: Annotated[str, Field(min_length=1, max_length=config.CONNECTOR_NAME_MAX)],
    method: Method,
    url: Annotated[str, Field(min_length=1, max_length=config.CONNECTOR_URL_MAX, pattern=r"^https?://\S+$")],
    ctx: ToolContext,
    type: Kind = ConnectorType.ENRICHMENT,
    headers: NameValues = None,
    parameters: NameValues = None,
    body: NameValues = None,
    body_template: Annotated[
        str | None,
        Field(max_length=config.CONNECTOR_BODY_TEMPLATE_MAX, description="Jinja; its variables become body params."),
    ] = None,
    rate_limit: Annotated[int | None, Field(ge=1, description="Requests per minute.")] = None,
    max_concurrency: Annotated[int | None, Field(ge=1)] = None,
) -> Annotated[CallToolResult, ConnectorOut]:
    svc = services(ctx)
    add_secrets(*(h.value for h in headers or ()))
    request = ConnectorCreate(
        name=name,
        method=method,
        url=url,
        type=type,
        headers=headers or [],
        parameters=parameters or [],
        body=body or [],
        body_template=body_template,
        rate_limit=rate_limit,
        max_concurrency=max_concurrency,
    )
    created = connector_out(await svc.client.create_connector(request), request)
    return ok_result(created, render(created))


@tool(
    Toolset.CONNECTORS,
    name="list_connectors",
    title="List connectors",
    description=LIST_CONNECTORS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_connectors(
    ctx: ToolContext, connector_id: ConnectorId | None = None
) -> Annotated[CallToolResult, ConnectorList]:
    svc = services(ctx)
    if connector_id is not None:
        found = [connector_out(await svc.client.get_connector(connector_id))]
    else:
        found = [connector_out(c) for c in await svc.client.list_connectors()]

    def make(k: int) -> ConnectorList:
        return ConnectorList(connectors=found[:k], total=len(found), omitted=len(found) - k)

    def text(listing: ConnectorList) -> str:
        head = f"{listing.total} connector(s)" + (f", {listing.omitted} omitted" if listing.omitted else "")
        return "\n".join([head + ":", *(render(c) for c in listing.connectors)])

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.CONNECTORS,
    name="update_connector",
    title="Update a connector",
    description=UPDATE_CONNECTOR_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def update_connector(
    connector_id: ConnectorId,
    ctx: ToolContext,
    name: Annotated[str | None, Field(min_length=1, max_length=config.CONNECTOR_NAME_MAX)] = None,
    method: Method | None = None,
    url: Annotated[
        str | None, Field(min_length=1, max_length=config.CONNECTOR_URL_MAX, pattern=r"^https?://\S+$")
    ] = None,
    type: Kind | None = None,
    headers: NameValues = None,
    parameters: NameValues = None,
    body: NameValues = None,
    body_template: Annotated[str | None, Field(max_length=config.CONNECTOR_BODY_TEMPLATE_MAX)] = None,
    rate_limit: Annotated[int | None, Field(ge=1)] = None,
    max_concurrency: Annotated[int | None, Field(ge=1)] = None,
) -> Annotated[CallToolResult, ConnectorOut]:
    svc = services(ctx)
    given: dict[str, object] = {
        "name": name,
        "method": method,
        "url": url,
        "type": type,
        "headers": headers,
        "parameters": parameters,
        "body": body,
        "body_template": body_template,
        "rate_limit": rate_limit,
        "max_concurrency": max_concurrency,
    }
    changes = {k: v for k, v in given.items() if v is not None}

    if not changes:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Nothing to change: pass at least one field; nothing was sent.",
                next_steps=["Pass the fields to change, e.g. rate_limit or url."],
            )
        )
    add_secrets(*(h.value for h in headers or ()))
    request = merged(await svc.client.get_connector(connector_id), changes)
    updated = connector_out(await svc.client.update_connector(connector_id, request), request)
    return ok_result(updated, render(updated))


@tool(
    Toolset.CONNECTORS,
    name="delete_connector",
    title="Delete a connector",
    description=DELETE_CONNECTOR_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def delete_connector(connector_id: ConnectorId, ctx: ToolContext) -> Annotated[CallToolResult, Deleted]:
    svc = services(ctx)
    await svc.client.delete_connector(connector_id)
    out = Deleted(id=connector_id, deleted=True, message=f"Connector {connector_id} deleted.")
    return ok_result(out, out.message)
