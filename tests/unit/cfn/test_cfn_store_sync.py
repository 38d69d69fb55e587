"""The store-sync state machine, read from the template: what its input can change of the task.

The backend may start it (tests/unit/cfn/test_cfn_iam.py: and nothing else). Here: its definition,
as CloudFormation will deploy it, runs only this stack's task in this cluster and network, and the
only thing taken from the input is ``stores``/``accept_shrink`` as the values of
``ETL_TIENDAS``/``ETL_ACCEPT_SHRINK``; its Choice rules, evaluated on inputs the way Step Functions
evaluates them (first matching rule), refuse anything else before a task starts.
tests/integration/cfn/test_cfn_stack.py executes the deployed definition with moto's interpreter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cfn_shapes import shape

TEMPLATE = shape()
MACHINE = TEMPLATE["Resources"]["StoreSyncStateMachine"]
TEXT, VARIABLES = MACHINE["Properties"]["DefinitionString"]["Fn::Sub"]
DEFINITION: dict[str, Any] = json.loads(TEXT)
STATES: dict[str, Any] = DEFINITION["States"]
TASKS = {name: state for name, state in STATES.items() if state["Type"] == "Task"}

#: RunTask's container override fields that could change what runs or what it receives.
DANGEROUS_OVERRIDES = {
    "Command", "EntryPoint", "Secrets", "EnvironmentFiles", "Cpu", "Memory",
    "MemoryReservation", "ResourceRequirements",
}  # fmt: skip


def _strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


def test_every_task_runs_this_stacks_task_in_its_cluster_and_network() -> None:
    assert sorted(TASKS) == ["RunStores", "RunStoresAcceptingShrink"]
    for state in TASKS.values():
        assert state["Resource"] == "arn:${AWS::Partition}:states:::ecs:runTask.sync"
        parameters = state["Parameters"]
        assert parameters["Cluster"] == "${ClusterArn}"
        assert parameters["TaskDefinition"] == "${TaskDefinitionArn}"
        network = parameters["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network == {
            "Subnets": ["${SubnetIds}"],
            "SecurityGroups": ["${SecurityGroupId}"],
            "AssignPublicIp": "DISABLED",
        }
        assert set(parameters) == {
            "Cluster", "TaskDefinition", "LaunchType", "PlatformVersion",
            "NetworkConfiguration", "PropagateTags", "Overrides",
        }  # fmt: skip
    assert VARIABLES == {
        "ClusterArn": {
            "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
            ":cluster/${ClusterName}"
        },
        "TaskDefinitionArn": {"Ref": "TaskDefinition"},
        "SubnetIds": {"Fn::Join": ['","', {"Ref": "PrivateSubnetIds"}]},
        "SecurityGroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
    }


def test_the_only_override_is_the_two_store_lists_of_the_etl_container() -> None:
    expected = {
        "RunStores": [{"Name": "ETL_TIENDAS", "Value.$": "$.stores"}],
        "RunStoresAcceptingShrink": [
            {"Name": "ETL_TIENDAS", "Value.$": "$.stores"},
            {"Name": "ETL_ACCEPT_SHRINK", "Value.$": "$.accept_shrink"},
        ],
    }
    for name, state in TASKS.items():
        overrides = state["Parameters"]["Overrides"]
        assert list(overrides) == ["ContainerOverrides"]  # no TaskRoleArn, Cpu, ...
        (container,) = overrides["ContainerOverrides"]
        assert set(container) == {"Name", "Environment"}
        assert not DANGEROUS_OVERRIDES & set(container)
        assert container["Name"] == "etl"
        assert container["Environment"] == expected[name]


def test_nothing_else_of_the_input_is_read_anywhere_in_the_definition() -> None:
    """Every JSONPath of the definition: the two input keys in the choices and overrides, and
    the task description's fields in the result (which come from ECS, not from the input)."""
    paths = {value for key, value in _strings(TASKS) if key.endswith(".$")}
    paths |= {value for key, value in _strings(STATES["CheckInput"]) if key == "Variable"}
    results = {v for s in TASKS.values() for v in s["ResultSelector"].values()}
    assert paths - results == {"$.stores", "$.accept_shrink"}
    assert results == {"$.TaskArn", "$.Containers"}
    # no Parameters/InputPath of another state passes the input on
    assert [n for n, s in STATES.items() if {"InputPath", "Parameters"} & set(s)] == sorted(TASKS)
    # no ${...} of the text is left for Fn::Sub to fill from anything but its variables
    names = set(re.findall(r"\$\{([^}]+)\}", TEXT)) - {"AWS::Partition", "AWS::StackName"}
    assert names == set(VARIABLES)


def _rule_matches(rule: dict[str, Any], data: dict[str, Any]) -> bool:
    """One Choice rule as Step Functions evaluates it, for the operators the definition uses
    (anything else is an error here, so the evaluation cannot silently disagree)."""
    operators = set(rule) - {"Variable", "Next"}
    assert len(operators) == 1, rule
    (operator,) = operators
    key = re.fullmatch(r"\$\.([a-z_]+)", rule["Variable"])
    assert key, rule["Variable"]
    present, value = key[1] in data, data.get(key[1])
    if operator == "IsPresent":
        return present is rule[operator]
    if operator == "IsString":
        return present and isinstance(value, str) is rule[operator]
    if operator == "StringEquals":
        return present and isinstance(value, str) and value == rule[operator]
    raise AssertionError(f"operator {operator} not evaluated here")


def route(data: dict[str, Any]) -> str:
    """The state CheckInput sends this input to (the first matching rule, else Default)."""
    choice = STATES[DEFINITION["StartAt"]]
    assert choice["Type"] == "Choice"
    for rule in choice["Choices"]:
        if _rule_matches(rule, data):
            return str(rule["Next"])
    return str(choice["Default"])


@pytest.mark.parametrize(
    ("data", "state"),
    [
        ({"stores": "tienda_02"}, "RunStores"),
        ({"stores": "tienda_02,tienda_05", "accept_shrink": "tienda_05"},
         "RunStoresAcceptingShrink"),
        ({"stores": "tienda_02", "accept_shrink": "all"}, "RunStoresAcceptingShrink"),
        # unknown keys are ignored, never passed on: the overrides name theirs
        ({"stores": "tienda_02", "command": ["sh", "-c", "env"]}, "RunStores"),
        ({}, "RefuseInput"),
        ({"stores": ""}, "RefuseInput"),
        ({"stores": ["tienda_02"]}, "RefuseInput"),
        ({"stores": None}, "RefuseInput"),
        ({"stores": 2}, "RefuseInput"),
        ({"stores": "tienda_02", "accept_shrink": ""}, "RefuseInput"),
        ({"stores": "tienda_02", "accept_shrink": ["all"]}, "RefuseInput"),
        ({"accept_shrink": "all"}, "RefuseInput"),  # no stores: never every active store
    ],  # fmt: skip
)
def test_the_input_check_refuses_anything_but_the_two_string_lists(
    data: dict[str, Any], state: str
) -> None:
    assert route(data) == state


def test_a_refused_input_fails_the_execution_before_any_task() -> None:
    assert STATES["RefuseInput"] == {
        "Type": "Fail",
        "Error": "fluxion.InvalidInput",
        "Cause": STATES["RefuseInput"]["Cause"],
    }
    assert all(state.get("End") is True for state in TASKS.values())  # one task, then done
