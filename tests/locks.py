"""Set-up that pytest-xdist workers must not run at once: npm installs of the judges, Debian packages.

Each is done under an exclusive `flock`, and whoever gets the lock first checks again whether the thing is
still missing, so N workers that all find it missing install it once. apt/dpkg locks are machine-wide, so
the Debian lock is too (in the temp dir, shared by every checkout); the judges' lock sits beside them.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

DEBIAN_LOCK: Final = Path(tempfile.gettempdir()) / "databar-mcp-apt.lock"


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if missing) for the block; blocks until it is free."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def debian_installs() -> Iterator[None]:
    """One apt-get at a time on this machine (apt refuses to run beside another instead of waiting)."""
    with exclusive(DEBIAN_LOCK):
        yield
