"""Refuse tool arguments the tool does not take, instead of ignoring them.

The SDK's argument models ignore extra keys, so a misspelled `forse` or `wait_second` would silently fall
back to the default: for a billable run that means paying for a run the agent did not ask for. A refusal
costs nothing (nothing is sent) and names the argument, its likely intended name and the accepted ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any, cast

from databar_mcp.core.shaping import clip
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, FieldProblem

NAME_SHOWN = 80  # an unknown argument's name is echoed at most this long
UNKNOWN_SHOWN = 20


def unknown_arguments(
    schema: Mapping[str, Any], arguments: Mapping[str, Any], unlisted: Collection[str] = ()
) -> ErrorBody | None:
    """A validation_error naming every argument neither `schema` declares nor `unlisted` (accepted, not listed:
    e.g. the flag a refused re-send's next_steps ask for) names, or None when all are known."""
    properties: object = schema.get("properties")
    known = sorted(cast(dict[str, Any], properties)) if isinstance(properties, dict) else []
    unknown = [name for name in arguments if name not in known and name not in unlisted]
    if not unknown:
        return None
    fields: list[FieldProblem] = []
    for name in unknown[:UNKNOWN_SHOWN]:
        close = difflib.get_close_matches(name[:NAME_SHOWN], known, n=1) if len(name) <= NAME_SHOWN else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        fields.append(FieldProblem(field=clip(name, NAME_SHOWN), problem=f"unknown argument{hint}"))
    more = f" (and {len(unknown) - UNKNOWN_SHOWN} more)" if len(unknown) > UNKNOWN_SHOWN else ""
    return ErrorBody(
        code=ErrorCode.VALIDATION_ERROR,
        message=f"Unknown argument(s){more}: this tool takes {', '.join(known) or 'no arguments'}. "
        "Nothing was sent to Databar.",
        fields=fields,
        next_steps=["Call again with only the accepted arguments (check the spelling of the ones listed)."],
    )
