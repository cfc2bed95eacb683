"""A faithful local emulator of the Databar REST API, for tests, the demo and offline development."""

from databar_mcp.sandbox.app import create_app
from databar_mcp.sandbox.config import Fault, SandboxConfig
from databar_mcp.sandbox.server import SandboxServer, run_sandbox
from databar_mcp.sandbox.state import SandboxState

__all__ = ["Fault", "SandboxConfig", "SandboxServer", "SandboxState", "create_app", "run_sandbox"]
