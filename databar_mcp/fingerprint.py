"""A canonical fingerprint of a run request: what makes two runs 'the same run' for the duplicate guard."""

from __future__ import annotations

import hashlib
import json


def canonical_json(value: object) -> str:
    """Key order never matters; list order (rows are aligned to results) always does."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def fingerprint(*, account: str, endpoint: str, body: object) -> str:
    """sha256 over who runs it (a one-way hash of the key), where, and the canonical body."""
    material = canonical_json({"account": account, "endpoint": endpoint, "body": body})
    return hashlib.sha256(material.encode()).hexdigest()


def account_id(api_key: str | None, base_url: str) -> str:
    """A short one-way id of (key, base URL), so runs of different accounts never match."""
    return hashlib.sha256(f"{base_url}\n{api_key or ''}".encode()).hexdigest()[:16]
