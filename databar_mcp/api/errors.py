"""The exception tree for everything the Databar API (or the network to it) can answer.

Messages are built from status codes and the API's own error text only: never from request headers or
bodies. The API's text itself may echo the request (a proxy error page quoting the headers, a 422 quoting
the body), so every reply is scrubbed of the secrets the request carried (`scrub`) before it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from databar_mcp.config import MIN_SECRET_LEN


@dataclass(frozen=True)
class FieldIssue:
    """One field-level problem, from a 400 `detail` dict or a 422 `detail` list."""

    path: str
    message: str


class DatabarError(Exception):
    """Base of every error this package raises about the Databar API."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(DatabarError):
    """No HTTP answer. `reached_server` is False only when the request certainly never left."""

    def __init__(self, message: str, *, reached_server: bool) -> None:
        super().__init__(message)
        self.reached_server = reached_server


class APITimeoutError(APIConnectionError):
    pass


class DeadlineReached(APITimeoutError):
    """The tool call's deadline came before Databar answered (or before a retry could be made)."""


class SubmissionUnknown(DatabarError):
    """A billable request may or may not have reached Databar; it must not be re-sent blindly."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.fingerprint: str | None = None


class APIStatusError(DatabarError):
    """The API answered with an error status."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: object = None,
        issues: tuple[FieldIssue, ...] = (),
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.issues = issues
        self.error_code = error_code
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: bad parameters, or a row batch error (BATCH_TOO_LARGE, UNKNOWN_COLUMNS, INVALID_DATA)."""


class AuthenticationError(APIStatusError):
    """401/403: the key is missing, wrong, or not allowed this resource."""


class NotFoundError(APIStatusError):
    pass


class InsufficientCredits(APIStatusError):
    """406: not enough credits, or the plan does not allow the operation."""


class ConflictError(APIStatusError):
    """409: e.g. cancelling a task that already finished."""


class ResultExpired(APIStatusError):
    """410: the task's data was deleted (Databar keeps results 24 hours)."""


class UnprocessableEntity(APIStatusError):
    """422: the body failed the API's schema validation."""


class RateLimited(APIStatusError):
    """429: too many requests; `retry_after` says when to try again, when the API said."""


class ServerError(APIStatusError):
    """5xx."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    406: InsufficientCredits,
    409: ConflictError,
    410: ResultExpired,
    422: UnprocessableEntity,
    429: RateLimited,
}

_MAX_TEXT = 300
_MAX_PATH = 200
SCRUBBED = "[REDACTED]"


def request_secrets(api_key: str | None, body: object) -> tuple[str, ...]:
    """The secrets one request carries: the API key and every connector header value in its body."""
    found: list[str] = [api_key] if api_key else []
    data = _as_dict(body)
    headers = _as_list(data.get("headers")) if data is not None else None
    for item in headers or ():
        entry = _as_dict(item)
        value: object = entry.get("value") if entry is not None else None
        if isinstance(value, str):
            found.append(value)
    forms = {form for secret in found for form in (secret, json.dumps(secret)[1:-1])}  # raw, and as JSON escapes it
    return tuple(sorted((s for s in forms if len(s) >= MIN_SECRET_LEN), key=len, reverse=True))


def scrub(value: object, secrets: tuple[str, ...]) -> object:
    """A copy of a reply (parsed JSON or text) with every secret replaced, in keys and values alike."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, SCRUBBED)
        return value
    if isinstance(value, dict):
        items = cast(dict[Any, Any], value).items()
        return {cast(str, scrub(str(k), secrets)): scrub(v, secrets) for k, v in items}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in cast(list[Any], value)]
    return value


