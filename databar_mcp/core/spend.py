"""The spend guard's rules: refuse a run above the per-call limit or one that would sink the balance below
the floor; ask the user above the confirmation threshold. Pure, so every rule is tested on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from databar_mcp.config import Settings


@dataclass(frozen=True)
class SpendCheck:
    verdict: Literal["ok", "confirm", "refuse"]
    reason: str = ""
    setting: str | None = None  # the environment variable that would change the verdict


def needs_balance(settings: Settings) -> bool:
    return settings.min_balance is not None


def check_spend(estimate: float | None, balance: float | None, settings: Settings) -> SpendCheck:
    limit, floor, confirm = settings.max_credits_per_call, settings.min_balance, settings.confirm_above
    if estimate is None:
        if limit is not None or floor is not None or confirm is not None:
            return SpendCheck(
                "refuse",
                "the cost of this run cannot be estimated (the catalog gives no price), and a spend limit is set",
                "DATABAR_MCP_MAX_CREDITS_PER_CALL",
            )
        return SpendCheck("ok")
    if limit is not None and estimate > limit:
        return SpendCheck(
            "refuse",
            f"this run may cost up to {estimate:g} credits, above the limit of {limit:g} per call",
            "DATABAR_MCP_MAX_CREDITS_PER_CALL",
        )
    if floor is not None and balance is not None and balance - estimate < floor:
        return SpendCheck(
            "refuse",
            f"this run may cost up to {estimate:g} credits; the balance ({balance:g}) would fall below the "
            f"minimum of {floor:g}",
            "DATABAR_MCP_MIN_BALANCE",
        )
    if confirm is not None and estimate > confirm:
        return SpendCheck(
            "confirm",
            f"this run may cost up to {estimate:g} credits, above the {confirm:g} that needs the user's confirmation",
            "DATABAR_MCP_CONFIRM_ABOVE",
        )
    return SpendCheck("ok")
