"""The template as CloudFormation would deploy it for given parameter values (its "shape").

Evaluates what the optional parts' conditions use (``Fn::Equals``, ``Fn::Not``, ``Fn::And``,
``Fn::Or``, ``Condition``, ``Ref`` to a parameter), drops resources whose condition is false,
takes each ``Fn::If`` on those conditions and removes ``AWS::NoValue``; anything else it meets
in a condition is an error, and a reference to an optional condition left after resolving is
one too. The tests about today's resources read the *empty* shape (every optional parameter at
its default), so they also prove that an unset optional part changes nothing; the PostgreSQL
target's tests read the shape with its parameters set.

``python tests/unit/cfn/cfn_shapes.py > tests/unit/cfn/golden/fluxion-etl.without-target.yaml``
(with ``src`` on ``PYTHONPATH``) writes the golden file of the stack without a PostgreSQL target:
the empty shape without the target's declarations, rendered as ``python -m fluxion_cfn`` renders.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cfn_flip

from fluxion_cfn.postgres_target import GROUP
from fluxion_cfn.stack import render

GOLDEN_WITHOUT_TARGET = Path(__file__).parent / "golden" / "fluxion-etl.without-target.yaml"
REGENERATE = (
    "PYTHONPATH=src python tests/unit/cfn/cfn_shapes.py"
    " > tests/unit/cfn/golden/fluxion-etl.without-target.yaml"
)

#: A whole PostgreSQL target, and its secret's customer-managed key: example parameter values.
EXAMPLE_TARGET = {
    "TargetDatabaseUrl": "postgresql://fluxion_etl@inventario.abc.us-east-1.rds.amazonaws.com:5432/app",
    "TargetSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCdEf",
    "TargetSecurityGroupId": "sg-0123456789abcdef0",
}
EXAMPLE_TARGET_KEY = {
    "TargetSecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef"
}

_DROP = object()
#: The conditions of optional parts, in the order they refer to each other, resolved by
#: :func:`shape`; the stack's other conditions (and the tests about them) stay as they are.
OPTIONAL = ("HasPostgresTarget", "HasTargetSecretKmsKey", "HasAwsEndpoints")
OPTIONAL_RULES = ("PostgresTargetParametersTogether", "AwsEndpointsTogether")


def shape(values: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The rendered template with the optional parts resolved for ``values`` (other
    parameters at their defaults)."""
    template: dict[str, Any] = json.loads(render("json"))
    unknown = set(values or ()) - set(template["Parameters"])
    if unknown:
        raise KeyError(f"not parameters of the template: {sorted(unknown)}")
    parameters = {
        name: str(values[name]) if values and name in values else str(p.get("Default", ""))
        for name, p in template["Parameters"].items()
    }
    conditions: dict[str, bool] = {}
    for name in OPTIONAL:
        conditions[name] = bool(_evaluate(template["Conditions"][name], parameters, conditions))
    resolved = copy.deepcopy(template)
    for name in OPTIONAL:
        del resolved["Conditions"][name]
    for name in OPTIONAL_RULES:
        del resolved["Rules"][name]
    if not resolved["Rules"]:
        del resolved["Rules"]
    for section in ("Resources", "Outputs"):
        resolved[section] = {
            name: _strip(item, conditions)
            for name, item in template.get(section, {}).items()
            if conditions.get(item.get("Condition", ""), True)
        }
        for item in resolved[section].values():
            if item.get("Condition") in OPTIONAL:
                del item["Condition"]
    left = [name for name in OPTIONAL if json.dumps(name) in json.dumps(resolved)]
    if left:
        raise ValueError(f"{left} still referred to after resolving (in a Condition?)")
    return resolved


def without_target(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved shape without the target's declarations (its parameters and their console
    group), which CloudFormation cannot leave out: what is left is the stack without it."""
    document = copy.deepcopy(resolved)
    interface = document["Metadata"]["AWS::CloudFormation::Interface"]
    (group,) = [g for g in interface["ParameterGroups"] if g["Label"]["default"] == GROUP]
    interface["ParameterGroups"].remove(group)
    for name in group["Parameters"]:
        del document["Parameters"][name]
    return document


def to_yaml(document: dict[str, Any]) -> str:
    """``document`` as ``python -m fluxion_cfn`` renders a template (troposphere's to_yaml)."""
    text = json.dumps(document, indent=4, sort_keys=True, separators=(",", ": "))
    return str(cfn_flip.to_yaml(text, clean_up=False, long_form=False))


def _evaluate(node: Any, parameters: Mapping[str, str], conditions: Mapping[str, bool]) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return parameters[value]
        if key == "Condition":
            return conditions[value]  # a KeyError: declared after it in OPTIONAL, or not one
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


if __name__ == "__main__":
    sys.stdout.write(to_yaml(without_target(shape())))
