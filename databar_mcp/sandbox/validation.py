"""Parse bodies and query strings with pydantic and fail like FastAPI does (422, loc/msg/type)."""

from __future__ import annotations

import json
from typing import TypeVar, cast

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from databar_mcp.sandbox.errors import Json, schema_errors

M = TypeVar("M", bound=BaseModel)


def _fastapi_errors(exc: ValidationError, where: str) -> list[Json]:
    out: list[Json] = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc: list[Json] = [where, *err["loc"]]
        out.append({"loc": loc, "msg": err["msg"], "type": err["type"]})
    return out


async def read_json(request: Request, empty_ok: bool = False) -> Json:
    """The request body as JSON, or a 422 when it is missing or malformed."""
    raw = await request.body()
    if not raw.strip():
        if empty_ok:
            return {}
        raise schema_errors([{"loc": ["body"], "msg": "Field required", "type": "missing"}])
    try:
        return cast(Json, json.loads(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        err: Json = {"loc": ["body", 0], "msg": f"JSON decode error: {exc}", "type": "json_invalid"}
        raise schema_errors([err]) from None


async def parse_body(model: type[M], request: Request, empty_ok: bool = False) -> M:
    data = await read_json(request, empty_ok)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise schema_errors(_fastapi_errors(exc, "body")) from None


def parse_query(model: type[M], request: Request) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise schema_errors(_fastapi_errors(exc, "query")) from None


def parse_path_int(request: Request, name: str) -> int:
    raw = cast(str, request.path_params[name])
    try:
        return int(raw)
    except ValueError:
        msg = "Input should be a valid integer, unable to parse string as an integer"
        raise schema_errors([{"loc": ["path", name], "msg": msg, "type": "int_parsing"}]) from None
