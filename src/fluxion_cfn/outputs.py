"""The stack's outputs, each exported as ``<stack>-<name>``.

They are what ``deploy``, ``run-task`` and the operator need after a deploy: where to push the
image, what to run, where its logs are (the group the stack created, not a guessed name), which
security group a manual run uses, where alerts go, which rule is the schedule, and the state
machine a backend starts a sync of chosen stores with, and the policy it attaches to do so.
"""

from troposphere import AWSHelperFn, Export, GetAtt, Output, Ref, Template
from troposphere.ecr import Repository
from troposphere.ecs import TaskDefinition
from troposphere.events import Rule
from troposphere.logs import LogGroup

from fluxion_cfn.alerting import Alerting
from fluxion_cfn.naming import export_name
from fluxion_cfn.network import TaskNetwork
from fluxion_cfn.secret import Credentials
from fluxion_cfn.store_sync import StoreSync


def add_outputs(
    template: Template,
    repo: Repository,
    task_def: TaskDefinition,
    log_group: LogGroup,
    network: TaskNetwork,
    alerting: Alerting,
    schedule: Rule,
    credentials: Credentials,
    store_sync: StoreSync,
) -> list[Output]:
    values: list[tuple[str, str, AWSHelperFn]] = [
        ("RepositoryUri", "ECR repository to push the ETL image to.",
         GetAtt(repo, "RepositoryUri")),
        ("TaskDefinitionArn", "Task definition revision the schedule runs.", Ref(task_def)),
        ("LogGroupName", "CloudWatch log group of the ETL runs.", Ref(log_group)),
        ("SecurityGroupId", "Security group of the ETL task (use it for manual runs).",
         GetAtt(network.security_group, "GroupId")),
        ("AlertTopicArn", "SNS topic of the alerts; subscribe more endpoints to it.",
         Ref(alerting.topic)),
        ("ScheduleRuleName", "EventBridge rule that starts the ETL.", Ref(schedule)),
        ("SqlCredentialsSecretArn", "Secret holding {\"username\", \"password\"} of the SQL login.",
         credentials.arn),
        ("StoreSyncStateMachineArn", "State machine that runs the ETL for the stores of its"
         " input ({\"stores\": \"id,id\"}): the backend's one-store sync.",
         Ref(store_sync.state_machine)),
        ("StartStoreSyncPolicyArn", "Managed policy to start (and follow) the store-sync state"
         " machine, and nothing else: attach it to the backend's role.",
         Ref(store_sync.start_policy)),
    ]
    return [
        template.add_output(
            Output(name, Description=description, Value=value, Export=Export(export_name(name)))
        )
        for name, description, value in values
    ]
