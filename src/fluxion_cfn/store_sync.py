"""The backend's one-store sync: a state machine that runs the ETL task for the stores it is
given, and the managed policy that lets the backend start it and nothing else.

The chain's backend starts a sync of chosen stores from its own API. Given ``ecs:RunTask`` and
``iam:PassRole`` (the earlier ``RunTaskPolicy``) it could override anything of the task: its
command, and so receive the ``SQL_PASS``/``PGPASSWORD`` ECS injects and send them out over the
task's HTTPS egress. Here it gets ``states:StartExecution`` on one state machine instead. The
machine's definition fixes every argument of ``ecs:RunTask`` (cluster, task definition,
network, tags) and the only override it makes is the container's ``ETL_TIENDAS`` (from the
input's ``stores``) and ``ETL_ACCEPT_SHRINK`` (from ``accept_shrink``, when given); any other
key of the input is never read. An input without a non-empty ``stores`` string, or with an
``accept_shrink`` that is not a non-empty string, fails before any task starts
(``fluxion.InvalidInput``); the ETL then checks both lists against the stores file as for any
run (exit 2 for an unknown id).

``runTask.sync`` waits for the task to stop: the execution succeeds when the container exits 0
and fails (``States.TaskFailed``, the stopped task's description as the cause, with its exit
code) otherwise, so the backend learns the run's outcome from ``DescribeExecution`` alone.

The machine's role may run this task family in this cluster only, read and stop the cluster's
tasks (``runTask.sync`` follows and, on a stopped execution, stops the task), tag the task it
starts (the family's tags are propagated), hand the task its two roles (to ECS tasks only), and
manage the one EventBridge rule Step Functions keeps for ``runTask.sync``.

``python -m fluxion_cfn run-task`` does not go through the machine: the operator who deploys
the stack already holds far more than ``ecs:RunTask`` (it creates the roles), and run-task also
starts a run of every active store, which the machine deliberately cannot.
"""

import json
from dataclasses import dataclass
from typing import Any

from awacs.aws import PolicyDocument
from troposphere import GetAtt, Join, Ref, Sub, Template
from troposphere.ecs import TaskDefinition
from troposphere.iam import ManagedPolicy, Policy, Role
from troposphere.stepfunctions import StateMachine

from fluxion_cfn import iam
from fluxion_cfn.naming import (
    cluster_arn,
    cluster_tasks_arn,
    executions_of,
    sfn_ecs_events_rule_arn,
    state_machines_of_account,
    tags,
    task_family_arn,
)
from fluxion_cfn.network import TaskNetwork
from fluxion_cfn.parameters import Parameters
from fluxion_cfn.roles import TaskRoles
from fluxion_cfn.task import CONTAINER

#: The execution input's keys, and the container variables they become.
INPUT_OVERRIDES = {"stores": "ETL_TIENDAS", "accept_shrink": "ETL_ACCEPT_SHRINK"}
INVALID_INPUT = "fluxion.InvalidInput"
RUN_STORES = "RunStores"
RUN_STORES_ACCEPTING = "RunStoresAcceptingShrink"


@dataclass(frozen=True)
class StoreSync:
    state_machine: StateMachine
    role: Role
    start_policy: ManagedPolicy


def _refuse_unless_nonempty_string(key: str) -> list[dict[str, Any]]:
    """Choice rules, tried in order, that send an input whose ``key`` is no non-empty string to
    the refusal (type tests first: a comparison on a missing or non-string value is no
    match, never a runtime error)."""
    path = f"$.{key}"
    return [
        {"Variable": path, "IsString": False, "Next": "RefuseInput"},
        {"Variable": path, "StringEquals": "", "Next": "RefuseInput"},
    ]


