"""Databar's own MCP server (npm `databar-mcp-server`), installed into the git-ignored bench/vendor/.

Its code is never committed: `ensure()` installs it from the npm registry when node and npm are present.
It reads DATABAR_API_KEY and DATABAR_BASE_URL, polls tasks every POLL_INTERVAL_MS (2000) and answers in text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mcp import StdioServerParameters

from bench.harness import KEY, log

PACKAGE = "databar-mcp-server"
VERSION = "1.4.0"
VENDOR = Path(__file__).resolve().parent.parent / "vendor"
PACKAGE_DIR = VENDOR / "node_modules" / PACKAGE
NAME = f"{PACKAGE}@{VERSION}"


@dataclass(frozen=True)
class Availability:
    entry: Path | None  # dist/index.js when usable
    why: str  # why not, when entry is None

    @property
    def ok(self) -> bool:
        return self.entry is not None


def installed() -> Path | None:
    manifest = PACKAGE_DIR / "package.json"
    entry = PACKAGE_DIR / "dist" / "index.js"
    if not manifest.is_file() or not entry.is_file():
        return None
    return entry if json.loads(manifest.read_text()).get("version") == VERSION else None


def ensure(install: bool) -> Availability:
    """The installed server, installing it first when allowed and npm is present."""
    if shutil.which("node") is None:
        return Availability(None, "node is not installed")
    entry = installed()
    if entry is not None:
        return Availability(entry, "")
    if not install:
        return Availability(None, f"{NAME} is not installed in bench/vendor (the quick run never installs it)")
    npm = shutil.which("npm")
    if npm is None:
        return Availability(None, "npm is not installed")
    log(f"installing {NAME} into {VENDOR} (git-ignored) ...")
    VENDOR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(VENDOR), "--no-audit", "--no-fund", "--no-save", NAME],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    entry = installed()
    if entry is None:
        return Availability(None, f"npm install {NAME} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return Availability(entry, "")


def params(entry: Path, base_url: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=shutil.which("node") or "node",
        args=[str(entry)],
        env={"DATABAR_API_KEY": KEY, "DATABAR_BASE_URL": base_url},
    )
