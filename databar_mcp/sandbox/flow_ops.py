"""Edit operations on a flow's config (`PATCH /v1/flows/{id}/config`), applied to a copy, all or nothing.

The op names are Databar's (the SDK lists them); their arguments are the sandbox's own reading of them:
set_input {input}, remove_input {id}, add_node {node, index?}, replace_node {node}, update_node {id, changes},
remove_node {id}, set_node_input {id, param, value}, remove_node_input {id, param}, set_node_output {id, field,
name?}, remove_node_output {id, field}, set_output {outputs}, set_output_field {name, ref},
remove_output_field {name}.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, cast

Config = dict[str, Any]
Op = dict[str, Any]


class OpError(Exception):
    """An op that cannot apply (names a node, input or output that is not there, or lacks an argument)."""


def _list(config: Config, key: str) -> list[dict[str, Any]]:
    items = config.setdefault(key, [])
    if not isinstance(items, list):
        raise OpError(f"{key} is not a list.")
    return cast(list[dict[str, Any]], items)


def _outputs(config: Config) -> dict[str, Any]:
    outputs = config.setdefault("outputs", {})
    if not isinstance(outputs, dict):
        raise OpError("outputs is not an object.")
    return cast(dict[str, Any], outputs)


def _arg(op: Op, name: str) -> Any:
    if name not in op:
        raise OpError(f"{op.get('op')} needs {name!r}.")
    return op[name]


def _index(items: list[dict[str, Any]], ident: object, what: str) -> int:
    for i, item in enumerate(items):
        if cast(object, item.get("id")) == ident:
            return i
    raise OpError(f"No {what} {ident!r}.")


def _node(config: Config, op: Op) -> dict[str, Any]:
    nodes = _list(config, "nodes")
    return nodes[_index(nodes, _arg(op, "id"), "node")]


def _set_input(config: Config, op: Op) -> None:
    item = cast(dict[str, Any], _arg(op, "input"))
    inputs = _list(config, "inputs")
    try:
        inputs[_index(inputs, item.get("id"), "input")] = item
    except OpError:
        inputs.append(item)


def _remove_input(config: Config, op: Op) -> None:
    inputs = _list(config, "inputs")
    del inputs[_index(inputs, _arg(op, "id"), "input")]


def _add_node(config: Config, op: Op) -> None:
    nodes = _list(config, "nodes")
    index = op.get("index")
    nodes.insert(index if isinstance(index, int) else len(nodes), cast(dict[str, Any], _arg(op, "node")))


def _replace_node(config: Config, op: Op) -> None:
    node = cast(dict[str, Any], _arg(op, "node"))
    nodes = _list(config, "nodes")
    nodes[_index(nodes, node.get("id"), "node")] = node


def _update_node(config: Config, op: Op) -> None:
    changes = cast(dict[str, Any], _arg(op, "changes"))
    if "id" in changes:
        raise OpError("update_node cannot change a node's id.")
    _node(config, op).update(changes)


def _remove_node(config: Config, op: Op) -> None:
    nodes = _list(config, "nodes")
    del nodes[_index(nodes, _arg(op, "id"), "node")]


def _set_node_input(config: Config, op: Op) -> None:
    _node(config, op).setdefault("inputs", {})[str(_arg(op, "param"))] = _arg(op, "value")


def _remove_node_input(config: Config, op: Op) -> None:
    inputs = cast(dict[str, Any], _node(config, op).get("inputs") or {})
    if inputs.pop(str(_arg(op, "param")), None) is None:
        raise OpError(f"Node {op['id']!r} has no input {op['param']!r}.")


def _set_node_output(config: Config, op: Op) -> None:
    _node(config, op)
    field = str(_arg(op, "field"))
    _outputs(config)[str(op.get("name") or field)] = f"{op['id']}.{field}"


def _remove_node_output(config: Config, op: Op) -> None:
    ref = f"{_arg(op, 'id')}.{_arg(op, 'field')}"
    outputs = _outputs(config)
    names = [name for name, value in outputs.items() if value == ref]
    if not names:
        raise OpError(f"No output reads {ref!r}.")
    for name in names:
        del outputs[name]


def _set_output(config: Config, op: Op) -> None:
    config["outputs"] = dict(cast(dict[str, Any], _arg(op, "outputs")))


def _set_output_field(config: Config, op: Op) -> None:
    _outputs(config)[str(_arg(op, "name"))] = str(_arg(op, "ref"))


def _remove_output_field(config: Config, op: Op) -> None:
    if _outputs(config).pop(str(_arg(op, "name")), None) is None:
        raise OpError(f"No output {op['name']!r}.")


OPS: dict[str, Callable[[Config, Op], None]] = {
    "set_input": _set_input,
    "remove_input": _remove_input,
    "add_node": _add_node,
    "replace_node": _replace_node,
    "update_node": _update_node,
    "remove_node": _remove_node,
    "set_node_input": _set_node_input,
    "remove_node_input": _remove_node_input,
    "set_node_output": _set_node_output,
    "remove_node_output": _remove_node_output,
    "set_output": _set_output,
    "set_output_field": _set_output_field,
    "remove_output_field": _remove_output_field,
}


def apply_ops(config: Config, ops: Sequence[Op]) -> tuple[Config, list[str]]:
    """The config after every op, and the errors (`ops[i]: why`) of those that could not apply."""
    result = copy.deepcopy(config)
    errors: list[str] = []
    for index, op in enumerate(ops):
        apply = OPS.get(str(op.get("op")))
        try:
            if apply is None:
                raise OpError(f"Unknown op {op.get('op')!r}; use one of: {', '.join(OPS)}.")
            apply(result, op)
        except (OpError, TypeError, AttributeError) as exc:
            errors.append(f"ops[{index}]: {exc}")
    return result, errors
