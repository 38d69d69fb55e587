"""The committed template, created as a stack in moto's CloudFormation on 127.0.0.1.

moto stands in for AWS (docs/testing.md). Its CloudFormation does not implement every resource type
the template uses (alarms, topic policy, subscription and the secret are accepted but not
created) nor every property, so this test checks what it does create: that the stack comes up
from the template with the operator's parameters, and that the outputs name resources that
really exist with the planned settings. The unit tests assert the rest on the template.

The store-sync state machine is created (AWS::StepFunctions::StateMachine, with its
DefinitionString resolved); moto's Step Functions interpreter then runs the deployed definition
up to the RunTask request it makes (its history's TaskScheduled event). moto 5.2's interpreter
passes that request to ECS without converting its keys (its parameter normalisation is a no-op),
so no task starts in moto: what reaches ECS is asserted on the request, and the run-task tests
(test_deploy.py) start tasks through ECS directly.
"""

import http.client
import json
import time
from collections.abc import Iterator
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


def _policy_document(iam: Any, arn: str) -> dict[str, Any]:
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    document = version["PolicyVersion"]["Document"]
    if isinstance(document, str):  # moto may return it URL-encoded JSON text
        document = json.loads(unquote(document))
    return dict(document)


def test_the_backends_policy_output_starts_the_store_sync_and_nothing_else(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    assert "RunTaskPolicyArn" not in stack["outputs"]
    machine = stack["outputs"]["StoreSyncStateMachineArn"]
    iam = boto3.client("iam", **aws)
    document = _policy_document(iam, stack["outputs"]["StartStoreSyncPolicyArn"])
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions == {"states:StartExecution", "states:DescribeExecution"}
    (start,) = [s for s in document["Statement"] if s["Action"] == ["states:StartExecution"]]
    assert start["Resource"] == [machine]
    name = machine.rsplit(":", 1)[1]
    (follow,) = [s for s in document["Statement"] if s["Action"] == ["states:DescribeExecution"]]
    assert follow["Resource"] == [f"arn:aws:states:us-east-1:123456789012:execution:{name}:*"]


def test_the_store_sync_state_machine_runs_this_task_with_its_own_role(
    aws: dict[str, Any], stack: dict[str, Any]
) -> None:
    sfn = boto3.client("stepfunctions", **aws)
    arn = stack["outputs"]["StoreSyncStateMachineArn"]
    machine = sfn.describe_state_machine(stateMachineArn=arn)
    assert machine["roleArn"].split("/")[-1].startswith(f"{STACK}-StoreSyncRole")
    definition = json.loads(machine["definition"])
    for name in ("RunStores", "RunStoresAcceptingShrink"):
        parameters = definition["States"][name]["Parameters"]
        assert parameters["TaskDefinition"] == stack["outputs"]["TaskDefinitionArn"]
        assert parameters["Cluster"] == "arn:aws:ecs:us-east-1:123456789012:cluster/fluxion"
        network = parameters["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["Subnets"] == stack["parameters"]["PrivateSubnetIds"].split(",")
        assert network["SecurityGroups"] == [stack["outputs"]["SecurityGroupId"]]


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


@pytest.fixture
def interpreted_sync(
    aws: dict[str, Any],
    stack: dict[str, Any],
    moto_endpoint: MotoEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """The deployed store-sync machine, run by moto's Step Functions interpreter; its ARN there.

    The interpreter is a setting of moto's server, switched on for one test. It runs a state
    machine's states, and its ``ecs:runTask.sync`` calls this same server (moto reads the port
    from MOTO_PORT; the server runs in this process). Its machines live in a backend of their
    own, not where CloudFormation created the stack's, so the deployed definition and role are
    read first and registered there.
    """
    sfn = boto3.client("stepfunctions", **aws)
    deployed = sfn.describe_state_machine(
        stateMachineArn=stack["outputs"]["StoreSyncStateMachineArn"]
    )

    host, port = moto_endpoint.url.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv("MOTO_PORT", port)

    def interpret(on: bool) -> None:
        body = json.dumps({"stepfunctions": {"execute_state_machine": on}})
        connection = http.client.HTTPConnection(host, int(port), timeout=30)  # 127.0.0.1
        try:
            connection.request("POST", "/moto-api/config", body=body)
            assert connection.getresponse().status == 201  # (its body omits stepfunctions)
        finally:
            connection.close()
        from moto.core.config import default_user_config  # the server's, in this process

        assert default_user_config["stepfunctions"]["execute_state_machine"] is on

    interpret(True)
    try:
        yield sfn.create_state_machine(
            name="store-sync-interpreted", definition=deployed["definition"],
            roleArn=deployed["roleArn"],
        )["stateMachineArn"]  # fmt: skip
    finally:
        interpret(False)


def _wait_execution(sfn: Any, arn: str, *, until: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] in until or time.monotonic() > deadline:
            return dict(described)
        time.sleep(0.2)


def _scheduled_run_task(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The RunTask requests the execution made: the resolved ``Parameters`` of each
    ``TaskScheduled`` event of its history (what Step Functions sends to ECS)."""
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    scheduled = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
    assert all((d["resourceType"], d["resource"]) == ("ecs", "runTask.sync") for d in scheduled)
    return [json.loads(d["parameters"]) for d in scheduled]


@pytest.mark.parametrize(
    ("data", "environment"),
    [
        ({"stores": "tienda_02"}, [{"Name": "ETL_TIENDAS", "Value": "tienda_02"}]),
        (
            {
                "stores": "tienda_02,tienda_05",
                "accept_shrink": "tienda_05",
                # what a holder of RunTask could have sent, and the machine never reads
                "command": ["sh", "-c", "env"],
                "Overrides": {"TaskRoleArn": "arn:aws:iam::123456789012:role/other"},
                "TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/x:1",
            },
            [
                {"Name": "ETL_TIENDAS", "Value": "tienda_02,tienda_05"},
                {"Name": "ETL_ACCEPT_SHRINK", "Value": "tienda_05"},
            ],
        ),
    ],
    ids=["stores", "stores, accept and hostile extras"],
)
def test_an_execution_asks_ecs_for_this_task_with_only_the_store_lists_overridden(
    aws: dict[str, Any],
    stack: dict[str, Any],
    interpreted_sync: str,
    data: dict[str, Any],
    environment: list[dict[str, str]],
) -> None:
    """The backend's call, StartExecution, run by moto's interpreter of the deployed
    definition: the RunTask request it makes names the stack's task definition, cluster and
    network, and its only override is the two store lists from the input."""
    sfn = boto3.client("stepfunctions", **aws)
    started = sfn.start_execution(
        stateMachineArn=interpreted_sync, name=f"sync-{len(environment)}", input=json.dumps(data)
    )
    _wait_execution(sfn, started["executionArn"], until={"FAILED", "SUCCEEDED"})
    (request,) = _scheduled_run_task(sfn, started["executionArn"])
    assert request == {
        "Cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/fluxion",
        "TaskDefinition": stack["outputs"]["TaskDefinitionArn"],
        "LaunchType": "FARGATE",
        "PlatformVersion": "LATEST",
        "NetworkConfiguration": {"AwsvpcConfiguration": {
            "Subnets": stack["parameters"]["PrivateSubnetIds"].split(","),
            "SecurityGroups": [stack["outputs"]["SecurityGroupId"]],
            "AssignPublicIp": "DISABLED",
        }},
        "PropagateTags": "TASK_DEFINITION",
        "Overrides": {"ContainerOverrides": [{"Name": "etl", "Environment": environment}]},
        "StartedBy": "AWS Step Functions",
    }  # fmt: skip
    # (moto 5.2's interpreter then calls ECS with these keys un-camel-cased, which its ECS
    # refuses: the execution ends FAILED there; AWS starts the task and waits for it.)


@pytest.mark.parametrize(
    "data",
    [{}, {"stores": ""}, {"stores": ["tienda_02"]}, {"stores": "tienda_02", "accept_shrink": ""}],
    ids=["no stores", "empty stores", "a list", "empty accept"],
)
def test_an_execution_with_a_bad_input_fails_before_asking_for_a_task(
    aws: dict[str, Any], interpreted_sync: str, data: dict[str, Any]
) -> None:
    sfn = boto3.client("stepfunctions", **aws)
    # (named: moto's interpreter gives every unnamed execution the same name)
    started = sfn.start_execution(
        stateMachineArn=interpreted_sync, name=f"refused-{len(json.dumps(data))}",
        input=json.dumps(data),
    )  # fmt: skip
    ended = _wait_execution(sfn, started["executionArn"], until={"FAILED", "SUCCEEDED"})
    assert (ended["status"], ended.get("error")) == ("FAILED", "fluxion.InvalidInput")
    assert _scheduled_run_task(sfn, started["executionArn"]) == []
