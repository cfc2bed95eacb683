"""The polling plan fed by real GETs of the sandbox: what each read tells it, and when it says it was taken."""

from __future__ import annotations

import pytest

from databar_mcp.api import DatabarClient
from databar_mcp.config import Settings
from databar_mcp.core.ledger.sqlite import SqliteBackend
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.sandbox import SandboxServer
from tests.run_orders import email_run, runner_for

pytestmark = pytest.mark.anyio


async def test_every_read_of_a_task_is_a_sample_dated_by_its_own_request(
    sandbox: SandboxServer, settings: Settings
) -> None:
    """Regression (issue 28): get_task's first read became a sample only once the waiting began, after the ledger
    write, dated as if Databar had counted its rows then; a row that ended in between moved the predicted end (a
    120 s task seen 330 ms late). Every GET through the runner is now a sample dated by its own request."""
    sandbox.state.config.task_base_seconds = 60.0  # it stays running through the test
    ledger = Ledger(SqliteBackend(settings.ledger_path))
    await ledger.open()
    async with DatabarClient.from_settings(settings) as client:
        runner = runner_for(client, ledger)
        order = email_run(client)
        task_id = (await runner.submit(order)).task_id
        first = await runner.poll(task_id)  # as get_task reads the task before it waits
        plan = runner.plan_for(task_id)
        assert plan.polls == 1 and len(plan.samples) == 1
        sample = plan.samples[0]
        assert plan.start is not None and sample.asked is not None
        assert 0 <= sample.asked <= sample.t and sample.finished == 0  # seconds after the sending
        still = await runner.wait(task_id, timeout_s=0, first=first)  # the wait adds no second, later-dated copy
        assert still is first and plan.polls == 1 and len(plan.samples) == 1
    ledger.close()
