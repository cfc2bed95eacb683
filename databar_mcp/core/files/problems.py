"""What can be wrong with a file the agent named, said so the agent (or the user) can fix it.

Every error here is the user's to act on, never our bug: the tool layer turns it into a validation_error
result with `message` as the summary and `details` in the body. Messages name the file's own row or line
numbers and never quote a cell's value (a cell may be a megabyte, or private).
"""

from __future__ import annotations

from collections.abc import Mapping

from databar_mcp.core.shaping import clip


class FileProblem(ValueError):
    """A file that cannot be used as it is; `details` are JSON-ready facts for the error body."""

    code = "file_problem"

    def __init__(self, message: str, *, details: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = dict(details or {})


class FileRefused(FileProblem):
    """The path may not be read or written here: not a regular file, outside the import folder, reading off."""

    code = "file_refused"


class UnreadableFile(FileProblem):
    """The file's content cannot be parsed (unclosed quote, not JSON, not a workbook): names the line or row."""

    code = "file_unreadable"


class MissingColumns(FileProblem):
    """A required input has no column: `details` list the columns found and the inputs needed."""

    code = "columns_missing"


NAME_SHOWN = 80  # a column or sheet name quoted in a message (a header cell may be a whole paragraph)


def quoted(name: str) -> str:
    """A column name as a message quotes it: repr, clipped."""
    return repr(clip(name, NAME_SHOWN))
