"""DatabarClient: one async request pipeline (auth, timeouts, retry policy) and thin endpoint wrappers that own
their paths and bodies (billable runs are built in api.runs, row writes are request models).

Retry policy, the heart of "never bill twice" (decided by the pure `retry.decide`):
- idempotent requests (GET, PUT, DELETE) are retried on transport errors, 429 and 5xx;
- other requests are retried only when they certainly did not reach the server (connection refused or
  timed out before connecting, or a 429 rejection);
- a billable run answered with anything but a readable 2xx or Databar's own refusal (a status of
  `retry.REFUSALS` with a body in Databar's error shape, `retry.is_databar_error`) raises SubmissionUnknown:
  a lost reply, a 5xx, a 3xx, a 408, truncated JSON, an HTML page with 200, a proxy's HTML 404.

Every attempt, backoff and Retry-After wait is bounded by the tool call's deadline (`api.deadline`): a wait
that would outlast it is not made (a 429 then raises RateLimited with when to retry), and a reply still
missing at the deadline is given up (SubmissionUnknown for a billable run).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import anyio
import httpx2
from pydantic import BaseModel, SecretStr, ValidationError

from databar_mcp import __version__
from databar_mcp.api import deadline, runs
from databar_mcp.api.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DatabarError,
    DeadlineReached,
    SubmissionUnknown,
    UnprocessableEntity,
    request_secrets,
    scrub,
    status_error,
)
from databar_mcp.api.json_members import TaskReply, json_members
from databar_mcp.api.pacing import TableWindows, table_of
from databar_mcp.api.retry import (
    REFUSALS,
    Decision,
    NoReply,
    backoff_delay,
    decide,
    is_databar_error,
    parse_retry_after,
)
from databar_mcp.config import Settings
from databar_mcp.startup import LazyModule

if TYPE_CHECKING:
    from databar_mcp.api import models
else:
    models = LazyModule("databar_mcp.api.models")  # imported when the first reply is read, not at start

logger = logging.getLogger("databar_mcp.api")

# Errors raised before any byte of the request could have reached the server.
_NEVER_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused (nothing listens): the cause chain ends in ConnectionRefusedError."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _connect_reason(exc: BaseException) -> str:
    if _refused(exc):
        return "connection refused: nothing is listening there"
    if isinstance(exc, httpx2.ConnectTimeout):
        return "connection timed out"
    return type(exc).__name__


M = TypeVar("M", bound=BaseModel)
ROWS_PAGE_FALLBACK = 500  # the page size both official clients use, when the API refuses a larger one


def _mentions(exc: APIStatusError, field: str) -> bool:
    return any(field in issue.path for issue in exc.issues) or field in exc.message


def _model(cls: type[M], raw: object) -> M:
    """A response model, or an upstream error naming each field that did not fit and the type it had (never
    the value: it may be data or a secret)."""
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']} (got {_type_name(e.get('input'))})"
            for e in exc.errors(include_url=False, include_context=False)[:5]
        )
        raise DatabarError(f"Databar answered with an unexpected {cls.__name__} shape ({problems}).") from None


_JSON_TYPES: dict[type, str] = {dict: "object", list: "array", str: "string", bool: "boolean"}


def _type_name(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _accepted_run(raw: object, path: str) -> models.TaskHandle:
    """A run was answered 2xx: Databar accepted it. A reply we cannot read leaves the task unknown, not refused."""
    try:
        return _model(models.TaskHandle, raw)
    except DatabarError as exc:
        message = f"{exc.message} The run was accepted but its task id is unreadable."
        raise SubmissionUnknown(message, method="POST", path=path) from None


segment = runs.segment


class DatabarClient:
    """Async client for the Databar API; one connection pool per instance, shared by every tool."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        retry_after_cap_s: float = 60.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        key_for: Callable[[], SecretStr | None] | None = None,
    ) -> None:
        self._api_key = api_key
        self._key_for = key_for  # the calling user's own key (users.Users.api_key), else the server's
        self._timeout = httpx2.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._max_retries = max_retries
        self._backoff_base = backoff_base_s
        self._backoff_cap = backoff_cap_s
        self._retry_after_cap = retry_after_cap_s
        self._table_windows = TableWindows()  # each table's stated rate limit, kept to before it refuses
        self._rows_page_cap = 1000
        self._base_url = httpx2.URL(base_url.rstrip("/") + "/")
        self._transport = transport
        self._opened: httpx2.AsyncClient | None = None
        self._closed = False
        self._opening = threading.Lock()

    @property
    def _http(self) -> httpx2.AsyncClient:
        """The connection pool, made on the first request: its TLS context and transport cost a start that may
        never call Databar tens of milliseconds (issue 14). Made under a lock, so every caller shares one."""
        if self._opened is None:
            with self._opening:
                if self._opened is None:
                    if self._closed:
                        raise RuntimeError("Cannot send a request, as the client has been closed.")
                    self._opened = httpx2.AsyncClient(
                        base_url=self._base_url,
                        timeout=self._timeout,
                        limits=httpx2.Limits(max_connections=50, max_keepalive_connections=20),
                        headers={"User-Agent": f"databar-mcp/{__version__}", "Accept": "application/json"},
                        transport=self._transport,
                        follow_redirects=False,
                    )
        return self._opened

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> DatabarClient:
        return cls(
            base_url=settings.base_url,
            api_key=settings.api_key,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_retries=settings.max_retries,
            backoff_base_s=settings.backoff_base_s,
            backoff_cap_s=settings.backoff_cap_s,
            retry_after_cap_s=settings.retry_after_cap_s,
            **kwargs,
        )

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    @property
    def origin(self) -> str:
        """Scheme, host and port of the API: safe to show (never a user:password part or a query)."""
        url = self._base_url
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool; a client that never sent a request has none to close, and can send none after."""
        with self._opening:
            opened, self._opened, self._closed = self._opened, None, True
        if opened is not None:
            await opened.aclose()

    def __repr__(self) -> str:
        return f"DatabarClient(base_url={self.base_url!r}, api_key={'set' if self._api_key else 'unset'})"

    # ---- the pipeline ----------------------------------------------------------------------------------

    async def request(
        self,
        method: models.HttpMethod,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        json: object = None,
        billable: bool = False,
        parse: Callable[[httpx2.Response, tuple[str, ...]], Any] | None = None,
    ) -> Any:
        """Send one request under the retry policy and return the parsed JSON body (`parse`: how a successful
        reply is read, given the request's secrets; the scrubbed JSON by default)."""
        api_key = (self._key_for() if self._key_for is not None else None) or self._api_key
        if api_key is None:
            raise AuthenticationError(
                "No Databar API key is configured: set DATABAR_API_KEY (or start with --sandbox).",
                status_code=0,
            )
        # Databar's SDK sends only `x-apikey`; its MCP client also sends `Authorization: Bearer`. We send the
        # first: the one header every Databar client and the API reference agree on.
        headers = {"x-apikey": api_key.get_secret_value()}
        secrets = request_secrets(headers["x-apikey"], json)  # scrubbed from whatever the reply echoes
        attempt = 0
        table = table_of(path)
        while True:
            turn = None
            if table is not None:  # within the limit the table stated, rather than refused and retried
                turn = await self._table_windows.wait_turn(table, longest_s=deadline.remaining())
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise DeadlineReached(
                    "The tool call's deadline came before the request could be sent (nothing was sent).",
                    reached_server=False,
                )
            started = time.monotonic()
            try:
                response = await self._send(method, path, params=params, json=json, headers=headers, left=left)
            except _NEVER_SENT as exc:
                logger.info("%s %s: no connection (%s)", method, path, type(exc).__name__)
                # A refused connection (nothing listening) is retried once, quickly; timeouts get the full policy.
                decision = self._decide(method, billable, attempt, "refused" if _refused(exc) else "not_connected")
                if await self._retrying(decision):
                    attempt += 1
                    continue
                raise APIConnectionError(
                    f"Could not connect to the Databar API at {self.origin} ({_connect_reason(exc)}).",
                    reached_server=False,
                ) from None
            except (httpx2.TransportError, DeadlineReached) as exc:
                logger.info("%s %s: reply lost (%s)", method, path, type(exc).__name__)
                at_deadline = isinstance(exc, DeadlineReached)
                decision = self._decide(method, billable, attempt, "reply_lost")
                if await self._retrying(decision):
                    attempt += 1
                    continue
                reason = "the tool call's deadline came first" if at_deadline else type(exc).__name__
                if decision.final == "submission_unknown":
                    raise SubmissionUnknown(
                        f"The request was sent but its reply was lost ({reason}).", method=method, path=path
                    ) from None
                if at_deadline:
                    raise DeadlineReached(
                        "Databar did not answer before the tool call's deadline.", reached_server=True
                    ) from None
                cls = APITimeoutError if isinstance(exc, httpx2.TimeoutException) else APIConnectionError
                raise cls(f"The Databar API did not answer ({type(exc).__name__}).", reached_server=True) from None

            if table is not None and turn is not None:
                self._table_windows.answered(table, turn, response.headers.get("x-ratelimit-limit"))
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.info(
                "%s %s -> %d in %.0f ms (request id %s)",
                method,
                path,
                response.status_code,
                elapsed_ms,
                response.headers.get("x-request-id", "-"),
            )
            if response.is_success:
                try:
                    return (parse or self._scrubbed)(response, secrets)
                except DatabarError as exc:
                    if billable:  # Databar may well have done the work: the reply is what broke
                        raise SubmissionUnknown(
                            f"{exc.message} The run may or may not have started.", method=method, path=path
                        ) from None
                    raise

            retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
            body = self._parse_error_body(response, secrets)
            status = response.status_code
            shaped = is_databar_error(status, body)
            decision = self._decide(method, billable, attempt, status, retry_after, databar_body=shaped)
            if await self._retrying(decision):
                attempt += 1
                continue
            if decision.final == "submission_unknown":
                what = (
                    "a redirect"
                    if 300 <= status < 400
                    else "a reply not in Databar's error shape"
                    if status in REFUSALS
                    else "a reply that is not a refusal"
                )
                raise SubmissionUnknown(
                    f"Databar answered {status} ({what}) to a run request; the run may or may not have started.",
                    method=method,
                    path=path,
                )
            raise status_error(status, body, retry_after=retry_after)

    def _decide(
        self,
        method: str,
        billable: bool,
        attempt: int,
        outcome: int | NoReply,
        retry_after: float | None = None,
        *,
        databar_body: bool = False,
    ) -> Decision:
        return decide(
            method=method,
            billable=billable,
            attempt=attempt,
            outcome=outcome,
            retry_after=retry_after,
            databar_body=databar_body,
            max_retries=self._max_retries,
            retry_after_cap_s=self._retry_after_cap,
            backoff_s=self._backoff(attempt),
        )

    async def _retrying(self, decision: Decision) -> bool:
        """Wait out a retry decision; False when there is none, or the wait would outlast the deadline."""
        return decision.verdict == "retry" and await self._pause(decision.wait_s)

    async def _send(
        self,
        method: models.HttpMethod,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool] | None,
        json: object,
        headers: dict[str, str],
        left: float | None,
    ) -> httpx2.Response:
        """One HTTP exchange, cut off at the deadline however slowly the reply trickles in."""
        if left is None:
            return await self._http.request(method, path, params=params, json=json, headers=headers)
        timeout = httpx2.Timeout(
            min(left, self._timeout.read or left),
            connect=min(left, self._timeout.connect or left),
        )
        with anyio.move_on_after(left):
            return await self._http.request(method, path, params=params, json=json, headers=headers, timeout=timeout)
        raise DeadlineReached("Databar did not answer before the tool call's deadline.", reached_server=True)

    async def _pause(self, seconds: float) -> bool:
        """Sleep before a retry, unless that would outlast the deadline (then False: give up now)."""
        left = deadline.remaining()
        if left is not None and seconds >= left:
            return False
        await anyio.sleep(seconds)
        return True

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self._backoff_base, cap=self._backoff_cap)

    @staticmethod
    def _parse(response: httpx2.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise DatabarError(
                f"The Databar API answered {response.status_code} with a body that is not JSON."
            ) from None

    @classmethod
    def _scrubbed(cls, response: httpx2.Response, secrets: tuple[str, ...]) -> Any:
        """The parsed reply with the request's secrets scrubbed. A reply that holds none of them, checked on its
        bytes (no escape sequence in it could spell one), is the parsed reply itself: a 10,000-row task is not
        copied whole to change nothing (issue 28)."""
        body = response.content
        if b"\\" not in body and not any(secret.encode() in body for secret in secrets):
            return cls._parse(response)
        return scrub(cls._parse(response), secrets)

    @staticmethod
    def _parse_error_body(response: httpx2.Response, secrets: tuple[str, ...]) -> object:
        """The error reply, scrubbed of the request's secrets (before a text body is cut, so no part survives)."""
        try:
            return scrub(response.json(), secrets)
        except ValueError:
            return cast(str, scrub(response.text, secrets))[:500]

    # ---- endpoints -------------------------------------------------------------------------------------

    async def get_user(self) -> models.User:
        return _model(models.User, await self.request("GET", "user/me"))

    async def list_waterfalls(self) -> list[models.Waterfall]:
        raw: object = await self.request("GET", "waterfalls/")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Waterfall, item) for item in cast(list[Any], items)]

    async def get_waterfall(self, identifier: str) -> models.Waterfall:
        return _model(models.Waterfall, await self.request("GET", f"waterfalls/{segment(identifier)}"))

    async def start_run(self, run: runs.RunRequest) -> models.TaskHandle:
        """POST a billable run (built in api.runs): never re-sent unless it certainly did not arrive (`request`)."""
        return _accepted_run(await self.request("POST", run.endpoint, json=run.body, billable=True), run.endpoint)

    async def bulk_run_waterfall(self, identifier: str, body: models.BulkWaterfallRequest) -> models.TaskHandle:
        return await self.start_run(runs.bulk_waterfall(identifier, body))

    async def search_enrichments(
        self, *, q: str | None, category: str | None, page: int, limit: int
    ) -> tuple[list[models.Enrichment], int | None, bool]:
        """One page of the catalog: (items, total_count, has_next_page)."""
        params: dict[str, str | int | float | bool] = {"page": page, "limit": limit}
        if q:
            params["q"] = q
        if category:
            params["category"] = category
        raw: object = await self.request("GET", "enrichments/", params=params)
        if isinstance(raw, list):
            items = [_model(models.Enrichment, i) for i in cast(list[Any], raw)]
            return items, len(items), False
        body = cast(dict[str, Any], raw)
        items = [_model(models.Enrichment, i) for i in cast(list[Any], body.get("items", []))]
        return items, body.get("total_count"), bool(body.get("has_next_page"))

    async def get_enrichment(self, enrichment_id: int) -> models.Enrichment:
        return _model(models.Enrichment, await self.request("GET", f"enrichments/{enrichment_id}"))

    async def param_choices(
        self, enrichment_id: int, slug: str, *, q: str | None, page: int, limit: int
    ) -> models.ChoicesPage:
        params: dict[str, str | int | float | bool] = {"page": page, "limit": limit}
        if q:
            params["q"] = q
        raw = await self.request("GET", f"enrichments/{enrichment_id}/params/{segment(slug)}/choices", params=params)
        return _model(models.ChoicesPage, raw)

    async def get_task(self, task_id: str, *, include_partial: bool = False) -> models.Task:
        params = {"include_partial": "true"} if include_partial else None
        raw = await self.request("GET", f"tasks/{segment(task_id)}", params=params, parse=self._task_reply)
        if isinstance(raw, TaskReply):
            task = _model(models.Task, raw.body)
            if raw.data_json is not None and task.data is raw.body.get("data"):
                task.keep_data_json(raw.data_json)
            return task
        return _model(models.Task, raw)

    @classmethod
    def _task_reply(cls, response: httpx2.Response, secrets: tuple[str, ...]) -> Any:
        """A task reply with its `data` kept as the JSON text it came in (for the ledger to store as is), when
        the reply needs no scrubbing; otherwise the scrubbed JSON, as any reply."""
        body = response.content
        if b"\\" in body or any(secret.encode() in body for secret in secrets):
            return cls._scrubbed(response, secrets)
        try:
            parsed, spans = json_members(body.decode("utf-8"))
        except ValueError:
            return cls._scrubbed(response, secrets)  # not a JSON object: said as any reply's would be
        span = spans.get("data")
        kept = span is not None and isinstance(parsed.get("data"), list) and body.isascii()  # offsets are bytes'
        return TaskReply(parsed, memoryview(body)[span[0] : span[1]] if kept and span is not None else None)

    async def cancel_task(self, task_id: str) -> models.Task:
        return _model(models.Task, await self.request("POST", f"tasks/{segment(task_id)}/cancel"))

    async def list_table_rows(
        self, table_uuid: str, *, page: int, per_page: int, filter_json: str | None = None
    ) -> models.TableRowsPage:
        """Page `page` of `per_page` rows, whatever page size the API accepts.

        The seed says pages hold up to 1000 rows; Databar's clients cap them at 500. The first refusal of a
        larger size lowers the cap for the process, and a page above the cap is read as the smaller pages
        that cover the same rows, so callers' page numbers keep their meaning.
        """
        cap = self._rows_page_cap
        if per_page <= cap:
            try:
                return await self._rows_page(table_uuid, page, per_page, filter_json)
            except (BadRequestError, UnprocessableEntity) as exc:
                if per_page <= ROWS_PAGE_FALLBACK or not _mentions(exc, "per_page"):
                    raise
                logger.info("per_page=%d refused; reading pages of %d from now on", per_page, ROWS_PAGE_FALLBACK)
                self._rows_page_cap = cap = ROWS_PAGE_FALLBACK
        start = (page - 1) * per_page
        stop = start + per_page
        rows: list[dict[str, Any]] = []
        first = start // cap + 1
        got, covered = models.TableRowsPage(), 0
        for api_page in range(first, (stop - 1) // cap + 2):
            got = await self._rows_page(table_uuid, api_page, cap, filter_json)
            offset = (api_page - 1) * cap
            rows.extend(got.data[max(0, start - offset) : max(0, stop - offset)])
            covered = offset + len(got.data)
            if not got.has_next_page:
                break
        if got.total_count is not None:
            has_next = got.total_count > stop
        else:
            has_next = covered > stop or (covered == stop and got.has_next_page)
        return models.TableRowsPage(data=rows, has_next_page=has_next, total_count=got.total_count, page=page)

    async def _rows_page(
        self, table_uuid: str, page: int, per_page: int, filter_json: str | None
    ) -> models.TableRowsPage:
        params: dict[str, str | int | float | bool] = {"page": page, "per_page": per_page}
        if filter_json:
            params["filter"] = filter_json
        raw = await self.request("GET", f"table/{segment(table_uuid)}/rows", params=params)
        return _model(models.TableRowsPage, raw)

    async def list_tables(self) -> list[models.Table]:
        raw: object = await self.request("GET", "table/")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Table, item) for item in cast(list[Any], items)]

    async def create_table(self, name: str | None, columns: list[str]) -> models.Table:
        body: dict[str, Any] = {"columns": columns}
        if name:
            body["name"] = name
        return _model(models.Table, await self.request("POST", "table/create", json=body))

    async def table_columns(self, table_uuid: str) -> list[models.TableColumn]:
        raw: object = await self.request("GET", f"table/{segment(table_uuid)}/columns")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.TableColumn, item) for item in cast(list[Any], items)]

    async def insert_rows(self, table_uuid: str, body: models.InsertRowsRequest) -> models.RowWriteBatch:
        """One batch of new rows (≤ config.ROW_WRITE_BATCH)."""
        return await self._write_rows("POST", f"table/{segment(table_uuid)}/rows", body)

    async def update_rows(self, table_uuid: str, body: models.UpdateRowsRequest) -> models.RowWriteBatch:
        return await self._write_rows("PATCH", f"table/{segment(table_uuid)}/rows", body)

    async def upsert_rows(self, table_uuid: str, body: models.UpsertRowsRequest) -> models.RowWriteBatch:
        return await self._write_rows("POST", f"table/{segment(table_uuid)}/rows/upsert", body)

    async def delete_rows(self, table_uuid: str, body: models.DeleteRowsRequest) -> models.RowWriteBatch:
        return await self._write_rows("POST", f"table/{segment(table_uuid)}/rows/delete", body)

    async def _write_rows(self, method: models.HttpMethod, path: str, body: models.RowWrite) -> models.RowWriteBatch:
        raw: Any = await self.request(method, path, json=body.model_dump(mode="json", exclude_none=True))
        if isinstance(raw, list):
            raw = {"results": cast(list[Any], raw)}
        return _model(models.RowWriteBatch, raw or {})

    async def create_connector(self, body: models.ConnectorCreate) -> models.Connector:
        raw = await self.request("POST", "connectors/", json=body.model_dump(mode="json", exclude_none=True))
        return _model(models.Connector, raw)

    async def list_connectors(self) -> list[models.Connector]:
        raw: object = await self.request("GET", "connectors/")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Connector, item) for item in cast(list[Any], items)]

    async def get_connector(self, connector_id: int) -> models.Connector:
        return _model(models.Connector, await self.request("GET", f"connectors/{connector_id}"))

    async def update_connector(self, connector_id: int, body: models.ConnectorCreate) -> models.Connector:
        """PUT replaces the whole connector: callers merge changes into the current one first."""
        raw = await self.request(
            "PUT", f"connectors/{connector_id}", json=body.model_dump(mode="json", exclude_none=True)
        )
        return _model(models.Connector, raw)

    async def delete_connector(self, connector_id: int) -> None:
        await self.request("DELETE", f"connectors/{connector_id}")

    # ---- table enrichments, waterfalls and exporters (issue 15) ----------------------------------------

    async def _attached(self, path: str) -> list[models.AttachedEnrichment]:
        raw: object = await self.request("GET", path)
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.AttachedEnrichment, item) for item in cast(list[Any], items or [])]

    async def list_table_enrichments(self, table_uuid: str) -> list[models.AttachedEnrichment]:
        return await self._attached(f"table/{segment(table_uuid)}/enrichments")

    async def list_table_waterfalls(self, table_uuid: str) -> list[models.AttachedEnrichment]:
        return await self._attached(f"table/{segment(table_uuid)}/waterfalls")

    async def list_table_exporters(self, table_uuid: str) -> list[models.AttachedEnrichment]:
        return await self._attached(f"table/{segment(table_uuid)}/exporters")

    async def _column_ids(self, table_uuid: str, mapping: Mapping[str, models.ParamMapping]) -> dict[str, Any]:
        """The mapping as Databar takes it: column names become column uuids (as Databar's SDK resolves them);
        a name the table does not have is sent as it is, for Databar to name in its refusal."""
        columns: dict[str, str] | None = None
        out: dict[str, Any] = {}
        for param, entry in mapping.items():
            value = entry.value
            if entry.type == "mapping" and not _UUID.fullmatch(str(value)):
                if columns is None:
                    columns = {c.name: c.identifier for c in await self.table_columns(table_uuid) if c.identifier}
                value = columns.get(str(value), value)
            out[param] = {"type": entry.type, "value": value}
        return out

    async def add_table_enrichment(
        self,
        table_uuid: str,
        enrichment_id: int,
        mapping: Mapping[str, models.ParamMapping],
        launch_strategy: models.LaunchStrategy = "run_on_click",
    ) -> models.AttachedEnrichment:
        body = {
            "enrichment": enrichment_id,
            "mapping": await self._column_ids(table_uuid, mapping),
            "launch_strategy": launch_strategy,
        }
        raw = await self.request("POST", f"table/{segment(table_uuid)}/add-enrichment", json=body)
        return _model(models.AttachedEnrichment, raw)

    async def add_table_waterfall(
        self,
        table_uuid: str,
        waterfall: str,
        mapping: Mapping[str, str],
        enrichments: list[int] | None = None,
        email_verifier: int | None = None,
    ) -> models.AttachedEnrichment:
        """`mapping` is param → column (name or uuid); no enrichments: Databar attaches the default cascade."""
        as_columns = {p: models.ParamMapping(type="mapping", value=c) for p, c in mapping.items()}
        resolved = await self._column_ids(table_uuid, as_columns)
        body: dict[str, Any] = {"waterfall": waterfall, "mapping": {p: e["value"] for p, e in resolved.items()}}
        if enrichments:
            body["enrichments"] = enrichments
        if email_verifier is not None:  # left out when not chosen, as Databar's clients send it
            body["email_verifier"] = email_verifier
        raw = await self.request("POST", f"table/{segment(table_uuid)}/add-waterfall", json=body)
        return _model(models.AttachedEnrichment, raw)

    async def update_table_enrichment(
        self,
        table_uuid: str,
        table_enrichment_id: int,
        *,
        mapping: Mapping[str, models.ParamMapping] | None = None,
        launch_strategy: models.LaunchStrategy | None = None,
    ) -> models.AttachedEnrichment:
        body: dict[str, Any] = {}
        if mapping is not None:
            body["mapping"] = await self._column_ids(table_uuid, mapping)
        if launch_strategy is not None:
            body["launch_strategy"] = launch_strategy
        raw = await self.request("PATCH", f"table/{segment(table_uuid)}/enrichments/{table_enrichment_id}", json=body)
        return _model(models.AttachedEnrichment, raw)

    async def start_table_run(self, run: runs.RunRequest) -> models.TableRunStarted:
        """Run a table enrichment or exporter (api.runs.table_enrichment / table_exporter): billable (an exporter
        sends rows away), answered without a task id; never re-sent unless it certainly did not arrive."""
        raw = await self.request("POST", run.endpoint, json=run.body, billable=True)
        return _accepted_table_run(raw, run.endpoint)

    async def add_table_exporter(
        self,
        table_uuid: str,
        exporter_id: int,
        mapping: Mapping[str, models.ParamMapping],
        *,
        authorization: int | None = None,
        additional_mapping: Mapping[str, models.ParamMapping] | None = None,
    ) -> models.AttachedEnrichment:
        body: dict[str, Any] = {
            "exporter": exporter_id,
            "mapping": await self._column_ids(table_uuid, mapping),
            "launch_strategy": "run_on_click",
        }
        if authorization is not None:
            body["authorization"] = authorization
        if additional_mapping:
            body["additional_mapping"] = await self._column_ids(table_uuid, additional_mapping)
        raw = await self.request("POST", f"table/{segment(table_uuid)}/add-exporter", json=body)
        return _model(models.AttachedEnrichment, raw)

    async def count_table_rows(self, table_uuid: str, filter_json: str | None = None) -> int:
        """How many rows match `filter_json`: one page of one row, read for its total_count."""
        page = await self._rows_page(table_uuid, 1, 1, filter_json)
        if page.total_count is None:
            raise DatabarError("Databar answered a table page without total_count; rows cannot be counted.")
        return page.total_count

    # ---- columns and tables ----------------------------------------------------------------------------

    async def create_column(
        self, table_uuid: str, name: str, type_of_value: str = "text", column_config: dict[str, Any] | None = None
    ) -> models.CreatedColumn:
        body = {"name": name, "type": type_of_value, "config": column_config or {}}
        return _model(
            models.CreatedColumn, await self.request("POST", f"table/{segment(table_uuid)}/columns", json=body)
        )

    async def rename_column(self, table_uuid: str, column_id: str, name: str) -> models.CreatedColumn:
        path = f"table/{segment(table_uuid)}/columns/{segment(column_id)}"
        return _model(models.CreatedColumn, await self.request("PATCH", path, json={"name": name}))

    async def delete_column(self, table_uuid: str, column_id: str) -> None:
        await self.request("DELETE", f"table/{segment(table_uuid)}/columns/{segment(column_id)}")

    async def rename_table(self, table_uuid: str, name: str) -> models.Table:
        return _model(models.Table, await self.request("PATCH", f"table/{segment(table_uuid)}", json={"name": name}))

    async def delete_table(self, table_uuid: str) -> None:
        """Moves the table to Databar's trash."""
        await self.request("DELETE", f"table/{segment(table_uuid)}")

    async def duplicate_table(self, table_uuid: str) -> models.Table:
        """A copy (rows, columns, enrichments) in a new workbook. Not retried once sent: a retry makes two."""
        return _model(models.Table, await self.request("POST", "table/duplicate", json={"table": table_uuid}))

    async def clear_table(self, table_uuid: str) -> models.TableCleared:
        """Deletes every row; the columns and the enrichments attached stay."""
        raw = await self.request("POST", f"table/{segment(table_uuid)}/clear")
        return _model(models.TableCleared, cast(object, raw) or {})

    async def move_table_to_workbook(self, table_uuid: str, workbook_id: str | None, name: str | None = None) -> None:
        """Into `workbook_id`, or into a new workbook (named `name`, else after the table) when it is None."""
        body: dict[str, Any] = {"new_workbook": workbook_id is None}
        if workbook_id is not None:
            body["workbook"] = workbook_id
        if name is not None:
            body["name"] = name
        await self.request("POST", f"table/{segment(table_uuid)}/move", json=body)

    async def dedupe_rows(self, table_uuid: str, columns: list[str] | None) -> models.DedupeResult:
        body = {"columns": columns} if columns else None
        raw = await self.request("POST", f"table/{segment(table_uuid)}/rows/dedupe", json=body)
        return _model(models.DedupeResult, raw)

    async def start_table_export(self, table_uuid: str, file_format: str = "csv") -> models.TableExport:
        raw = await self.request("POST", f"table/{segment(table_uuid)}/export", json={"format": file_format})
        return _model(models.TableExport, raw)

    async def table_export_status(self, table_uuid: str) -> models.TableExport:
        return _model(models.TableExport, await self.request("GET", f"table/{segment(table_uuid)}/export"))

    # ---- folders and exporters -------------------------------------------------------------------------

    async def list_folders(self) -> list[models.Folder]:
        raw: object = await self.request("GET", "folders")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Folder, item) for item in cast(list[Any], items or [])]

    async def create_folder(self, name: str) -> models.Folder:
        return _model(models.Folder, await self.request("POST", "folders", json={"name": name}))

    async def move_table_to_folder(self, table_uuid: str, folder_id: int | None) -> None:
        """Into `folder_id`, or out of every folder when it is None."""
        body: dict[str, Any] = {"table_uuid": table_uuid}
        if folder_id is not None:
            body["folder_id"] = folder_id
        await self.request("POST", "folders/move-table", json=body)

    async def rename_folder(self, folder_id: int, name: str) -> models.Folder:
        return _model(models.Folder, await self.request("PATCH", f"folders/{folder_id}", json={"name": name}))

    async def delete_folder(self, folder_id: int) -> None:
        """Its tables move to the top level; they are not deleted."""
        await self.request("DELETE", f"folders/{folder_id}")

    # ---- workbooks and the trash -----------------------------------------------------------------------

    async def list_workbooks(self) -> list[models.Workbook]:
        raw: object = await self.request("GET", "workbooks")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Workbook, item) for item in cast(list[Any], items or [])]

    async def rename_workbook(self, workbook_id: str, name: str) -> models.Workbook:
        raw = await self.request("PATCH", f"workbooks/{segment(workbook_id)}", json={"name": name})
        return _model(models.Workbook, raw)

    async def duplicate_workbook(self, workbook_id: str) -> models.Workbook:
        """Copies every sheet into a new workbook. Not retried once sent: a retry makes two."""
        return _model(models.Workbook, await self.request("POST", f"workbooks/{segment(workbook_id)}/duplicate"))

    async def list_trash(self) -> list[models.TrashItem]:
        raw: object = await self.request("GET", "trash")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.TrashItem, item) for item in cast(list[Any], items or [])]

    async def restore_from_trash(self, *, workbooks: list[str], tables: list[str]) -> None:
        await self.request("POST", "trash/restore", json={"workbooks": workbooks, "tables": tables})

    async def list_exporters(self, q: str | None = None) -> list[models.Exporter]:
        raw: object = await self.request("GET", "exporters/", params={"q": q} if q else None)
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Exporter, item) for item in cast(list[Any], items or [])]

    async def get_exporter(self, exporter_id: int) -> models.ExporterDetail:
        return _model(models.ExporterDetail, await self.request("GET", f"exporters/{exporter_id}"))

    # ---- flows -----------------------------------------------------------------------------------------

    async def list_flows(self) -> list[models.Flow]:
        raw: object = await self.request("GET", "flows")
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.Flow, item) for item in cast(list[Any], items or [])]

    async def get_flow(self, flow_id: str) -> models.Flow:
        return _model(models.Flow, await self.request("GET", f"flows/{segment(flow_id)}"))

    async def estimate_flow_cost(self, flow_config: dict[str, Any]) -> models.FlowCostEstimate:
        """Free: prices a config without running it (a POST that changes nothing)."""
        raw = await self.request("POST", "flows/cost-estimate", json={"config": flow_config})
        return _model(models.FlowCostEstimate, raw)

    async def validate_flow_config(self, flow_config: dict[str, Any]) -> models.FlowValidation:
        """Free: the checks a save makes, nothing saved; an invalid config is an answer (`valid` false)."""
        raw = await self.request("POST", "flows/validate-config", json={"config": flow_config})
        return _model(models.FlowValidation, raw)

    async def create_flow(self, name: str, flow_config: dict[str, Any], description: str = "") -> models.Flow:
        """Not retried once sent (a POST): a retry after a lost reply would save the flow twice."""
        body = {"name": name, "config": flow_config, "description": description}
        return _model(models.Flow, await self.request("POST", "flows", json=body))

    async def update_flow(
        self,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        flow_config: dict[str, Any] | None = None,
        internal_version: str | None = None,
    ) -> models.Flow:
        """Only the fields given; a config change sends the `internal_version` read with it (a stale one: 409)."""
        body: dict[str, Any] = {"name": name, "description": description, "config": flow_config}
        body["internal_version"] = internal_version
        raw = await self.request(
            "PATCH", f"flows/{segment(flow_id)}", json={k: v for k, v in body.items() if v is not None}
        )
        return _model(models.Flow, raw)

    async def list_flow_versions(self, flow_id: str, *, page: int = 1, limit: int = 50) -> list[models.FlowVersion]:
        """Newest first; the first is the version the flow is on."""
        raw: object = await self.request(
            "GET", f"flows/{segment(flow_id)}/versions", params={"page": page, "limit": limit}
        )
        items: object = cast(dict[str, Any], raw).get("items", []) if isinstance(raw, dict) else raw
        return [_model(models.FlowVersion, item) for item in cast(list[Any], items or [])]

    async def restore_flow_version(self, flow_id: str, number: int) -> models.FlowRestored:
        """Writes version `number`'s config as a new version (not retried once sent: it would add two)."""
        raw = await self.request("POST", f"flows/{segment(flow_id)}/versions/{number}/restore", json={})
        return _model(models.FlowRestored, raw)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _accepted_table_run(raw: object, path: str) -> models.TableRunStarted:
    """A 2xx to a table run: Databar accepted it. A reply we cannot read leaves it unknown, never refused."""
    try:
        return _model(models.TableRunStarted, raw if raw is not None else {})
    except DatabarError as exc:
        raise SubmissionUnknown(
            f"{exc.message} The run was accepted but its reply is unreadable.", method="POST", path=path
        ) from None
