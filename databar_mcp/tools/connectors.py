"""Connectors toolset: register a custom HTTP API as a Databar connector. Header values are write-only."""

from typing import Annotated

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.models import Connector, ConnectorCreate, ConnectorMethod, ConnectorType, NameValue
from databar_mcp.shaping import escape_text
from databar_mcp.tools.context import ToolContext, services
from databar_mcp.tools.guard import guarded
from databar_mcp.tools.registry import Toolbox
from databar_mcp.tools.results import ok_result

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
Create a Databar connector: register your own HTTP API so Databar can call it as an enrichment (or as a \
simple call or an exporter) on table rows.

Creates a resource in the workspace (not idempotent: calling twice makes two connectors); spends no \
credits. Header values (API keys, tokens) are write-only: they are sent to Databar but always masked in \
results. Your plan may lower rate_limit and max_concurrency; the answer says when it did.

Use body for fixed/variable body fields or body_template (Jinja, ≤2,048 chars) whose variables become \
body params. Returns the connector id."""


def register(box: Toolbox) -> None:

    @box.tool(
        name="create_connector",
        toolset="connectors",
        title="Create a connector",
        description=CREATE_CONNECTOR_DESCRIPTION,
        read_only=False,
        destructive=False,
        idempotent=False,
    )
    async def create_connector(
        name: Annotated[str, Field(min_length=1, max_length=config.CONNECTOR_NAME_MAX, description="Display name.")],
        method: Annotated[ConnectorMethod, Field(description="HTTP method Databar uses to call your API.")],
        url: Annotated[
            str,
            Field(
                min_length=1,
                max_length=config.CONNECTOR_URL_MAX,
                pattern=r"^https?://\S+$",
                description="Full endpoint URL, e.g. https://api.example.com/v1/score.",
            ),
        ],
        ctx: ToolContext,
        type: Annotated[ConnectorType, Field(description="Connector type.")] = ConnectorType.ENRICHMENT,
        headers: Annotated[
            list[NameValue], Field(max_length=100, description="HTTP headers sent on each call (values write-only).")
        ] = [],  # noqa: B006 - pydantic copies defaults
        parameters: Annotated[list[NameValue], Field(max_length=100, description="Query parameters.")] = [],  # noqa: B006
        body: Annotated[list[NameValue], Field(max_length=100, description="Request body fields.")] = [],  # noqa: B006
        body_template: Annotated[
            str | None,
            Field(max_length=config.CONNECTOR_BODY_TEMPLATE_MAX, description="Jinja body template, instead of body."),
        ] = None,
        rate_limit: Annotated[int | None, Field(ge=1, description="Max requests per minute (capped by plan).")] = None,
        max_concurrency: Annotated[
            int | None, Field(ge=1, description="Max concurrent requests (capped by plan).")
        ] = None,
    ) -> Annotated[CallToolResult, ConnectorOut]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            request = ConnectorCreate(
                name=name,
                method=method,
                url=url,
                type=type,
                headers=headers,
                parameters=parameters,
                body=body,
                body_template=body_template,
                rate_limit=rate_limit,
                max_concurrency=max_concurrency,
            )
            created = connector_out(await svc.client.create_connector(request), request)
            return ok_result(created, render(created))

        return await guarded(work())
