"""Account toolset: the balance and plan behind the key."""

import time
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.config import Toolset
from databar_mcp.tools.context import Services
from databar_mcp.tools.registry import tool
from databar_mcp.tools.results import ok_result


class Account(BaseModel):
    balance: float
    plan: str | None = None
    email: str | None = None
    first_name: str | None = None
    workspace: str | None = None
    credits_spent_today: float = Field(
        description="Credits spent since 00:00 UTC by runs this server (its ledger) submitted or read."
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
async def get_account(svc: Services) -> Annotated[CallToolResult, Account]:
    user = await svc.client.get_user()
    midnight = time.time() // 86_400 * 86_400
    spent = await svc.ledger.credits_spent_since(midnight)
    account = Account(
        balance=user.balance,
        plan=user.plan,
        email=user.email,
        first_name=user.first_name,
        workspace=user.workspace,
        credits_spent_today=spent,
    )
    text = (
        f"Balance: {account.balance:g} credits. Plan: {account.plan or 'unknown'}. "
        f"Spent today through this server: {spent:g}."
    )
    if account.workspace:
        text += f" Workspace: {account.workspace}."
    return ok_result(account, text)
