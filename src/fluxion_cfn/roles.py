"""The three roles of the stack, each a combination of the statements in :mod:`fluxion_cfn.iam`.

- execution role: what ECS needs to start the container (image, logs, secret);
- task role: what the ETL itself does in AWS (mount and write /data, nothing else: its metrics
  travel as EMF log lines, so it needs no CloudWatch API);
- events role: what the schedule needs to start the task.
"""

from dataclasses import dataclass

from awacs.aws import PolicyDocument, Statement
from troposphere import GetAtt, Ref, Template
from troposphere.ecr import Repository
from troposphere.ecs import TaskDefinition
from troposphere.iam import Policy, Role
from troposphere.kms import Key
from troposphere.logs import LogGroup

from fluxion_cfn import iam
from fluxion_cfn.naming import (
    access_point_arn,
    cluster_arn,
    cluster_tasks_arn,
    ecs_arns_of_account,
    file_system_arn,
    tags,
)
from fluxion_cfn.parameters import Parameters
from fluxion_cfn.secret import Credentials


@dataclass(frozen=True)
class TaskRoles:
    execution: Role
    task: Role


def _role(
    title: str, description: str, trust: Statement, statements: list[Statement], params: Parameters
) -> Role:
    return Role(
        title,
        Description=description,
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[trust]),
        Policies=[
            Policy(
                PolicyName=title,
                PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
            )
        ],
        Tags=tags(params),
    )


def add_task_roles(
    template: Template,
    params: Parameters,
    repo: Repository,
    log_group: LogGroup,
    credentials: Credentials,
    key: Key,
) -> TaskRoles:
    trust = iam.assumed_by("ecs-tasks.amazonaws.com", source_arn=ecs_arns_of_account())
    execution = _role(
        "ExecutionRole",
        "fluxion ETL: lets ECS pull the image, write the logs and inject the SQL credentials",
        trust,
        [
            iam.ecr_pull(repo),
            iam.ecr_auth_token(),
            iam.log_writes(log_group),
            iam.secret_read(credentials.arn),
            iam.secret_decrypt(GetAtt(key, "Arn")),
        ],
        params,
    )
    task = _role(
        "TaskRole",
        "fluxion ETL: lets the task mount /data (EFS) read-write through its access point",
        trust,
        [iam.efs_mount_write(file_system_arn(params), access_point_arn(params))],
        params,
    )
    return TaskRoles(execution=template.add_resource(execution), task=template.add_resource(task))


def add_events_role(
    template: Template, params: Parameters, task_def: TaskDefinition, roles: TaskRoles
) -> Role:
    return template.add_resource(
        _role(
            "ScheduleRole",
            "fluxion ETL: lets the EventBridge schedule run the ETL task",
            iam.assumed_by("events.amazonaws.com"),
            [
                iam.run_task(Ref(task_def), cluster_arn(params)),
                iam.tag_new_tasks(cluster_tasks_arn(params)),
                iam.pass_roles(roles.execution, roles.task),
            ],
            params,
        )
    )
