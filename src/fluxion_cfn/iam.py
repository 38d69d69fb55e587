"""IAM statements, one small pure function per permission, named after what it grants.

Each statement is scoped to one of the stack's own resources (or to the cluster, file system and
access point the stack was given); the role, topic and key modules only combine them. The only
``Resource: "*"`` in an identity policy is ``ecr:GetAuthorizationToken``, which AWS defines on
``*`` alone. Key policies are the other case: there ``"*"`` means "this key".
"""

from typing import Any, TypeAlias

from awacs import (
    ecr,
    ecs,
    elasticfilesystem,
    events,
    iam,
    kms,
    logs,
    secretsmanager,
    sns,
    states,
    sts,
)
from awacs.aws import Allow, ArnEquals, ArnLike, Condition, Principal, Statement, StringEquals
from troposphere import AWSHelperFn, GetAtt, Ref, Sub
from troposphere.ecr import Repository
from troposphere.iam import Role
from troposphere.logs import LogGroup

#: An ARN, literal or computed by CloudFormation (``Ref``, ``GetAtt``, ``Sub``, ``If``).
Arn: TypeAlias = str | AWSHelperFn

_ACCOUNT = StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))

#: Key management that the account (through IAM policies) must keep, so that CloudFormation can
#: update the key and an administrator can rotate, disable or delete it. Listed one by one rather
#: than ``kms:*``: nothing here lets anyone read data.
_KEY_ADMINISTRATION = (
    kms.CancelKeyDeletion, kms.CreateAlias, kms.CreateGrant, kms.DeleteAlias, kms.DescribeKey,
    kms.DisableKey, kms.DisableKeyRotation, kms.EnableKey, kms.EnableKeyRotation,
    kms.GetKeyPolicy, kms.GetKeyRotationStatus, kms.ListGrants, kms.ListKeyPolicies,
    kms.ListKeyRotations, kms.ListResourceTags, kms.PutKeyPolicy, kms.RetireGrant,
    kms.RevokeGrant, kms.RotateKeyOnDemand, kms.ScheduleKeyDeletion, kms.TagResource,
    kms.UntagResource, kms.UpdateAlias, kms.UpdateKeyDescription,
)

#: What a service needs to encrypt and decrypt with the key (envelope encryption).
_KEY_USE = (
    kms.Decrypt, kms.DescribeKey, kms.Encrypt, kms.GenerateDataKey,
    kms.GenerateDataKeyWithoutPlaintext, kms.ReEncryptFrom, kms.ReEncryptTo,
)


# --- trust ---------------------------------------------------------------------------------


def assumed_by(service: str, source_arn: Arn | None = None) -> Statement:
    """Let ``service`` assume the role, only on behalf of this account (confused deputy guard)."""
    conditions: list[Any] = [_ACCOUNT]
    if source_arn is not None:
        conditions.append(ArnLike("aws:SourceArn", source_arn))
    return Statement(
        Effect=Allow,
        Principal=Principal("Service", service),
        Action=[sts.AssumeRole],
        Condition=Condition(conditions),
    )


# --- execution role: what ECS needs to start the container ------------------------------------


def ecr_pull(repo: Repository) -> Statement:
    """Pull image layers from this stack's repository only."""
    return Statement(
        Sid="PullEtlImage",
        Effect=Allow,
        Action=[ecr.BatchCheckLayerAvailability, ecr.BatchGetImage, ecr.GetDownloadUrlForLayer],
        Resource=[GetAtt(repo, "Arn")],
    )


def ecr_auth_token() -> Statement:
    """Get a registry login token: AWS defines this action on ``*`` only (no resource ARN)."""
    return Statement(
        Sid="GetEcrLoginToken",
        Effect=Allow,
        Action=[ecr.GetAuthorizationToken],
        Resource=["*"],
    )


def log_writes(group: LogGroup) -> Statement:
    """Create streams in, and write events to, the stack's log group (the awslogs driver)."""
    return Statement(
        Sid="WriteTaskLogs",
        Effect=Allow,
        Action=[logs.CreateLogStream, logs.PutLogEvents],
        Resource=[GetAtt(group, "Arn")],  # arn:...:log-group:NAME:* - its streams
    )


