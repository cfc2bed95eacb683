"""A bulk waterfall run as TaskRunner takes it, for tests that drive the runner below the tools (polling plans,
a full disk, a ledger outage): one way to build it, with the moments a test breaks something around the POST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from databar_mcp.api import DatabarClient
from databar_mcp.api.models import BulkWaterfallRequest, TaskHandle
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.core.runner import RunOrder, TaskRunner
from tests.conftest import LEADS


async def _nothing() -> None:
    return None


def runner_for(client: DatabarClient, ledger: Ledger) -> TaskRunner:
    """A runner that polls fast (tests wait on tasks of a second or less)."""
    return TaskRunner(
        client, ledger, account="a", poll_first_s=0.02, poll_cap_s=0.1, duplicate_window_s=1800, settle_s=1
    )


def email_run(
    client: DatabarClient,
    *,
    before_post: Callable[[], Awaitable[None]] = _nothing,
    after_post: Callable[[], Awaitable[None]] = _nothing,
) -> RunOrder:
    """The email_getter waterfall over LEADS; `before_post` runs before the POST is sent, `after_post` once
    Databar has accepted (and billed) it, before the runner sees the task id."""
    body = BulkWaterfallRequest(params=LEADS, enrichments=[833, 966], email_verifier=None)

    async def send() -> TaskHandle:
        await before_post()
        handle = await client.bulk_run_waterfall("email_getter", body)
        await after_post()
        return handle

    return RunOrder(
        tool="run_bulk_waterfall",
        endpoint="waterfalls/email_getter/bulk-run",
        request=body.model_dump(mode="json"),
        rows=len(LEADS),
        estimated_credits=12.0,
        force=False,
        send=send,
    )
