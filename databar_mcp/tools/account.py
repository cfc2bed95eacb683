"""Account toolset: the balance and plan behind the key."""

import time
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.config import Toolset
from databar_mcp.core.ledger.store import SpendTotals
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ok_result


class Account(BaseModel):
    balance: float
    plan: str | None = None
    email: str | None = None
    first_name: str | None = None
    workspace: str | None = None
    credits_spent_today: float = Field(
        description="Credits spent since 00:00 UTC by every run this server (its ledger) submitted or read, table "
        "runs included: Databar's figures, measured ones, and estimates where neither exists."
    )
    credits_estimated_today: float = Field(
        default=0.0, description="The part of credits_spent_today counted at estimates (no figure exists)."
    )
    credits_running_up_to: float = Field(default=0.0, description="Runs still going: at most this much more.")
    credits_possibly_spent_today: float = Field(
        default=0.0, description="Runs whose submission outcome is unknown: possibly spent, at most this."
    )


GET_ACCOUNT_DESCRIPTION = """\
Show the account behind the configured key: credit balance, plan, workspace, credits this server's runs \
spent today. Free. Check the balance before a large run."""


@tool(
    Toolset.ACCOUNT,
    name="get_account",
    title="Get account and balance",
    description=GET_ACCOUNT_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_account(ctx: ToolContext) -> Annotated[CallToolResult, Account]:
    svc = services(ctx)
    user = await svc.client.get_user()
    midnight = time.time() // 86_400 * 86_400
    totals = await svc.ledger.spend_since(midnight)
    account = Account(
        balance=user.balance,
        plan=user.plan,
        email=user.email,
        first_name=user.first_name,
        workspace=user.workspace,
        credits_spent_today=round(totals.spent, 6),
        credits_estimated_today=round(totals.estimated, 6),
        credits_running_up_to=round(totals.running, 6),
        credits_possibly_spent_today=round(totals.possibly, 6),
    )
    text = f"Balance: {account.balance:g} credits. Plan: {account.plan or 'unknown'}. " + spent_today(totals)
    if account.workspace:
        text += f" Workspace: {account.workspace}."
    return ok_result(account, text)


def spent_today(totals: SpendTotals) -> str:
    """Every billable act of the day, each figure saying how it is known (issue 23)."""
    parts = [f"{totals.reported:g} as Databar reported"] if totals.reported else []
    if totals.measured:
        parts.append(f"{totals.measured:g} measured from the balance (table runs)")
    if totals.estimated_runs:
        parts.append(f"{totals.estimated:g} counted at the estimates of {totals.estimated_runs} run(s) with no figure")
    how = f" ({'; '.join(parts)})" if len(parts) > 1 or totals.estimated_runs else ""
    if not totals.runs:
        return "Spent today through this server: 0 credits (no runs today)."
    text = f"Spent today through this server: {totals.spent:g} credits over {totals.runs} run(s){how}."
    if totals.running_runs:
        unpriced = f" ({totals.running_unpriced} of them not priced)" if totals.running_unpriced else ""
        text += f" Still running: {totals.running_runs} run(s){unpriced}, up to {totals.running:g} more."
    if totals.possibly_runs:
        text += (
            f" Possibly spent: up to {totals.possibly:g} more by {totals.possibly_runs} run(s) whose submission "
            "outcome is unknown (list_recent_tasks shows them and what to check)."
        )
    return text
