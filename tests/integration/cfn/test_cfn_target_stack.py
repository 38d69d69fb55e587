"""The committed template with the optional PostgreSQL target set, created in moto on 127.0.0.1.

The unit tests (tests/unit/cfn/test_cfn_postgres_target.py) hold both shapes to their golden form;
this one shows that the set shape comes up as a stack and that what it creates is wired as the
issue asks: the task reads ``DATABASE_URL`` and gets ``PGPASSWORD`` from the target's secret, the
execution role may read that secret (and decrypt it with its key) and nothing else of the kind,
the target's group admits the task on 5432 (moto skips the egress rule: the unit tests hold it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aws_local import MotoEndpoint, create_shared_infrastructure, create_stack

pytestmark = [
    pytest.mark.aws,
    # moto announces each resource type its CloudFormation skips (test_cfn_stack.py lists them)
    pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
]

TEMPLATE = Path(__file__).resolve().parents[3] / "templates" / "fluxion-etl.yaml"
STACK = "fluxion-pg-it"
URL = "postgresql://fluxion_etl@inventario.internal:5432/app"


@pytest.fixture(scope="module")
def created(moto_endpoint: MotoEndpoint) -> dict[str, Any]:
    """The shared infrastructure, the target's group, secret and key, then the stack."""
    infrastructure = create_shared_infrastructure(
        moto_endpoint, name="fluxion-pg", cidr_prefix="10.40"
    )
    target_group = moto_endpoint.client("ec2").create_security_group(
        GroupName="inventario-rds", Description="the backend's RDS", VpcId=infrastructure["VpcId"]
    )["GroupId"]
    key = moto_endpoint.client("kms").create_key(Description="RDS secret key")["KeyMetadata"]
    secret = moto_endpoint.client("secretsmanager").create_secret(
        Name="rds!db-inventario", KmsKeyId=key["KeyId"]
    )["ARN"]
    parameters = {
        **infrastructure,
        "EnvironmentName": "pg-it",  # the ECR repository fluxion-etl-<it>: one per account
        "ImageTag": "v1",
        "TargetDatabaseUrl": URL,
        "TargetSecretArn": secret,
        "TargetSecurityGroupId": target_group,
        "TargetSecretKmsKeyArn": key["Arn"],
    }
    described = create_stack(moto_endpoint, STACK, TEMPLATE.read_text(encoding="utf-8"), parameters)
    cfn = moto_endpoint.client("cloudformation")
    resources = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId")
        for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return {
        "status": described["StackStatus"],
        "parameters": parameters,
        "resources": resources,
        "outputs": outputs,
    }


def test_the_stack_with_a_target_is_created(created: dict[str, Any]) -> None:
    assert created["status"] == "CREATE_COMPLETE"
    for name in ("TargetCredentialsRead", "TargetCredentialsDecrypt", "TargetIngressFromTask"):
        assert name in created["resources"], name


def test_the_task_reads_the_url_and_gets_the_password_from_the_targets_secret(
    moto_endpoint: MotoEndpoint, created: dict[str, Any]
) -> None:
    ecs = moto_endpoint.client("ecs")
    arn = created["outputs"]["TaskDefinitionArn"]
    (container,) = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
        "containerDefinitions"
    ]
    env = {e["name"]: e["value"] for e in container["environment"] if e}
    assert env["DATABASE_URL"] == URL
    assert "DATABASE_PATH" not in env  # both would be a configuration error in the ETL (exit 2)
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"] if s}
    assert secrets["PGPASSWORD"] == f"{created['parameters']['TargetSecretArn']}:password::"
    assert all("PASSWORD" not in name.upper() or name == "PGPASSWORD" for name in env)


def test_the_execution_role_may_read_that_secret_and_decrypt_with_that_key_only(
    moto_endpoint: MotoEndpoint, created: dict[str, Any]
) -> None:
    iam = moto_endpoint.client("iam")
    role = created["resources"]["ExecutionRole"]
    names = sorted(iam.list_role_policies(RoleName=role)["PolicyNames"])
    assert names == ["ExecutionRole", "TargetCredentialsDecrypt", "TargetCredentialsRead"]

    def statements(name: str) -> list[dict[str, Any]]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):  # moto may return it URL-encoded
            document = json.loads(unquote(document))
        return list(document["Statement"])

    (read,) = statements("TargetCredentialsRead")
    assert (read["Action"], read["Resource"]) == (
        ["secretsmanager:GetSecretValue"],
        [created["parameters"]["TargetSecretArn"]],
    )
    (decrypt,) = statements("TargetCredentialsDecrypt")
    assert (decrypt["Action"], decrypt["Resource"]) == (
        ["kms:Decrypt"],
        [created["parameters"]["TargetSecretKmsKeyArn"]],
    )
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }
    task_role = created["resources"]["TaskRole"]
    task_policies = [
        json.dumps(statements_of)
        for name in iam.list_role_policies(RoleName=task_role)["PolicyNames"]
        for statements_of in [iam.get_role_policy(RoleName=task_role, PolicyName=name)]
    ]
    assert not any("secretsmanager" in text for text in task_policies)  # the ETL never reads it


def test_the_targets_group_admits_only_the_task_on_5432(
    moto_endpoint: MotoEndpoint, created: dict[str, Any]
) -> None:
    """The task group's egress to it (``TaskEgressToTarget``) is asserted on the template:
    moto's CloudFormation skips ``AWS::EC2::SecurityGroupEgress``, as it ignores inline egress."""
    ec2 = moto_endpoint.client("ec2")
    task_group = created["outputs"]["SecurityGroupId"]
    target_group = created["parameters"]["TargetSecurityGroupId"]
    (described,) = ec2.describe_security_groups(GroupIds=[target_group])["SecurityGroups"]
    assert [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]])
        for p in described["IpPermissions"]
    ] == [("tcp", 5432, 5432, [task_group])]
