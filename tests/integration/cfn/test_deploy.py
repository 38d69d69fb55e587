"""The deploy and run-task commands, run as the real CLI against moto's server on 127.0.0.1.

This is the change-set deploy of the committed template that ``.ci/run`` performs as part of the
suite: first deploy (CREATE), the same again ("no changes"), a new image tag with
``--no-execute``, then executed, then one manual run.

Where moto 5.2 differs from CloudFormation, the code is written for CloudFormation and the test
says what moto does instead:

* moto's CloudFormation does not create every resource type: it skips ``MOTO_SKIPS`` (listed by
  the test that checks them on the template instead);
* a change set's ``Changes`` list only resources whose template text changed: a parameter-only
  change (a new ``ImageTag``) lists none, where CloudFormation lists ``Modify TaskDefinition``
  (Replacement True). The Modify row is shown with a template change instead;
* the same template and values again is refused at ``CreateChangeSet`` with a ValidationError
  "No updates are to be performed." (CloudFormation creates a FAILED change set whose reason says
  "didn't contain changes"; deploy handles both, the unit tests drive the second);
* executing an UPDATE that keeps the previous value of a ``List<...>`` parameter crashes moto
  (HTTP 500: it splits the already split list), so the update passes ``PrivateSubnetIds``;
* a stack made by a change set has no outputs (moto computes them only in CreateStack), so
  run-task falls back to the stack's resources, and deploy prints "no outputs";
* after an update, moto's task definition revision loses its container definitions;
* an update counts every parameter the create did not pass as changed, and updates each resource
  that refers to one, even a conditional one it never created (the optional PostgreSQL target's
  ``AWS::IAM::Policy``: an AttributeError in moto's IAM, HTTP 500), so the first deploy passes
  the optional parameters (the target's, the VPC endpoints'), empty, as an operator may.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_local import MotoEndpoint, create_shared_infrastructure

import fluxion_cfn

pytestmark = [
    pytest.mark.aws,
    # moto announces each resource type its CloudFormation skips; MOTO_SKIPS lists them.
    pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
]

boto3 = pytest.importorskip("boto3")
cfn_flip = pytest.importorskip("cfn_flip")

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "templates" / "fluxion-etl.yaml"
REGION = "us-east-1"
STACK = "fluxion-deploy-it"
CLUSTER = "fluxion-deploy"

#: Resource types of the template that moto 5.2's CloudFormation accepts without creating them.
MOTO_SKIPS = {
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SecretsManager::Secret",
}
#: Created, but listed without a physical id (the test checks the rule in EC2 instead).
NO_PHYSICAL_ID = {"AWS::EC2::SecurityGroupIngress"}


@pytest.fixture(scope="module")
def aws(moto_endpoint: MotoEndpoint) -> dict[str, Any]:
    """boto3 settings and the CLI's env for the session's moto server.

    moto keeps its state per process, not per server: every name here (cluster, file system,
    repository) differs from test_cfn_stack.py's, which shares that state.
    """
    src = str(Path(fluxion_cfn.__file__).resolve().parents[1])  # the fluxion_cfn under test
    env = {
        **moto_endpoint.env,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    return {"url": moto_endpoint.url, "env": env, "client": moto_endpoint.client_kwargs}


def client(aws: dict[str, Any], service: str) -> Any:
    return boto3.client(service, **aws["client"])


def cli(aws: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m fluxion_cfn ARGS --region us-east-1 --endpoint-url MOTO`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "fluxion_cfn", *args, "--region", REGION,
         "--endpoint-url", aws["url"]],
        capture_output=True, text=True, env=aws["env"], timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shared(moto_endpoint: MotoEndpoint) -> dict[str, str]:
    """The shared infrastructure the stack expects, as the parameters that name it."""
    return {
        **create_shared_infrastructure(moto_endpoint, name=CLUSTER, cidr_prefix="10.30"),
        # The ECR repository is fluxion-etl-<EnvironmentName>: one per stack in this account.
        "EnvironmentName": "deploy-it",
    }


def pairs(values: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in values.items()]


def stack(aws: dict[str, Any], name: str = STACK) -> dict[str, Any]:
    (described,) = client(aws, "cloudformation").describe_stacks(StackName=name)["Stacks"]
    return dict(described)


def parameter(aws: dict[str, Any], key: str) -> str:
    values = {p["ParameterKey"]: p.get("ParameterValue") for p in stack(aws)["Parameters"]}
    return str(values[key])


def physical_ids(aws: dict[str, Any], name: str = STACK) -> dict[str, str]:
    summaries = client(aws, "cloudformation").list_stack_resources(StackName=name)
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in summaries["StackResourceSummaries"]
        if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }


def rows(output: str, action: str) -> set[tuple[str, str]]:
    """(logical id, type) of the change table's rows with this action."""
    found = set()
    for line in output.splitlines():
        cells = line.split()
        if len(cells) == 4 and cells[0] == action:
            found.add((cells[1], cells[2]))
    return found


