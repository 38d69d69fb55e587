"""deploy and run-task without a server: argument checks, the change-set decisions, the tables,
and the two CloudFormation behaviours moto cannot produce.

Those two -- an empty change set reported as FAILED through the waiter, and an execution that
rolls back -- are driven with botocore's Stubber: the real client and waiter code, answering with
CloudFormation's documented response shapes (the Stubber rejects requests the API model does
not allow). Everything else runs against moto in tests/integration/cfn/test_deploy.py.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from fluxion_cfn.__main__ import main
from fluxion_cfn.changes import CHANGE_HEADER, change_rows, table
from fluxion_cfn.deploy import (
    DeployRequest,
    TemplateSource,
    change_set_parameters,
    change_set_type,
    deploy,
    is_no_change,
    no_echo,
    parameter_changes,
    required_capabilities,
)
from fluxion_cfn.errors import CommandError, UsageError
from fluxion_cfn.overrides import check_tags, parse_pairs
from fluxion_cfn.run_task import (
    OUTPUT_RESOURCES,
    RunTarget,
    requested_accept,
    requested_stores,
    start,
    subnet_ids,
)
from fluxion_cfn.stack import render

TEMPLATE: dict[str, Any] = json.loads(render("json"))
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/flx/0a1b"
CHANGE_SET_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/2c3d"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


# --- arguments -------------------------------------------------------------------------------


def test_pairs_keep_equals_signs_and_empty_values_in_the_value() -> None:
    assert parse_pairs(["A=b=c", "E=", " K =v"], "--x") == {"A": "b=c", "E": "", "K": "v"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["ImageTag"], "'ImageTag' is not KEY=VALUE"),
        (["=v1"], "'=v1' is not KEY=VALUE"),
        (["ImageTag=a", "ImageTag=b"], "ImageTag is given twice"),
    ],
)
def test_malformed_pairs_are_usage_errors(items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_pairs(items, "--parameter-overrides")


@pytest.mark.parametrize("key", ["aws:created-by", "", "x" * 129, "bad\nkey"])
def test_tag_keys_cloudformation_rejects_are_usage_errors(key: str) -> None:
    with pytest.raises(UsageError, match="not a valid tag key"):
        check_tags({key: "v"})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--parameter-overrides", "ImageTag"],
            "--parameter-overrides: 'ImageTag' is not KEY=VALUE",
        ),
        (["--parameter-overrides", "ImageTg=v1"], "unknown parameter ImageTg;"),
        (["--tags", "Team"], "--tags: 'Team' is not KEY=VALUE"),
        (["--tags", "aws:team=x"], "not a valid tag key"),
        (["--template-file", "/nonexistent/stack.yaml"], "cannot read /nonexistent/stack.yaml"),
    ],
)
def test_bad_deploy_arguments_exit_2_with_one_line_before_any_aws_call(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No endpoint, region or credentials is given: the check must come before any client.
    assert main(["deploy", "--stack-name", "flx", *argv]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("error: ") and expected in line
    assert captured.out == ""


def test_a_bad_stack_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--stack-name", "9-lives"]) == 2
    assert "is not a stack name" in capsys.readouterr().err


def test_the_bare_command_still_prints_the_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render("yaml")


# --- the change-set decisions ----------------------------------------------------------------


def test_the_template_needs_capability_iam_and_no_named_iam() -> None:
    # The roles are unnamed (CloudFormation names them), so CAPABILITY_NAMED_IAM is not asked.
    assert required_capabilities(TEMPLATE["Resources"]) == ["CAPABILITY_IAM"]


def test_a_named_role_adds_capability_named_iam() -> None:
    resources = {
        "R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "etl"}},
        "Q": {"Type": "AWS::SQS::Queue"},
    }
    assert required_capabilities(resources) == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    assert required_capabilities({"Q": {"Type": "AWS::SQS::Queue"}}) == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (None, "CREATE"),
        ("REVIEW_IN_PROGRESS", "CREATE"),
        ("CREATE_COMPLETE", "UPDATE"),
        ("UPDATE_COMPLETE", "UPDATE"),
        ("UPDATE_ROLLBACK_COMPLETE", "UPDATE"),
    ],
)
def test_create_for_a_new_or_reviewed_stack_else_update(status: str | None, kind: str) -> None:
    stack = None if status is None else {"StackName": "flx", "StackStatus": status}
    assert change_set_type(stack) == kind


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        ("ROLLBACK_COMPLETE", "delete-stack --stack-name flx"),
        ("UPDATE_IN_PROGRESS", "wait for that operation to end"),
        ("UPDATE_ROLLBACK_FAILED", "cannot update it"),
    ],
)
def test_a_stack_that_cannot_take_a_change_set_says_what_to_do(status: str, advice: str) -> None:
    with pytest.raises(CommandError, match=advice):
        change_set_type({"StackName": "flx", "StackStatus": status})


DECLARED = {
    "ImageTag": {"Type": "String"},
    "VpcId": {"Type": "String"},
    "ScheduleState": {"Type": "String", "Default": "DISABLED"},
    "NewSetting": {"Type": "String", "Default": "x"},
}


def test_create_sends_only_the_overrides() -> None:
    assert change_set_parameters("CREATE", DECLARED, {"ImageTag": "v1", "VpcId": "vpc-1"}) == [
        {"ParameterKey": "ImageTag", "ParameterValue": "v1"},
        {"ParameterKey": "VpcId", "ParameterValue": "vpc-1"},
    ]


def test_create_without_a_parameter_that_has_no_default_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="VpcId has no default and must be given on the first"):
        change_set_parameters("CREATE", DECLARED, {"ImageTag": "v1"})


def test_update_keeps_previous_values_only_for_keys_the_stack_and_template_share() -> None:
    deployed = ["ImageTag", "VpcId", "ScheduleState", "Dropped"]
    assert change_set_parameters("UPDATE", DECLARED, {"ImageTag": "v2"}, deployed) == [
        {"ParameterKey": "ImageTag", "ParameterValue": "v2"},
        {"ParameterKey": "ScheduleState", "UsePreviousValue": True},
        {"ParameterKey": "VpcId", "UsePreviousValue": True},
    ]  # NewSetting (not deployed) takes its default; Dropped (not in the template) is not sent


def test_update_with_a_new_parameter_without_default_is_a_usage_error() -> None:
    declared = {**DECLARED, "Required": {"Type": "String"}}
    with pytest.raises(UsageError, match="Required has no default.*new in this template"):
        change_set_parameters("UPDATE", declared, {}, ["ImageTag", "VpcId"])


def test_parameter_changes_name_only_the_values_that_move() -> None:
    deployed = {"ImageTag": "v1", "ScheduleState": "DISABLED"}
    overrides = {"ImageTag": "v2", "ScheduleState": "DISABLED", "LogLevel": "DEBUG"}
    assert parameter_changes(overrides, deployed) == [
        "ImageTag: 'v1' -> 'v2'",
        "LogLevel: (new) -> 'DEBUG'",
    ]


@pytest.mark.parametrize(
    ("reason", "empty"),
    [
        (
            "The submitted information didn't contain changes. Submit different information"
            " to create a change set.",
            True,
        ),
        ("No updates are to be performed.", True),
        ("Parameters: [VpcId] must have values", False),
        (None, False),
    ],
)
def test_both_ways_cloudformation_says_empty_are_recognised(
    reason: str | None, empty: bool
) -> None:
    assert is_no_change(reason) is empty


def test_the_change_table_shows_replacement_and_dashes_where_cloudformation_gives_none() -> None:
    changes = [
        {"Type": "Resource", "ResourceChange": {
            "Action": "Modify", "LogicalResourceId": "TaskDefinition",
            "ResourceType": "AWS::ECS::TaskDefinition", "Replacement": "True"}},
        {"Type": "Resource", "ResourceChange": {
            "Action": "Add", "LogicalResourceId": "Alarm",
            "ResourceType": "AWS::CloudWatch::Alarm"}},
    ]  # fmt: skip
    assert table(CHANGE_HEADER, change_rows(changes)).splitlines() == [
        "Action  Logical id      Type                      Replacement",
        "Add     Alarm           AWS::CloudWatch::Alarm    -",
        "Modify  TaskDefinition  AWS::ECS::TaskDefinition  True",
    ]


# --- what moto cannot produce: botocore's Stubber with CloudFormation's responses -------------


def _stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def _deployed_stack(status: str = "UPDATE_COMPLETE") -> dict[str, Any]:
    return {
        "Stacks": [{
            "StackId": STACK_ID, "StackName": "flx", "StackStatus": status, "CreationTime": NOW,
            "Parameters": [{"ParameterKey": k, "ParameterValue": "v1"}
                           for k in TEMPLATE["Parameters"]],
        }]
    }  # fmt: skip


def _expect_update_change_set(stub: Stubber) -> None:
    stub.add_response("describe_stacks", _deployed_stack(), {"StackName": "flx"})
    stub.add_response(
        "create_change_set",
        {"Id": CHANGE_SET_ID, "StackId": STACK_ID},
        {
            "StackName": "flx", "ChangeSetName": ANY, "ChangeSetType": "UPDATE",
            "TemplateBody": ANY, "Parameters": ANY, "Capabilities": ["CAPABILITY_IAM"],
            "Description": ANY,
        },
    )  # fmt: skip


def _change_set(status: str, reason: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "ChangeSetId": CHANGE_SET_ID, "ChangeSetName": "cs", "StackId": STACK_ID,
        "StackName": "flx", "Status": status, "ExecutionStatus": "UNAVAILABLE", "Changes": [],
    }  # fmt: skip
    if reason:
        described["StatusReason"] = reason
    return described


def test_an_empty_change_set_reported_as_failed_is_no_changes_and_is_deleted() -> None:
    cfn, stub = _stubbed("cloudformation")
    _expect_update_change_set(stub)
    failed = _change_set(
        "FAILED", "The submitted information didn't contain changes. Submit different"
        " information to create a change set."
    )  # fmt: skip
    stub.add_response("describe_change_set", failed, {"ChangeSetName": CHANGE_SET_ID})  # waiter
    stub.add_response("describe_change_set", failed, {"ChangeSetName": CHANGE_SET_ID})
    stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET_ID})
    out = io.StringIO()
    with stub:
        deploy(cfn, DeployRequest("flx", TemplateSource.load()), out)
        stub.assert_no_pending_responses()  # nothing executed: no further call was made
    assert "No changes: stack flx is up to date (The submitted information didn't" in out.getvalue()


def test_a_change_set_that_fails_for_another_reason_is_an_error() -> None:
    cfn, stub = _stubbed("cloudformation")
    _expect_update_change_set(stub)
    failed = _change_set("FAILED", "Parameters: [VpcId] must have values")
    stub.add_response("describe_change_set", failed, {"ChangeSetName": CHANGE_SET_ID})
    stub.add_response("describe_change_set", failed, {"ChangeSetName": CHANGE_SET_ID})
    with stub, pytest.raises(CommandError, match=r"change set failed: Parameters: \[VpcId\]"):
        deploy(cfn, DeployRequest("flx", TemplateSource.load()), io.StringIO())


def test_a_failed_execution_prints_the_operations_events_and_exits_1() -> None:
    cfn, stub = _stubbed("cloudformation")
    _expect_update_change_set(stub)
    ready = {**_change_set("CREATE_COMPLETE"), "ExecutionStatus": "AVAILABLE", "Changes": [
        {"Type": "Resource", "ResourceChange": {
            "Action": "Modify", "LogicalResourceId": "TaskDefinition",
            "ResourceType": "AWS::ECS::TaskDefinition", "Replacement": "True"}}]}  # fmt: skip
    stub.add_response("describe_change_set", ready, {"ChangeSetName": CHANGE_SET_ID})  # waiter
    stub.add_response("describe_change_set", ready, {"ChangeSetName": CHANGE_SET_ID})
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET_ID})
    stub.add_response(
        "describe_stacks", _deployed_stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID}
    )

    def event(logical: str, status: str, reason: str | None = None) -> dict[str, Any]:
        e = {"StackId": STACK_ID, "EventId": f"{logical}-{status}", "StackName": "flx",
             "LogicalResourceId": logical, "Timestamp": NOW, "ResourceStatus": status,
             "ResourceType": "AWS::CloudFormation::Stack" if logical == "flx"
             else "AWS::ECS::TaskDefinition"}  # fmt: skip
        if reason:
            e["ResourceStatusReason"] = reason
        return e

    events = [  # newest first, as CloudFormation returns them
        event("flx", "UPDATE_ROLLBACK_COMPLETE"),
        event("TaskDefinition", "UPDATE_FAILED", "Invalid  request provided:\nbad image"),
        event("flx", "UPDATE_IN_PROGRESS", "User Initiated"),
        event("flx", "CREATE_COMPLETE"),  # an earlier operation: not shown
    ]
    stub.add_response("describe_stack_events", {"StackEvents": events}, {"StackName": STACK_ID})
    out = io.StringIO()
    with stub, pytest.raises(CommandError, match="did not reach UPDATE_COMPLETE.*ROLLBACK"):
        deploy(cfn, DeployRequest("flx", TemplateSource.load()), out)
    printed = out.getvalue()
    assert "Modify  TaskDefinition  AWS::ECS::TaskDefinition  True" in printed
    shown = printed.split("Events of the failed operation")[1].splitlines()[2:]
    assert [line.split()[2:4] for line in shown] == [
        ["UPDATE_IN_PROGRESS", "flx"],
        ["UPDATE_FAILED", "TaskDefinition"],
        ["UPDATE_ROLLBACK_COMPLETE", "flx"],
    ]
    assert "Invalid request provided: bad image" in printed  # one line per event


def test_ecs_failures_to_place_the_task_are_an_error() -> None:
    ecs, stub = _stubbed("ecs")
    target = RunTarget("c", "arn:td:1", ("subnet-0a",), "sg-1", "/fluxion/flx/etl")
    stub.add_response(
        "run_task",
        {"tasks": [], "failures": [{"arn": "arn:td:1", "reason": "RESOURCE:MEMORY"}]},
        target.run_task_request(),
    )
    with stub, pytest.raises(CommandError, match="did not start the task: arn:td:1: RESOURCE"):
        start(ecs, target)


# --- run-task's view of the stack ------------------------------------------------------------


def test_a_manual_run_is_started_the_way_the_schedule_starts_it() -> None:
    (target,) = TEMPLATE["Resources"]["ScheduleRule"]["Properties"]["Targets"]
    scheduled = target["EcsParameters"]
    request = RunTarget("c", "td", ("subnet-0a",), "sg-1", "g").run_task_request()
    assert request["count"] == scheduled["TaskCount"]
    assert request["launchType"] == scheduled["LaunchType"]
    assert request["platformVersion"] == scheduled["PlatformVersion"]
    assert request["propagateTags"] == scheduled["PropagateTags"]
    assert request["enableECSManagedTags"] is scheduled["EnableECSManagedTags"]
    vpc = scheduled["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert (
        request["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"]
        == (vpc["AssignPublicIp"])
    )
    assert vpc["Subnets"] == {"Ref": "PrivateSubnetIds"}


def test_the_fallback_resources_are_the_ones_the_outputs_name() -> None:
    outputs = TEMPLATE["Outputs"]
    for output, logical_id in OUTPUT_RESOURCES.items():
        value = outputs[output]["Value"]
        assert logical_id in (value.get("Ref"), value.get("Fn::GetAtt", [None])[0])


@pytest.mark.parametrize(
    "value",
    ["subnet-0a1b,subnet-2c3d", "['subnet-0a1b', 'subnet-2c3d']", "subnet-0a1b, subnet-2c3d"],
)
def test_subnet_ids_are_read_from_cloudformations_and_motos_list_forms(value: str) -> None:
    assert subnet_ids(value) == ("subnet-0a1b", "subnet-2c3d")


# --- one-store runs: run-task --stores --------------------------------------------------------

STORES_FILE = """
[[stores]]
id = "tienda_02"
name = "AV. BOLIVAR"
type = "tienda"
host = "192.168.2.10"
port = 14348
database = "VAD10"
warehouse = "0202"

