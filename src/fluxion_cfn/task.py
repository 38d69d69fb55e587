"""The Fargate task definition of the ETL run, and the log group it writes to.

The task runs ``fluxion-etl run`` once and exits; its exit code is the run's outcome (DESIGN
§1.2), which the alerting rule reads. /data is the EFS volume holding the DuckDB file and the
stores file, mounted read-write through the access point with TLS and IAM authorization.
"""

from troposphere import AWSHelperFn, GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.ecr import Repository
from troposphere.ecs import (
    AuthorizationConfig,
    ContainerDefinition,
    EFSVolumeConfiguration,
    Environment,
    LinuxParameters,
    LogConfiguration,
    MountPoint,
    RuntimePlatform,
    Secret,
    TaskDefinition,
    Volume,
)
from troposphere.kms import Key
from troposphere.logs import LogGroup

from fluxion_cfn import postgres_target
from fluxion_cfn.conditions import Conditions
from fluxion_cfn.naming import log_group_name, tags, task_family
from fluxion_cfn.parameters import Parameters
from fluxion_cfn.roles import TaskRoles
from fluxion_cfn.secret import Credentials

CONTAINER = "etl"
DATA_DIR = "/data"
COMMAND = ["fluxion-etl", "run"]
#: Fargate's ceiling between SIGTERM and SIGKILL: the ETL's time to finish a publish cleanly.
STOP_TIMEOUT_SECONDS = 120
#: Non-root; file ownership on /data is decided by the access point's POSIX user anyway.
RUN_AS = "1000:1000"
#: Container-level soft memory reservation, MiB. On Fargate the task's ``Memory`` (TaskMemory) is
#: the hard limit and the container may use all of it; this only states a floor. It is a literal,
#: not ``Ref(TaskMemory)`` (a String parameter), and 512 is the smallest task memory Fargate
#: offers, so it can never exceed TaskMemory. It is here because tools that add up container
#: memory (moto's RunTask among them, which the run-task test drives) need one per container.
MEMORY_RESERVATION_MIB = 512

#: Environment the task always has (docs/configuration.md); tunable settings come from parameters.
FIXED_ENVIRONMENT = {
    "DATABASE_PATH": f"{DATA_DIR}/fluxion.duckdb",
    "ETL_STORES_FILE": f"{DATA_DIR}/stores.toml",
    "RUN_MODE": "scheduled",
    "ETL_MODE": "inventario",
}

#: Secret keys injected as environment variables by ECS.
SECRET_KEYS = {"SQL_USER": "username", "SQL_PASS": "password"}


def add_log_group(template: Template, params: Parameters, key: Key) -> LogGroup:
    """The group the awslogs driver writes to; its EMF lines become the Fluxion/ETL metrics."""
    return template.add_resource(
        LogGroup(
            "LogGroup",
            # Explicit: the logs go with the stack (they expire after LogRetentionDays anyway).
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
            LogGroupName=log_group_name(),
            RetentionInDays=Ref(params.log_retention),
            KmsKeyId=GetAtt(key, "Arn"),
            Tags=tags(params),
        )
    )


def _environment(
    params: Parameters, conditions: Conditions, target: postgres_target.PostgresTarget
) -> list[Environment | AWSHelperFn]:
    """docs/configuration.md variables, sorted by name so the template is stable."""
    values: dict[str, object] = {
        **FIXED_ENVIRONMENT,
        "ENVIRONMENT": Ref(params.environment),
        **{name: Ref(parameter) for name, parameter in params.etl_settings.items()},
    }
    variables: list[Environment | AWSHelperFn] = [
        postgres_target.or_database_url(target, Environment(Name=name, Value=values[name]))
        for name in sorted(values)
    ]
    # Set only when non-empty: an unset ETL_TIENDAS means every active store.
    variables.append(
        If(
            conditions.has_store_filter,
            Environment(Name="ETL_TIENDAS", Value=Ref(params.stores)),
            NoValue,
        )
    )
    variables.extend(postgres_target.environment(target))
    return variables


def _secrets(
    credentials: Credentials, target: postgres_target.PostgresTarget
) -> list[Secret | AWSHelperFn]:
    """SQL_USER / SQL_PASS from the secret's JSON keys (``<arn>:<key>::``); the target's."""
    return [
        *(
            Secret(Name=name, ValueFrom=Sub(f"${{Arn}}:{key}::", Arn=credentials.arn))
            for name, key in sorted(SECRET_KEYS.items())
        ),
        *postgres_target.secrets(target),
    ]


def add_task_definition(
    template: Template,
    params: Parameters,
    conditions: Conditions,
    repo: Repository,
    credentials: Credentials,
    log_group: LogGroup,
    roles: TaskRoles,
    target: postgres_target.PostgresTarget,
) -> TaskDefinition:
    container = ContainerDefinition(
        Name=CONTAINER,
        Image=Sub(f"${{{repo.title}.RepositoryUri}}:${{{params.image_tag.title}}}"),
        Command=COMMAND,
        Essential=True,
        MemoryReservation=MEMORY_RESERVATION_MIB,
        User=RUN_AS,
        StopTimeout=STOP_TIMEOUT_SECONDS,
        LinuxParameters=LinuxParameters(InitProcessEnabled=True),  # signals reach the ETL
        MountPoints=[MountPoint(SourceVolume="data", ContainerPath=DATA_DIR, ReadOnly=False)],
        Environment=_environment(params, conditions, target),
        Secrets=_secrets(credentials, target),
        LogConfiguration=LogConfiguration(
            LogDriver="awslogs",
            Options={
                "awslogs-group": Ref(log_group),
                "awslogs-region": Ref("AWS::Region"),
                "awslogs-stream-prefix": CONTAINER,
                # Blocking, not ECS's lossy non-blocking mode: a dropped EMF line is a missing
                # RunSucceeded datapoint, which the no-success alarm would report as an outage.
                "mode": "blocking",
            },
        ),
    )
    data = Volume(
        Name="data",
        EFSVolumeConfiguration=EFSVolumeConfiguration(
            FilesystemId=Ref(params.file_system),
            TransitEncryption="ENABLED",
            AuthorizationConfig=AuthorizationConfig(
                AccessPointId=Ref(params.access_point), IAM="ENABLED"
            ),
        ),
    )
    return template.add_resource(
        TaskDefinition(
            "TaskDefinition",
            Family=task_family(),
            RequiresCompatibilities=["FARGATE"],
            NetworkMode="awsvpc",
            RuntimePlatform=RuntimePlatform(
                OperatingSystemFamily="LINUX", CpuArchitecture="X86_64"
            ),
            Cpu=Ref(params.cpu),
            Memory=Ref(params.memory),
            ExecutionRoleArn=GetAtt(roles.execution, "Arn"),
            TaskRoleArn=GetAtt(roles.task, "Arn"),
            ContainerDefinitions=[container],
            Volumes=[data],
            Tags=tags(params),
        )
    )
