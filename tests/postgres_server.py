"""A real PostgreSQL server for the tests: Debian's, in a temporary data dir, on 127.0.0.1.

initdb refuses to run as root (and CI runs as root), so as root the server runs as the unprivileged
`postgres` user (or `nobody`). Where PostgreSQL is missing it is installed from Debian's packages, but
only as root; elsewhere the tests that need it skip, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.locks import debian_installs

SUPERUSER = "databar"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _install() -> Path | None:
    """apt-get install postgresql, as root and only when it is missing."""
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=False, env=env, capture_output=True, timeout=300)  # noqa: S603
    install = [apt, "install", "-y", "-qq", "postgresql"]
    subprocess.run(install, check=True, env=env, capture_output=True, timeout=600)  # noqa: S603
    return _bindir()


def _unprivileged() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, but there is no unprivileged user to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """initdb + pg_ctl start into a temp dir; `stop()` removes it all."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = _unprivileged()
        self.root = Path(tempfile.mkdtemp(prefix="databar-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    def _as_server_user(self, args: list[str], *, timeout: float) -> None:
        owner: dict[str, Any] = {}
        if self.user is not None:
            owner = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        subprocess.run(args, check=True, capture_output=True, text=True, cwd=self.root, timeout=timeout, **owner)  # noqa: S603

    def _pg_ctl(self, *args: str, timeout: float) -> None:
        self._as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), *args], timeout=timeout)

    def start(self) -> PostgresServer:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"]
        self._as_server_user([*initdb, "--no-sync"], timeout=120)
        return self.resume()

    def halt(self) -> None:
        """Stop the server as an operator's restart does (`-m fast`: every session is closed), keeping its data."""
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop", timeout=90)

    def restart(self) -> None:
        """A real restart: the same data and port, every connection open before it closed by the server."""
        self.halt()
        self.resume()

    def resume(self) -> PostgresServer:
        """Start the server on its data dir (again) and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=300"
        )
        self._pg_ctl("-l", str(self.root / "log"), "-o", options, "-w", "-t", "60", "start", timeout=90)
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"ledger_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._as_server_user(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"], timeout=60
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start one, or skip (fail under CI=true) when PostgreSQL is missing and cannot be installed here."""
    with debian_installs():
        bindir = _bindir() or _install()
    if bindir is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql, as root, brings it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL ledger tests: {reason}")
        pytest.skip(reason)
    return PostgresServer(bindir).start()
