"""Custom API connectors: the seed's field rules, plan caps, and header values echoed in clear."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from databar_mcp.sandbox.errors import Json

PLAN_MAX_RATE_LIMIT = 10
PLAN_MAX_CONCURRENCY = 5


class NameValue(BaseModel):
    name: str
    value: str = ""


class ConnectorIn(BaseModel):
    """Body of POST/PUT /v1/connectors/ (seeds/databar-create-connector.txt)."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(max_length=256)]
    method: Literal["get", "post", "put", "patch"]
    url: Annotated[str, Field(max_length=512)]
    type: Literal["simple", "enrichment", "exporter"] = "enrichment"
    headers: list[NameValue] = Field(default_factory=list[NameValue])
    parameters: list[NameValue] = Field(default_factory=list[NameValue])
    body: list[NameValue] = Field(default_factory=list[NameValue])
    body_template: Annotated[str | None, Field(max_length=2048)] = None
    rate_limit: Annotated[int | None, Field(ge=1)] = None
    max_concurrency: Annotated[int | None, Field(ge=1)] = None


def connector_json(connector_id: int, spec: ConnectorIn, created_at: str) -> dict[str, Json]:
    """What the API answers: the input with plan caps applied, plus id and created_at."""
    data: dict[str, Json] = {"id": connector_id}
    data.update(spec.model_dump(mode="json"))
    if spec.rate_limit is not None:
        data["rate_limit"] = min(spec.rate_limit, PLAN_MAX_RATE_LIMIT)
    if spec.max_concurrency is not None:
        data["max_concurrency"] = min(spec.max_concurrency, PLAN_MAX_CONCURRENCY)
    data["created_at"] = created_at
    return data
