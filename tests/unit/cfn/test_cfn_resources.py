"""Targeted asserts on each planned part of the stack, and on the plan's defects staying gone.

The golden test says *that* the template changed; these say *whether it is still right*.
"""

import json
import re
from typing import Any

import pytest
from cfn_shapes import shape

from fluxion_cfn.stack import render
from fluxion_etl.config import Settings

TEMPLATE: dict[str, Any] = shape()  # optional parts unset: today's stack (cfn_shapes.py)
TEXT = render("yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
#: What EC2 accepts in a security group (rule) description.
SG_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{1,255}$")


def props(name: str) -> dict[str, Any]:
    return dict(RESOURCES[name]["Properties"])


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def container() -> dict[str, Any]:
    (definition,) = props("TaskDefinition")["ContainerDefinitions"]
    return dict(definition)


def sub_text(value: Any) -> str:
    """The template string of a ``Fn::Sub`` (either form)."""
    sub = value["Fn::Sub"]
    return str(sub[0] if isinstance(sub, list) else sub)


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("TaskCpu", "2048"),
        ("TaskMemory", "4096"),
        ("ScheduleExpression", "rate(6 hours)"),
        ("SchedulePeriodSeconds", 21600),
        ("LogRetentionDays", 7),
        ("EtlTimeoutSeconds", 1800),
        ("EtlMaxRetries", 3),
        ("EtlBatchSize", 50000),
        ("EtlWorkers", ""),
        ("EtlLockWaitSeconds", 600),
        ("EtlEngine", "arrow"),
        ("EtlStores", ""),
        ("LogLevel", "INFO"),
        ("EtlTimezone", "America/Caracas"),
        ("EtlStockMinimo", 10),
        ("EtlStockMaximo", 100),
        ("EtlPuntoReorden", 20),
        ("EtlDuckdbStorageVersion", "v1.0.0"),
        ("EtlMaxShrink", "0.5"),
        ("EtlMaxRejected", "0.05"),
        ("SqlOdbcDriver", "ODBC Driver 18 for SQL Server"),
        ("SqlServerPort", 1433),
        ("SqlServerAltPort", 14348),
        ("SourceCidr", "192.168.0.0/16"),
        ("AlertEmail", ""),
        ("ExistingSecretArn", ""),
    ],
)
def test_parameters_default_to_the_plan(name: str, default: object) -> None:
    assert PARAMETERS[name]["Default"] == default


@pytest.mark.parametrize(
    ("name", "variable", "attribute"),
    [("EtlMaxShrink", "ETL_MAX_SHRINK", "max_shrink"),
     ("EtlMaxRejected", "ETL_MAX_REJECTED", "max_rejected")],
)  # fmt: skip
def test_the_guard_parameters_default_to_what_the_etl_reads_unset_and_allow_only_shares(
    name: str, variable: str, attribute: str
) -> None:
    parameter = PARAMETERS[name]
    assert float(parameter["Default"]) == getattr(Settings.from_env({}), attribute)
    share = re.compile(parameter["AllowedPattern"])
    for value in ("0", "0.5", "0.05", "1", "1.0", parameter["Default"]):
        assert share.fullmatch(value), value
        assert getattr(Settings.from_env({variable: value}), attribute) == float(value)
    for value in ("", "1.5", "2", "-0.1", "0,5", ".5x", "nan", "50%"):
        assert not share.fullmatch(value), value
    assert variable in parameter["Description"]


def test_accepting_a_shrink_is_no_stack_setting_but_one_run_task_s() -> None:
    # A standing ETL_ACCEPT_SHRINK would turn the guard off for every scheduled run.
    assert not any("ACCEPT" in p.upper() for p in PARAMETERS)
    assert "ETL_ACCEPT_SHRINK" not in {v["Name"] for v in _environment()}


