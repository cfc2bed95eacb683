r"""Every trick a start plays to stay at the MCP SDK's floor, with what each buys; nothing else plays one.

A start (spawn -> tools/list answered over stdio) is what a user waits for whenever a client launches the
server. Measured 2026-12-07 on 2 cores at load average 15-21 (other engineers' suites running), 11 interleaved
starts per variant, each trick disabled alone; CPU = the server process's user+sys time (rusage), which a busy
machine disturbs far less than wall time; gain = median of the paired differences against the start with every
trick on (915 ms CPU, 0.75x the bare SDK server's 1,214 ms; wall 0.80x).

| trick (where it acts)                                       | CPU gain      | wall gain (load 19)  | kept    |
|--------------------------------------------------------------|---------------|----------------------|---------|
| the start's tools/list kept on disk (ListingCache, below)    | 266 ms (29%)  | 691 ms (24%)         | yes     |
| toolset modules imported by name when first called, so a     | 195 ms (21%)  | 465 ms (16%)         | yes     |
|   cached start imports none (tools/kit/loading.py)           |               |                      |         |
| unlisted toolsets' tools given to the SDK when listed or     | 148 ms (12%*) | 623 ms (17%*)        | yes     |
|   called (Toolbox.deferred in tools/kit/registry.py)         |               |                      |         |
| garbage collector paused while the server is built           | 105 ms (11%)  | 191 ms (7%)          | yes     |
|   (collector_paused and start_built, below: app/cli.py)      |               |                      |         |
| api.models imported on the first reply (LazyModule, below)   | 51 ms (6%)    | 262 ms (9%)          | yes     |
| resources and prompts given to the SDK on first use          | 14 ms (1.5%)  | -40 ms (noise)       | deleted |

\* of a start that builds its listing (the first after an install, upgrade or settings change): in a cached
start this deferral is what lets a tool the listing names be called without its module imported at start.

The first three are one mechanism seen from three sides: a cached listing lets a start skip both the tool
modules and the SDK's schema work, and a tool it skipped is given to the SDK (its module imported) when it is
first called or listed. Every reach into an SDK-private member they need is in tools/kit/sdk_private.py.
Re-measure with bench/scenarios/cold_start.py (the start against the bare SDK server) before adding a trick:
one that buys under 2% of a start is not worth the code a reader has to carry.

The listing cache: building the listing (a pydantic argument model and JSON schemas per tool, then portable())
and importing the tool modules are most of our own start-up cost, yet their result depends only on the code and
the settings. So the first start writes the answer, with which module holds each loaded tool, to one file in the
state dir, keyed by a fingerprint of everything that determines it: this package's source files (path, size,
mtime), the versions of Python, the MCP SDK and pydantic, and the settings. A later start with the same
fingerprint serves tools/list from the file and gives a tool to the SDK (importing its module) only when it is
first called. A missing, old, foreign or unreadable file is a miss: the start builds as it always did and
rewrites the file.

This module imports only the standard library (the CLI uses it before anything else is imported).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Generator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Protocol, cast


class Settings(Protocol):
    """What the listing cache reads of config.Settings (not imported: this module comes before every layer)."""

    @property
    def state_dir(self) -> Path: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


# ---- the garbage collector, paused while the server is built --------------------------------------------------


@contextlib.contextmanager
def collector_paused() -> Generator[None]:
    """Pause the cyclic garbage collector while a server is built; an early exit resumes it as it was found.

    A start allocates little but long-lived objects (the SDK's and our modules, models, the tool list), so the
    collector's passes over them during the start find nothing to free."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def start_built() -> None:
    """Everything the start built lives as long as the process: freeze it out of every later pass of the
    collector, and resume collecting what serving allocates."""
    gc.freeze()
    gc.enable()


# ---- api.models, imported on the first reply ------------------------------------------------------------------


class LazyModule:
    """Stands for module `name` until an attribute is read; then every read goes to the imported module.

    `api.models` is ~60 pydantic classes that a start never needs: no reply is read before the first tool call.
    The API client names the models in every endpoint; rather than an import inside each one, it binds `models`
    to a LazyModule (type checkers see the real module under `if TYPE_CHECKING:` at the use site). The import
    goes through importlib (thread-safe per module), and sys.modules is left to it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:  # called only for names the proxy itself lacks
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)


# ---- the start's tools/list, kept on disk ---------------------------------------------------------------------

FORMAT: Final = 1  # bump when the file's layout changes
CACHE_FILE: Final = "cache/tools-list.json"  # under the state dir
PACKAGE_ROOT: Final = Path(__file__).resolve().parent  # databar_mcp/
# Packages whose code builds the schemas and the listing besides ours.
BUILDERS: Final = ("mcp", "mcp_types", "pydantic", "pydantic_core")


@dataclass(frozen=True)
class KnownTool:
    """A loaded tool as the index records it: enough to list, count and later import it."""

    name: str
    toolset: str
    module: str


@dataclass(frozen=True)
class Listing:
    """What a start lists: the tools/list answer as JSON, the loaded tools in order, the modules with resources."""

    tools: list[dict[str, Any]]
    known: list[KnownTool]
    resource_modules: list[str]


def source_fingerprint(root: Path = PACKAGE_ROOT) -> list[tuple[str, int, int]]:
    """Every Python source file under `root`: relative path, size and mtime (stat only: no file is read), each
    folder's files before its subfolders, in name order. Every start runs it: one scandir per folder, no
    os.walk or relpath (which cost it twice as much)."""
    found: list[tuple[str, int, int]] = []

    def scan(folder: str, prefix: str) -> None:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name.endswith(".py") and not entry.is_dir():
                stat = entry.stat()
                found.append((prefix + entry.name, stat.st_size, stat.st_mtime_ns))
        for entry in entries:
            if entry.is_dir() and entry.name != "__pycache__":
                scan(entry.path, f"{prefix}{entry.name}{os.sep}")

    scan(str(root), "")
    return found


def builder_versions() -> dict[str, list[object]]:
    """Each builder package's installed distribution (its dist-info's name says the version) and the stat of its
    `__init__.py`; read from the directory rather than importlib.metadata, which parses every METADATA file."""
    found: dict[str, list[object]] = {}
    listings: dict[str, list[str]] = {}
    for package in BUILDERS:
        spec = find_spec(package)
        origin = spec.origin if spec is not None else None
        if origin is None:
            found[package] = ["absent"]
            continue
        site = os.path.dirname(os.path.dirname(origin))
        if site not in listings:
            try:
                listings[site] = sorted(os.listdir(site))
            except OSError:
                listings[site] = []
        dists = [n for n in listings[site] if n.lower().startswith(package + "-") and n.endswith(".dist-info")]
        stat = os.stat(origin)
        found[package] = [origin, stat.st_size, stat.st_mtime_ns, *dists]
    return found


def fingerprint(settings: Settings, sources: list[tuple[str, int, int]] | None = None) -> str:
    """The key a cached listing must carry to be served: any change of code, SDK or settings changes it."""
    material = {
        "format": FORMAT,
        "python": sys.version,
        "builders": builder_versions(),
        "sources": source_fingerprint() if sources is None else sources,
        "settings": settings.model_dump(mode="json"),  # secrets dump masked
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


class ListingCache:
    """One start's cached listing: read once at build, written after a fresh build of the start's listing."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key

    @classmethod
    def for_settings(cls, settings: Settings) -> ListingCache:
        return cls(settings.state_dir / CACHE_FILE, fingerprint(settings))

    def read(self) -> Listing | None:
        """The cached listing when the file holds one under this key; None on any miss."""
        try:
            raw: object = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        body = cast(dict[str, Any], raw)
        if body.get("key") != self.key:
            return None
        try:
            return Listing(
                tools=[dict(t) for t in body["tools"]],
                known=[KnownTool(str(n), str(ts), str(m)) for n, ts, m in body["known"]],
                resource_modules=[str(m) for m in body["resource_modules"]],
            )
        except (KeyError, TypeError, ValueError):
            return None

    def write(self, listing: Listing) -> None:
        """Replace the file atomically (a concurrent start reads the old file or the new, never a torn one); a
        state dir that cannot take it only means the next start builds again."""
        body = {
            "key": self.key,
            "tools": listing.tools,
            "known": [[k.name, k.toolset, k.module] for k in listing.known],
            "resource_modules": listing.resource_modules,
        }
        import tempfile  # only a start that built its listing writes one

        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".tools-list.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    # dumps, then one write: json.dump encodes in pure Python, ten times slower than dumps' C
                    out.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
                os.replace(temp, self.path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