#: Conditions false with the parameters these tests deploy (the optional PostgreSQL target, the
#: optional VPC endpoints).
UNSET = {"HasPostgresTarget", "HasTargetSecretKmsKey", "HasAwsEndpoints"}
#: The optional parameters, passed empty (module docstring: moto's update).
NO_TARGET = dict.fromkeys(
    ("TargetDatabaseUrl", "TargetSecretArn", "TargetSecurityGroupId", "TargetSecretKmsKeyArn",
     "AwsEndpointsSecurityGroupId", "S3PrefixListId"),
    "",
)  # fmt: skip


def template_resources(text: str | None = None) -> dict[str, Any]:
    """The template's resources that exist with the parameters deployed here."""
    document, _ = cfn_flip.load(text or TEMPLATE.read_text(encoding="utf-8"))
    return {
        name: resource
        for name, resource in document["Resources"].items()
        if resource.get("Condition") not in UNSET
    }


@pytest.fixture(scope="module")
def first_deploy(aws: dict[str, Any], shared: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return cli(
        aws, "deploy", "--stack-name", STACK,
        "--parameter-overrides", *pairs(shared), "ImageTag=v1", "AlertEmail=ops@example.com",
        *pairs(NO_TARGET), "--tags", "Team=data", "CostCentre=inventory",
    )  # fmt: skip


@pytest.fixture(scope="module")
def updated(
    aws: dict[str, Any], shared: dict[str, str], first_deploy: subprocess.CompletedProcess[str]
) -> dict[str, Any]:
    """The stack before and after an executed deploy of a new image tag, and the CLI's result."""
    assert first_deploy.returncode == 0, first_deploy.stderr
    before = physical_ids(aws)
    # PrivateSubnetIds is passed, not kept: see the module docstring (moto's List<> crash).
    result = cli(
        aws, "deploy", "--stack-name", STACK,
        "--parameter-overrides", "ImageTag=v2", f"PrivateSubnetIds={shared['PrivateSubnetIds']}",
    )  # fmt: skip
    return {"before": before, "after": physical_ids(aws), "result": result}


def test_the_first_deploy_creates_the_stack_through_a_create_change_set(
    aws: dict[str, Any], first_deploy: subprocess.CompletedProcess[str]
) -> None:
    assert first_deploy.returncode == 0, first_deploy.stderr
    assert f"CREATE of stack {STACK}" in first_deploy.stdout
    # Every resource of the template is listed as an Add before anything is executed (moto lists
    # the conditional ones too, true or not; CloudFormation only those it will create).
    document, _ = cfn_flip.load(TEMPLATE.read_text(encoding="utf-8"))
    expected = {(name, r["Type"]) for name, r in document["Resources"].items()}
    assert rows(first_deploy.stdout, "Add") == expected
    assert f"Stack {STACK}: CREATE_COMPLETE" in first_deploy.stdout
    described = stack(aws)
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert parameter(aws, "ImageTag") == "v1"
    assert parameter(aws, "ScheduleState") == "DISABLED"  # the template's default
    # What deploy printed are the stack's outputs (moto reports none: module docstring).
    outputs = described.get("Outputs") or []
    if outputs:
        assert all(f"{o['OutputKey']}  " in first_deploy.stdout for o in outputs)
    else:
        assert first_deploy.stdout.rstrip().endswith("(the stack reports no outputs)")
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {
        "Team": "data",
        "CostCentre": "inventory",
    }


def test_the_created_task_definition_runs_the_given_image_tag(
    aws: dict[str, Any], first_deploy: subprocess.CompletedProcess[str]
) -> None:
    assert first_deploy.returncode == 0, first_deploy.stderr
    ids = physical_ids(aws)
    task = client(aws, "ecs").describe_task_definition(taskDefinition=ids["TaskDefinition"])
    (container,) = task["taskDefinition"]["containerDefinitions"]
    assert container["image"] == f"{REGION_REGISTRY}/{ids['Repository']}:v1"


REGION_REGISTRY = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"  # moto's default account


def test_what_moto_does_not_create_is_checked_on_the_template(
    aws: dict[str, Any], first_deploy: subprocess.CompletedProcess[str]
) -> None:
    """moto skips some types (a change in that list fails here); what it skips is asserted on
    the template below, and in detail in tests/unit/cfn/test_cfn_resources.py."""
    assert first_deploy.returncode == 0, first_deploy.stderr
    resources = template_resources()
    created = physical_ids(aws)
    skipped = {r["Type"] for name, r in resources.items() if name not in created}
    assert skipped == MOTO_SKIPS | NO_PHYSICAL_ID
    (efs,) = client(aws, "ec2").describe_security_groups(
        GroupIds=[parameter(aws, "EfsSecurityGroupId")]
    )["SecurityGroups"]
    nfs_from = [g["GroupId"] for p in efs["IpPermissions"] if p["FromPort"] == 2049
                for g in p["UserIdGroupPairs"]]  # fmt: skip
    assert created["TaskSecurityGroup"] in nfs_from
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources.values():
        by_type.setdefault(resource["Type"], []).append(resource.get("Properties", {}))
    (secret,) = by_type["AWS::SecretsManager::Secret"]
    assert "SecretString" not in secret and "GenerateSecretString" not in secret
    assert len(by_type["AWS::CloudWatch::Alarm"]) == 4
    assert all(alarm["AlarmActions"] for alarm in by_type["AWS::CloudWatch::Alarm"])
    (group,) = by_type["AWS::Logs::LogGroup"]
    assert group["LogGroupName"] == {"Fn::Sub": "/fluxion/${AWS::StackName}/etl"}
    (ingress,) = by_type["AWS::EC2::SecurityGroupIngress"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 2049, 2049)
    (policy,) = by_type["AWS::SNS::TopicPolicy"]
    assert policy["Topics"] == [{"Ref": "AlertTopic"}]
    (subscription,) = by_type["AWS::SNS::Subscription"]
    assert subscription["Protocol"] == "email"


def test_redeploying_the_same_template_says_no_changes(
    aws: dict[str, Any], first_deploy: subprocess.CompletedProcess[str]
) -> None:
    assert first_deploy.returncode == 0, first_deploy.stderr
    before = (stack(aws), physical_ids(aws))
    result = cli(aws, "deploy", "--stack-name", STACK)
    assert result.returncode == 0, result.stderr
    assert f"No changes: stack {STACK} is up to date" in result.stdout
    assert "Executing" not in result.stdout
    assert (stack(aws), physical_ids(aws)) == before


def test_a_new_image_tag_with_no_execute_shows_the_change_and_leaves_the_stack(
    aws: dict[str, Any], first_deploy: subprocess.CompletedProcess[str]
) -> None:
    assert first_deploy.returncode == 0, first_deploy.stderr
    tag, ids = parameter(aws, "ImageTag"), physical_ids(aws)
    result = cli(
        aws, "deploy", "--stack-name", STACK, "--parameter-overrides", "ImageTag=preview",
        "--no-execute",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"UPDATE of stack {STACK}" in result.stdout
    assert f"ImageTag: {tag!r} -> 'preview'" in result.stdout
    assert "Not executed (--no-execute)" in result.stdout
    # CloudFormation would also list "Modify TaskDefinition ... True"; moto lists no resource for
    # a parameter-only change (module docstring). The next test shows a Modify row.
    assert (parameter(aws, "ImageTag"), physical_ids(aws)) == (tag, ids)
    change_sets = client(aws, "cloudformation").list_change_sets(StackName=STACK)["Summaries"]
    assert [c["ExecutionStatus"] for c in change_sets if "update" in c["ChangeSetName"]] == [
        "AVAILABLE"
    ]


def test_a_changed_task_definition_with_no_execute_shows_a_modify_row(
    aws: dict[str, Any], first_deploy: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    assert first_deploy.returncode == 0, first_deploy.stderr
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count("StopTimeout: 120") == 1
    changed = tmp_path / "stack.yaml"
    changed.write_text(text.replace("StopTimeout: 120", "StopTimeout: 90"), encoding="utf-8")
    ids = physical_ids(aws)
    result = cli(
        aws, "deploy", "--stack-name", STACK, "--template-file", str(changed), "--no-execute"
    )
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout, "Modify") == {("TaskDefinition", "AWS::ECS::TaskDefinition")}
    assert physical_ids(aws) == ids


def test_executing_a_new_image_tag_updates_the_stack(
    aws: dict[str, Any], updated: dict[str, Any]
) -> None:
    result = updated["result"]
    assert result.returncode == 0, result.stderr
    assert f"UPDATE of stack {STACK}" in result.stdout
    assert f"Stack {STACK}: UPDATE_COMPLETE" in result.stdout
    assert stack(aws)["StackStatus"] == "UPDATE_COMPLETE"
    assert parameter(aws, "ImageTag") == "v2"
    # A new task definition revision replaced the old one (moto drops its containers: see above).
    old, new = updated["before"]["TaskDefinition"], updated["after"]["TaskDefinition"]
    assert new.rsplit(":", 1)[0] == old.rsplit(":", 1)[0]
    assert int(new.rsplit(":", 1)[1]) == int(old.rsplit(":", 1)[1]) + 1
    ecs = client(aws, "ecs")
    assert ecs.describe_task_definition(taskDefinition=new)["taskDefinition"]["revision"] == int(
        new.rsplit(":", 1)[1]
    )


def test_run_task_starts_one_task_of_the_stacks_definition(
    aws: dict[str, Any], updated: dict[str, Any]
) -> None:
    assert updated["result"].returncode == 0, updated["result"].stderr
    result = cli(aws, "run-task", "--stack-name", STACK)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    task_arn = lines["task"]
    assert task_arn.startswith(f"arn:aws:ecs:{REGION}:123456789012:task/{CLUSTER}/")
    assert lines["log group"] == f"/fluxion/{STACK}/etl"
    assert lines["log stream"] == f"etl/etl/{task_arn.rsplit('/', 1)[1]}"
    assert lines["follow"].startswith(f"aws logs tail /fluxion/{STACK}/etl --follow")
    (task,) = client(aws, "ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"]
    assert task["taskDefinitionArn"] == updated["after"]["TaskDefinition"]
    assert task["launchType"] == "FARGATE"


def test_run_task_with_stores_overrides_etl_tiendas_for_that_task_only(
    aws: dict[str, Any], updated: dict[str, Any]
) -> None:
    assert updated["result"].returncode == 0, updated["result"].stderr
    result = cli(aws, "run-task", "--stack-name", STACK, "--stores", "tienda_02,tienda_05")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["stores"] == "tienda_02,tienda_05"
    (task,) = client(aws, "ecs").describe_tasks(cluster=CLUSTER, tasks=[lines["task"]])["tasks"]
    assert task["overrides"]["containerOverrides"] == [
        {"name": "etl", "environment": [{"name": "ETL_TIENDAS", "value": "tienda_02,tienda_05"}]}
    ]
    # The stack's own setting is untouched: the next scheduled run covers every active store.
    assert parameter(aws, "EtlStores") == ""


def test_run_task_refuses_an_unknown_store_before_starting_anything(
    aws: dict[str, Any], updated: dict[str, Any], tmp_path: Path
) -> None:
    assert updated["result"].returncode == 0, updated["result"].stderr
    stores = tmp_path / "stores.toml"
    stores.write_text(
        '[[stores]]\nid = "tienda_02"\nname = "AV. BOLIVAR"\ntype = "tienda"\n'
        'host = "192.168.2.10"\nport = 14348\ndatabase = "VAD10"\nwarehouse = "0202"\n',
        encoding="utf-8",
    )
    ecs = client(aws, "ecs")
    before = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    result = cli(aws, "run-task", "--stack-name", STACK, "--stores", "tienda_77",
                 "--stores-file", str(stores))  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "unknown store id(s): tienda_77 (configured: tienda_02)" in line
    assert ecs.list_tasks(cluster=CLUSTER)["taskArns"] == before


def test_run_task_with_accept_shrink_overrides_etl_accept_shrink_for_that_task_only(
    aws: dict[str, Any], updated: dict[str, Any]
) -> None:
    assert updated["result"].returncode == 0, updated["result"].stderr
    result = cli(aws, "run-task", "--stack-name", STACK, "--stores", "tienda_02,tienda_05",
                 "--accept-shrink", "tienda_05")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["accept shrink"] == "tienda_05 (this task only)"
    ecs = client(aws, "ecs")
    (task,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[lines["task"]])["tasks"]
    assert task["overrides"]["containerOverrides"] == [{"name": "etl", "environment": [
        {"name": "ETL_TIENDAS", "value": "tienda_02,tienda_05"},
        {"name": "ETL_ACCEPT_SHRINK", "value": "tienda_05"},
    ]}]  # fmt: skip
    # The scheduled runs keep the guard: the stack has its limits and no accept at all (moto's
    # task definition carries no environment; the unit tests check the template's).
    assert (parameter(aws, "EtlMaxShrink"), parameter(aws, "EtlMaxRejected")) == ("0.5", "0.05")
    assert not [p for p in stack(aws)["Parameters"] if "Accept" in p["ParameterKey"]]


def test_run_task_refuses_to_accept_a_store_it_does_not_run_before_starting_anything(
    aws: dict[str, Any], updated: dict[str, Any]
) -> None:
    assert updated["result"].returncode == 0, updated["result"].stderr
    ecs = client(aws, "ecs")
    before = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    result = cli(aws, "run-task", "--stack-name", STACK, "--stores", "tienda_02",
                 "--accept-shrink", "tienda_05")  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "--accept-shrink: tienda_05 not among this task's stores (tienda_02)" in line
    assert ecs.list_tasks(cluster=CLUSTER)["taskArns"] == before


def test_a_first_deploy_without_the_required_parameters_is_a_usage_error(
    aws: dict[str, Any],
) -> None:
    result = cli(aws, "deploy", "--stack-name", "fluxion-incomplete", "--parameter-overrides",
                 "ImageTag=v1")  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "AccessPointId" in line and "VpcId" in line and "ImageTag" not in line
    assert "first deploy" in line


def test_run_task_of_a_stack_that_does_not_exist_says_deploy_it_first(
    aws: dict[str, Any],
) -> None:
    result = cli(aws, "run-task", "--stack-name", "fluxion-nowhere")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: there is no stack fluxion-nowhere: deploy it first"
    ]


def test_a_stack_left_in_review_is_created_by_the_next_deploy(
    aws: dict[str, Any], shared: dict[str, str]
) -> None:
    name = "fluxion-review-it"
    overrides = [*pairs({**shared, "EnvironmentName": "review"}), "ImageTag=v1"]
    reviewed = cli(aws, "deploy", "--stack-name", name, "--parameter-overrides", *overrides,
                   "--no-execute")  # fmt: skip
    assert reviewed.returncode == 0, reviewed.stderr
    assert stack(aws, name)["StackStatus"] == "REVIEW_IN_PROGRESS"
    created = cli(aws, "deploy", "--stack-name", name, "--parameter-overrides", *overrides)
    assert created.returncode == 0, created.stderr
    assert f"CREATE of stack {name}" in created.stdout
    assert f"Stack {name}: CREATE_COMPLETE" in created.stdout
    # CloudFormation creates the reviewed stack itself; moto makes a second stack of that name
    # (so describe_stacks by name still shows the first): look the names up in list_stacks.
    summaries = client(aws, "cloudformation").list_stacks()["StackSummaries"]
    assert "CREATE_COMPLETE" in [s["StackStatus"] for s in summaries if s["StackName"] == name]
