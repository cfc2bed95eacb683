"""Which modules hold each toolset's tools, and loading them into a Toolbox in the order tools/list shows them.

A toolset's main module is named after it (`Toolset.TABLES` -> tools/tables.py); a toolset may spread over more
modules, named here. Modules are imported only for the toolsets the Toolbox loads.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Final

from databar_mcp.config import Toolset
from databar_mcp.tools.kit.registry import Toolbox

MORE_MODULES: Final[dict[Toolset, tuple[str, ...]]] = {
    Toolset.TASKS: ("task_export", "task_result"),  # export_task_result; the full-result resource
    Toolset.TABLES: ("table_export", "table_import"),  # export_table_rows; import_rows
    Toolset.TABLE_ADMIN: ("workbooks",),  # workbooks, folder edits, the trash
    Toolset.FLOWS: ("flow_building",),  # create, edit, version and restore flows
}


def modules_of(toolset: Toolset) -> tuple[str, ...]:
    """The modules of `toolset`, under databar_mcp.tools."""
    return (toolset.value, *MORE_MODULES.get(toolset, ()))


def load(box: Toolbox) -> None:
    """Register every loaded toolset's tools (and resources), then enable_toolsets, which describes them. With
    the start's listing cached, only the modules with resources are imported: the others when a tool is called."""
    cached = box.start_listing()
    if cached is not None:
        for known in cached.known:
            box.add_known(known)
        for name in cached.resource_modules:
            box.add_resources(import_module(name))
    else:
        for toolset in Toolset:
            if not box.loads(toolset):
                continue
            for name in modules_of(toolset):
                module: ModuleType = import_module(f"databar_mcp.tools.{name}")
                box.add(module)
                if hasattr(module, "register_resources"):
                    box.resource_modules.append(module.__name__)
    from databar_mcp.tools import guidance, toolsets

    box.add(guidance)  # the prompt and completions, whatever is loaded; its resources when discover is
    toolsets.register(box)  # last: enable_toolsets describes the toolsets the others loaded
