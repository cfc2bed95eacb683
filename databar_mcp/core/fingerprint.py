"""A canonical fingerprint of a run request: what makes two runs 'the same run' for the duplicate guard."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, cast


def json_equal_form(value: object) -> object:
    """The value with every number that JSON cannot tell apart written one way: 1.0 and 1 are both 1.

    Booleans stay booleans (true is not 1 in JSON), and non-finite floats are left as they are. A part with
    nothing to rewrite is the part itself, not a copy: a 10,000-row run's rows are not copied to be fingerprinted
    (issue 28: the server's peak memory on big runs).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        members = cast(dict[Any, Any], value)
        forms = [(k, json_equal_form(v), v) for k, v in members.items()]
        if all(k.__class__ is str and form is v for k, form, v in forms):
            return members
        return {str(k): form for k, form, _ in forms}
    if isinstance(value, list | tuple):
        items = cast(list[Any], value)
        forms = [json_equal_form(v) for v in items]
        if isinstance(value, list) and all(form is v for form, v in zip(forms, items, strict=True)):
            return items
        return forms
    return value


def canonical_json(value: object) -> str:
    """Key order never matters; list order (rows are aligned to results) always does; 1.0 is 1."""
    return json.dumps(json_equal_form(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def fingerprint(*, account: str, endpoint: str, body: object) -> str:
    """sha256 over who runs it (a one-way hash of the key), where, and the canonical body."""
    material = canonical_json({"account": account, "endpoint": endpoint, "body": body})
    return hashlib.sha256(material.encode()).hexdigest()


def account_id(api_key: str | None, base_url: str) -> str:
    """A short one-way id of (key, base URL), so runs of different accounts never match."""
    return hashlib.sha256(f"{base_url}\n{api_key or ''}".encode()).hexdigest()[:16]
