"""A managed policy with what starting this ETL task needs, for the backend's role to attach.

The chain's backend starts a one-store sync from its own API (``ecs.run_task`` with an
``ETL_TIENDAS`` override, see docs/aws.md). Instead of a hand-written policy there, the stack
exports this one (output ``RunTaskPolicyArn``): run any revision of this stack's task family, in
its cluster only; read the cluster's tasks (to follow the run to its exit code); hand the task its
two roles, to ECS tasks only; and tag the task it starts, since RunTask propagates the task
definition's tags (ECS authorizes that tagging separately, as for the schedule's role).
"""

from awacs.aws import PolicyDocument
from troposphere import Sub, Template
from troposphere.iam import ManagedPolicy

from fluxion_cfn import iam
from fluxion_cfn.naming import cluster_arn, cluster_tasks_arn, task_family_arn
from fluxion_cfn.parameters import Parameters
from fluxion_cfn.roles import TaskRoles


def add_run_task_policy(template: Template, params: Parameters, roles: TaskRoles) -> ManagedPolicy:
    return template.add_resource(
        ManagedPolicy(
            "RunTaskPolicy",
            Description=Sub(
                "fluxion ${AWS::StackName}: start the ETL task (e.g. a one-store sync) and follow"
                " it to its exit code"
            ),
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    iam.run_task(task_family_arn(), cluster_arn(params)),
                    iam.describe_tasks(cluster_tasks_arn(params)),
                    iam.tag_new_tasks(cluster_tasks_arn(params)),
                    iam.pass_roles(roles.execution, roles.task),
                ],
            ),
        )
    )
