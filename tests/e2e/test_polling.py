"""The polling plan fed by real GETs of the sandbox: what each read tells it, and when it says it was taken."""

from __future__ import annotations

import pytest

from databar_mcp.api import DatabarClient
from databar_mcp.api.models import BulkWaterfallRequest, TaskHandle
from databar_mcp.config import Settings
from databar_mcp.core.ledger.sqlite import SqliteBackend
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.core.runner import RunOrder, TaskRunner
from databar_mcp.sandbox import SandboxServer
from tests.conftest import LEADS

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
    body = BulkWaterfallRequest(params=LEADS, enrichments=[833, 966], email_verifier=None)
    async with DatabarClient.from_settings(settings) as client:
        runner = TaskRunner(
            client, ledger, account="a", poll_first_s=0.02, poll_cap_s=0.1, duplicate_window_s=1800, settle_s=1
        )

        async def send() -> TaskHandle:
            return await client.bulk_run_waterfall("email_getter", body)

        order = RunOrder(
            tool="run_bulk_waterfall",
            endpoint="waterfalls/email_getter/bulk-run",
            request=body.model_dump(mode="json"),
            rows=len(LEADS),
            estimated_credits=12.0,
            force=False,
            send=send,
        )
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
