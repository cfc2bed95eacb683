"""Logs: one structured line per event on stderr, stdout left to the MCP protocol, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import LoggingMessageNotificationParams

from databar_mcp.app.cli import main
from databar_mcp.app.client_logs import mcp_level
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.logs import (
    MASK,
    Redactor,
    StructuredFormatter,
    add_secrets,
    parse_level,
    setup_logging,
)
from databar_mcp.sandbox import SandboxServer
from tests.conftest import SENTINEL_KEY

LINE = re.compile(
    r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warning|error|critical) logger=\S+ msg="
)
UPSTREAM_MSG = re.compile(r"GET (/v1/)?user/me -> 200 in \d+ ms \(request id \S+\)")
UPSTREAM = re.compile(r'logger=databar_mcp\.api msg="GET (/v1/)?user/me -> 200 in \d+ ms \(request id \S+\)"')


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """setup_logging changes process-wide state: put the root logger and the levels back afterwards."""
    root = logging.getLogger()
    names = ("databar_mcp", "mcp", "httpx2", "httpcore2", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names})
    try:
        yield
    finally:
        handlers, level, levels = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


# ---- the stdio server at DEBUG, as Claude Desktop runs it ---------------------------------------------


def _rpc(id_: int | None, method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        message["id"] = id_
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode() + b"\n"


def test_stdio_server_at_debug_keeps_stdout_for_the_protocol(sandbox: SandboxServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABAR_")}
    env.update(
        DATABAR_API_KEY=sandbox.api_key,
        DATABAR_BASE_URL=sandbox.base_url,
        DATABAR_MCP_STATE_DIR=str(tmp_path / "state"),
        DATABAR_MCP_TRACKER_INTERVAL="3600",
        DATABAR_MCP_LOG_LEVEL="DEBUG",
    )
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "databar_mcp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
        )
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in iter(stdout.readline, b"")], daemon=True)
    reader.start()
    received: list[bytes] = []
    responses: dict[int, dict[str, Any]] = {}

    def until_response(id_: int) -> dict[str, Any]:
        """The response with this id, whatever order concurrent calls answer in."""
        while id_ not in responses:
            line = lines.get(timeout=30)
            received.append(line)
            message = json.loads(line)
            if isinstance(message.get("id"), int):
                responses[message["id"]] = message
        return responses[id_]

    try:
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        proc.stdin.write(_rpc(1, "initialize", init))
        proc.stdin.flush()
        assert "result" in until_response(1)
        proc.stdin.write(_rpc(None, "notifications/initialized"))
        proc.stdin.write(_rpc(2, "tools/call", {"name": "get_account", "arguments": {}}))
        proc.stdin.write(_rpc(3, "tools/call", {"name": "get_task", "arguments": {"task_id": "no-such-task"}}))
        proc.stdin.flush()
        account = until_response(2)
        assert account["result"].get("isError") is not True, account
        assert until_response(3)["result"]["isError"] is True
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=5)
        proc.stdout.close()
    while not lines.empty():
        received.append(lines.get_nowait())

    for line in received:  # stdout: nothing but JSON-RPC messages, one per line
        assert json.loads(line)["jsonrpc"] == "2.0", line
    log = stderr_path.read_text(encoding="utf-8", errors="replace")
    log_lines = log.splitlines()
    assert log_lines
    bad = [line for line in log_lines if not LINE.match(line)]
    assert not bad, bad[:5]
    assert UPSTREAM.search(log), log[-3000:]
    assert re.search(r"GET (/v1/)?tasks/no-such-task -> 404 in \d+ ms", log)
    assert SENTINEL_KEY not in log
    assert not any(SENTINEL_KEY.encode() in line for line in received)
    assert "x-apikey" not in log.lower()  # no headers, at any level


# ---- the format ---------------------------------------------------------------------------------------


def _record(msg: str, *args: object, level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("databar_mcp.api").makeRecord(
        "databar_mcp.api", level, __file__, 1, msg, args, None, extra=extra or None
    )
    return record


def test_text_format_is_one_logfmt_line() -> None:
    line = StructuredFormatter("text").format(
        _record('GET %s -> %d in %.0f ms "quoted"\nsecond', "/v1/x", 200, 12.3, request_id="r-1")
    )
    assert "\n" not in line
    assert LINE.match(line)
    assert 'msg="GET /v1/x -> 200 in 12 ms \\"quoted\\"\\nsecond"' in line
    assert line.endswith(" request_id=r-1")


def test_json_format_is_one_object_per_line() -> None:
    line = StructuredFormatter("json").format(_record("GET %s -> %d", "/v1/x", 200, duration_ms=12))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "info" and data["logger"] == "databar_mcp.api"
    assert data["msg"] == "GET /v1/x -> 200" and data["duration_ms"] == 12
    assert data["ts"].endswith("Z")


def test_a_traceback_is_folded_into_the_line() -> None:
    try:
        raise RuntimeError("boom\nwith two lines")
    except RuntimeError:
        record = logging.getLogger("databar_mcp").makeRecord(
            "databar_mcp", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    text = StructuredFormatter("text").format(record)
    assert "\n" not in text and "exc=" in text and "RuntimeError: boom\\nwith two lines" in text
    assert "Traceback" in json.loads(StructuredFormatter("json").format(record))["exc"]


def test_secrets_are_masked_wherever_they_appear() -> None:
    secret, token = "sk-live-abcdef0123456789", "http-token-0123456789abcdef"
    formatter = StructuredFormatter("text", Redactor([secret, token, None, "short"]))
    try:
        raise ValueError(f"bad key {secret}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.getLogger("x").makeRecord(
        "x", logging.WARNING, __file__, 1, "key=%s token=%s", (secret, token), exc_info, extra={"hdr": secret}
    )
    line = formatter.format(record)
    assert secret not in line and token not in line
    assert line.count(MASK) >= 4
    assert Redactor(["short"])("a short word") == "a short word"  # too short to mask: left alone
    assert secret not in StructuredFormatter("json", Redactor([secret])).format(record)


def test_parse_level() -> None:
    assert parse_level("debug") == logging.DEBUG
    assert parse_level("Warn") == logging.WARNING
    assert parse_level(None) == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        parse_level("verbose")


# ---- setup --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_logging")
def test_setup_replaces_stdout_handlers_and_caps_chatty_libraries() -> None:
    root = logging.getLogger()
    stdout_handler = logging.StreamHandler(sys.stdout)
    root.addHandler(stdout_handler)
    sink = io.StringIO()
    handler = setup_logging("DEBUG", fmt="text", secrets=["sk-live-abcdef0123456789"], stream=sink)
    assert stdout_handler not in root.handlers and handler in root.handlers
    assert logging.getLogger("databar_mcp.api").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpcore2.connection").isEnabledFor(logging.DEBUG)  # logs headers at DEBUG
    assert not logging.getLogger("mcp.server").isEnabledFor(logging.DEBUG)  # logs message bodies at DEBUG
    assert not logging.getLogger("httpx2").isEnabledFor(logging.INFO)  # duplicates our request lines

    logging.getLogger("databar_mcp.api").debug("using sk-live-abcdef0123456789")
    add_secrets("another-secret-value")
    logging.getLogger("databar_mcp").info("and another-secret-value")
    out = sink.getvalue().splitlines()
    assert len(out) == 2 and all(LINE.match(line) for line in out)
    assert "sk-live" not in sink.getvalue() and "another-secret-value" not in sink.getvalue()

    again = setup_logging("WARNING", fmt="json", stream=sink)  # a second call replaces the first handler
    assert handler not in root.handlers and again in root.handlers


@pytest.mark.usefixtures("clean_logging")
def test_uvicorn_handlers_are_reclaimed() -> None:
    import uvicorn

    sink = io.StringIO()
    setup_logging("INFO", stream=sink)
    uvicorn.Config(app=lambda: None)  # installs uvicorn's own handlers, access log to stdout
    from databar_mcp.core.logs import reclaim_library_loggers

    reclaim_library_loggers()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        assert not logger.handlers and logger.propagate
    logging.getLogger("uvicorn.error").info("Uvicorn running")
    assert LINE.match(sink.getvalue())


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--log-level", "verbose"], {}),
        ([], {"DATABAR_MCP_LOG_LEVEL": "loud"}),
        ([], {"DATABAR_MCP_LOG_FORMAT": "xml"}),
    ],
)
def test_cli_refuses_bad_logging_settings(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "unknown log" in captured.err


# ---- MCP logging: logging/setLevel on the 2025 protocol versions ----------------------------------------


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore:The logging capability is deprecated:mcp.shared.exceptions.MCPDeprecationWarning")
async def test_a_client_that_sets_a_level_receives_our_records_masked(settings: Settings) -> None:
    """Regression (issue 12): logging/setLevel answered -32601; now the client gets our records at its level."""
    got: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        got.append(params)

    ours = logging.getLogger("databar_mcp.tests")
    async with Client(build_server(settings), mode="legacy", logging_callback=on_log) as client:
        assert client.server_capabilities.logging is not None
        ours.info("before any level was asked for")
        await client.set_logging_level("info")
        await client.call_tool("get_account", {})
        ours.debug("below the level asked for")
        ours.warning("the key is %s", SENTINEL_KEY)
        worker = threading.Thread(target=ours.error, args=("from another thread, key %s", SENTINEL_KEY))
        worker.start()
        worker.join()
        while not any("another thread" in str(p.data) for p in got):
            await anyio.sleep(0.01)

    messages = [str(p.data["msg"]) for p in got if isinstance(p.data, dict)]
    assert any(UPSTREAM_MSG.fullmatch(m) for m in messages), messages
    assert f"the key is {MASK}" in messages and f"from another thread, key {MASK}" in messages
    assert not any("before any level" in m or "below the level" in m for m in messages)
    assert {p.level for p in got} <= {"info", "warning", "error"} and SENTINEL_KEY not in str(got)
    assert {p.logger for p in got} >= {"databar_mcp.api", "databar_mcp.tests"}


@pytest.mark.anyio
async def test_a_client_that_never_asks_gets_no_log_messages(settings: Settings) -> None:
    got: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        got.append(params)

    async with Client(build_server(settings), mode="legacy", logging_callback=on_log) as client:
        await client.call_tool("get_account", {})
        logging.getLogger("databar_mcp.tests").error("nobody asked")
        await client.list_tools()  # a round trip after the log line
    assert got == []


def test_mcp_levels_map_onto_python_levels() -> None:
    assert [mcp_level(n) for n in (5, 10, 20, 25, 30, 40, 50, 60)] == [
        "debug",
        "debug",
        "info",
        "info",
        "warning",
        "error",
        "critical",
        "critical",
    ]
