"""The optional PostgreSQL target (docs/postgresql.md): its parameters and what they switch on.

Three parameters, empty by default: the target's URL (no password, no plaintext ``sslmode``:
:data:`URL_PATTERN`; ``NoEcho``), the ARN of its credentials secret (an RDS-managed secret: JSON
``username``/``password``) and its security group; a fourth, optional even when they are set: the
customer-managed KMS key that secret is encrypted with; a fifth, also optional: the target's table
layout (``ETL_TARGET_LAYOUT``).

Empty, the deployed stack is exactly the DuckDB one. Every piece of the target is a resource of its
own under ``HasPostgresTarget`` (the execution role's read of the secret, the task group's 5432
egress, the ingress on the target's group), so today's resources are not touched. The one exception
is the container, a single resource whose lists a parameter can only change through ``Fn::If``: its
``DATABASE_PATH`` entry becomes ``DATABASE_URL`` (both set is a configuration error in the ETL),
``ETL_TARGET_LAYOUT`` is added from ``TargetTableLayout`` and ``PGPASSWORD`` from the secret's
``password`` key. Resolved with the parameters empty, all give back today's entries
(tests/unit/cfn/test_cfn_postgres_target.py).

The policy is not ordered before the task definition (a ``DependsOn`` cannot name a resource
whose condition may be false): a run started in the seconds between a new revision and its
policy fails to start, alerted, and the next one succeeds; a new stack's schedule is disabled.

The secret's KMS key: an RDS-managed secret under ``aws/secretsmanager`` needs no grant; under a
customer-managed key, ECS needs ``kms:Decrypt`` on that key for the execution role. Given
``TargetSecretKmsKeyArn``, the stack grants it (through Secrets Manager only); the key's policy
must let IAM policies of the account grant it (AWS's default key policy does).
"""

from dataclasses import dataclass

from awacs.aws import PolicyDocument, Statement
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
from troposphere.ec2 import SecurityGroup, SecurityGroupEgress, SecurityGroupIngress
from troposphere.ecs import Environment, Secret
from troposphere.iam import PolicyType, Role

from fluxion_cfn import iam

POSTGRES_PORT = 5432
GROUP = "PostgreSQL target (optional)"

#: ``TargetDatabaseUrl``: empty, or ``postgres[ql]://user@host[:port]/dbname[?k=v&...]`` with
#: no password anywhere (the user part has no ``:``; no ``password=`` or ``sslpassword=`` key)
#: and no ``sslmode`` that lets libpq talk plaintext (``disable``, and ``allow``/``prefer``, which
#: fall back to it). Query keys are plain names and an ``sslmode`` value holds no ``%``: libpq
#: percent-decodes both, so ``pass%77ord=`` or ``sslmode=dis%61ble`` would slip past otherwise.
#: Case-insensitive (``(?i)``); CloudFormation evaluates it as a Java regex, the tests as
#: Python's, and it uses only what both read alike.
URL_PATTERN = (
    r"(?i)^$|^(?!.*[?&](ssl)?password=)(?!.*[?&]sslmode=([^&]*%|(disable|allow|prefer)(&|$)))"
    r"postgres(ql)?://[^:@/\s?#]+@[^@/\s?#]+/[^/\s?#]+(\?[a-z_]+=[^\s&#]*(&[a-z_]+=[^\s&#]*)*)?$"
)


@dataclass(frozen=True)
class PostgresTarget:
    url: Parameter
    secret_arn: Parameter
    security_group: Parameter
    secret_key: Parameter
    #: ETL_TARGET_LAYOUT of the target (empty: the ETL's default, inventario_raw)
    layout: Parameter
    #: condition name: the three parameters are set
    enabled: str
    #: condition name: the target is set and so is the key of its secret
    has_secret_key: str


def _together(a: Parameter, b: Parameter) -> AWSHelperFn:
    """Both empty or both set."""
    return And(
        Or(Not(Equals(Ref(a), "")), Equals(Ref(b), "")),
        Or(Equals(Ref(a), ""), Not(Equals(Ref(b), ""))),
    )


