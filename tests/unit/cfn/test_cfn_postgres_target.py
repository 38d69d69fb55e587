"""The optional PostgreSQL target in the stack: both shapes, golden, and what setting it adds.

Empty (the default), the stack is the golden file ``golden/fluxion-etl.without-target.yaml``:
the template before the target existed (commit 74bcab6's, byte for byte, plus the snapshot guard's
two parameters added since). Set, the shape is that golden plus exactly the pieces written out
below: nothing derived from the code under test.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import cfn_flip
import pytest
from cfn_shapes import (
    EXAMPLE_TARGET,
    EXAMPLE_TARGET_KEY,
    GOLDEN_WITHOUT_TARGET,
    OPTIONAL,
    OPTIONAL_RULES,
    REGENERATE,
    _evaluate,
    shape,
    to_yaml,
    without_target,
)

from fluxion_cfn.stack import render

SET = EXAMPLE_TARGET
KEY = EXAMPLE_TARGET_KEY
RAW: dict[str, Any] = json.loads(render("json"))
EMPTY = shape()
WITH_TARGET = shape(SET)
WITH_TARGET_AND_KEY = shape({**SET, **KEY})
GOLDEN: dict[str, Any] = json.loads(
    json.dumps(cfn_flip.load_yaml(GOLDEN_WITHOUT_TARGET.read_text()))
)
CONTAINER = ("TaskDefinition", "Properties", "ContainerDefinitions", 0)
#: The VPC endpoints option's own resource (tests/unit/cfn/test_cfn_network.py), not the target's.
ENDPOINTS_OPTION = {"AwsEndpointsIngressFromTask", "TaskEgressToS3"}

#: What setting the target adds, written out (CloudFormation's JSON of each piece).
READ_POLICY = {
    "Type": "AWS::IAM::Policy",
    "Properties": {
        "PolicyName": "TargetCredentialsRead",
        "Roles": [{"Ref": "ExecutionRole"}],
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadTargetCredentials",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": [{"Ref": "TargetSecretArn"}],
                }
            ],
        },
    },
}
EGRESS = {
    "Type": "AWS::EC2::SecurityGroupEgress",
    "Properties": {
        "GroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "DestinationSecurityGroupId": {"Ref": "TargetSecurityGroupId"},
        "Description": "PostgreSQL target (DATABASE_URL)",
    },
}
INGRESS = {
    "Type": "AWS::EC2::SecurityGroupIngress",
    "Properties": {
        "GroupId": {"Ref": "TargetSecurityGroupId"},
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "SourceSecurityGroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
        "Description": {"Fn::Sub": "PostgreSQL from the fluxion ${AWS::StackName} ETL task"},
    },
}
URL_ENTRY = {"Name": "DATABASE_URL", "Value": {"Ref": "TargetDatabaseUrl"}}
PATH_ENTRY = {"Name": "DATABASE_PATH", "Value": "/data/fluxion.duckdb"}
LAYOUT_ENTRY = {"Name": "ETL_TARGET_LAYOUT", "Value": {"Ref": "TargetTableLayout"}}
LAYOUT = {"TargetTableLayout": "inventario_actual"}
PASSWORD_ENTRY = {
    "Name": "PGPASSWORD",
    "ValueFrom": {"Fn::Sub": ["${Arn}:password::", {"Arn": {"Ref": "TargetSecretArn"}}]},
}
DECRYPT_POLICY = {
    "Type": "AWS::IAM::Policy",
    "Properties": {
        "PolicyName": "TargetCredentialsDecrypt",
        "Roles": [{"Ref": "ExecutionRole"}],
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DecryptTargetCredentials",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": [{"Ref": "TargetSecretKmsKeyArn"}],
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": {
                                "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"
                            }
                        }
                    },
                }
            ],
        },
    },
}


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _differences(a: Any, b: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths where ``a`` and ``b`` differ (a mapping with other keys, or a list of another
    length, differs as a whole)."""
    if isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b):
        for key in sorted(a):
            yield from _differences(a[key], b[key], (*path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, (*path, index))
    elif a != b:
        yield path


def _rule_failures(values: Mapping[str, str]) -> list[str]:
    """The rule's assertions that fail for these values (others at their defaults), evaluated as
    CloudFormation does before it creates a change set."""
    parameters = {name: str(p.get("Default", "")) for name, p in RAW["Parameters"].items()}
    parameters.update(values)
    return [
        assertion["AssertDescription"]
        for rule in RAW["Rules"].values()
        for assertion in rule["Assertions"]
        if not _evaluate(assertion["Assert"], parameters, {})
    ]


# --- empty: the stack before the target -------------------------------------------------------


def test_unset_the_stack_is_the_golden_one_without_a_target() -> None:
    assert to_yaml(without_target(EMPTY)) == GOLDEN_WITHOUT_TARGET.read_text(), (
        f"the stack without a PostgreSQL target changed; if that is meant, regenerate the golden"
        f" file: {REGENERATE}"
    )


def test_the_target_changes_todays_resources_only_in_the_containers_entries() -> None:
    """Raw template against the golden: every resource of today's is untouched except the
    container, where the DuckDB entry sits in an Fn::If and ETL_TARGET_LAYOUT and PGPASSWORD
    are added in one each."""
    added = {
        name: r
        for name, r in RAW["Resources"].items()
        if name not in GOLDEN["Resources"] and name not in ENDPOINTS_OPTION
    }
    assert {name: r.get("Condition") for name, r in added.items()} == {
        "TargetCredentialsRead": "HasPostgresTarget",
        "TargetCredentialsDecrypt": "HasTargetSecretKmsKey",
        "TaskEgressToTarget": "HasPostgresTarget",
        "TargetIngressFromTask": "HasPostgresTarget",
    }
    today = {name: RAW["Resources"][name] for name in GOLDEN["Resources"]}
    environment = (*CONTAINER, "Environment")
    secrets = (*CONTAINER, "Secrets")
    # the endpoints option switches the HTTPS rule's destination
    egress = ("TaskSecurityGroup", "Properties", "SecurityGroupEgress", 3)
    assert list(_differences(today, GOLDEN["Resources"])) == [environment, secrets, egress]
    assert _at(today, environment) == [
        {"Fn::If": ["HasPostgresTarget", URL_ENTRY, PATH_ENTRY]},
        *_at(GOLDEN["Resources"], environment)[1:],
        {"Fn::If": ["HasPostgresTarget", LAYOUT_ENTRY, {"Ref": "AWS::NoValue"}]},
    ]
    assert _at(GOLDEN["Resources"], environment)[0] == PATH_ENTRY
    assert _at(today, secrets) == [
        *_at(GOLDEN["Resources"], secrets),
        {"Fn::If": ["HasPostgresTarget", PASSWORD_ENTRY, {"Ref": "AWS::NoValue"}]},
    ]
    assert RAW["Outputs"] == GOLDEN["Outputs"]


def test_the_rest_of_the_text_differs_only_by_the_targets_declarations() -> None:
    """Parameters, their console group, conditions and the rule: what CloudFormation cannot
    leave out of a template even when they switch nothing on."""
    targets = {name for name in RAW["Parameters"] if name.startswith("Target")}
    assert targets == {*SET, *KEY, *LAYOUT}
    assert {k: v for k, v in RAW["Parameters"].items() if k not in targets} == GOLDEN["Parameters"]
    assert all(RAW["Parameters"][name]["Default"] == "" for name in targets)
    assert {k: v for k, v in RAW["Conditions"].items() if k not in OPTIONAL} == GOLDEN["Conditions"]
    assert sorted(RAW["Rules"]) == sorted(OPTIONAL_RULES) and "Rules" not in GOLDEN
    groups = RAW["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert groups[:-1] == GOLDEN["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert set(groups[-1]["Parameters"]) == targets
    rest = {"Parameters", "Conditions", "Rules", "Metadata", "Resources", "Outputs"}
    assert {k: v for k, v in RAW.items() if k not in rest} == {
        k: v for k, v in GOLDEN.items() if k not in rest
    }


def test_the_resolver_would_see_a_change_to_todays_resources() -> None:
    """The golden comparison can fail: the set shape is not the golden one."""
    assert to_yaml(without_target(WITH_TARGET)) != GOLDEN_WITHOUT_TARGET.read_text()
    with pytest.raises(KeyError):
        shape({"TargetDatabaseUrll": "typo"})


# --- set: exactly the target's pieces ---------------------------------------------------------


def _golden_plus_the_target() -> dict[str, Any]:
    expected = copy.deepcopy(without_target(EMPTY))
    resources = expected["Resources"]
    resources.update(
        TargetCredentialsRead=READ_POLICY, TaskEgressToTarget=EGRESS, TargetIngressFromTask=INGRESS
    )
    container = _at(resources, CONTAINER)
    container["Environment"] = [
        URL_ENTRY if entry == PATH_ENTRY else entry for entry in container["Environment"]
    ] + [LAYOUT_ENTRY]
    container["Secrets"].append(PASSWORD_ENTRY)
    return expected


def test_set_the_stack_is_the_golden_one_plus_exactly_the_targets_pieces() -> None:
    assert without_target(WITH_TARGET) == _golden_plus_the_target()


def test_set_with_the_secrets_kms_key_adds_only_its_decrypt_on_that_key() -> None:
    expected = _golden_plus_the_target()
    expected["Resources"]["TargetCredentialsDecrypt"] = DECRYPT_POLICY
    assert without_target(WITH_TARGET_AND_KEY) == expected


def test_set_the_task_reads_the_url_and_the_password_from_that_secret_only() -> None:
    container = _at(WITH_TARGET["Resources"], CONTAINER)
    env = {v["Name"]: v["Value"] for v in container["Environment"] if "Name" in v}
    assert env["DATABASE_URL"] == {"Ref": "TargetDatabaseUrl"}
    assert "DATABASE_PATH" not in env  # both set would be a configuration error (exit 2)
    assert env["ETL_TARGET_LAYOUT"] == {"Ref": "TargetTableLayout"}  # empty: inventario_raw
    secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert secrets["PGPASSWORD"] == PASSWORD_ENTRY["ValueFrom"]
    # the execution role reads that secret; the task role (the ETL itself) never does
    assert "TargetSecretArn" not in repr(WITH_TARGET["Resources"]["TaskRole"])
    reads = [
        (name, s["Resource"])
        for name, r in WITH_TARGET_AND_KEY["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert reads == [
        ("TargetCredentialsDecrypt", [{"Ref": "TargetSecretKmsKeyArn"}]),
        ("TargetCredentialsRead", [{"Ref": "TargetSecretArn"}]),
    ]


def test_set_5432_goes_only_to_the_targets_group_which_admits_only_the_task() -> None:
    on_5432 = {name: r for name, r in WITH_TARGET["Resources"].items() if "5432" in json.dumps(r)}
    assert on_5432 == {"TaskEgressToTarget": EGRESS, "TargetIngressFromTask": INGRESS}


# --- the rule: all three or none, the key only with them ---------------------------------------


@pytest.mark.parametrize(
    "values",
    [{}, SET, {**SET, **KEY}, {**SET, **LAYOUT}],
    ids=["empty", "all three", "all three and the key", "all three and the layout"],
)
def test_a_whole_target_or_none_passes_the_rule(values: dict[str, str]) -> None:
    assert _rule_failures(values) == []


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        (
            {"TargetDatabaseUrl": SET["TargetDatabaseUrl"]},
            ["TargetSecretArn", "TargetSecurityGroupId"],
        ),
        ({k: v for k, v in SET.items() if k != "TargetSecurityGroupId"}, ["TargetSecurityGroupId"]),
        ({"TargetSecretArn": SET["TargetSecretArn"]}, ["TargetSecretArn"]),
        (KEY, ["TargetSecretKmsKeyArn"]),
        (LAYOUT, ["TargetTableLayout"]),
    ],
    ids=["url alone", "without the group", "secret alone", "key alone", "layout alone"],
)
def test_a_partial_target_is_refused_by_the_rule_before_any_change(
    values: dict[str, str], refused: list[str]
) -> None:
    failures = _rule_failures(values)
    assert len(failures) == len(refused)
    assert all(name in failure for name, failure in zip(refused, failures, strict=True))


# --- the URL parameter: no password, no plaintext, never echoed ----------------------------------

URL_PARAMETER = RAW["Parameters"]["TargetDatabaseUrl"]


def _allowed(url: str) -> bool:
    """CloudFormation's check of the value: the whole value matches AllowedPattern (a Java
    regex there; the pattern uses nothing Python reads differently)."""
    return re.fullmatch(URL_PARAMETER["AllowedPattern"], url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "",
        SET["TargetDatabaseUrl"],
        "postgres://fluxion_etl@db.internal/app",
        "postgresql://fluxion_etl@db.internal:5432/app?sslmode=verify-full",
        "postgresql://u@h/app?sslmode=require&application_name=fluxion",
        "postgresql://u@h/app?sslrootcert=/etc/ssl/certs/rds.pem&sslmode=verify-ca",
    ],
)
def test_the_url_pattern_accepts_a_url_without_a_secret(url: str) -> None:
    assert _allowed(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@h/db",
        "postgresql://:pw@h/db",
        "postgresql://u@h/db?password=x",
        "postgresql://u@h/db?sslmode=require&password=x",
        "postgresql://u@h/db?PASSWORD=x",
        "postgresql://u@h/db?sslpassword=x",
        "postgresql://u@h/db?pass%77ord=x",  # libpq percent-decodes query keys
        "postgresql://u@h/db?sslmode=disable",
        "postgresql://u@h/db?application_name=a&sslmode=disable",
        "postgresql://u@h/db?sslmode=disable&application_name=a",
        "postgresql://u@h/db?sslmode=DISABLE",
        "postgresql://u@h/db?sslmode=dis%61ble",
        "postgresql://u@h/db?sslmode=prefer",  # falls back to plaintext
        "postgresql://u@h/db?sslmode=allow",
        "postgresql://h/db",  # no user: not what the ETL needs
        "mysql://u@h/db",
    ],
)
def test_the_url_pattern_refuses_a_password_and_plaintext(url: str) -> None:
    assert not _allowed(url)


def test_the_url_is_no_echo_so_describe_stacks_never_shows_it() -> None:
    assert URL_PARAMETER["NoEcho"] is True
    assert URL_PARAMETER["Default"] == ""  # the pattern's empty branch: the DuckDB stack
