"""Entry point `databar-mcp`: flags and environment -> Settings -> serve, sandbox, doctor or demo."""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import logging
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from pydantic import SecretStr, ValidationError

from databar_mcp import __version__
from databar_mcp.config import Settings

if TYPE_CHECKING:
    from databar_mcp.sandbox import SandboxServer

log = logging.getLogger("databar_mcp")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the README test checks its config blocks against it."""
    parser = argparse.ArgumentParser(
        prog="databar-mcp",
        description="MCP server for Databar.ai data enrichment. The API key comes from DATABAR_API_KEY.",
    )
    parser.add_argument("--version", action="version", version=f"databar-mcp {__version__}")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument(
        "--sandbox", action="store_true", help="serve against an in-process Databar sandbox (no key needed)"
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default) or ERROR")
    parser.add_argument(
        "--toolsets",
        default=None,
        help="comma-separated toolsets to load: discover,enrich,tasks,tables,connectors,account (default: all)",
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
    sub.add_parser("demo", help="enrich examples/leads.csv end to end against the sandbox")
    doctor = sub.add_parser(
        "doctor", help="check the key, the API, the balance and the local state; exit 1 if unhealthy"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    doctor.add_argument(
        "--sandbox", dest="doctor_sandbox", action="store_true", help="check against an in-process sandbox"
    )
    return parser


def _configure_logging(level: str) -> None:
    # stderr only: on stdio, stdout belongs to the MCP protocol.
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def serve(args: argparse.Namespace) -> int:
    from databar_mcp.server import build_server

    try:
        settings = settings_from(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        print(f"databar-mcp: invalid configuration: {problems}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    sandbox = None
    if args.sandbox:
        from databar_mcp.sandbox import SandboxServer

        sandbox = SandboxServer().start()
        settings = on_sandbox(settings, sandbox)
        log.warning("using the in-process Databar sandbox at %s", sandbox.base_url)
    elif settings.api_key is None:
        log.warning("DATABAR_API_KEY is not set: tools will answer auth_failed (try --sandbox)")
    server = build_server(settings)
    try:
        if args.transport == "http":
            if not _is_loopback(args.host):
                print("refusing to serve HTTP on a non-loopback address in this version", file=sys.stderr)
                return 2
            server.run("streamable-http", host=args.host, port=args.port)
        else:
            server.run("stdio")
    finally:
        if sandbox is not None:
            sandbox.stop()
    return 0


def run_sandbox_command(args: argparse.Namespace) -> int:
    from databar_mcp.sandbox import run_sandbox

    key = args.api_key or os.environ.get("DATABAR_SANDBOX_KEY") or "sandbox"
    _configure_logging("WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        run_sandbox(args.host, args.port, key)
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from databar_mcp.doctor import doctor

    settings = Settings.from_env(log_level=args.log_level.upper() if args.log_level else None)
    _configure_logging(settings.log_level)
    if not (args.sandbox or args.doctor_sandbox):
        code, out = anyio.run(functools.partial(doctor, settings, as_json=args.json))
        print(out)
        return code
    from databar_mcp.sandbox import SandboxServer

    with SandboxServer() as sandbox:
        code, out = anyio.run(functools.partial(doctor, on_sandbox(settings, sandbox), as_json=args.json))
    print(out)
    return code


def demo() -> int:
    """Run examples/enrich_leads.py from a source checkout (the demo is a script users can copy)."""
    script = Path(__file__).resolve().parents[1] / "examples" / "enrich_leads.py"
    if not script.exists():
        print("The demo runs examples/enrich_leads.py from a source checkout of databar-mcp.", file=sys.stderr)
        return 1
    sys.argv = [str(script), "--sandbox"]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        return run_sandbox_command(args)
    if args.command == "demo":
        return demo()
    if args.command == "doctor":
        return run_doctor(args)
    return serve(args)