def _run_task_state(overrides: dict[str, str]) -> dict[str, Any]:
    """The ``runTask.sync`` state; ``${...}`` are filled by ``Fn::Sub`` (:func:`definition`)."""
    return {
        "Type": "Task",
        "Resource": "arn:${AWS::Partition}:states:::ecs:runTask.sync",
        "Parameters": {
            "Cluster": "${ClusterArn}",
            "TaskDefinition": "${TaskDefinitionArn}",
            "LaunchType": "FARGATE",
            "PlatformVersion": "LATEST",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "Subnets": ["${SubnetIds}"],
                    "SecurityGroups": ["${SecurityGroupId}"],
                    "AssignPublicIp": "DISABLED",
                }
            },
            # No EnableECSManagedTags (the schedule sets it): not among the RunTask parameters
            # Step Functions' ECS integration supports, which include only Cluster, Group,
            # LaunchType, NetworkConfiguration, Overrides, Placement*, PlatformVersion,
            # PropagateTags, TaskDefinition and EnableExecuteCommand.
            "PropagateTags": "TASK_DEFINITION",
            "Overrides": {
                "ContainerOverrides": [
                    {
                        "Name": CONTAINER,
                        "Environment": [
                            {"Name": variable, "Value.$": f"$.{key}"}
                            for key, variable in overrides.items()
                        ],
                    }
                ]
            },
        },
        "ResultSelector": {"TaskArn.$": "$.TaskArn", "Containers.$": "$.Containers"},
        "End": True,
    }


def definition_document() -> dict[str, Any]:
    """The state machine's definition (Amazon States Language, JSONPath) before substitution."""
    stores, accept = INPUT_OVERRIDES
    return {
        "Comment": "fluxion ${AWS::StackName}: run the ETL task for the input's stores only",
        "StartAt": "CheckInput",
        "States": {
            "CheckInput": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": f"$.{stores}", "IsPresent": False, "Next": "RefuseInput"},
                    *_refuse_unless_nonempty_string(stores),
                    {"Variable": f"$.{accept}", "IsPresent": False, "Next": RUN_STORES},
                    *_refuse_unless_nonempty_string(accept),
                ],
                "Default": RUN_STORES_ACCEPTING,
            },
            "RefuseInput": {
                "Type": "Fail",
                "Error": INVALID_INPUT,
                "Cause": 'the input is {"stores": "id,id"} or {"stores": "id,id",'
                ' "accept_shrink": "id,id|all"}: non-empty strings',
            },
            RUN_STORES: _run_task_state({stores: INPUT_OVERRIDES[stores]}),
            RUN_STORES_ACCEPTING: _run_task_state(INPUT_OVERRIDES),
        },
    }


def definition(params: Parameters, task_def: TaskDefinition, network: TaskNetwork) -> Sub:
    """The definition as ``DefinitionString``: JSON text through ``Fn::Sub`` (moto, the tests'
    CloudFormation, reads ``DefinitionString`` but not ``Definition`` with substitutions)."""
    text = json.dumps(definition_document(), indent=2, sort_keys=True)
    return Sub(
        text,
        ClusterArn=cluster_arn(params),
        TaskDefinitionArn=Ref(task_def),
        SubnetIds=Join('","', Ref(params.private_subnets)),
        SecurityGroupId=GetAtt(network.security_group, "GroupId"),
    )


def add_store_sync(
    template: Template,
    params: Parameters,
    task_def: TaskDefinition,
    network: TaskNetwork,
    roles: TaskRoles,
) -> StoreSync:
    role = template.add_resource(
        Role(
            "StoreSyncRole",
            Description="fluxion ETL: lets the store-sync state machine run the ETL task",
            AssumeRolePolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    iam.assumed_by("states.amazonaws.com", source_arn=state_machines_of_account())
                ],
            ),
            Policies=[
                Policy(
                    PolicyName="StoreSyncRole",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            iam.run_task(task_family_arn(), cluster_arn(params)),
                            iam.follow_and_stop_tasks(cluster_tasks_arn(params)),
                            iam.tag_new_tasks(cluster_tasks_arn(params)),
                            iam.pass_roles(roles.execution, roles.task),
                            iam.task_state_events_rule(sfn_ecs_events_rule_arn()),
                        ],
                    ),
                )
            ],
            Tags=tags(params),
        )
    )
    machine = template.add_resource(
        StateMachine(
            "StoreSyncStateMachine",
            DefinitionString=definition(params, task_def, network),
            RoleArn=GetAtt(role, "Arn"),
            StateMachineType="STANDARD",
            Tags=tags(params),
        )
    )
    policy = template.add_resource(
        ManagedPolicy(
            "StartStoreSyncPolicy",
            Description=Sub(
                "fluxion ${AWS::StackName}: start a sync of chosen stores (the store-sync state"
                " machine) and follow it to its end"
            ),
            PolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    iam.start_store_sync(Ref(machine)),
                    iam.describe_store_syncs(executions_of(GetAtt(machine, "Name"))),
                ],
            ),
        )
    )
    return StoreSync(state_machine=machine, role=role, start_policy=policy)
