"""The optional PostgreSQL target (DESIGN §1.5): its parameters and what they switch on.

Three parameters, empty by default: the target's URL (no password), the ARN of its credentials
secret (an RDS-managed secret: JSON ``username``/``password``) and its security group. Empty,
nothing they govern exists (a condition removes every piece), so the deployed stack is today's.
Set, the task gets ``DATABASE_URL`` instead of ``DATABASE_PATH`` (both set is a configuration
error in the ETL), ``PGPASSWORD`` injected from that secret, ``GetSecretValue`` on that secret
only, egress on 5432 to that group only, and the matching ingress rule on it. A rule makes the
three go together.

The secret's KMS key: an RDS-managed secret encrypted with ``aws/secretsmanager`` needs no grant;
one encrypted with a customer key needs ``kms:Decrypt`` for the execution role in that key's
policy (the key is not the stack's, so the stack cannot grant it).
"""

from dataclasses import dataclass

from awacs import secretsmanager
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import (
    And,
    AWSHelperFn,
    Equals,
    GetAtt,
    If,
    Not,
    NoValue,
    Or,
    Parameter,
    Ref,
    Sub,
    Template,
)
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule
from troposphere.ecs import Environment, Secret
from troposphere.iam import Policy

POSTGRES_PORT = 5432
GROUP = "PostgreSQL target (optional)"


@dataclass(frozen=True)
class PostgresTarget:
    url: Parameter
    secret_arn: Parameter
    security_group: Parameter
    #: condition name: the three parameters are set
    enabled: str


def add_postgres_target(template: Template) -> PostgresTarget:
    """Declare the parameters, the condition and the rule that keeps them together."""

    def add(name: str, **props: object) -> Parameter:
        parameter = template.add_parameter(Parameter(name, Type="String", Default="", **props))
        template.add_parameter_to_group(parameter, GROUP)
        return parameter

    url = add(
        "TargetDatabaseUrl",
        AllowedPattern=r"^$|^postgres(ql)?://[^:@/\s]+@[^@/\s]+/[^\s]+$",
        ConstraintDescription="postgresql://user@host:5432/dbname, without a password",
        Description="DATABASE_URL of a PostgreSQL target (e.g. the backend's RDS database):"
        " postgresql://user@host:5432/dbname, no password. Empty: the DuckDB file on /data.",
    )
    secret_arn = add(
        "TargetSecretArn",
        AllowedPattern=r"^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+$",
        Description="Full ARN of the PostgreSQL target's credentials secret (JSON with"
        " username and password, as RDS manages it); its password becomes PGPASSWORD.",
    )
    security_group = add(
        "TargetSecurityGroupId",
        AllowedPattern=r"^$|^sg-[0-9a-f]{8,17}$",
        Description="Security group of the PostgreSQL target; the stack adds a 5432 ingress"
        " rule from the task's group to it.",
    )
    # all three, so a linter knows none of them is empty where the condition holds
    enabled = template.add_condition(
        "HasPostgresTarget",
        And(*(Not(Equals(Ref(p), "")) for p in (url, secret_arn, security_group))),
    )
    all_or_none = And(
        Or(Not(Equals(Ref(url), "")), Equals(Ref(secret_arn), "")),
        Or(Equals(Ref(url), ""), Not(Equals(Ref(secret_arn), ""))),
    )
    template.add_rule(
        "PostgresTargetParametersTogether",
        {
            "Assertions": [
                {
                    "Assert": all_or_none,
                    "AssertDescription": "TargetDatabaseUrl and TargetSecretArn are"
                    " set together",
                },
                {
                    "Assert": And(
                        Or(Not(Equals(Ref(url), "")), Equals(Ref(security_group), "")),
                        Or(Equals(Ref(url), ""), Not(Equals(Ref(security_group), ""))),
                    ),
                    "AssertDescription": "TargetDatabaseUrl and TargetSecurityGroupId are set"
                    " together",
                },
            ]
        },
    )
    return PostgresTarget(url, secret_arn, security_group, enabled)


def environment(target: PostgresTarget, database_path: str) -> list[AWSHelperFn]:
    """``DATABASE_URL`` when the target is set, else the DuckDB file's ``DATABASE_PATH``."""
    return [
        If(
            target.enabled,
            Environment(Name="DATABASE_URL", Value=Ref(target.url)),
            Environment(Name="DATABASE_PATH", Value=database_path),
        )
    ]


def secrets(target: PostgresTarget) -> list[AWSHelperFn]:
    """``PGPASSWORD`` from the target secret's ``password`` key (ECS injects it)."""
    return [
        If(
            target.enabled,
            Secret(
                Name="PGPASSWORD",
                ValueFrom=Sub("${Arn}:password::", Arn=Ref(target.secret_arn)),
            ),
            NoValue,
        )
    ]


def egress(target: PostgresTarget) -> list[AWSHelperFn]:
    """5432 to the target's group only."""
    return [
        If(
            target.enabled,
            SecurityGroupRule(
                IpProtocol="tcp",
                FromPort=POSTGRES_PORT,
                ToPort=POSTGRES_PORT,
                Description="PostgreSQL target (DATABASE_URL)",
                DestinationSecurityGroupId=Ref(target.security_group),
            ),
            NoValue,
        )
    ]


def execution_policy(target: PostgresTarget) -> tuple[str, Policy]:
    """(condition, the execution role's read of the target's secret): ECS injects PGPASSWORD
    from it. Inline in that role, not an ``AWS::IAM::Policy`` resource of its own: moto cannot
    update a stack holding a conditional one that was never created."""
    return (
        target.enabled,
        Policy(
            PolicyName="TargetCredentialsRead",
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Sid="ReadTargetCredentials",
                        Effect=Allow,
                        Action=[secretsmanager.GetSecretValue],
                        Resource=[Ref(target.secret_arn)],
                    )
                ],
            ),
        ),
    )


def add_access(template: Template, target: PostgresTarget, task_group: SecurityGroup) -> None:
    """The ingress rule on the target's group."""
    template.add_resource(
        SecurityGroupIngress(
            "TargetIngressFromTask",
            Condition=target.enabled,
            GroupId=Ref(target.security_group),
            IpProtocol="tcp",
            FromPort=POSTGRES_PORT,
            ToPort=POSTGRES_PORT,
            SourceSecurityGroupId=GetAtt(task_group, "GroupId"),
            Description=Sub("PostgreSQL from the fluxion ${AWS::StackName} ETL task"),
        )
    )
