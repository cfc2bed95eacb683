"""The audit log: one JSON line per run, per cancel and per finished result, saying who spent (or stopped) what.

A team's admin answers "who ran this, and what did it cost?" from it: who (the token's subject, or "owner"
without OAuth), the tool, rows, the estimated credits at submission, the actual credits once the result is in,
and the task id. It never holds a key, a token or row data. Each line is appended with one write (O_APPEND),
so replicas and threads sharing the file never interleave inside a line.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("databar_mcp.core.audit")

SERVER_OWNER = "owner"  # who, when no OAuth token names a user


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, event: str, *, who: str | None, **fields: Any) -> None:
        """Append one record; a failure to write is logged, never raised (the run itself already happened)."""
        record = {"at": round(time.time(), 3), "event": event, "who": who or SERVER_OWNER, **fields}
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except OSError as exc:
            log.error("audit record not written to %s: %s", self.path, exc.strerror or exc)

    def run(
        self,
        *,
        who: str | None,
        tool: str,
        rows: int,
        estimated_credits: float | None,
        task_id: str,
        reused: bool,
    ) -> None:
        self.write(
            "run",
            who=who,
            tool=tool,
            rows=rows,
            estimated_credits=estimated_credits,
            task_id=task_id,
            reused=reused,
        )

    def result(self, *, who: str | None, task_id: str, status: str, credits_spent: float | None) -> None:
        self.write("result", who=who, task_id=task_id, status=status, credits_spent=credits_spent)

    def cancel(self, *, who: str | None, task_id: str, status: str) -> None:
        """Who stopped a run (it may belong to a team's shared key): the status Databar answered the cancel with."""
        self.write("cancel", who=who, task_id=task_id, status=status)
