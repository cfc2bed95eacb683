"""What the flows toolset's modules share: the flow id parameter, and each flow's detail and price cached
like the catalog (dropped when a flow is edited, so a run never prices the old steps)."""

import time
import weakref
from typing import Annotated

from pydantic import Field

from databar_mcp import config
from databar_mcp.api import DatabarClient
from databar_mcp.api.models import Flow, FlowCostEstimate
from databar_mcp.tools.kit.context import Services

FlowId = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$", description="A flow id from list_flows."),
]

_flows: "weakref.WeakKeyDictionary[DatabarClient, dict[str, tuple[float, Flow, FlowCostEstimate | None]]]" = (
    weakref.WeakKeyDictionary()
)


def forget_flow(svc: Services, flow_id: str) -> None:
    """Drop a flow's cached detail and cost: it was just edited, and a run must see the new steps."""
    _flows.get(svc.client, {}).pop(flow_id, None)


async def flow_and_cost(svc: Services, flow_id: str) -> tuple[Flow, FlowCostEstimate | None]:
    """The flow's detail and its per-run cost (None when it has no config to price), cached like the catalog."""
    cache = _flows.setdefault(svc.client, {})
    hit = cache.get(flow_id)
    if hit is not None and time.monotonic() - hit[0] < config.CATALOG_TTL_S:
        return hit[1], hit[2]
    flow = await svc.client.get_flow(flow_id)
    cost = await svc.client.estimate_flow_cost(flow.config) if flow.config else None
    cache[flow_id] = (time.monotonic(), flow, cost)
    return flow, cost
