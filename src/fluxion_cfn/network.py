"""The task's security group: only the egress the ETL needs, each rule described.

Rules are inline so the group has no default allow-all egress rule (the plan's allow-all egress
also made CDK drop the VPN rule). DNS needs no rule: the VPC resolver is not filtered by security
groups. The EFS group gets an NFS ingress rule from this group, or the mount would hang.
Rule descriptions may only use ``a-zA-Z0-9 ._-:/()#,@[]+=&;{}!$*`` (no apostrophes).
"""

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule

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


def add_network(template: Template, params: Parameters) -> TaskNetwork:
    sql_rules = [
        _tcp_egress(
            Ref(port),
            Sub(f"SQL Server port ${{{port.title}}} of the store back offices, over the VPN"),
            CidrIp=Ref(params.source_cidr),
        )
        for port in params.sql_ports
    ]
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
                _tcp_egress(
                    HTTPS_PORT,
                    "HTTPS to AWS APIs (ECR, S3 image layers, Secrets Manager, CloudWatch Logs)",
                    CidrIp="0.0.0.0/0",
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
    return TaskNetwork(security_group=group, efs_ingress=efs_ingress)
