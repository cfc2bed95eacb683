"""Tool schemas as strict clients read them: every value declares what it is, and no pydantic title noise.

Pydantic spells "any JSON value" as a schema with no validation keyword (`{"description": ...}`), which the
MCP Inspector's portability check (`tools/list --strict`) flags, and some clients refuse; an `anyOf` of the
JSON types, one `type` per branch (a `type` list is flagged too), says the same in a form every validator,
dialect and model reads alike. Pydantic also titles
every model and property ("Task Id" for `task_id`): tokens the model pays for on every conversation that
say nothing the name does not; so do `"default": null` on optional fields and pydantic's `integer` branch
beside `number` in `str | int | float` unions.

What the model reads of an input schema (`model_visible`) keeps every constraint the server enforces
(types, enums, defaults, required, minItems/maxItems, minLength/maxLength, minimum/maximum, patterns): they
tell the model what a valid call is before it makes one. Only a null branch beside an omittable parameter
goes (leaving the parameter out says the same). The server still validates every argument against the full
schema before anything is sent, and its validation_error names the field and the bound.
"""

from __future__ import annotations

from typing import Any, Final, cast

ANY_JSON_TYPE: Final = ("object", "array", "string", "number", "boolean", "null")

# Keywords that constrain a value; a schema with none of them accepts anything.
_VALIDATION_KEYWORDS: Final = frozenset(
    {
        "type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "not", "if",
        "properties", "patternProperties", "additionalProperties", "required", "items", "prefixItems",
        "contains", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "pattern", "format", "minItems", "maxItems", "uniqueItems",
        "minProperties", "maxProperties", "propertyNames", "dependentSchemas", "dependentRequired",
    }
)  # fmt: skip
# Keywords whose value is one schema, a list of schemas, or a name -> schema map.
_ONE: Final = ("additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames")
_MANY: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_NAMED: Final = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def portable(schema: dict[str, Any], *, patterns: bool = True) -> dict[str, Any]:
    """A copy of `schema` with keyword-less subschemas typed as any JSON value, and without what says nothing:
    every `title`, `"default": null` (an optional field is null when omitted anyway), and an `integer` branch
    next to a `number` one (every integer is a number). `patterns=False` also drops `pattern` keywords: for
    input schemas the model reads, where an identifier's regex costs context on every conversation and helps
    no call (the server checks every argument against the full schema and answers validation_error)."""
    return _schema(schema, root=True, patterns=patterns)


def model_visible(schema: dict[str, Any]) -> dict[str, Any]:
    """The input schema tools/list shows: `portable`, every constraint kept, an omittable null branch folded."""
    return _lean(portable(schema))


def _lean(node: Any, *, omittable: bool = False) -> Any:
    """`omittable`: the node is a property the call may leave out, so its null branch says nothing more."""
    if isinstance(node, list):
        return [_lean(v) for v in cast(list[Any], node)]
    if not isinstance(node, dict):
        return node
    schema = cast(dict[str, Any], node)
    branches = cast(list[Any], schema.get("anyOf") or [])
    if omittable and len(branches) == 2 and {"type": "null"} in branches:
        kept = next(b for b in branches if b != {"type": "null"})
        schema = {**kept, **{k: v for k, v in schema.items() if k != "anyOf"}}
    required = set(cast(list[str], schema.get("required", [])))
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            named = cast(dict[str, Any], value)
            out[key] = {k: _lean(v, omittable=k not in required) for k, v in named.items()}
        elif key in _NAMED and isinstance(value, dict):
            out[key] = {k: _lean(v) for k, v in cast(dict[str, Any], value).items()}
        else:
            out[key] = _lean(value)
    return out


def _without_subsumed_integer(branches: list[Any]) -> list[Any]:
    if {"type": "number"} in branches and {"type": "integer"} in branches:
        return [b for b in branches if b != {"type": "integer"}]
    return branches


def _schema(node: dict[str, Any], *, root: bool = False, patterns: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None) or (key == "pattern" and not patterns):
            continue
        if key in _ONE and isinstance(value, dict):
            out[key] = _schema(cast(dict[str, Any], value), patterns=patterns)
        elif key in _MANY and isinstance(value, list):
            branches = [
                _schema(cast(dict[str, Any], v), patterns=patterns) if isinstance(v, dict) else v
                for v in cast(list[Any], value)
            ]
            out[key] = _without_subsumed_integer(branches) if key == "anyOf" else branches
        elif key in _NAMED and isinstance(value, dict):
            named = cast(dict[str, Any], value)
            out[key] = {
                k: _schema(cast(dict[str, Any], v), patterns=patterns) if isinstance(v, dict) else v
                for k, v in named.items()
            }
        else:
            out[key] = value
    if not root and not _VALIDATION_KEYWORDS.intersection(out):
        out = {"anyOf": [{"type": t} for t in ANY_JSON_TYPE], **out}
    return out
