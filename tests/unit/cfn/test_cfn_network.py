"""The task's egress, as CloudFormation would deploy it with and without the VPC endpoints.

By default HTTPS goes to 0.0.0.0/0 (ECR, S3, Secrets Manager and CloudWatch Logs have no fixed
addresses). Given the interface endpoints' security group and S3's gateway prefix list, no rule
of the task's group reaches 0.0.0.0/0 any more, and the endpoints' group admits the task on 443.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfn_shapes import _evaluate, shape

from fluxion_cfn.stack import render

ENDPOINTS = {"AwsEndpointsSecurityGroupId": "sg-0fedcba9876543210", "S3PrefixListId": "pl-63a5400a"}
RAW: dict[str, Any] = json.loads(render("json"))


def _rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    return list(template["Resources"]["TaskSecurityGroup"]["Properties"]["SecurityGroupEgress"])


def _egress(template: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(port, destination kind, destination) of every inline egress rule of the task's group."""
    found = []
    for rule in _rules(template):
        (kind,) = {"CidrIp", "DestinationSecurityGroupId", "DestinationPrefixListId"} & set(rule)
        assert rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"]
        found.append((rule["FromPort"], kind, rule[kind]))
    return found


SQL_AND_NFS = [
    ({"Ref": "SqlServerPort"}, "CidrIp", {"Ref": "SourceCidr"}),
    ({"Ref": "SqlServerAltPort"}, "CidrIp", {"Ref": "SourceCidr"}),
    (2049, "DestinationSecurityGroupId", {"Ref": "EfsSecurityGroupId"}),
]


def test_by_default_https_goes_anywhere_and_nothing_else_does() -> None:
    template = shape()
    assert _egress(template) == [*SQL_AND_NFS, (443, "CidrIp", "0.0.0.0/0")]
    assert not {"AwsEndpointsIngressFromTask", "TaskEgressToS3"} & set(template["Resources"])
    assert all(rule["Description"] for rule in _rules(template))


def test_with_the_endpoints_no_rule_reaches_the_internet() -> None:
    template = shape(ENDPOINTS)
    assert _egress(template) == [
        *SQL_AND_NFS,
        (443, "DestinationSecurityGroupId", {"Ref": "AwsEndpointsSecurityGroupId"}),
    ]
    (rule,) = [r for r in _rules(template) if r["FromPort"] == 443]
    assert rule["Description"].startswith("HTTPS to the VPC interface endpoints")
    s3 = template["Resources"]["TaskEgressToS3"]
    assert (s3["Type"], s3["Properties"]) == ("AWS::EC2::SecurityGroupEgress", {
        "GroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "DestinationPrefixListId": {"Ref": "S3PrefixListId"},
        "Description": "HTTPS to S3 through its gateway endpoint (ECR image layers)",
    })  # fmt: skip
    # every egress of the task's group, wherever declared: none reaches 0.0.0.0/0
    separate = [r["Properties"] for r in template["Resources"].values()
                if r["Type"] == "AWS::EC2::SecurityGroupEgress"]  # fmt: skip
    anywhere = [r for r in [*_rules(template), *separate] if str(r.get("CidrIp")).endswith("/0")]
    assert anywhere == []
    ingress = template["Resources"]["AwsEndpointsIngressFromTask"]["Properties"]
    assert ingress == {
        "GroupId": {"Ref": "AwsEndpointsSecurityGroupId"},
        "IpProtocol": "tcp",
        "FromPort": 443,
        "ToPort": 443,
        "SourceSecurityGroupId": {"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]},
        "Description": {"Fn::Sub": "HTTPS from the fluxion ${AWS::StackName} ETL task"},
    }


def _rule_holds(values: dict[str, str]) -> bool:
    parameters = {name: str(p.get("Default", "")) for name, p in RAW["Parameters"].items()}
    parameters.update(values)
    (assertion,) = RAW["Rules"]["AwsEndpointsTogether"]["Assertions"]
    return bool(_evaluate(assertion["Assert"], parameters, {}))


@pytest.mark.parametrize(
    ("values", "holds"),
    [
        ({}, True),
        (ENDPOINTS, True),
        ({"AwsEndpointsSecurityGroupId": ENDPOINTS["AwsEndpointsSecurityGroupId"]}, False),
        ({"S3PrefixListId": ENDPOINTS["S3PrefixListId"]}, False),
    ],
    ids=["neither", "both", "endpoints alone", "prefix list alone"],
)
def test_the_endpoints_and_the_prefix_list_are_given_together(
    values: dict[str, str], holds: bool
) -> None:
    """One without the other would cut the task off its image layers (S3) or its APIs."""
    assert _rule_holds(values) is holds


@pytest.mark.parametrize(
    ("name", "value"),
    [("AwsEndpointsSecurityGroupId", "vpce-0123456789abcdef0"), ("S3PrefixListId", "sg-01234567")],
)
def test_the_parameters_take_only_their_kind_of_id(name: str, value: str) -> None:
    assert re.fullmatch(RAW["Parameters"][name]["AllowedPattern"], ENDPOINTS[name])
    assert not re.fullmatch(RAW["Parameters"][name]["AllowedPattern"], value)
