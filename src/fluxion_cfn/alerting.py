"""Alerting: an SNS topic, a rule on failed ECS runs, and alarms on the schedule and the ETL.

There is no AWS metric for "the task stopped badly" (the plan's ``TaskStoppedReason`` alarm
watched a metric that does not exist), so:

- a failed or partial run (non-zero exit code, docs/cli.md) or a task that never started
  (image pull, secret or EFS mount failure) is caught from ECS's own *Task State Change* events;
- a schedule that could not start the task shows in the rule's ``FailedInvocations``;
- a run at its deadline, no successful run at all for two periods (the dead-man alarm), and a
  store whose snapshot is older than ``EtlStaleAfterSeconds`` (one store down for days while the
  others run fine), come from the ETL's EMF metrics in :data:`NAMESPACE`, dimension
  ``Environment``.
"""

from dataclasses import dataclass

from awacs.aws import PolicyDocument
from troposphere import GetAtt, If, Ref, Sub, Template
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.events import InputTransformer, Rule, Target
from troposphere.kms import Key
from troposphere.logs import LogGroup
from troposphere.sns import SubscriptionResource, Topic, TopicPolicy

from fluxion_cfn import iam
from fluxion_cfn.conditions import Conditions
from fluxion_cfn.metric_names import ENVIRONMENT_DIMENSION, NAMESPACE, run_metric
from fluxion_cfn.naming import cluster_arn, tags, task_definition_arn_prefix
from fluxion_cfn.parameters import Parameters

_FAILURE_MESSAGE = (
    "fluxion ETL (stack ${AWS::StackName}): task <task> stopped at <stoppedAt> with exit code"
    " <exitCode>, stop code <stopCode>: <reason>. Exit codes: 1 run failed, 2 configuration"
    " error, 3 some stores failed, 4 another run held the lock. Logs: ${LogGroupName}"
)


@dataclass(frozen=True)
class Alerting:
    topic: Topic
    email: SubscriptionResource  # only under the HasAlertEmail condition
    task_failed: Rule
    alarms: tuple[Alarm, ...]
    topic_policy: TopicPolicy


def task_failure_pattern(params: Parameters) -> dict[str, object]:
    """ECS Task State Change of this stack's family, stopped with a non-zero exit or unstarted."""
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn(params)],
            "taskDefinitionArn": [{"prefix": task_definition_arn_prefix()}],
            "lastStatus": ["STOPPED"],
            "$or": [
                {"containers": {"exitCode": [{"numeric": [">", 0]}]}},
                {"stopCode": ["TaskFailedToStart"]},
            ],
        },
    }


def _task_failed_rule(params: Parameters, topic: Topic, log_group: LogGroup) -> Rule:
    return Rule(
        "TaskFailedRule",
        Description=Sub("fluxion ${AWS::StackName}: ETL task failed, partial or never started"),
        EventPattern=task_failure_pattern(params),
        State="ENABLED",
        Targets=[
            Target(
                Id="alert-topic",
                Arn=Ref(topic),
                InputTransformer=InputTransformer(
                    InputPathsMap={
                        "exitCode": "$.detail.containers[0].exitCode",
                        "reason": "$.detail.stoppedReason",
                        "stopCode": "$.detail.stopCode",
                        "stoppedAt": "$.detail.stoppedAt",
                        "task": "$.detail.taskArn",
                    },
                    InputTemplate=Sub(_FAILURE_MESSAGE, LogGroupName=Ref(log_group)),
                ),
            )
        ],
    )


def _alarms(
    params: Parameters, conditions: Conditions, topic: Topic, schedule: Rule
) -> tuple[Alarm, ...]:
    environment = [MetricDimension(Name=ENVIRONMENT_DIMENSION, Value=Ref(params.environment))]
    notify = {"AlarmActions": [Ref(topic)]}
    failed_invocations = Alarm(
        "ScheduleFailedAlarm",
        AlarmDescription=Sub(
            "fluxion ${AWS::StackName}: the schedule could not start the ETL task (RunTask"
            " failed after retries). Check the cluster, subnets and the schedule role."
        ),
        Namespace="AWS/Events",
        MetricName="FailedInvocations",
        Dimensions=[MetricDimension(Name="RuleName", Value=Ref(schedule))],
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        **notify,
    )
    too_long = Alarm(
        "RunDurationAlarm",
        AlarmDescription=Sub(
            "fluxion ${AWS::StackName}: an ETL run reached its deadline (EtlTimeoutSeconds) and"
            " stopped; some stores were not refreshed. Check slow stores and the VPN."
        ),
        Namespace=NAMESPACE,
        MetricName=run_metric("DurationSeconds"),
        Dimensions=environment,
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=Ref(params.timeout),
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        **notify,
    )
    no_success = Alarm(
        "NoSuccessfulRunAlarm",
        AlarmDescription=Sub(
            "fluxion ${AWS::StackName}: no successful ETL run in two schedule periods"
            " (SchedulePeriodSeconds); the inventory is getting stale. Check the task events."
        ),
        Namespace=NAMESPACE,
        MetricName=run_metric("RunSucceeded"),
        Dimensions=environment,
        Statistic="Sum",
        # Two consecutive periods without a success = no success in 2 x the schedule period.
        Period=Ref(params.schedule_period),
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",  # no datapoint at all is exactly what this alarm is for
        ActionsEnabled=If(conditions.schedule_enabled, True, False),
        **notify,
    )
    stale = Alarm(
        "StoresStaleAlarm",
        AlarmDescription=Sub(
            "fluxion ${AWS::StackName}: a store's published snapshot is older than"
            " EtlStaleAfterSeconds (or it was never published); the backend serves old stock for"
            " it. `fluxion-etl status` and the dashboard show which; check its VPN and the logs."
        ),
        Namespace=NAMESPACE,
        MetricName=run_metric("StoresStale"),
        Dimensions=environment,
        Statistic="Maximum",
        # One datapoint per run; a period per schedule period keeps the alarm in ALARM (one
        # notification) while the store stays stale, and a run with none stale clears it.
        Period=Ref(params.schedule_period),
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="ignore",  # no run at all is the dead-man alarm's to report
        **notify,
    )
    return failed_invocations, too_long, no_success, stale


def add_alerting(
    template: Template,
    params: Parameters,
    conditions: Conditions,
    key: Key,
    schedule: Rule,
    log_group: LogGroup,
) -> Alerting:
    topic = template.add_resource(
        Topic(
            "AlertTopic",
            DisplayName="fluxion ETL alerts",
            KmsMasterKeyId=GetAtt(key, "Arn"),
            Tags=tags(params),
        )
    )
    email = template.add_resource(
        SubscriptionResource(
            "AlertEmailSubscription",
            Condition=conditions.has_alert_email,
            Protocol="email",
            Endpoint=Ref(params.alert_email),
            TopicArn=Ref(topic),
        )
    )
    task_failed = template.add_resource(_task_failed_rule(params, topic, log_group))
    alarms = tuple(
        template.add_resource(alarm) for alarm in _alarms(params, conditions, topic, schedule)
    )
    topic_policy = template.add_resource(
        TopicPolicy(
            "AlertTopicPolicy",
            Topics=[Ref(topic)],
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    iam.topic_publish(
                        "events.amazonaws.com", Ref(topic), [GetAtt(task_failed, "Arn")]
                    ),
                    iam.topic_publish(
                        "cloudwatch.amazonaws.com",
                        Ref(topic),
                        [GetAtt(alarm, "Arn") for alarm in alarms],
                    ),
                ],
            ),
        )
    )
    return Alerting(topic, email, task_failed, alarms, topic_policy)