def secret_read(secret: Arn, sid: str = "ReadSqlCredentials") -> Statement:
    """Read a credentials secret ECS injects into the container: the SQL login's (SQL_USER,
    SQL_PASS) or the PostgreSQL target's (PGPASSWORD)."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Action=[secretsmanager.GetSecretValue],
        Resource=[secret],
    )


def secret_decrypt(key: Arn, sid: str = "DecryptSqlCredentials") -> Statement:
    """Decrypt with a secret's key (the stack's, or the target secret's customer-managed one),
    and only when Secrets Manager asks on the role's behalf."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Action=[kms.Decrypt],
        Resource=[key],
        Condition=Condition(
            StringEquals("kms:ViaService", Sub("secretsmanager.${AWS::Region}.amazonaws.com"))
        ),
    )


# --- task role: what the ETL itself may do ----------------------------------------------------


def efs_mount_write(fs: Arn, ap: Arn) -> Statement:
    """Mount the file system read-write, only through the given access point (IAM auth)."""
    return Statement(
        Sid="MountDataVolume",
        Effect=Allow,
        Action=[elasticfilesystem.ClientMount, elasticfilesystem.ClientWrite],
        Resource=[fs],
        Condition=Condition(StringEquals("elasticfilesystem:AccessPointArn", ap)),
    )


# --- events role: what the schedule needs to start the task -----------------------------------


def run_task(task_definition: Arn, cluster: Arn) -> Statement:
    """Run this task definition (a revision, or ``<family>:*``), in the given cluster only."""
    return Statement(
        Sid="RunEtlTask",
        Effect=Allow,
        Action=[ecs.RunTask],
        Resource=[task_definition],
        Condition=Condition(ArnEquals("ecs:cluster", cluster)),
    )


def describe_tasks(tasks: Arn) -> Statement:
    """Read the state and exit code of the cluster's tasks: how a caller learns a run's outcome."""
    return Statement(
        Sid="DescribeEtlTasks",
        Effect=Allow,
        Action=[ecs.DescribeTasks],
        Resource=[tasks],
    )


def tag_new_tasks(tasks: Arn) -> Statement:
    """Tag the tasks RunTask creates (tags propagated from the task definition)."""
    return Statement(
        Sid="TagStartedTasks",
        Effect=Allow,
        Action=[ecs.TagResource],
        Resource=[tasks],
        Condition=Condition(StringEquals("ecs:CreateAction", "RunTask")),
    )


def pass_roles(*roles: Role) -> Statement:
    """Hand exactly these roles to ECS tasks, and to no other service."""
    return Statement(
        Sid="PassTaskRoles",
        Effect=Allow,
        Action=[iam.PassRole],
        Resource=[GetAtt(role, "Arn") for role in roles],
        Condition=Condition(StringEquals("iam:PassedToService", "ecs-tasks.amazonaws.com")),
    )


# --- store-sync state machine: its role, and what the backend may do with it -----------------


def follow_and_stop_tasks(tasks: Arn) -> Statement:
    """Read the cluster's tasks and stop one: what ``runTask.sync`` does to wait for the task's
    end, and to stop it when the execution is stopped or times out."""
    return Statement(
        Sid="FollowEtlTasks",
        Effect=Allow,
        Action=[ecs.DescribeTasks, ecs.StopTask],
        Resource=[tasks],
    )


def task_state_events_rule(rule: Arn) -> Statement:
    """Manage the one EventBridge rule Step Functions itself keeps in the account to learn that
    a task it started stopped (``StepFunctionsGetEventsForECSTaskRule``), and no other rule."""
    return Statement(
        Sid="FollowTaskStateEvents",
        Effect=Allow,
        Action=[events.DescribeRule, events.PutRule, events.PutTargets],
        Resource=[rule],
    )