[[stores]]
id = "tienda_05"
name = "NAGUANAGUA"
type = "tienda"
host = "192.168.5.10"
port = 14348
database = "VAD10"
warehouse = "0502"
"""


@pytest.fixture
def stores_file(tmp_path: Path) -> Path:
    path = tmp_path / "stores.toml"
    path.write_text(STORES_FILE, encoding="utf-8")
    return path


def test_stores_become_an_etl_tiendas_override_of_the_etl_container() -> None:
    target = RunTarget("c", "td", ("subnet-0a",), "sg-1", "g")
    request = target.run_task_request(("tienda_02", "tienda_05"))
    override = {"name": "ETL_TIENDAS", "value": "tienda_02,tienda_05"}
    assert request["overrides"] == {
        "containerOverrides": [{"name": "etl", "environment": [override]}]
    }
    assert "overrides" not in target.run_task_request()  # no --stores: the task's own setting
    (container,) = TEMPLATE["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["Name"] == "etl"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--stores", "tienda_02,tienda_77"], "unknown store id(s): tienda_77"),
        (["--stores", "tienda_02,,tienda_05"], "has an empty store id"),
        (["--stores", "Tienda 02"], "'Tienda 02' is not a store id"),
    ],
)
def test_a_bad_store_id_is_refused_before_any_aws_call(
    argv: list[str],
    expected: str,
    stores_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = _refusal_of_run_task(argv, stores_file, capsys, monkeypatch)
    assert expected.replace("'", "") in line.replace("'", "")


def test_stores_are_checked_against_the_given_file_or_etl_stores_file(
    stores_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETL_STORES_FILE", raising=False)
    assert requested_stores(None, None) == ()
    assert requested_stores("tienda_05, tienda_02", stores_file) == ("tienda_05", "tienda_02")
    # Without a stores file an unknown id goes through: the task refuses it (exit 2).
    assert requested_stores("tienda_77", None) == ("tienda_77",)
    monkeypatch.setenv("ETL_STORES_FILE", str(stores_file))
    with pytest.raises(UsageError, match="unknown store id"):
        requested_stores("tienda_77", None)
    with pytest.raises(UsageError, match="missing.toml"):
        requested_stores("tienda_02", tmp_path / "missing.toml")


# --- run-task --accept-shrink: the snapshot guard's accept, for that task only --------------------


def test_an_accept_becomes_an_etl_accept_shrink_override_next_to_the_stores_one() -> None:
    target = RunTarget("c", "td", ("subnet-0a",), "sg-1", "g")
    both = target.run_task_request(("tienda_02", "tienda_05"), ("tienda_02",))
    assert both["overrides"]["containerOverrides"] == [{"name": "etl", "environment": [
        {"name": "ETL_TIENDAS", "value": "tienda_02,tienda_05"},
        {"name": "ETL_ACCEPT_SHRINK", "value": "tienda_02"},
    ]}]  # fmt: skip
    alone = target.run_task_request((), ("all",))
    assert alone["overrides"]["containerOverrides"] == [
        {"name": "etl", "environment": [{"name": "ETL_ACCEPT_SHRINK", "value": "all"}]}
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--stores", "tienda_02", "--accept-shrink", "tienda_05"],
         "--accept-shrink: tienda_05 not among this task's stores (tienda_02)"),
        (["--accept-shrink", "tienda_77"],
         "--accept-shrink: unknown store id(s): tienda_77 (configured: tienda_02, tienda_05)"),
        (["--accept-shrink", "tienda_02,,tienda_05"], "has an empty store id"),
        (["--accept-shrink", ""], "--accept-shrink"),
        (["--accept-shrink", "Tienda 02"], "--accept-shrink: Tienda 02 is not a store id"),
        (["--accept-shrink", "all,tienda_02"], "all already names every store of the run"),
    ],
)  # fmt: skip
def test_a_bad_accept_is_refused_before_any_aws_call(
    argv: list[str],
    expected: str,
    stores_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert expected in _refusal_of_run_task(argv, stores_file, capsys, monkeypatch)


def _refusal_of_run_task(
    argv: list[str],
    stores_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """``run-task`` with ``argv`` exits 2 with one ``error:`` line (returned) and no output.

    No endpoint, region or credentials are set: the check must come before any AWS client.
    """
    monkeypatch.setenv("ETL_STORES_FILE", str(stores_file))
    assert main(["run-task", "--stack-name", "flx", *argv]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("error: ")
    assert captured.out == ""
    return line


def test_accepted_ids_are_checked_against_the_stores_the_task_runs(
    stores_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETL_STORES_FILE", raising=False)
    assert requested_accept(None, ("tienda_02",), stores_file) == ()
    assert requested_accept("tienda_05", ("tienda_02", "tienda_05"), None) == ("tienda_05",)
    assert requested_accept("all", ("tienda_02",), None) == ("all",)
    assert requested_accept("tienda_05, tienda_02", (), stores_file) == ("tienda_05", "tienda_02")
    # Neither --stores nor a stores file: the task checks it against its stores (exit 2).
    assert requested_accept("tienda_77", (), None) == ("tienda_77",)
    # --stores decide what the task runs, even over the file's active stores.
    with pytest.raises(UsageError, match="tienda_05 not among this task's stores"):
        requested_accept("tienda_05", ("tienda_02",), stores_file)
    monkeypatch.setenv("ETL_STORES_FILE", str(stores_file))
    with pytest.raises(UsageError, match="unknown store id"):
        requested_accept("tienda_77", (), None)
    # Without --stores the stack's EtlStores may run an inactive store: configured is enough.
    inactive = STORES_FILE.split("[[stores]]")[1].replace('"tienda_02"', '"tienda_09"')
    stores_file.write_text(f"{STORES_FILE}\n[[stores]]{inactive}active = false\n", "utf-8")
    assert requested_accept("tienda_09", (), None) == ("tienda_09",)


def test_a_no_echo_parameter_is_named_but_its_value_never_printed() -> None:
    """TargetDatabaseUrl is NoEcho: CloudFormation shows the deployed value as ****, and deploy
    prints neither it nor the new one (a CI log keeps what a terminal shows)."""
    hidden = no_echo(TemplateSource.load().parameters)
    assert hidden == {"TargetDatabaseUrl"}
    url = "postgresql://fluxion_etl@db.example.internal:5432/app"
    lines = parameter_changes(
        {"TargetDatabaseUrl": url, "ImageTag": "v2"},
        {"TargetDatabaseUrl": "****", "ImageTag": "v1"},
        hidden,
    )
    assert lines == ["ImageTag: 'v1' -> 'v2'", "TargetDatabaseUrl: (NoEcho: value not shown)"]
    assert not any(url in line or "****" in line for line in lines)
