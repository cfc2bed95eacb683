"""All mutable emulator state behind one lock: money, tasks, tables, connectors, faults, counters."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from databar_mcp.sandbox import persistence
from databar_mcp.sandbox.clock import Clock
from databar_mcp.sandbox.config import Fault, SandboxConfig
from databar_mcp.sandbox.errors import ApiError, Json, insufficient_credits, not_found
from databar_mcp.sandbox.flows import Flow, seed_flows
from databar_mcp.sandbox.providers import RowOutcome
from databar_mcp.sandbox.ratelimit import SlidingWindow, Verdict
from databar_mcp.sandbox.tables import SEED_TABLE_ID, Table, seed_table
from databar_mcp.sandbox.tasks import EXPIRED_MESSAGE, Task
from databar_mcp.sandbox.workbooks import Workbook, new_workbook_id, place
from databar_mcp.sandbox.workspace import Workspace

logger = logging.getLogger("databar_mcp.sandbox")


class SandboxState:
    """Shared by the server thread and the tests; every mutation holds `lock`."""

    def __init__(self, config: SandboxConfig | None = None, persist_path: Path | None = None) -> None:
        self.config = config or SandboxConfig()
        self.persist_path = persist_path
        self.clock = Clock()
        self.lock = threading.RLock()
        self.counts: Counter[str] = Counter()
        self.work: Counter[str] = Counter()  # requests each route did its work for (a 2xx from the route itself)
        self.tasks: dict[str, Task] = {}
        self.tables: dict[str, Table] = {SEED_TABLE_ID: seed_table(self.config.seed_table_rows)}
        self.connectors: dict[int, dict[str, Json]] = {}
        self._next_connector_id = 1
        self._balance = self.config.balance
        self._unsettled: set[str] = set()
        self._faults: list[Fault] = []
        self._key_window = SlidingWindow()
        self._table_windows: dict[str, SlidingWindow] = {}
        self.workspace = Workspace()  # table enrichments, folders, workbooks, exports, trash
        self.flows: dict[str, Flow] = seed_flows()  # saved flows, edited through the API
        if persist_path is not None:
            persistence.load(self, persist_path)
        self.adopt_orphans()

    # persistence (see persistence.py)

    def save(self) -> None:
        if self.persist_path is None:
            return
        with self.lock:
            try:
                persistence.save(self, self.persist_path)
            except OSError as exc:
                logger.warning("could not save the sandbox state to %s (%s)", self.persist_path, exc)

    @property
    def raw_balance(self) -> float:
        return self._balance

    @raw_balance.setter
    def raw_balance(self, value: float) -> None:
        self._balance = value

    @property
    def unsettled(self) -> set[str]:
        return self._unsettled

    @unsettled.setter
    def unsettled(self, task_ids: set[str]) -> None:
        self._unsettled = task_ids

    def peek_connector_id(self) -> int:
        return self._next_connector_id

    def set_next_connector_id(self, value: int) -> None:
        self._next_connector_id = value

    # requests and faults

    def count(self, route_key: str) -> None:
        with self.lock:
            self.counts[route_key] += 1

    def did_work(self, route_key: str) -> None:
        with self.lock:
            self.work[route_key] += 1

    def total_requests(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()
            self.work.clear()

    def inject(self, fault: Fault) -> None:
        """Arm a fault for `fault.times` requests to `fault.route` ("*" matches every route).

        It strikes once `fault.after` matching requests have gone through untouched (0: the next one).
        """
        with self.lock:
            self._faults.append(fault)

    def take_fault(self, route_key: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.route in (route_key, "*") and fault.times > 0:
                    if fault.after > 0:  # not armed yet: this request passes (another fault may still apply)
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def check_rate(self, table_uuid: str | None) -> Verdict | None:
        """The first limit this request exceeds (global per key, then per table), else the global verdict."""
        with self.lock:
            verdict: Verdict | None = None
            if self.config.rate_limit_per_second is not None:
                verdict = self._key_window.check(self.config.rate_limit_per_second)
                if not verdict.allowed:
                    return verdict
            per_table = self.config.table_rate_limit_per_second
            if table_uuid is not None and per_table is not None:
                table_verdict = self._table_windows.setdefault(table_uuid, SlidingWindow()).check(per_table)
                if not table_verdict.allowed:
                    return table_verdict
            return verdict

    # money

    @property
    def balance(self) -> float:
        """Current credits, after charging every row that has finished by now."""
        with self.lock:
            self._settle()
            return round(self._balance, 6)

    @balance.setter
    def balance(self, value: float) -> None:
        with self.lock:
            self._settle()
            self._balance = value

    def _settle(self) -> None:
        now = self.clock.now()
        for task_id in list(self._unsettled):
            task = self.tasks[task_id]
            done = task.done_count(now)
            self._balance -= task.cost_of(task.charged, done)
            task.charged = done
            if done == task.total or task.cancelled_at is not None:
                self._unsettled.discard(task_id)
        self.workspace.settle(self.tables, now, self._take_credits)

    def _take_credits(self, cost: float) -> bool:
        """Charge one table-enrichment row, or say the balance cannot cover it (nothing is taken then)."""
        if self._balance < cost:
            return False
        self._balance -= cost
        return True

    # tasks

    def submit(self, outcomes: Sequence[RowOutcome], worst_case: float, bulk: bool, *, waterfall: bool = False) -> Task:
        """Create a task if the balance covers the worst case; the cost is charged as rows finish."""
        with self.lock:
            self._settle()
            if self._balance < worst_case:
                raise insufficient_credits()
            task = Task(
                task_id=str(uuid.uuid4()),
                bulk=bulk,
                created=self.clock.now(),
                base_seconds=self.config.task_base_seconds,
                row_seconds=self.config.row_seconds,
                outcomes=list(outcomes),
                single_as_list=waterfall and not self.config.reply_variant,
                status_synonyms=self.config.reply_variant,
            )
            self.tasks[task.task_id] = task
            self._unsettled.add(task.task_id)
            return task

    def _live_task(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise not_found("Task not found.")
        return task

    def _expired(self, task: Task, now: float) -> bool:
        expired = task.is_expired(now, self.config.retention_seconds)
        if expired and self.config.gone_style == "http_410":
            raise ApiError(410, {"detail": EXPIRED_MESSAGE})
        return expired

    def read_task(self, task_id: str, include_partial: bool) -> dict[str, Json]:
        """The task as the API reports it now; expired data is a 410 or status "gone" (config.gone_style)."""
        with self.lock:
            self._settle()
            task = self._live_task(task_id)
            task.reads += 1
            task.partial_reads += include_partial
            if task.reads <= self.config.fresh_task_unseen_reads:
                raise not_found("Task not found.")  # the replica answering has not seen the new task yet
            now = self.clock.now()
            task.read_at = now
            return task.gone_view(now) if self._expired(task, now) else task.view(now, include_partial)

    def cancel_task(self, task_id: str) -> dict[str, Json]:
        """Stop a running task; rows not finished yet are never charged."""
        with self.lock:
            self._settle()
            task = self._live_task(task_id)
            now = self.clock.now()
            status = "gone" if self._expired(task, now) else task.status(now)
            if status != "processing":
                raise ApiError(409, {"detail": f"Task is already {status}."})
            task.frozen_done = task.done_count(now)
            task.cancelled_at = now
            self._settle()
            return task.view(now)

    # tables and connectors

    def table(self, table_uuid: str) -> Table:
        """The table with every table-enrichment row finished by now written into it."""
        with self.lock:
            table = self.tables.get(table_uuid)
            if table is None:
                raise not_found("Table not found.")
            self._settle()
            return table

    def new_table(self, name: str, columns: Sequence[str], workbook: str | None = None) -> Table:
        """A table in `workbook` (its last sheet), or in a workbook of its own, named after it."""
        with self.lock:
            stamp = self.iso_now()
            table = Table(str(uuid.uuid4()), name, stamp, stamp)
            for column in columns:
                table.add_column(column)
            self.tables[table.identifier] = table
            place(self.tables.values(), table, workbook or self.new_workbook(name).identifier)
            return table

    def new_workbook(self, name: str, identifier: str | None = None) -> Workbook:
        with self.lock:
            stamp = self.iso_now()
            workbook = Workbook(identifier or new_workbook_id(), name, stamp, stamp)
            self.workspace.workbooks[workbook.identifier] = workbook
            return workbook

    def adopt_orphans(self) -> None:
        """Give every table without a live workbook one of its own (the seed table, tables of older state files)."""
        with self.lock:
            for table in self.tables.values():
                if table.workbook not in self.workspace.workbooks:
                    ident = f"wb_{table.identifier.replace('-', '')[:16]}"
                    place(self.tables.values(), table, self.new_workbook(table.name, ident).identifier)

    def next_connector_id(self) -> int:
        with self.lock:
            self._next_connector_id += 1
            return self._next_connector_id - 1

    def iso_now(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
