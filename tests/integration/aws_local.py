"""moto's server on 127.0.0.1, the tests' stand-in for AWS (docs/testing.md); the session fixture
``moto_endpoint`` in conftest.py starts it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MotoEndpoint:
    """moto's server on 127.0.0.1, standing in for AWS (docs/testing.md)."""

    url: str
    #: environment for a child process (the CLIs): moto's fake keys, no profile of this machine
    env: dict[str, str]
    region: str = "us-east-1"

    @property
    def client_kwargs(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": "testing",  # moto accepts any key
            "aws_secret_access_key": "testing",
        }

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, **self.client_kwargs)


def create_shared_infrastructure(
    endpoint: MotoEndpoint, *, name: str, cidr_prefix: str
) -> dict[str, str]:
    """What the stack expects to exist already (VPC with two private subnets, ECS cluster ``name``,
    EFS file system, access point and its security group), as the parameters that name it.
    moto's state is per process: each caller gives its own ``name`` and ``cidr_prefix``."""
    ec2 = endpoint.client("ec2")
    vpc = ec2.create_vpc(CidrBlock=f"{cidr_prefix}.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr_prefix}.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    efs_group = ec2.create_security_group(
        GroupName=f"{name}-efs", Description="EFS mount targets", VpcId=vpc
    )["GroupId"]
    endpoint.client("ecs").create_cluster(clusterName=name)
    efs = endpoint.client("efs")
    fs = efs.create_file_system(CreationToken=name)["FileSystemId"]
    ap = efs.create_access_point(FileSystemId=fs, ClientToken=name)["AccessPointId"]
    return {
        "VpcId": vpc,
        "PrivateSubnetIds": ",".join(subnets),
        "ClusterName": name,
        "FileSystemId": fs,
        "AccessPointId": ap,
        "EfsSecurityGroupId": efs_group,
    }


def create_stack(
    endpoint: MotoEndpoint, name: str, template: str, parameters: dict[str, str]
) -> dict[str, Any]:
    """Create stack ``name`` from ``template`` with ``parameters`` and wait until it is done;
    returns its description (``StackStatus``, ``Outputs``...)."""
    cfn = endpoint.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    (described,) = cfn.describe_stacks(StackName=name)["Stacks"]
    return dict(described)
