"""The real API's error bodies, raised from handlers and rendered by one exception handler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"

INSUFFICIENT_CREDITS = "Check the number of remaining credits or the tariff plan."
MAX_BATCH = 50


class ApiError(Exception):
    """An HTTP error reply with the exact JSON body the real API sends."""

    def __init__(self, status: int, body: Json, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def not_found(what: str = "Not found.") -> ApiError:
    return ApiError(404, {"detail": what})


def field_errors(errors: Mapping[str, Sequence[str]]) -> ApiError:
    """400 in the Django REST style: `{"detail": {field: [messages]}}`."""
    return ApiError(400, {"detail": {k: list(v) for k, v in errors.items()}})


def schema_errors(errors: list[Json]) -> ApiError:
    """422 in the FastAPI style: `{"detail": [{loc, msg, type}]}`."""
    return ApiError(422, {"detail": errors})


def batch_error(code: str, **extra: Json) -> ApiError:
    """Row-write errors: `{"error": "BATCH_TOO_LARGE", "max_size": 50}` and friends."""
    body: dict[str, Json] = {"error": code}
    body.update(extra)
    return ApiError(400, body)


def insufficient_credits() -> ApiError:
    return ApiError(406, {"detail": INSUFFICIENT_CREDITS})


async def render_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def render_api_error_variant(_request: Request, exc: Exception) -> Response:
    """The other error envelope Databar's SDK reads: `{error: CODE, detail: text, fields: [...]}`."""
    assert isinstance(exc, ApiError)
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("detail"), dict):
        issues = cast(dict[str, Json], body["detail"])
        fields: list[Json] = [
            {"field": name, "message": message}
            for name, messages in issues.items()
            for message in (messages if isinstance(messages, list) else [messages])
        ]
        body = {"error": "VALIDATION_ERROR", "detail": "Invalid parameters.", "fields": fields}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


async def render_http_exception(_request: Request, exc: Exception) -> Response:
    """Routing errors (404 unknown path, 405 wrong method) in the API's `{"detail": ...}` shape."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
