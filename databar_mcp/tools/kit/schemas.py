"""Tool schemas as strict clients read them: every value declares what it is, and no pydantic title noise.

Pydantic spells "any JSON value" as a schema with no validation keyword (`{"description": ...}`), which the
MCP Inspector's portability check (`tools/list --strict`) flags, and some clients refuse; an `anyOf` of the
JSON types, one `type` per branch (a `type` list is flagged too), says the same in a form every validator,
dialect and model reads alike; its branches come in the order result values most often take (an object,
then null), since a validator tries them in turn and stops at the first that fits. Pydantic also titles
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

ANY_JSON_TYPE: Final = ("object", "null", "array", "string", "number", "boolean")

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


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The output schema tools/list shows: `portable`, with each `$defs` entry that is not recursive written
    where it is used. The same contract, cheaper to check: a client that validates every result against it
    (the MCP SDKs do) resolves a `$ref` per row, which cost more than the rest of a page's check (0.5 of a
    1.5 ms check of a 10-row get_task page in jsonschema, measured 2026-12-07)."""
    out = portable(schema)
    defs = cast(dict[str, Any], out.get("$defs") or {})
    recursive = {name for name in defs if _reaches(name, defs[name], defs, set())}
    if not defs or recursive == set(defs):
        return out
    inlined = cast(dict[str, Any], _inline({k: v for k, v in out.items() if k != "$defs"}, defs, recursive))
    kept: dict[str, Any] = {}
    wanted = _refs(inlined)
    while wanted - kept.keys():  # a definition stays while a `$ref` left standing names it
        name = min(wanted - kept.keys())
        kept[name] = _inline(defs[name], defs, recursive) if name in defs else {}
        wanted |= _refs(kept[name])
    return {**inlined, "$defs": {name: kept[name] for name in defs if name in kept}} if kept else inlined


def _refs(node: Any) -> set[str]:
    """The `$defs` entries `node` names in a `$ref`."""
    if isinstance(node, list):
        return set[str]().union(*(_refs(v) for v in cast(list[Any], node)))
    if not isinstance(node, dict):
        return set()
    schema = cast(dict[str, Any], node)
    name = _ref_name(schema)
    found = {name} if name is not None else set[str]()
    return found.union(*(_refs(v) for k, v in schema.items() if k != "$ref"))


_DEFS_REF: Final = "#/$defs/"
_ANNOTATIONS: Final = frozenset({"description", "default", "examples", "title", "deprecated", "readOnly"})


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref[len(_DEFS_REF) :] if isinstance(ref, str) and ref.startswith(_DEFS_REF) else None


def _reaches(target: str, node: Any, defs: dict[str, Any], seen: set[str]) -> bool:
    """Whether `node` refers to `target` (directly or through other `$defs` entries): a recursive definition."""
    if isinstance(node, list):
        return any(_reaches(target, v, defs, seen) for v in cast(list[Any], node))
    if not isinstance(node, dict):
        return False
    schema = cast(dict[str, Any], node)
    name = _ref_name(schema)
    if name == target:
        return True
    if name is not None and name not in seen and name in defs:
        seen.add(name)
        if _reaches(target, defs[name], defs, seen):
            return True
    return any(_reaches(target, v, defs, seen) for k, v in schema.items() if k != "$ref")


def _inline(node: Any, defs: dict[str, Any], keep: set[str]) -> Any:
    """`node` with every `$ref` to a non-recursive `$defs` entry replaced by the entry. A `$ref` with siblings
    means both apply; they merge when the siblings only annotate (a description), else the `$ref` stays."""
    if isinstance(node, list):
        return [_inline(v, defs, keep) for v in cast(list[Any], node)]
    if not isinstance(node, dict):
        return node
    schema = cast(dict[str, Any], node)
    name = _ref_name(schema)
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    if name is not None and name in defs and name not in keep and _ANNOTATIONS.issuperset(siblings):
        target = cast(dict[str, Any], _inline(defs[name], defs, keep))
        return {**target, **siblings}
    return {k: _inline(v, defs, keep) for k, v in schema.items()}


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
