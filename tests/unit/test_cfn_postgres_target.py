"""The optional PostgreSQL target in the stack: both shapes, and exactly what setting it adds."""

from __future__ import annotations

import copy
from typing import Any

from cfn_shapes import shape

SET = {
    "TargetDatabaseUrl": "postgresql://fluxion_etl@inventario.abc.us-east-1.rds.amazonaws.com:5432/app",
    "TargetSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCdEf",
    "TargetSecurityGroupId": "sg-0123456789abcdef0",
}
EMPTY = shape()
WITH_TARGET = shape(SET)


def _container(template: dict[str, Any]) -> dict[str, Any]:
    task = template["Resources"]["TaskDefinition"]["Properties"]
    container: dict[str, Any] = task["ContainerDefinitions"][0]
    return container


def _egress(template: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = template["Resources"]["TaskSecurityGroup"]["Properties"][
        "SecurityGroupEgress"
    ]
    return rules


def _named(items: list[Any]) -> list[dict[str, Any]]:
    """The plain entries (the other optional ones stay in their own Fn::If)."""
    return [item for item in items if "Name" in item]


def _mentions(node: Any, name: str) -> bool:
    return name in repr(node)


def test_unset_no_resource_refers_to_the_target_parameters() -> None:
    for name in SET:
        assert not _mentions(EMPTY["Resources"], name), name
    env = {v["Name"] for v in _named(_container(EMPTY)["Environment"])}
    assert "DATABASE_PATH" in env and "DATABASE_URL" not in env
    assert "PGPASSWORD" not in {s["Name"] for s in _named(_container(EMPTY)["Secrets"])}
    assert all(rule["FromPort"] != 5432 for rule in _egress(EMPTY))


def test_set_the_task_gets_the_url_and_the_password_from_that_secret_only() -> None:
    env = {v["Name"]: v["Value"] for v in _named(_container(WITH_TARGET)["Environment"])}
    assert env["DATABASE_URL"] == {"Ref": "TargetDatabaseUrl"}
    assert "DATABASE_PATH" not in env  # both set would be a configuration error (exit 2)
    secrets = {s["Name"]: s["ValueFrom"] for s in _named(_container(WITH_TARGET)["Secrets"])}
    assert secrets["PGPASSWORD"] == {
        "Fn::Sub": ["${Arn}:password::", {"Arn": {"Ref": "TargetSecretArn"}}]
    }


def test_set_the_execution_role_may_read_that_secret_and_nothing_more() -> None:
    role = WITH_TARGET["Resources"]["ExecutionRole"]["Properties"]
    (policy,) = [p for p in role["Policies"] if p["PolicyName"] == "TargetCredentialsRead"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert statement["Resource"] == [{"Ref": "TargetSecretArn"}]
    assert statement["Effect"] == "Allow"
    task_role = repr(WITH_TARGET["Resources"]["TaskRole"])
    assert "TargetSecretArn" not in task_role  # the ETL itself never reads it


def test_set_5432_goes_only_to_the_targets_group_which_admits_the_task() -> None:
    postgres = [rule for rule in _egress(WITH_TARGET) if rule["FromPort"] == 5432]
    assert postgres == [
        {
            "Description": "PostgreSQL target (DATABASE_URL)",
            "DestinationSecurityGroupId": {"Ref": "TargetSecurityGroupId"},
            "FromPort": 5432,
            "IpProtocol": "tcp",
            "ToPort": 5432,
        }
    ]
    ingress = WITH_TARGET["Resources"]["TargetIngressFromTask"]["Properties"]
    assert ingress["GroupId"] == {"Ref": "TargetSecurityGroupId"}
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]}
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (5432, 5432, "tcp")


def test_setting_the_target_adds_exactly_those_pieces_and_changes_nothing_else() -> None:
    """The set shape, with the target's pieces taken back out, is the unset shape."""
    taken_back = copy.deepcopy(WITH_TARGET)
    resources = taken_back["Resources"]
    del resources["TargetIngressFromTask"]
    execution = resources["ExecutionRole"]["Properties"]
    execution["Policies"] = [
        p for p in execution["Policies"] if p["PolicyName"] != "TargetCredentialsRead"
    ]
    container = _container(taken_back)
    duckdb = {"Name": "DATABASE_PATH", "Value": "/data/fluxion.duckdb"}
    container["Environment"] = [
        duckdb if v.get("Name") == "DATABASE_URL" else v for v in container["Environment"]
    ]
    container["Secrets"] = [s for s in container["Secrets"] if s.get("Name") != "PGPASSWORD"]
    group = resources["TaskSecurityGroup"]["Properties"]
    group["SecurityGroupEgress"] = [r for r in _egress(taken_back) if r["FromPort"] != 5432]
    assert taken_back == EMPTY


def test_a_partial_target_is_refused_by_a_rule_before_any_change() -> None:
    from fluxion_cfn.stack import build_template

    rules = build_template().to_dict()["Rules"]["PostgresTargetParametersTogether"]["Assertions"]
    described = " ".join(rule["AssertDescription"] for rule in rules)
    assert "TargetSecretArn" in described and "TargetSecurityGroupId" in described
