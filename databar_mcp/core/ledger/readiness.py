"""Readiness kept fresh off the event loop, so /readyz answers at once however busy the server is.

A load balancer asks every half second and takes out a replica whose answer is late. An answer that awaits
anything (a thread, the database) waits behind every callback the event loop has queued, and with fifty agents
on one process that is hundreds of milliseconds however cheap the check itself. So a thread of its own asks the
ledger (on a connection of its own) every `interval_s`, and /readyz reads the last answer without awaiting. A
dead ledger still shows within a bounded time: a failed check at once, a check that hangs (a locked file, a
database that accepts and never answers) once the last good answer is `stale_s` old.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("databar_mcp.ledger")


class ReadinessWatch:
    """The ledger's last readiness check, kept fresh by a daemon thread started on first use."""

    def __init__(self, check: Callable[[], None], *, interval_s: float, stale_s: float) -> None:
        self._check = check  # raises unless the ledger answers a trivial read; runs only in the watch's thread
        self.interval_s = interval_s
        self.stale_s = stale_s
        self._ok_at: float | None = None  # time.monotonic() of the last check that succeeded
        self._failure: str | None = None  # why the last check failed (None: it succeeded)
        self._checked = threading.Event()  # the first check has ended, either way
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def start(self) -> None:
        with self._starting:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._watch, name="ledger-readiness", daemon=True)
                self._thread.start()

    def wait_checked(self, timeout_s: float) -> bool:
        """Block until the first check has ended (the first /readyz of a process waits for it, in a thread)."""
        return self._checked.wait(timeout_s)

    @property
    def checked(self) -> bool:
        return self._checked.is_set()

    def problem(self) -> str | None:
        """None while the ledger answers; else why not, in a few words (never awaits, never blocks)."""
        if not self._checked.is_set():
            return "ledger: not checked yet"
        if self._failure is not None:
            return self._failure
        ok_at = self._ok_at
        if ok_at is None or time.monotonic() - ok_at > self.stale_s:
            return f"ledger: no answer for more than {self.stale_s:g} s"
        return None

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._check()
            except Exception as exc:  # the finding, not a crash: /readyz reports it
                if self._failure is None:
                    logger.warning("ledger readiness check failed: %s", type(exc).__name__)
                self._failure = f"ledger: {type(exc).__name__}"
            else:
                self._ok_at = time.monotonic()
                self._failure = None
            self._checked.set()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        """End the thread (it ends within one check); the ledger closes its probe connection after this."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.stale_s)
