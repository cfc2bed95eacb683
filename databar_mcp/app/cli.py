"""Entry point `databar-mcp`: flags and environment -> Settings -> serve, sandbox, doctor or demo."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
from pydantic import SecretStr, ValidationError

from databar_mcp import __version__, startup
from databar_mcp.config import DEFAULT_TOOLSETS, TOOLSETS, KeyFileError, Settings
from databar_mcp.core.logs import FORMATS, parse_format, parse_level, reclaim_library_loggers, setup_logging

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from databar_mcp.app.http_app import HttpOptions
    from databar_mcp.sandbox import SandboxServer

log = logging.getLogger("databar_mcp")

TRANSPORTS = ("stdio", "http")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the README test checks its config blocks against it."""
    parser = argparse.ArgumentParser(
        prog="databar-mcp",
        description="MCP server for Databar.ai data enrichment. The API key comes from DATABAR_API_KEY.",
    )
    env = os.environ
    parser.add_argument("--version", action="version", version=f"databar-mcp {__version__}")
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=env.get("DATABAR_MCP_TRANSPORT", "stdio"),
        help="stdio (default) or http (streamable HTTP at /mcp); env DATABAR_MCP_TRANSPORT",
    )
    parser.add_argument(
        "--host",
        default=env.get("DATABAR_MCP_HOST", "127.0.0.1"),
        help="HTTP bind address (default 127.0.0.1; any other than loopback needs DATABAR_MCP_HTTP_TOKEN)",
    )
    parser.add_argument(
        "--port", type=int, default=env.get("DATABAR_MCP_PORT", "8000"), help="HTTP port (default 8000)"
    )
    parser.add_argument(
        "--sandbox", action="store_true", help="serve against an in-process Databar sandbox (no key needed)"
    )
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (default) or ERROR; env DATABAR_MCP_LOG_LEVEL"
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=None,
        help="stderr log lines as logfmt text (default) or JSON; env DATABAR_MCP_LOG_FORMAT",
    )
    parser.add_argument(
        "--toolsets",
        default=None,
        help=f"comma-separated toolsets to load, or all: {', '.join(TOOLSETS)} (default: list "
        f"{', '.join(DEFAULT_TOOLSETS)} and offer the others through the enable_toolsets tool); "
        "env DATABAR_MCP_TOOLSETS",
    )
    parser.add_argument(
        "--read-only", action="store_true", default=None, help="load no tool that writes or spends credits"
    )
    sub = parser.add_subparsers(dest="command")
    sandbox = sub.add_parser("sandbox", help="run the Databar API sandbox alone, for any HTTP client")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument(
        "--api-key", default=None, help="key the sandbox accepts (default: $DATABAR_SANDBOX_KEY or 'sandbox')"
    )
    demo_parser = sub.add_parser(
        "demo",
        help="enrich 50 bundled leads end to end on the sandbox (flags: databar-mcp demo --help)",
        add_help=False,
    )
    demo_parser.add_argument("demo_args", nargs=argparse.REMAINDER)
    enrich_parser = sub.add_parser(
        "enrich", help="enrich a CSV/JSONL/.xlsx file through a waterfall, enrichment or flow (enrich --help)"
    )
    enrich_parser.add_argument("enrich_args", nargs=argparse.REMAINDER)
    doctor = sub.add_parser(
        "doctor", help="check the key, the API, the balance and the local state; exit 1 if unhealthy"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    doctor.add_argument(
        "--sandbox", dest="doctor_sandbox", action="store_true", help="check against an in-process sandbox"
    )
    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when the HTTP server answers /healthz, or the stdio server running as the container's PID 1 has "
        "a readable ledger (Docker HEALTHCHECK); 1 unhealthy; 2 when there is no server here to check",
    )
    health.add_argument("--url", default=None, help="health URL (default: from the server's own command line)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    ledger = sub.add_parser("ledger", help="the ledger's sizes (stats), and pruning results past retention (prune)")
    action = ledger.add_subparsers(dest="ledger_command", required=True)
    action.add_parser("stats", help="rows, sizes, compressed and pruned results")
    prune = action.add_parser("prune", help="prune results past the retention period now, in small batches")
    prune.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        help="prune tasks finished more than this many days ago (default: DATABAR_MCP_RESULT_RETENTION_DAYS)",
    )
    prune.add_argument(
        "--vacuum",
        action="store_true",
        help=(
            "then give the freed space back to the disk: SQLite VACUUM, PostgreSQL VACUUM FULL of the pruned tables "
            "(each table is locked while it is rewritten: run it when the servers are quiet)"
        ),
    )
    return parser


