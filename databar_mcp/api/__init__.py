"""The Databar REST API: an async client, its models and its errors. Knows nothing of MCP."""

from databar_mcp.api.client import DatabarClient
from databar_mcp.api.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DatabarError,
    FieldIssue,
    InsufficientCredits,
    NotFoundError,
    RateLimited,
    ResultExpired,
    ServerError,
    SubmissionUnknown,
    UnprocessableEntity,
)

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DatabarClient",
    "DatabarError",
    "FieldIssue",
    "InsufficientCredits",
    "NotFoundError",
    "RateLimited",
    "ResultExpired",
    "ServerError",
    "SubmissionUnknown",
    "UnprocessableEntity",
]