def test_etl_workers_is_automatic_when_empty_and_else_a_count_from_1_to_64() -> None:
    workers = PARAMETERS["EtlWorkers"]
    assert workers["Type"] == "String"
    pattern = re.compile(workers["AllowedPattern"])
    assert all(pattern.match(value) for value in ("", "1", "21", "64"))
    assert not any(pattern.match(value) for value in ("0", "65", "4.5", " ", "auto"))


def test_schedule_state_is_a_choice_and_cron_is_allowed() -> None:
    assert PARAMETERS["ScheduleState"]["AllowedValues"] == ["ENABLED", "DISABLED"]
    pattern = re.compile(PARAMETERS["ScheduleExpression"]["AllowedPattern"])
    assert pattern.match("rate(6 hours)") and pattern.match("cron(0 */6 * * ? *)")
    assert "cron" in PARAMETERS["SchedulePeriodSeconds"]["Description"]


def test_every_parameter_is_described() -> None:
    assert all(len(p.get("Description", "")) > 10 for p in PARAMETERS.values())


def test_the_image_tag_and_the_shared_infrastructure_have_no_default() -> None:
    for name in ("ImageTag", "ClusterName", "FileSystemId", "AccessPointId", "VpcId"):
        assert "Default" not in PARAMETERS[name], name


# --- image -----------------------------------------------------------------------------------


