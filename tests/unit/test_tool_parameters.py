"""What a tool accepts is written in the tool (issue 24, item 1): for every tool, the arguments its own `async def`
declares are exactly the properties tools/list shows and exactly the arguments the SDK accepts, in that order.

Injected parameters are not arguments: the services, the Toolbox, the context and values the SDK's resolvers fill
(`Annotated[T, Resolve(...)]`). A parameter added, hidden or rewritten behind the tool's back fails here.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Resolve
from pydantic import SecretStr

from databar_mcp.config import TOOLSETS, Settings
from databar_mcp.tools.kit.context import Services
from databar_mcp.tools.kit.loading import load
from databar_mcp.tools.kit.registry import DEFINED, Toolbox


def injected(annotation: Any) -> bool:
    """A parameter the server fills, never the caller."""
    if annotation is Services or annotation is Toolbox:
        return True
    if inspect.isclass(annotation) and issubclass(annotation, Context):
        return True
    return get_origin(annotation) is Annotated and any(isinstance(m, Resolve) for m in get_args(annotation)[1:])


def declared(fn: Any) -> list[str]:
    hints = typing.get_type_hints(fn, include_extras=True)
    return [name for name in inspect.signature(fn).parameters if not injected(hints.get(name))]


def test_every_tool_lists_and_accepts_exactly_the_arguments_its_signature_declares(tmp_path: Path) -> None:
    settings = Settings(
        api_key=SecretStr("unused"), base_url="http://127.0.0.1:9/v1", state_dir=tmp_path, toolsets=TOOLSETS
    )
    server = MCPServer[Services](name="signatures")
    box = Toolbox(server, settings)  # the server's own registration, less its transports and lifespan
    load(box)
    box.ensure_all()
    written = {spec.name: spec.fn for specs in DEFINED.values() for spec in specs}
    registered = server._tool_manager.list_tools()  # pyright: ignore[reportPrivateUsage]
    assert len(registered) == len(box.registered) > 50
    wrong: list[str] = []
    for tool in registered:
        own = declared(written[tool.name])
        listed = list(tool.parameters["properties"])
        accepted = list(tool.fn_metadata.arg_model.model_fields)
        if not own == listed == accepted:
            wrong.append(f"{tool.name}: declares {own}, lists {listed}, accepts {accepted}")
    assert not wrong, "\n".join(wrong)
