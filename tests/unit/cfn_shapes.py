"""The template as CloudFormation would deploy it for given parameter values (its "shape").

Evaluates what the stack's conditions use (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``,
``Ref`` to a parameter), drops resources whose condition is false, takes each ``Fn::If`` branch
and removes ``AWS::NoValue``. The tests about today's resources read the *empty* shape (every
optional parameter at its default), so they also prove that an unset optional part changes
nothing; the PostgreSQL target's tests read the shape with its parameters set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from fluxion_cfn.stack import render

_DROP = object()
#: The conditions of optional parts, resolved by :func:`shape`; the stack's other conditions
#: (and the tests about them) stay as they are.
OPTIONAL = ("HasPostgresTarget",)
OPTIONAL_RULES = ("PostgresTargetParametersTogether",)


def shape(values: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The rendered template with the optional parts resolved for ``values`` (other
    parameters at their defaults)."""
    template: dict[str, Any] = json.loads(render("json"))
    parameters = {
        name: str(values[name]) if values and name in values else str(p.get("Default", ""))
        for name, p in template.get("Parameters", {}).items()
    }
    conditions = {
        name: bool(_evaluate(template["Conditions"][name], parameters, {})) for name in OPTIONAL
    }
    resolved = copy.deepcopy(template)
    for name in OPTIONAL:
        del resolved["Conditions"][name]
    for name in OPTIONAL_RULES:
        del resolved["Rules"][name]
    if not resolved["Rules"]:
        del resolved["Rules"]
    resolved["Resources"] = {
        name: _strip(resource, conditions)
        for name, resource in template["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    for resource in resolved["Resources"].values():
        if resource.get("Condition") in OPTIONAL:
            del resource["Condition"]
    if "Outputs" in resolved:
        resolved["Outputs"] = {
            name: _strip(output, conditions)
            for name, output in template["Outputs"].items()
            if conditions.get(output.get("Condition", ""), True)
        }
    return resolved


def _evaluate(node: Any, parameters: Mapping[str, str], conditions: Mapping[str, bool]) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return parameters[value]
        if key == "Condition":
            return conditions[value]
        args = [_evaluate(v, parameters, conditions) for v in value]
        if key == "Fn::Equals":
            return args[0] == args[1]
        if key == "Fn::Not":
            return not args[0]
        if key == "Fn::And":
            return all(args)
        if key == "Fn::Or":
            return any(args)
    if isinstance(node, str | int | float):
        return str(node)
    raise ValueError(f"cannot evaluate {node!r}")


def _strip(node: Any, conditions: Mapping[str, bool]) -> Any:
    """``node`` with each Fn::If resolved and AWS::NoValue removed."""
    result = _resolve(node, conditions)
    return None if result is _DROP else result


def _resolve(node: Any, conditions: Mapping[str, bool]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] in conditions:
            name, yes, no = node["Fn::If"]
            chosen = yes if conditions[name] else no
            return _DROP if chosen == {"Ref": "AWS::NoValue"} else _resolve(chosen, conditions)
        items = {k: _resolve(v, conditions) for k, v in node.items()}
        return {k: v for k, v in items.items() if v is not _DROP}
    if isinstance(node, list):
        items = [_resolve(v, conditions) for v in node]
        return [v for v in items if v is not _DROP]
    return node
