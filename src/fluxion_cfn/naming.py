"""How the stack names, tags and addresses things.

The operator passes the ECS cluster, the EFS file system and its access point the way the console
shows them (a name, an ``fs-`` id, an ``fsap-`` id), but IAM conditions, the schedule target and the
failure event pattern need ARNs. They are built here, once, from the same strings, so a policy and
the rule that relies on it can never disagree about which cluster or family they mean.
"""

from troposphere import AWSHelperFn, Ref, Sub, Tags

from fluxion_cfn.parameters import Parameters

PROJECT = "fluxion"

#: Task definition family. Fixed per stack (not CloudFormation-generated) because the failure
#: rule matches every revision of it by ARN prefix.
TASK_FAMILY = "${AWS::StackName}-etl"

#: The stack owns this log group; a fixed name lets the KMS key policy name it before it exists.
LOG_GROUP_NAME = "/fluxion/${AWS::StackName}/etl"

_ARN = "arn:${AWS::Partition}"
_REGIONAL = "${AWS::Region}:${AWS::AccountId}"


def tags(params: Parameters) -> Tags:
    """Tags every taggable resource carries; the task's copy reaches ECS tasks (propagated)."""
    return Tags(Project=PROJECT, Environment=Ref(params.environment))


def account_root() -> Sub:
    """The account principal that key policies delegate to, so IAM policies decide the rest."""
    return Sub(f"{_ARN}:iam::${{AWS::AccountId}}:root")


def cluster_arn(params: Parameters) -> Sub:
    return Sub(f"{_ARN}:ecs:{_REGIONAL}:cluster/${{{params.cluster.title}}}")


def cluster_tasks_arn(params: Parameters) -> Sub:
    """Every task of the cluster: what ``ecs:TagResource`` may tag when RunTask tags a task."""
    return Sub(f"{_ARN}:ecs:{_REGIONAL}:task/${{{params.cluster.title}}}/*")


def ecs_arns_of_account() -> Sub:
    """Anything ECS in this account and region: the trust policies' confused-deputy guard."""
    return Sub(f"{_ARN}:ecs:{_REGIONAL}:*")


def state_machines_of_account() -> Sub:
    """Any state machine of this account and region: the store-sync role's trust guard (the
    machine's own ARN would make its role depend on it)."""
    return Sub(f"{_ARN}:states:{_REGIONAL}:stateMachine:*")


def executions_of(state_machine_name: AWSHelperFn) -> Sub:
    """Every execution of the named state machine."""
    return Sub(f"{_ARN}:states:{_REGIONAL}:execution:${{Name}}:*", Name=state_machine_name)


def sfn_ecs_events_rule_arn() -> Sub:
    """The rule Step Functions creates (once per account and region) for ``runTask.sync``."""
    return Sub(f"{_ARN}:events:{_REGIONAL}:rule/StepFunctionsGetEventsForECSTaskRule")


def alarms_of_account() -> Sub:
    """Any CloudWatch alarm of this account and region: the key's confused-deputy guard for the
    alarms (their own ARNs would make the key depend on them, through the topic)."""
    return Sub(f"{_ARN}:cloudwatch:{_REGIONAL}:alarm:*")


def topics_of_account() -> Sub:
    """Any SNS topic of this account and region, as SNS names it in the key's encryption
    context (the alert topic's own ARN would make the key depend on the topic)."""
    return Sub(f"{_ARN}:sns:{_REGIONAL}:*")


def task_family() -> Sub:
    return Sub(TASK_FAMILY)


def task_definition_arn_prefix() -> Sub:
    """``...:task-definition/<family>:``, matching every revision of this stack's family."""
    return Sub(f"{_ARN}:ecs:{_REGIONAL}:task-definition/{TASK_FAMILY}:")


def task_family_arn() -> Sub:
    """Every revision of this stack's family, so a policy outlives the next deploy's revision."""
    return Sub(f"{_ARN}:ecs:{_REGIONAL}:task-definition/{TASK_FAMILY}:*")


def file_system_arn(params: Parameters) -> Sub:
    return Sub(f"{_ARN}:elasticfilesystem:{_REGIONAL}:file-system/${{{params.file_system.title}}}")


def access_point_arn(params: Parameters) -> Sub:
    return Sub(
        f"{_ARN}:elasticfilesystem:{_REGIONAL}:access-point/${{{params.access_point.title}}}"
    )


def log_group_name() -> Sub:
    return Sub(LOG_GROUP_NAME)


def log_group_arn() -> Sub:
    """The log group's ARN without the ``:*`` suffix, as KMS sees it in the encryption context."""
    return Sub(f"{_ARN}:logs:{_REGIONAL}:log-group:{LOG_GROUP_NAME}")


def export_name(output: str) -> Sub:
    """``<stack>-<output>``: stable names other stacks can ``ImportValue``."""
    return Sub(f"${{AWS::StackName}}-{output}")