def test_repository_scans_on_push_keeps_ten_images_immutable_and_retained() -> None:
    repo = RESOURCES["Repository"]
    assert repo["DeletionPolicy"] == "Retain"
    assert repo["UpdateReplacePolicy"] == "Retain"
    p = repo["Properties"]
    assert p["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert p["ImageTagMutability"] == "IMMUTABLE"
    (rule,) = json.loads(p["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    }
    assert rule["action"] == {"type": "expire"}


# --- secret ----------------------------------------------------------------------------------


def test_the_secret_is_created_without_a_value() -> None:
    secret = RESOURCES["SqlCredentials"]
    assert secret["Condition"] == "CreateSecret"
    assert not {"SecretString", "GenerateSecretString"} & set(secret["Properties"])
    assert TEMPLATE["Conditions"]["CreateSecret"] == {"Fn::Equals": [ref("ExistingSecretArn"), ""]}


def _leaves(node: Any, key: str = "") -> list[tuple[str, Any]]:
    """(key, value) of every scalar in the template, with the key it sits under."""
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, k)]
    if isinstance(node, list):
        return [leaf for item in node for leaf in _leaves(item, key)]
    return [(key, node)]


#: NoEcho parameters that hold no credential: hidden only so that a mistaken value never shows
#: in describe-stacks. TargetDatabaseUrl's AllowedPattern refuses any password
#: (tests/unit/cfn/test_cfn_postgres_target.py).
NO_ECHO_WITHOUT_CREDENTIAL = {"TargetDatabaseUrl"}
#: Keys whose text describes values a parameter refuses, not a value the template holds.
_REFUSALS = {"AllowedPattern", "ConstraintDescription"}


def credential_findings(template: dict[str, Any]) -> list[str]:
    """Anything in a template that looks like a credential written into it."""
    found = []
    for key, value in _leaves(template):
        if re.search(r"(?i)pass(word|wd)?$|pwd$|secret_?string|access_?key", key):
            found.append(f"key {key}")
        if key in _REFUSALS:
            continue
        if re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN|(?i:pwd|passw(or)?d)\s*=\s*[^;\s]", str(value)):
            found.append(f"value {value}")
    for name, parameter in template.get("Parameters", {}).items():
        hidden = parameter.get("NoEcho") and name not in NO_ECHO_WITHOUT_CREDENTIAL
        if re.search(r"(?i)pass|pwd|token|credential|user", name) or hidden:
            found.append(f"parameter {name}")
    return found


def test_no_credential_like_literal_is_in_the_template() -> None:
    assert credential_findings(TEMPLATE) == []
    env_names = {variable["Name"] for variable in _environment()}
    assert not env_names & {"SQL_USER", "SQL_PASS"}  # only as injected secrets


@pytest.mark.parametrize(
    "bad",
    [
        {"Resources": {"S": {"Properties": {"SecretString": '{"password": "x"}'}}}},
        {"Parameters": {"SqlPassword": {"Type": "String", "Default": "hunter2"}}},
        {"Resources": {"T": {"Properties": {"Value": "Driver=x;UID=sa;PWD=s3cret"}}}},
        {"Resources": {"U": {"Properties": {"Key": "AKIAABCDEFGHIJKLMNOP"}}}},
        {"Parameters": {"DbDsn": {"Type": "String", "NoEcho": True}}},  # a hidden one: a secret
        {"Resources": {"T": {"Properties": {"Description": "Server=h;Password=s3cret"}}}},
    ],
)
def test_the_credential_scan_catches_the_plans_defect(bad: dict[str, Any]) -> None:
    assert credential_findings(bad)


# --- task ------------------------------------------------------------------------------------


def _environment() -> list[dict[str, Any]]:
    variables = []
    for variable in container()["Environment"]:
        if "Fn::If" in variable:  # conditional ETL_TIENDAS
            variables.append(variable["Fn::If"][1])
        else:
            variables.append(variable)
    return variables


def test_task_definition_is_fargate_with_the_plan_size() -> None:
    p = props("TaskDefinition")
    assert p["RequiresCompatibilities"] == ["FARGATE"]
    assert p["NetworkMode"] == "awsvpc"
    assert (p["Cpu"], p["Memory"]) == (ref("TaskCpu"), ref("TaskMemory"))
    assert p["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    assert p["TaskRoleArn"] == {"Fn::GetAtt": ["TaskRole", "Arn"]}


def test_efs_volume_uses_tls_iam_and_the_access_point_mounted_read_write_at_data() -> None:
    (volume,) = props("TaskDefinition")["Volumes"]
    efs = volume["EFSVolumeConfiguration"]
    assert efs["FilesystemId"] == ref("FileSystemId")
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"] == {"AccessPointId": ref("AccessPointId"), "IAM": "ENABLED"}
    assert container()["MountPoints"] == [
        {"SourceVolume": volume["Name"], "ContainerPath": "/data", "ReadOnly": False}
    ]


def test_container_runs_the_etl_as_non_root_with_init_and_a_120s_stop_timeout() -> None:
    c = container()
    assert c["Command"] == ["fluxion-etl", "run"]
    assert c["StopTimeout"] == 120
    assert c["LinuxParameters"]["InitProcessEnabled"] is True
    user = c["User"].split(":")[0]
    assert user not in ("", "0", "root")
    assert sub_text(c["Image"]) == "${Repository.RepositoryUri}:${ImageTag}"


def test_the_container_memory_reservation_fits_the_smallest_fargate_task() -> None:
    # A soft floor, never above the task's hard limit: 512 MiB is Fargate's smallest task memory.
    assert 0 < container()["MemoryReservation"] <= 512
    assert "Memory" not in container()  # no container hard limit below TaskMemory


def test_container_environment_is_the_designs() -> None:
    values = {v["Name"]: v["Value"] for v in _environment()}
    assert values == {
        "DATABASE_PATH": "/data/fluxion.duckdb",
        "ETL_STORES_FILE": "/data/stores.toml",
        "ETL_TIENDAS": ref("EtlStores"),
        "ETL_ENGINE": ref("EtlEngine"),
        "ETL_BATCH_SIZE": ref("EtlBatchSize"),
        "ETL_WORKERS": ref("EtlWorkers"),
        "ETL_MAX_RETRIES": ref("EtlMaxRetries"),
        "ETL_TIMEOUT_SECONDS": ref("EtlTimeoutSeconds"),
        "ETL_LOCK_WAIT_SECONDS": ref("EtlLockWaitSeconds"),
        "ETL_STALE_AFTER_SECONDS": ref("EtlStaleAfterSeconds"),
        "SQL_ODBC_DRIVER": ref("SqlOdbcDriver"),
        "LOG_LEVEL": ref("LogLevel"),
        "ETL_TIMEZONE": ref("EtlTimezone"),
        "ETL_STOCK_MINIMO": ref("EtlStockMinimo"),
        "ETL_STOCK_MAXIMO": ref("EtlStockMaximo"),
        "ETL_PUNTO_REORDEN": ref("EtlPuntoReorden"),
        "ETL_DUCKDB_STORAGE_VERSION": ref("EtlDuckdbStorageVersion"),
        "ETL_MAX_SHRINK": ref("EtlMaxShrink"),
        "ETL_MAX_REJECTED": ref("EtlMaxRejected"),
        "ENVIRONMENT": ref("EnvironmentName"),
        "RUN_MODE": "scheduled",
        "ETL_MODE": "inventario",
    }
    (conditional,) = [v for v in container()["Environment"] if "Fn::If" in v]
    assert conditional["Fn::If"][0] == "HasStoreFilter"


def test_sql_credentials_are_injected_from_the_secrets_json_keys() -> None:
    secret_arn = {"Fn::If": ["CreateSecret", ref("SqlCredentials"), ref("ExistingSecretArn")]}
    injected = {s["Name"]: s["ValueFrom"]["Fn::Sub"] for s in container()["Secrets"]}
    assert injected == {
        "SQL_USER": ["${Arn}:username::", {"Arn": secret_arn}],
        "SQL_PASS": ["${Arn}:password::", {"Arn": secret_arn}],
    }


def test_logs_go_to_the_stacks_own_log_group_with_retention() -> None:
    options = container()["LogConfiguration"]["Options"]
    assert container()["LogConfiguration"]["LogDriver"] == "awslogs"
    assert options["awslogs-group"] == ref("LogGroup")
    assert options["awslogs-region"] == ref("AWS::Region")
    assert options["mode"] == "blocking"
    group = props("LogGroup")
    assert group["RetentionInDays"] == ref("LogRetentionDays")
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}


# --- network ---------------------------------------------------------------------------------


def test_task_security_group_has_only_the_needed_described_egress() -> None:
    egress = props("TaskSecurityGroup")["SecurityGroupEgress"]
    assert all(rule["Description"] for rule in egress)
    assert all(rule["IpProtocol"] == "tcp" for rule in egress)
    assert all(rule["FromPort"] == rule["ToPort"] for rule in egress)
    targets = sorted(
        json.dumps([rule["FromPort"], rule.get("CidrIp") or rule.get("DestinationSecurityGroupId")])
        for rule in egress
    )
    assert targets == sorted(
        json.dumps(t)
        for t in [
            [ref("SqlServerPort"), ref("SourceCidr")],
            [ref("SqlServerAltPort"), ref("SourceCidr")],
            [2049, ref("EfsSecurityGroupId")],
            [443, "0.0.0.0/0"],
        ]
    )


def test_security_group_descriptions_use_only_characters_ec2_accepts() -> None:
    descriptions = [props("TaskSecurityGroup")["GroupDescription"]]
    descriptions += [r["Description"] for r in props("TaskSecurityGroup")["SecurityGroupEgress"]]
    descriptions.append(props("EfsIngressFromTask")["Description"])
    for description in descriptions:
        text = sub_text(description) if isinstance(description, dict) else description
        assert SG_DESCRIPTION.match(text), text


def test_the_efs_group_admits_nfs_from_the_task_group() -> None:
    assert props("EfsIngressFromTask") | {"Description": None} == {
        "GroupId": ref("EfsSecurityGroupId"),
        "IpProtocol": "tcp",
        "FromPort": 2049,
        "ToPort": 2049,
        "SourceSecurityGroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
        "Description": None,
    }


def test_no_allow_all_traffic_anywhere() -> None:
    for name, resource in RESOURCES.items():
        blob = json.dumps(resource)
        assert '"IpProtocol": "-1"' not in blob, name
        assert "::/0" not in blob, name
    open_rules = [
        rule
        for rule in props("TaskSecurityGroup")["SecurityGroupEgress"]
        if rule.get("CidrIp") == "0.0.0.0/0"
    ]
    assert [(r["FromPort"], r["ToPort"]) for r in open_rules] == [(443, 443)]
    assert "SecurityGroupIngress" not in props("TaskSecurityGroup")


# --- schedule --------------------------------------------------------------------------------


def test_schedule_runs_one_fargate_task_in_private_subnets_without_public_ip() -> None:
    p = props("ScheduleRule")
    assert p["ScheduleExpression"] == ref("ScheduleExpression")
    assert p["State"] == ref("ScheduleState")
    (target,) = p["Targets"]
    assert "cluster/${ClusterName}" in sub_text(target["Arn"])
    assert target["RoleArn"] == {"Fn::GetAtt": ["ScheduleRole", "Arn"]}
    ecs = target["EcsParameters"]
    assert ecs["TaskDefinitionArn"] == ref("TaskDefinition")
    assert ecs["LaunchType"] == "FARGATE"
    assert ecs["TaskCount"] == 1
    assert ecs["PropagateTags"] == "TASK_DEFINITION"
    vpc = ecs["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert vpc["Subnets"] == ref("PrivateSubnetIds")
    assert vpc["AssignPublicIp"] == "DISABLED"
    assert vpc["SecurityGroups"] == [{"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]}]
    retry = target["RetryPolicy"]
    assert retry["MaximumRetryAttempts"] >= 1
    assert 60 <= retry["MaximumEventAgeInSeconds"] <= 21600


# --- alerting --------------------------------------------------------------------------------


def test_alerts_go_to_an_encrypted_topic_with_an_optional_email_subscription() -> None:
    assert props("AlertTopic")["KmsMasterKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
    subscription = RESOURCES["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"] == {
        "Protocol": "email",
        "Endpoint": ref("AlertEmail"),
        "TopicArn": ref("AlertTopic"),
    }


def test_topic_policy_lets_only_this_stacks_rule_and_alarms_publish_to_this_topic() -> None:
    p = props("AlertTopicPolicy")
    assert p["Topics"] == [ref("AlertTopic")]
    by_service = {s["Principal"]["Service"]: s for s in p["PolicyDocument"]["Statement"]}
    assert set(by_service) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    for statement in by_service.values():
        assert statement["Action"] == ["sns:Publish"]
        assert statement["Resource"] == [ref("AlertTopic")]
    assert by_service["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": ["TaskFailedRule", "Arn"]}]}
    }
    alarm_arns = by_service["cloudwatch.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    alarms = sorted(of_type("AWS::CloudWatch::Alarm"))
    assert sorted(arn["Fn::GetAtt"][0] for arn in alarm_arns) == alarms


def test_task_failure_rule_watches_this_family_stopping_badly_or_not_starting() -> None:
    p = props("TaskFailedRule")
    pattern = p["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    detail = pattern["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    assert "cluster/${ClusterName}" in sub_text(detail["clusterArn"][0])
    (family,) = detail["taskDefinitionArn"]
    assert sub_text(family["prefix"]).endswith(":task-definition/${AWS::StackName}-etl:")
    assert sub_text(props("TaskDefinition")["Family"]) == "${AWS::StackName}-etl"
    assert detail["$or"] == [
        {"containers": {"exitCode": [{"numeric": [">", 0]}]}},
        {"stopCode": ["TaskFailedToStart"]},
    ]
    (target,) = p["Targets"]
    assert target["Arn"] == ref("AlertTopic")
    assert p["State"] == "ENABLED"


def test_alarms_watch_the_schedule_and_the_etls_own_metrics() -> None:
    alarms = {name: r["Properties"] for name, r in of_type("AWS::CloudWatch::Alarm").items()}
    assert all(a["AlarmActions"] == [ref("AlertTopic")] for a in alarms.values())
    watched = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert watched == {
        ("AWS/Events", "FailedInvocations"),
        ("Fluxion/ETL", "DurationSeconds"),
        ("Fluxion/ETL", "RunSucceeded"),
        ("Fluxion/ETL", "StoresStale"),
    }
    for alarm in alarms.values():
        if alarm["Namespace"] == "Fluxion/ETL":
            assert alarm["Dimensions"] == [{"Name": "Environment", "Value": ref("EnvironmentName")}]

    failed = alarms["ScheduleFailedAlarm"]
    assert failed["Dimensions"] == [{"Name": "RuleName", "Value": ref("ScheduleRule")}]
    assert (failed["Statistic"], failed["ComparisonOperator"], failed["Threshold"]) == (
        "Sum", "GreaterThanThreshold", 0,
    )  # fmt: skip

    duration = alarms["RunDurationAlarm"]
    assert duration["Statistic"] == "Maximum"
    assert duration["Threshold"] == ref("EtlTimeoutSeconds")
    assert duration["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_a_stale_store_alarms_once_per_schedule_period_until_it_is_fresh_again() -> None:
    alarm = props("StoresStaleAlarm")
    assert (alarm["MetricName"], alarm["Statistic"]) == ("StoresStale", "Maximum")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["Period"] == ref("SchedulePeriodSeconds") and alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "ignore"  # no run at all: the dead-man alarm's job
    assert PARAMETERS["EtlStaleAfterSeconds"]["Default"] == 2 * 21600
    assert PARAMETERS["EtlStaleAfterSeconds"]["MinValue"] == 60  # as ETL_STALE_AFTER_SECONDS


def test_dead_man_alarm_fires_after_two_schedule_periods_without_success() -> None:
    alarm = props("NoSuccessfulRunAlarm")
    assert (alarm["MetricName"], alarm["Statistic"]) == ("RunSucceeded", "Sum")
    assert alarm["Period"] == ref("SchedulePeriodSeconds")
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 2
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["ActionsEnabled"] == {"Fn::If": ["ScheduleEnabled", True, False]}


def test_the_plans_nonexistent_metric_is_gone() -> None:
    assert "TaskStoppedReason" not in TEXT
    namespaces = {a["Properties"]["Namespace"] for a in of_type("AWS::CloudWatch::Alarm").values()}
    assert "AWS/ECS" not in namespaces


# --- outputs ---------------------------------------------------------------------------------


def test_outputs_are_exported_and_name_the_real_resources() -> None:
    outputs = TEMPLATE["Outputs"]
    assert {
        "RepositoryUri": {"Fn::GetAtt": ["Repository", "RepositoryUri"]},
        "TaskDefinitionArn": ref("TaskDefinition"),
        "LogGroupName": ref("LogGroup"),
        "SecurityGroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
        "AlertTopicArn": ref("AlertTopic"),
        "ScheduleRuleName": ref("ScheduleRule"),
        "StoreSyncStateMachineArn": ref("StoreSyncStateMachine"),
        "StartStoreSyncPolicyArn": ref("StartStoreSyncPolicy"),
    }.items() <= {name: o["Value"] for name, o in outputs.items()}.items()
    assert "RunTaskPolicyArn" not in outputs  # the backend gets no ecs:RunTask any more
    for name, output in outputs.items():
        assert sub_text(output["Export"]["Name"]) == f"${{AWS::StackName}}-{name}"
    assert RESOURCES["LogGroup"]["Type"] == "AWS::Logs::LogGroup"


def test_checkov_skips_if_any_carry_a_written_reason() -> None:
    for name, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
            assert len(skip.get("comment", "")) > 30, f"{name}: {skip['id']} needs a reason"
