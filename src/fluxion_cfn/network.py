"""The task's security group: only the egress the ETL needs, each rule described.

Rules are inline so the group has no default allow-all egress rule (the plan's allow-all egress
also made CDK drop the VPN rule). DNS needs no rule: the VPC resolver is not filtered by security
groups. The EFS group gets an NFS ingress rule from this group, or the mount would hang.
Rule descriptions may only use ``a-zA-Z0-9 ._-:/()#,@[]+=&;{}!$*`` (no apostrophes).

HTTPS is what ECS needs on the task's network interface (Fargate pulls the image, reads the
secrets and ships the logs through it): by default to 0.0.0.0/0, since those APIs have no fixed
addresses. Given the VPC's interface endpoints (their security group) and S3's gateway endpoint
(its prefix list), the rule becomes two: 443 to that group and 443 to that prefix list, and the
endpoints' group gets the matching ingress (docs/aws.md says what that leaves open).
"""

from dataclasses import dataclass

from troposphere import GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.ec2 import (
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    SecurityGroupRule,
)

from fluxion_cfn.conditions import Conditions
from fluxion_cfn.naming import tags
from fluxion_cfn.parameters import Parameters

NFS_PORT = 2049
HTTPS_PORT = 443


@dataclass(frozen=True)
class TaskNetwork:
    security_group: SecurityGroup
    efs_ingress: SecurityGroupIngress


def _tcp_egress(port: object, description: object, **destination: object) -> SecurityGroupRule:
    return SecurityGroupRule(
        IpProtocol="tcp", FromPort=port, ToPort=port, Description=description, **destination
    )


def add_network(template: Template, params: Parameters, conditions: Conditions) -> TaskNetwork:
    sql_rules = [
        _tcp_egress(
            Ref(port),
            Sub(f"SQL Server port ${{{port.title}}} of the store back offices, over the VPN"),
            CidrIp=Ref(params.source_cidr),
        )
        for port in params.sql_ports
    ]
    endpoints = conditions.has_aws_endpoints
    group = template.add_resource(
        SecurityGroup(
            "TaskSecurityGroup",
            GroupDescription=Sub("fluxion ${AWS::StackName} ETL task: egress to SQL, EFS, AWS"),
            VpcId=Ref(params.vpc),
            SecurityGroupEgress=[
                *sql_rules,
                _tcp_egress(
                    NFS_PORT,
                    "NFS to the EFS mount targets (/data)",
                    DestinationSecurityGroupId=Ref(params.efs_security_group),
                ),
                # one rule whose destination the option switches (an Fn::If per property, not
                # around the rule, so that every rule carries its description for checkov)
                _tcp_egress(
                    HTTPS_PORT,
                    If(
                        endpoints,
                        "HTTPS to the VPC interface endpoints of AWS APIs (ECR, Secrets Manager,"
                        " CloudWatch Logs, STS)",
                        "HTTPS to AWS APIs (ECR, S3 image layers, Secrets Manager,"
                        " CloudWatch Logs)",
                    ),
                    CidrIp=If(endpoints, NoValue, "0.0.0.0/0"),
                    DestinationSecurityGroupId=If(
                        endpoints, Ref(params.aws_endpoints_security_group), NoValue
                    ),
                ),
            ],
            Tags=tags(params),
        )
    )
    efs_ingress = template.add_resource(
        SecurityGroupIngress(
            "EfsIngressFromTask",
            GroupId=Ref(params.efs_security_group),
            IpProtocol="tcp",
            FromPort=NFS_PORT,
            ToPort=NFS_PORT,
            SourceSecurityGroupId=GetAtt(group, "GroupId"),
            Description=Sub("NFS from the fluxion ${AWS::StackName} ETL task"),
        )
    )
    template.add_resource(
        SecurityGroupEgress(
            "TaskEgressToS3",
            Condition=endpoints,
            GroupId=GetAtt(group, "GroupId"),
            IpProtocol="tcp",
            FromPort=HTTPS_PORT,
            ToPort=HTTPS_PORT,
            DestinationPrefixListId=Ref(params.s3_prefix_list),
            Description="HTTPS to S3 through its gateway endpoint (ECR image layers)",
        )
    )
    template.add_resource(
        SecurityGroupIngress(
            "AwsEndpointsIngressFromTask",
            Condition=endpoints,
            GroupId=Ref(params.aws_endpoints_security_group),
            IpProtocol="tcp",
            FromPort=HTTPS_PORT,
            ToPort=HTTPS_PORT,
            SourceSecurityGroupId=GetAtt(group, "GroupId"),
            Description=Sub("HTTPS from the fluxion ${AWS::StackName} ETL task"),
        )
    )
    return TaskNetwork(security_group=group, efs_ingress=efs_ingress)
