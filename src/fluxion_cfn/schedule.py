"""The EventBridge schedule that starts one ETL task per period.

RunTask from EventBridge is retried on throttling or capacity errors; an event older than
:data:`MAX_EVENT_AGE_SECONDS` is dropped, since the next scheduled run will do the job. What
still fails shows up in the rule's ``FailedInvocations`` metric, which an alarm watches.
"""

from troposphere import GetAtt, Ref, Sub, Template
from troposphere.ecs import TaskDefinition
from troposphere.events import (
    AwsVpcConfiguration,
    EcsParameters,
    NetworkConfiguration,
    RetryPolicy,
    Rule,
    Target,
)
from troposphere.iam import Role

from fluxion_cfn.naming import cluster_arn
from fluxion_cfn.network import TaskNetwork
from fluxion_cfn.parameters import Parameters

MAX_RETRY_ATTEMPTS = 3
MAX_EVENT_AGE_SECONDS = 3600


def add_schedule(
    template: Template,
    params: Parameters,
    task_def: TaskDefinition,
    network: TaskNetwork,
    role: Role,
) -> Rule:
    target = Target(
        Id="etl-task",
        Arn=cluster_arn(params),
        RoleArn=GetAtt(role, "Arn"),
        EcsParameters=EcsParameters(
            TaskDefinitionArn=Ref(task_def),
            TaskCount=1,
            LaunchType="FARGATE",
            PlatformVersion="LATEST",
            NetworkConfiguration=NetworkConfiguration(
                AwsVpcConfiguration=AwsVpcConfiguration(
                    Subnets=Ref(params.private_subnets),
                    SecurityGroups=[GetAtt(network.security_group, "GroupId")],
                    AssignPublicIp="DISABLED",
                )
            ),
            PropagateTags="TASK_DEFINITION",
            EnableECSManagedTags=True,
        ),
        RetryPolicy=RetryPolicy(
            MaximumRetryAttempts=MAX_RETRY_ATTEMPTS,
            MaximumEventAgeInSeconds=MAX_EVENT_AGE_SECONDS,
        ),
    )
    return template.add_resource(
        Rule(
            "ScheduleRule",
            Description=Sub("fluxion ${AWS::StackName}: start the inventory ETL"),
            ScheduleExpression=Ref(params.schedule_expression),
            State=Ref(params.schedule_state),
            Targets=[target],
        )
    )