def _short(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_dict(value: object) -> dict[str, Any] | None:
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


def _as_list(value: object) -> list[Any] | None:
    return cast(list[Any], value) if isinstance(value, list) else None


def parse_issues(body: object) -> tuple[FieldIssue, ...]:
    """Field issues from either `detail` shape; values the caller sent (FastAPI's `input`) are dropped."""
    data = _as_dict(body)
    if data is None:
        return ()
    detail: object = data.get("detail")
    issues: list[FieldIssue] = []
    if (fields := _as_dict(detail)) is not None:
        for field, messages in fields.items():
            listed = _as_list(messages)
            texts = [str(m) for m in listed] if listed is not None else [str(messages)]
            issues.extend(FieldIssue(path=_short(str(field), _MAX_PATH), message=_short(t)) for t in texts)
    elif (entries := _as_list(detail)) is not None:
        for item in entries:
            entry = _as_dict(item)
            if entry is None:
                issues.append(FieldIssue(path="body", message=_short(str(item))))
                continue
            loc: object = entry.get("loc", [])
            loc_list = _as_list(loc)
            parts = [str(p) for p in loc_list] if loc_list is not None else [str(loc)]
            if parts and parts[0] in ("body", "query", "path"):
                parts = parts[1:]
            message = _short(str(entry.get("msg", "")))
            issues.append(FieldIssue(path=_short(".".join(parts), _MAX_PATH) or "body", message=message))
    issues.extend(_field_list(data.get("fields")))
    return tuple(issues)


_PATH_KEYS = ("field", "name", "path", "loc", "column", "param")
_MESSAGE_KEYS = ("message", "msg", "error", "detail", "reason")


def _field_list(fields: object) -> list[FieldIssue]:
    """`fields` of an `{error, detail, fields}` body: a list of entries or strings, or field → messages."""
    if (mapping := _as_dict(fields)) is not None:
        out: list[FieldIssue] = []
        for name, messages in mapping.items():
            listed = _as_list(messages)
            texts = listed if listed is not None else [messages]
            out.extend(FieldIssue(_short(str(name), _MAX_PATH), _short(str(m))) for m in texts)
        return out
    entries = _as_list(fields)
    if entries is None:
        return []
    out = []
    for item in entries:
        entry = _as_dict(item)
        if entry is None:
            out.append(FieldIssue(path="body", message=_short(str(item))))
            continue
        path: object = next((entry[k] for k in _PATH_KEYS if k in entry), "body")
        listed_path = _as_list(path)
        text_path = ".".join(str(p) for p in listed_path) if listed_path is not None else str(path)
        message: object = next((entry[k] for k in _MESSAGE_KEYS if k in entry), entry)
        out.append(FieldIssue(path=_short(text_path, _MAX_PATH), message=_short(str(message))))
    return out


def error_code_of(body: object) -> str | None:
    """The row-batch error code (`BATCH_TOO_LARGE`, `UNKNOWN_COLUMNS`, `INVALID_DATA`), if any."""
    data = _as_dict(body)
    code: object = data.get("error") if data is not None else None
    return code if isinstance(code, str) else None


def describe_body(body: object) -> str:
    """A one-line summary of an error body for the exception message."""
    data = _as_dict(body)
    if data is not None:
        code = error_code_of(body)
        if code is not None:
            detail_text: object = data.get("detail")
            if isinstance(detail_text, str) and detail_text:
                return _short(f"{code}: {detail_text}")
            extra = {k: v for k, v in data.items() if k not in ("error", "fields")}
            return _short(f"{code} {extra}" if extra else code)
        detail: object = data.get("detail")
        if isinstance(detail, str):
            return _short(detail)
        issues = parse_issues(body)
        if issues:
            return _short("; ".join(f"{i.path}: {i.message}" for i in issues))
    if isinstance(body, str) and body.strip():
        return _short(body.strip())
    return ""


def status_error(status_code: int, body: object, *, retry_after: float | None = None) -> APIStatusError:
    """Map a status code and parsed body to the exception for it."""
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else APIStatusError)
    summary = describe_body(body)
    message = f"Databar API answered {status_code}" + (f": {summary}" if summary else "")
    return cls(
        message,
        status_code=status_code,
        body=body,
        issues=parse_issues(body),
        error_code=error_code_of(body),
        retry_after=retry_after,
    )