def _configure_logging(level: str | None, fmt: str | None = None, secrets: Sequence[str | None] = ()) -> None:
    """Structured lines on stderr only: on stdio, stdout belongs to the MCP protocol (see databar_mcp.core.logs)."""
    setup_logging(level, fmt=fmt or os.environ.get("DATABAR_MCP_LOG_FORMAT"), secrets=secrets)


def _skip_sdk_logging_setup() -> None:
    """MCPServer() configures logging itself: it imports rich (~40 ms of every start) to hand logging.basicConfig
    a handler that basicConfig then ignores, because ours is on the root logger already. Skip it."""
    import mcp.server.mcpserver.server as sdk_server

    def configured_already(level: str = "INFO") -> None:
        return None

    # the SDK calls the name it imported into this module; it exports no setting to turn its set-up off
    setattr(sdk_server, "configure_logging", configured_already)  # noqa: B010


def _logging_problem(level: str | None, fmt: str | None) -> str | None:
    try:
        parse_level(level)
        parse_format(fmt or os.environ.get("DATABAR_MCP_LOG_FORMAT"))
    except ValueError as exc:
        return str(exc)
    return None


SANDBOX_STATE_FILE = "sandbox-api.json"


def sandbox_state_path(state_dir: Path) -> Path:
    """Where `--sandbox` keeps the sandbox's state in a state dir."""
    return state_dir / "sandbox" / SANDBOX_STATE_FILE


