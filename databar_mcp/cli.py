"""Entry point `databar-mcp`: flags and environment -> Settings -> serve, sandbox or demo."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from databar_mcp import __version__
from databar_mcp.config import Settings

log = logging.getLogger("databar_mcp")


def _parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(dest="command")
    sandbox = sub.add_parser("sandbox", help="run the Databar API sandbox alone, for any HTTP client")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument(
        "--api-key", default=None, help="key the sandbox accepts (default: $DATABAR_SANDBOX_KEY or 'sandbox')"
    )
    sub.add_parser("demo", help="enrich examples/leads.csv end to end against the sandbox")
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


def serve(args: argparse.Namespace) -> int:
    from databar_mcp.server import build_server

    settings = Settings.from_env(log_level=args.log_level.upper() if args.log_level else None)
    _configure_logging(settings.log_level)
    sandbox = None
    if args.sandbox:
        from databar_mcp.sandbox import SandboxServer

        sandbox = SandboxServer().start()
        settings = settings.model_copy(
            update={
                "base_url": sandbox.base_url,
                "api_key": SecretStr(sandbox.api_key),
                "api_key_source": "sandbox",
                "state_dir": settings.state_dir / "sandbox",  # sandbox tasks never mix with real ones
            }
        )
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
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        return run_sandbox_command(args)
    if args.command == "demo":
        return demo()
    return serve(args)
