"""The committed template, created as a stack in moto's CloudFormation on 127.0.0.1.

moto stands in for AWS (docs/testing.md). Its CloudFormation does not implement every resource type
the template uses (alarms, topic policy, subscription and the secret are accepted but not
created) nor every property, so this test checks what it does create: that the stack comes up
from the template with the operator's parameters, and that the outputs name resources that
really exist with the planned settings. The unit tests assert the rest on the template.
"""

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aws_local import MotoEndpoint, create_shared_infrastructure, create_stack

pytestmark = [
    pytest.mark.aws,
    # moto announces each resource type its CloudFormation skips; the docstring lists them.
    pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
]

boto3 = pytest.importorskip("boto3")

TEMPLATE = Path(__file__).resolve().parents[3] / "templates" / "fluxion-etl.yaml"
STACK = "fluxion-it"
IMAGE_TAG = "0123abc"


@pytest.fixture(scope="module")
def aws(moto_endpoint: MotoEndpoint) -> dict[str, Any]:
    """boto3 client settings for the session's moto server on 127.0.0.1."""
    return moto_endpoint.client_kwargs


@pytest.fixture(scope="module")
def stack(aws: dict[str, Any], moto_endpoint: MotoEndpoint) -> dict[str, Any]:
    """The shared infrastructure the stack expects, then the stack itself; its outputs."""
    infrastructure = create_shared_infrastructure(
        moto_endpoint, name="fluxion", cidr_prefix="10.20"
    )
    secret = moto_endpoint.client("secretsmanager").create_secret(Name="fluxion/sql")["ARN"]
    parameters = {
        **infrastructure,
        "ImageTag": IMAGE_TAG,
        "ExistingSecretArn": secret,
        "AlertEmail": "ops@example.com",
    }
    described = create_stack(moto_endpoint, STACK, TEMPLATE.read_text(encoding="utf-8"), parameters)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    return {"outputs": outputs, "parameters": parameters, "status": described["StackStatus"]}


def test_the_stack_is_created_from_the_committed_template(stack: dict[str, Any]) -> None:
    assert stack["status"] == "CREATE_COMPLETE"


def test_the_log_group_output_names_the_group_the_stack_created(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    name = stack["outputs"]["LogGroupName"]
    assert name == f"/fluxion/{STACK}/etl"
    groups = boto3.client("logs", **aws).describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [(name, 7)]


def test_the_repository_output_names_an_immutable_repository(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    ecr = boto3.client("ecr", **aws)
    name = stack["outputs"]["RepositoryUri"].split("/", 1)[1]
    (repo,) = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert repo["repositoryUri"] == stack["outputs"]["RepositoryUri"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    # Scan on push and the lifecycle policy are asserted on the template: moto's CloudFormation
    # drops both when it creates a repository.


def test_the_task_definition_runs_the_pinned_image_with_the_injected_login(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    ecs = boto3.client("ecs", **aws)
    arn = stack["outputs"]["TaskDefinitionArn"]
    task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert task["family"] == f"{STACK}-etl"
    (container,) = task["containerDefinitions"]
    assert container["image"] == f"{stack['outputs']['RepositoryUri']}:{IMAGE_TAG}"
    secret = stack["parameters"]["ExistingSecretArn"]
    # a null, as for ETL_TIENDAS below: moto keeps the unset PostgreSQL target's PGPASSWORD
    assert {s["name"]: s["valueFrom"] for s in container["secrets"] if s} == {
        "SQL_PASS": f"{secret}:password::",
        "SQL_USER": f"{secret}:username::",
    }
    # moto leaves a null where AWS::NoValue drops the conditional ETL_TIENDAS; CloudFormation
    # removes the entry.
    env = {e["name"]: e["value"] for e in container["environment"] if e}
    assert env["DATABASE_PATH"] == "/data/fluxion.duckdb"
    assert "ETL_TIENDAS" not in env  # empty filter: every active store
    # (the EFS settings of the volume are asserted on the template: moto drops them)
    assert [volume["name"] for volume in task["volumes"]] == ["data"]


def test_the_efs_group_admits_nfs_from_the_task_group(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    # The task group's egress rules are asserted on the template: moto's CloudFormation ignores
    # inline SecurityGroupEgress and keeps EC2's default rule.
    ec2 = boto3.client("ec2", **aws)
    task_group = stack["outputs"]["SecurityGroupId"]
    (group,) = ec2.describe_security_groups(GroupIds=[task_group])["SecurityGroups"]
    assert group["IpPermissions"] == []
    efs_group = stack["parameters"]["EfsSecurityGroupId"]
    (efs,) = ec2.describe_security_groups(GroupIds=[efs_group])["SecurityGroups"]
    assert [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]])
        for p in efs["IpPermissions"]
    ] == [("tcp", 2049, 2049, [task_group])]


def test_the_schedule_is_created_disabled_and_runs_the_task_on_fargate(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    events = boto3.client("events", **aws)
    name = stack["outputs"]["ScheduleRuleName"]
    rule = events.describe_rule(Name=name)
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(6 hours)", "DISABLED")
    (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
    assert target["EcsParameters"]["TaskDefinitionArn"] == stack["outputs"]["TaskDefinitionArn"]
    assert target["EcsParameters"]["LaunchType"] == "FARGATE"


def test_the_outputs_are_exported_under_the_stack_name(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    exports = boto3.client("cloudformation", **aws).list_exports()["Exports"]
    exported = {e["Name"]: e["Value"] for e in exports}
    for name, value in stack["outputs"].items():
        assert exported[f"{STACK}-{name}"] == value


def test_the_run_task_policy_output_names_a_managed_policy_for_this_task(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    arn = stack["outputs"]["RunTaskPolicyArn"]
    iam = boto3.client("iam", **aws)
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    document = version["PolicyVersion"]["Document"]
    if isinstance(document, str):  # moto may return it URL-encoded JSON text
        document = json.loads(unquote(document))
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions == {"ecs:RunTask", "ecs:DescribeTasks", "ecs:TagResource", "iam:PassRole"}
    (run,) = [s for s in document["Statement"] if s["Action"] == ["ecs:RunTask"]]
    assert run["Resource"] == [f"arn:aws:ecs:us-east-1:123456789012:task-definition/{STACK}-etl:*"]
    assert run["Condition"]["ArnEquals"]["ecs:cluster"].endswith(":cluster/fluxion")


def test_the_dashboard_is_created_with_the_environment_filled_in(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    cloudwatch = boto3.client("cloudwatch", **aws)
    dashboard = cloudwatch.get_dashboard(DashboardName=f"{STACK}-etl")
    body = json.loads(dashboard["DashboardBody"])
    searches = [
        row[0]["expression"]
        for widget in body["widgets"]
        for row in widget["properties"].get("metrics", [])
        if isinstance(row[0], dict)
    ]
    assert len(searches) == 4
    assert all('Environment="production"' in search and ", 21600)" in search for search in searches)