def on_sandbox(settings: Settings, sandbox: SandboxServer) -> Settings:
    """The same settings, wired to an in-process sandbox; its tasks never mix with real ones in the ledger."""
    return settings.model_copy(
        update={
            "base_url": sandbox.base_url,
            "api_key": SecretStr(sandbox.api_key),
            "api_key_source": "sandbox",
            "state_dir": settings.state_dir / "sandbox",
        }
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment, overridden by the flags given."""
    return Settings.from_env(
        log_level=args.log_level.upper() if args.log_level else None,
        toolsets=getattr(args, "toolsets", None),
        read_only=getattr(args, "read_only", None),
    )


def _empty_tool_selection(server: MCPServer[Any], settings: Settings) -> str | None:
    """Why this toolset selection serves no tool at all (an agent would see an empty server), if it does not."""
    from databar_mcp.app.server import DatabarMCPServer, build_server
    from databar_mcp.tools.kit.registry import TOOLSET_META_KEY

    box = server.toolbox if isinstance(server, DatabarMCPServer) else None
    if box.lists_any() if box is not None else anyio.run(server.list_tools):  # the Toolbox knows without a loop
        return None
    chosen = ", ".join(settings.listed_toolsets)
    if not settings.read_only:
        return f"the toolsets {chosen} load no tool; choose from {', '.join(TOOLSETS)}"
    every = build_server(settings.model_copy(update={"toolsets": TOOLSETS}))
    readable = sorted({str((t.meta or {}).get(TOOLSET_META_KEY)) for t in anyio.run(every.list_tools)})
    return (
        f"--read-only with toolsets {chosen} loads no tool: each of them only spends credits or writes. "
        f"Read-only tools are in: {', '.join(readable)}; add one of those or drop --read-only."
    )


def serve(args: argparse.Namespace) -> int:
    """Start and serve, with the garbage collector paused until the server is built (see databar_mcp/startup.py)."""
    with startup.collector_paused():  # an early exit leaves the collector as it found it
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from databar_mcp.app.server import build_server

    stop_on_sigterm()
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        print(f"databar-mcp: invalid configuration: {problems}", file=sys.stderr)
        return 2
    except KeyFileError as exc:
        print(f"databar-mcp: {exc}", file=sys.stderr)
        return 2
    if problem := _logging_problem(settings.log_level, args.log_format):
        print(f"databar-mcp: {problem}", file=sys.stderr)
        return 2
    if args.transport not in TRANSPORTS:
        print(f"databar-mcp: unknown transport {args.transport!r}: use stdio or http", file=sys.stderr)
        return 2
    http_options = None
    if args.transport == "http":
        from databar_mcp.app.http_app import HttpConfigError, options_from_env

        try:  # before anything starts: an unsafe HTTP configuration never serves a single request
            http_options = options_from_env(args.host, args.port)
        except HttpConfigError as exc:
            print(f"databar-mcp: {exc}", file=sys.stderr)
            return 2
    token = http_options.token.get_secret_value() if http_options and http_options.token else None
    key = settings.api_key.get_secret_value() if settings.api_key else None
    _configure_logging(settings.log_level, args.log_format, secrets=(key, token))
    _skip_sdk_logging_setup()
    sandbox = None
    try:
        if args.sandbox:
            from databar_mcp.sandbox import SandboxServer

            # its state lives in the state dir: a client that starts a process per call still finds its tasks
            sandbox = SandboxServer(persist_path=sandbox_state_path(settings.state_dir)).start()
            settings = on_sandbox(settings, sandbox)
            reclaim_library_loggers()  # the sandbox's uvicorn config installed its own handlers
            log.warning("using the in-process Databar sandbox at %s", sandbox.base_url)
        elif settings.api_key is None:
            log.warning("DATABAR_API_KEY is not set: tools will answer auth_failed (try --sandbox)")
        from databar_mcp.core.ledger.store import LedgerError, ledger_for  # with the server: --version, doctor skip it

        try:  # before serving: an unusable ledger is one line and exit 2, never a traceback or a billed run
            ledger_for(settings).check()
        except LedgerError as exc:
            print(f"databar-mcp: {exc}", file=sys.stderr)
            return 2
        server_options = http_options.server_kwargs() if http_options is not None else {}
        server = build_server(settings, **server_options)
        startup.start_built()
        return _run(server, settings, http_options)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, even before serving began
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()


def _run(server: MCPServer[Any], settings: Settings, http_options: HttpOptions | None) -> int:
    if problem := _empty_tool_selection(server, settings):
        print(f"databar-mcp: {problem}", file=sys.stderr)
        return 2
    if http_options is not None:
        from databar_mcp.app.http_app import serve_http

        return serve_http(server, http_options)
    server.run("stdio")
    return 0


def stop_on_sigterm() -> None:
    """SIGTERM stops the server as Ctrl-C does: the lifespan closes the ledger and the sandbox is saved.

    As PID 1 in a container a process has no default SIGTERM action, so `docker stop` waited 10 s and
    killed it; elsewhere SIGTERM ended it without any clean-up.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run_sandbox_command(args: argparse.Namespace) -> int:
    from databar_mcp.sandbox import run_sandbox

    key = args.api_key or os.environ.get("DATABAR_SANDBOX_KEY") or "sandbox"
    _configure_logging("WARNING", args.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        run_sandbox(args.host, args.port, key)
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from databar_mcp.app.doctor import doctor

    try:
        settings = Settings.from_env(log_level=args.log_level.upper() if args.log_level else None)
    except (ValidationError, KeyFileError) as exc:
        print(f"✗ configuration  {exc}", file=sys.stderr)
        return 1
    if problem := _logging_problem(settings.log_level, args.log_format):
        print(f"databar-mcp: {problem}", file=sys.stderr)
        return 2
    key = settings.api_key.get_secret_value() if settings.api_key else None
    _configure_logging(settings.log_level, args.log_format, secrets=(key,))
    if not (args.sandbox or args.doctor_sandbox):
        code, out = anyio.run(functools.partial(doctor, settings, as_json=args.json))
        print(out)
        return code
    from databar_mcp.sandbox import SandboxServer

    with SandboxServer() as sandbox:
        reclaim_library_loggers()
        code, out = anyio.run(functools.partial(doctor, on_sandbox(settings, sandbox), as_json=args.json))
    print(out)
    return code


def served_args(cmdline: bytes) -> argparse.Namespace | None:
    """The parsed flags of a `databar-mcp ...` (or `python -m databar_mcp ...`) command line, NUL-separated."""
    argv = [part.decode(errors="replace") for part in cmdline.split(b"\0") if part]
    for i, part in enumerate(argv):
        if Path(part).name == "databar-mcp" or (part == "databar_mcp" and i > 0 and argv[i - 1] == "-m"):
            with contextlib.suppress(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                return build_parser().parse_known_args(argv[i + 1 :])[0]
            return None
    return None


def healthcheck_url(args: argparse.Namespace, pid1_cmdline: Path = Path("/proc/1/cmdline")) -> str | None:
    """The /healthz URL of the server to check, or None when it serves stdio (nothing to check).

    In a container the server is PID 1, so its own flags say whether it serves HTTP and on which port;
    elsewhere the flags and DATABAR_MCP_* variables given to this command do.
    """
    if args.url:
        return str(args.url)
    served: argparse.Namespace | None = None
    with contextlib.suppress(OSError):
        served = served_args(pid1_cmdline.read_bytes())
    if served is None or served.command is not None:
        served = args
    if served.transport != "http":
        return None
    host = str(served.host)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a comparison, not a bind)
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{served.port}/healthz"


def stdio_health(pid1_cmdline: Path = Path("/proc/1/cmdline")) -> int:
    """A stdio server has no endpoint: check that it is PID 1 (the container's server) and its ledger reads.

    Outside a container PID 1 is not our server, and saying "healthy" there would be a guess.
    """
    import sqlite3

    served: argparse.Namespace | None = None
    with contextlib.suppress(OSError):
        served = served_args(pid1_cmdline.read_bytes())
    if served is None or served.command is not None:
        print(
            "nothing to check: no databar-mcp server runs as PID 1 here (that is the container case); "
            "for a server over HTTP pass --url http://HOST:PORT/healthz or --transport http --port N"
        )
        return 2
    try:
        ledger = Settings.from_env().ledger_path
    except (ValidationError, KeyFileError) as exc:
        print(f"unhealthy: stdio server: invalid configuration ({type(exc).__name__})")
        return 1
    if not ledger.exists():
        print(f"healthy: stdio server (PID 1); no ledger yet at {ledger}")
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=2)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as exc:
        print(f"unhealthy: stdio server: ledger {ledger}: {exc}")
        return 1
    if verdict is None or verdict[0] != "ok":
        print(f"unhealthy: stdio server: ledger {ledger} fails its integrity check")
        return 1
    print(f"healthy: stdio server (PID 1), ledger ok at {ledger}")
    return 0


def healthcheck(args: argparse.Namespace) -> int:
    """For Docker's HEALTHCHECK: 0 when /healthz answers ok (or the stdio server's ledger reads), 1 when not,
    2 when there is no server to check; one line out."""
    import json
    import urllib.request

    url = healthcheck_url(args)
    if url is None:
        return stdio_health()
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:  # noqa: S310 (http URL we built)
            body = json.loads(response.read(65536) or b"{}")
            status = int(response.status)
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {type(exc).__name__}: {exc}")
        return 1
    if status == 200 and isinstance(body, dict) and cast(dict[str, object], body).get("status") == "ok":
        print(f"healthy: {url}")
        return 0
    print(f"unhealthy: {url}: HTTP {status}")
    return 1


def demo(argv: list[str]) -> int:
    """The main job end to end (databar_mcp/demo.py), with its own flags."""
    from databar_mcp.app.demo import run_demo

    return run_demo(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(argv)
    except BrokenPipeError:  # `databar-mcp doctor | head`: the reader left; end quietly, as cat does
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _dispatch(argv: Sequence[str] | None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["demo"]:  # the demo has its own flags (databar-mcp demo --help)
        return demo(given[1:])
    if given[:1] == ["enrich"]:  # a list file through a run tool, from a script (databar-mcp enrich --help)
        from databar_mcp.app.enrich_cli import run_enrich

        return run_enrich(given[1:])
    args = build_parser().parse_args(given)
    if args.command == "sandbox":
        return run_sandbox_command(args)
    if args.command == "doctor":
        return run_doctor(args)
    if args.command == "healthcheck":
        return healthcheck(args)
    if args.command == "ledger":
        return run_ledger(args)
    return serve(args)


def run_ledger(args: argparse.Namespace) -> int:
    from databar_mcp.app.ledger_cli import ledger_command

    try:
        settings = Settings.from_env(log_level=args.log_level.upper() if args.log_level else None)
    except (ValidationError, KeyFileError) as exc:
        print(f"databar-mcp ledger: configuration: {exc}", file=sys.stderr)
        return 2
    code, out = anyio.run(ledger_command, args, settings)
    print(out, file=sys.stdout if code == 0 else sys.stderr)
    return code