def start_store_sync(state_machine: Arn) -> Statement:
    """Start an execution of the store-sync state machine: its input can only choose stores."""
    return Statement(
        Sid="StartStoreSync",
        Effect=Allow,
        Action=[states.StartExecution],
        Resource=[state_machine],
    )


def describe_store_syncs(executions: Arn) -> Statement:
    """Follow the state machine's executions to their end (status, the task's exit code)."""
    return Statement(
        Sid="FollowStoreSyncs",
        Effect=Allow,
        Action=[states.DescribeExecution],
        Resource=[executions],
    )


# --- resource policies: the alert topic and the stack key -------------------------------------


def topic_publish(service: str, topic: Arn, sources: list[Arn]) -> Statement:
    """Let ``service`` publish to the topic, only for the given rules or alarms."""
    return Statement(
        Sid="PublishFrom" + service.split(".")[0].capitalize(),
        Effect=Allow,
        Principal=Principal("Service", service),
        Action=[sns.Publish],
        Resource=[topic],
        Condition=Condition(ArnEquals("aws:SourceArn", sources)),
    )


def key_administration(account: Arn) -> Statement:
    """Keep the key manageable through IAM (without this a key can become unmanageable)."""
    return Statement(
        Sid="AdministerKeyThroughIam",
        Effect=Allow,
        Principal=Principal("AWS", account),
        Action=list(_KEY_ADMINISTRATION),
        Resource=["*"],
    )


def key_use_through_iam(account: Arn) -> Statement:
    """Let IAM policies of this account grant use of the key (the execution role's decrypt)."""
    return Statement(
        Sid="UseKeyThroughIam",
        Effect=Allow,
        Principal=Principal("AWS", account),
        Action=list(_KEY_USE),
        Resource=["*"],
    )


def key_use_by_logs(group_arn: Arn) -> Statement:
    """Let CloudWatch Logs encrypt the stack's log group, and no other group."""
    return Statement(
        Sid="EncryptTaskLogs",
        Effect=Allow,
        Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
        Action=list(_KEY_USE),
        Resource=["*"],
        Condition=Condition(ArnEquals("kms:EncryptionContext:aws:logs:arn", group_arn)),
    )


def key_use_by_alarms(alarms: Arn, topics: Arn) -> Statement:
    """Let CloudWatch alarms of this account publish to the encrypted topic (they cannot use the
    AWS-managed SNS key, which is why the topic is encrypted with this one): only on behalf of
    an alarm of this account and region, and only for a topic of theirs (SNS's encryption
    context). The topic policy then names the stack's own alarms one by one; their ARNs cannot
    appear here, as the alarms depend on the topic, which depends on this key."""
    return Statement(
        Sid="AlarmsPublishToEncryptedTopic",
        Effect=Allow,
        Principal=Principal("Service", "cloudwatch.amazonaws.com"),
        Action=[kms.Decrypt, kms.GenerateDataKey],
        Resource=["*"],
        Condition=Condition([
            _ACCOUNT,
            # one ArnLike with both keys: awacs keeps only the last of two ArnLike elements
            ArnLike({"aws:SourceArn": alarms, "kms:EncryptionContext:aws:sns:topicArn": topics}),
        ]),
    )  # fmt: skip


def key_use_by_events(topics: Arn) -> Statement:
    """Let EventBridge (the task-failed rule) publish to the encrypted topic, only for a topic of
    this account and region (SNS's encryption context).

    No ``aws:SourceAccount``/``aws:SourceArn`` here: AWS documents that the KMS request SNS
    makes for an EventBridge delivery does not carry them, so such a condition would drop every
    task-failed alert without an error. The topic policy names the one rule that may publish.
    """
    return Statement(
        Sid="EventsPublishToEncryptedTopic",
        Effect=Allow,
        Principal=Principal("Service", "events.amazonaws.com"),
        Action=[kms.Decrypt, kms.GenerateDataKey],
        Resource=["*"],
        Condition=Condition(ArnLike("kms:EncryptionContext:aws:sns:topicArn", topics)),
    )