def add_postgres_target(template: Template) -> PostgresTarget:
    """Declare the parameters, the conditions and the rule that keeps them together."""

    def add(name: str, **props: object) -> Parameter:
        parameter = template.add_parameter(Parameter(name, Type="String", Default="", **props))
        template.add_parameter_to_group(parameter, GROUP)
        return parameter

    url = add(
        "TargetDatabaseUrl",
        AllowedPattern=URL_PATTERN,
        # the URL names no secret (the pattern sees to that), but a mistaken one must not land
        # in the stack's parameters in clear either: describe-stacks shows ****
        NoEcho=True,
        ConstraintDescription="postgresql://user@host:5432/dbname[?key=value&...], without a"
        " password (in the user part or as password=/sslpassword=) and without an sslmode that"
        " allows plaintext (disable, allow, prefer)",
        Description="DATABASE_URL of a PostgreSQL target (e.g. the backend's RDS database):"
        " postgresql://user@host:5432/dbname, no password, TLS not switched off. Empty: the"
        " DuckDB file on /data.",
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
    secret_key = add(
        "TargetSecretKmsKeyArn",
        AllowedPattern=r"^$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-z0-9-]+$",
        ConstraintDescription="a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias",
        Description="Key ARN of the customer-managed KMS key TargetSecretArn is encrypted with;"
        " the execution role may decrypt with it through Secrets Manager. Empty: the secret"
        " uses aws/secretsmanager.",
    )
    layout = add(
        "TargetTableLayout",
        AllowedValues=["", "inventario_raw", "inventario_actual"],
        Description="ETL_TARGET_LAYOUT of the PostgreSQL target: inventario_actual publishes the"
        " normalised tables the chain's backend reads (inventario_actual, inventario_historico,"
        " productos, ubicaciones, almacenes; fluxion's ledger in schema fluxion). Empty:"
        " inventario_raw.",
    )
    # all three, so a linter knows none of them is empty where the condition holds
    target = (url, secret_arn, security_group)
    enabled = template.add_condition(
        "HasPostgresTarget", And(*(Not(Equals(Ref(p), "")) for p in target))
    )
    # spelled out rather than with {"Condition": "HasPostgresTarget"} inside, which moto 5.2
    # (the tests' CloudFormation) took for false with every parameter set
    has_secret_key = template.add_condition(
        "HasTargetSecretKmsKey", And(*(Not(Equals(Ref(p), "")) for p in (*target, secret_key)))
    )
    template.add_rule(
        "PostgresTargetParametersTogether",
        {
            "Assertions": [
                {
                    "Assert": _together(url, secret_arn),
                    "AssertDescription": "TargetDatabaseUrl and TargetSecretArn are set together",
                },
                {
                    "Assert": _together(url, security_group),
                    "AssertDescription": "TargetDatabaseUrl and TargetSecurityGroupId are set"
                    " together",
                },
                {
                    "Assert": Or(Equals(Ref(secret_key), ""), Not(Equals(Ref(secret_arn), ""))),
                    "AssertDescription": "TargetSecretKmsKeyArn is the key of TargetSecretArn:"
                    " set it only with the target",
                },
                {
                    "Assert": Or(Equals(Ref(layout), ""), Not(Equals(Ref(url), ""))),
                    "AssertDescription": "TargetTableLayout is the layout of the PostgreSQL"
                    " target: set it only with TargetDatabaseUrl",
                },
            ]
        },
    )
    return PostgresTarget(
        url, secret_arn, security_group, secret_key, layout, enabled, has_secret_key
    )


def or_database_url(target: PostgresTarget, entry: Environment) -> Environment | AWSHelperFn:
    """The container's ``DATABASE_PATH`` entry becomes ``DATABASE_URL`` when the target is set
    (an ``Fn::If`` in its place: the container is one resource, and the ETL refuses both
    variables at once); every other entry is returned as it is."""
    if entry.properties.get("Name") != "DATABASE_PATH":
        return entry
    return If(target.enabled, Environment(Name="DATABASE_URL", Value=Ref(target.url)), entry)


def environment(target: PostgresTarget) -> list[AWSHelperFn]:
    """``ETL_TARGET_LAYOUT`` from ``TargetTableLayout`` when the target is set (an empty value
    is the ETL's default); nothing when the target is empty."""
    return [
        If(
            target.enabled,
            Environment(Name="ETL_TARGET_LAYOUT", Value=Ref(target.layout)),
            NoValue,
        )
    ]


def secrets(target: PostgresTarget) -> list[AWSHelperFn]:
    """``PGPASSWORD`` from the target secret's ``password`` key (ECS injects it); nothing when
    the target is empty."""
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


def _execution_policy(
    title: str, condition: str, execution: Role, statement: Statement
) -> PolicyType:
    """A policy of the execution role that exists only under ``condition``: a resource of its
    own, so the role's own inline policy stays as it is without the target."""
    return PolicyType(
        title,
        Condition=condition,
        PolicyName=title,
        Roles=[Ref(execution)],
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[statement]),
    )


def add_access(
    template: Template, target: PostgresTarget, execution: Role, task_group: SecurityGroup
) -> None:
    """What the target needs beyond the container's entries, each a conditional resource:
    the execution role's read (and decrypt) of the target's secret, the task group's egress to
    the target's group and the ingress on it."""
    template.add_resource(
        _execution_policy(
            "TargetCredentialsRead",
            target.enabled,
            execution,
            iam.secret_read(Ref(target.secret_arn), sid="ReadTargetCredentials"),
        )
    )
    template.add_resource(
        _execution_policy(
            "TargetCredentialsDecrypt",
            target.has_secret_key,
            execution,
            iam.secret_decrypt(Ref(target.secret_key), sid="DecryptTargetCredentials"),
        )
    )
    template.add_resource(
        SecurityGroupEgress(
            "TaskEgressToTarget",
            Condition=target.enabled,
            GroupId=GetAtt(task_group, "GroupId"),
            IpProtocol="tcp",
            FromPort=POSTGRES_PORT,
            ToPort=POSTGRES_PORT,
            DestinationSecurityGroupId=Ref(target.security_group),
            Description="PostgreSQL target (DATABASE_URL)",
        )
    )
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
