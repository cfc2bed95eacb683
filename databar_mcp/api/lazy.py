"""A module imported on first attribute use, for what a server start names but does not run.

`api.models` is ~60 pydantic classes (~18 ms of a ~600 ms start) that a start never needs: no reply is read
before the first tool call. The API client names the models in every endpoint; rather than an import inside
each one, it binds `models` to a LazyModule, which imports the real module the first time an endpoint reads a
reply. Type checkers see the real module (`if TYPE_CHECKING:` at the use site). The import goes through
importlib (thread-safe per module), and sys.modules is left to it: other modules import the real thing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module `name` until an attribute is read; then every read goes to the imported module."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:  # called only for names the proxy itself lacks
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)
