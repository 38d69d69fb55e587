"""``python -m fluxion_cfn run-task``: one ETL run now, the way the schedule would start it.

The manual test before ``ScheduleState=ENABLED`` (docs/aws.md): same cluster, task definition
revision, private subnets, security group and no public IP as the schedule's target, all read
from the deployed stack so that nothing is typed by hand. It starts the task and says where its
logs are; it does not wait (``aws ecs wait tasks-stopped`` does, and the run may take minutes).

``--stores a,b`` makes it a one-store (or few-store) sync: a container override of
``ETL_TIENDAS`` for that task only. An id that the stores file does not know is refused before any
AWS call when the file is at hand (``--stores-file`` or ``ETL_STORES_FILE``); otherwise the task
itself refuses it (exit 2, the task-failed alert).

``--accept-shrink a,b|all`` publishes, in that task only, the snapshots the snapshot guard
(fluxion_etl.run.guard) would hold back: a container override of ``ETL_ACCEPT_SHRINK``, never a
stack parameter, since a standing accept would switch the guard off for every scheduled run. An
accepted id must be one the task runs: one of ``--stores``, checked before any AWS call; without
``--stores`` (the stack's ``EtlStores`` decides) only a store the stores file at hand configures.
The task checks it against its own stores again (exit 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fluxion_cfn.deploy import describe_stack, stack_parameters
from fluxion_cfn.errors import CommandError, UsageError
from fluxion_cfn.naming import LOG_GROUP_NAME
from fluxion_cfn.task import CONTAINER

#: Stack states whose resources are in place (an update that rolled back left the old ones).
RUNNABLE = frozenset({
    "CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
})  # fmt: skip

#: Output -> the logical id of the resource it names, read when the output is missing: moto's
#: CloudFormation (the tests' endpoint) computes no outputs for a stack made by a change set.
OUTPUT_RESOURCES = {
    "TaskDefinitionArn": "TaskDefinition",
    "SecurityGroupId": "TaskSecurityGroup",
}
#: What the task's log stream is called: ``<awslogs-stream-prefix>/<container>/<task id>``.
STREAM_PREFIX = f"{CONTAINER}/{CONTAINER}"
STARTED_BY = "fluxion-cfn-run-task"
_SUBNET = re.compile(r"subnet-[0-9a-f]+")
#: A store id as the stores file and the EtlStores parameter accept it.
_STORE_ID = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True)
class RunTarget:
    """Where and what to run, as the schedule's EventBridge target has it."""

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_group: str
    log_group: str

    def run_task_request(
        self, stores: tuple[str, ...] = (), accept_shrink: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """``ecs.run_task`` arguments mirroring the schedule's target (fluxion_cfn.schedule),
        with ``ETL_TIENDAS`` / ``ETL_ACCEPT_SHRINK`` overridden when ``stores`` /
        ``accept_shrink`` are given."""
        environment = [
            {"name": name, "value": ",".join(ids)}
            for name, ids in (("ETL_TIENDAS", stores), ("ETL_ACCEPT_SHRINK", accept_shrink))
            if ids
        ]
        overrides = (
            {"overrides": {"containerOverrides": [
                {"name": CONTAINER, "environment": environment}]}}
            if environment
            else {}
        )  # fmt: skip
        return {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "count": 1,
            "launchType": "FARGATE",
            "platformVersion": "LATEST",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(self.subnets),
                    "securityGroups": [self.security_group],
                    "assignPublicIp": "DISABLED",
                }
            },
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
            "startedBy": STARTED_BY,
            **overrides,
        }


def requested_stores(raw: str | None, stores_file: Path | None) -> tuple[str, ...]:
    """The store ids of ``--stores``, checked before any AWS call; () for every active store.

    With a stores file at hand (``stores_file``, else ``ETL_STORES_FILE``), an id it does not
    configure is a usage error here, exactly as the task would refuse it.
    """
    if raw is None:
        return ()
    from fluxion_etl.config import parse_id_list
    from fluxion_etl.errors import ConfigError
    from fluxion_etl.stores import load_stores, select_stores

    try:
        ids = parse_id_list(raw, "--stores")
        bad = [store_id for store_id in ids if not _STORE_ID.fullmatch(store_id)]
        if bad:
            raise ConfigError(f"--stores: {', '.join(bad)} is not a store id ([a-z0-9_]+)")
        path = stores_file or _env_path("ETL_STORES_FILE")
        if path is not None:
            select_stores(load_stores(path), ids)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return ids


def requested_accept(
    raw: str | None, stores: tuple[str, ...], stores_file: Path | None
) -> tuple[str, ...]:
    """The store ids (or ``all``) of ``--accept-shrink``, checked before any AWS call; () when
    not given.

    ``stores`` are the already checked ``--stores``. An accepted id must be one the task runs:
    one of ``stores``. Without them the task runs the stack's ``EtlStores`` (which may name an
    inactive store) or every active one, which is not known here: the id need only be configured
    in the stores file at hand (``stores_file``, else ``ETL_STORES_FILE``), and the task checks
    the rest (exit 2).
    """
    if raw is None:
        return ()
    from fluxion_etl.config import parse_id_list
    from fluxion_etl.errors import ConfigError
    from fluxion_etl.run.guard import ACCEPT_ALL
    from fluxion_etl.stores import load_stores

    source = "--accept-shrink"
    try:
        ids = parse_id_list(raw, source)
        if ACCEPT_ALL in ids:
            if len(ids) > 1:
                raise ConfigError(f"{source}: {ACCEPT_ALL} already names every store of the run")
            return ids
        bad = [store_id for store_id in ids if not _STORE_ID.fullmatch(store_id)]
        if bad:
            raise ConfigError(f"{source}: {', '.join(bad)} is not a store id ([a-z0-9_]+)")
        path = stores_file or _env_path("ETL_STORES_FILE")
        if stores:
            unknown = [store_id for store_id in ids if store_id not in stores]
            if unknown:
                raise ConfigError(
                    f"{source}: {', '.join(unknown)} not among this task's stores"
                    f" ({', '.join(stores)})"
                )
        elif path is not None:
            configured = [store.id for store in load_stores(path)]
            unknown = [store_id for store_id in ids if store_id not in configured]
            if unknown:
                raise ConfigError(
                    f"{source}: unknown store id(s): {', '.join(unknown)}"
                    f" (configured: {', '.join(configured)})"
                )
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return ids


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def subnet_ids(value: str) -> tuple[str, ...]:
    """The subnet ids of a ``List<AWS::EC2::Subnet::Id>`` parameter value.

    CloudFormation reports ``subnet-a,subnet-b``; moto reports the Python list's repr. Picking
    the ids out reads both, and an id has no character either form uses as a separator.
    """
    return tuple(_SUBNET.findall(value))


def find_target(cfn: Any, stack_name: str) -> RunTarget:
    """The run's settings from the stack: its parameters and outputs (resources as fallback)."""
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        raise CommandError(f"there is no stack {stack_name}: deploy it first")
    status = str(stack["StackStatus"])
    if status not in RUNNABLE:
        hint = (
            " (only a change set was created: deploy again without --no-execute)"
            if status == "REVIEW_IN_PROGRESS"
            else ""
        )
        raise CommandError(f"stack {stack_name} is {status}, not deployed{hint}")
    parameters = stack_parameters(stack)
    outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs") or []}
    missing = [name for name in OUTPUT_RESOURCES if not outputs.get(name)]
    if missing:
        physical = _physical_ids(cfn, str(stack["StackId"]))
        for name in missing:
            outputs[name] = physical.get(OUTPUT_RESOURCES[name], "")
    subnets = subnet_ids(parameters.get("PrivateSubnetIds", ""))
    # The group's name is fixed by the template (naming.LOG_GROUP_NAME) when the output is absent.
    log_group = outputs.get("LogGroupName") or LOG_GROUP_NAME.replace(
        "${AWS::StackName}", stack_name
    )
    target = RunTarget(
        cluster=parameters.get("ClusterName", ""),
        task_definition=outputs["TaskDefinitionArn"],
        subnets=subnets,
        security_group=outputs["SecurityGroupId"],
        log_group=log_group,
    )
    empty = [name for name, value in vars(target).items() if not value]
    if empty:
        raise CommandError(
            f"stack {stack_name} does not give {', '.join(empty)}: is it a fluxion stack?"
        )
    return target


def _physical_ids(cfn: Any, stack_id: str) -> Mapping[str, str]:
    ids: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for resource in page["StackResourceSummaries"]:
            if resource.get("LogicalResourceId") and resource.get("PhysicalResourceId"):
                ids[str(resource["LogicalResourceId"])] = str(resource["PhysicalResourceId"])
    return ids


def start(
    ecs: Any,
    target: RunTarget,
    stores: tuple[str, ...] = (),
    accept_shrink: tuple[str, ...] = (),
) -> str:
    """Start the task; its ARN. ECS reports placement problems as ``failures``, not errors."""
    response = ecs.run_task(**target.run_task_request(stores, accept_shrink))
    failures = response.get("failures") or []
    tasks = response.get("tasks") or []
    if failures or not tasks:
        reasons = "; ".join(
            f"{f.get('arn', '?')}: {f.get('reason', '?')} {f.get('detail', '')}".strip()
            for f in failures
        )
        raise CommandError(f"ECS did not start the task: {reasons or 'no task returned'}")
    return str(tasks[0]["taskArn"])


def run_task(
    cfn: Any,
    ecs: Any,
    stack_name: str,
    out: TextIO,
    region: str | None,
    stores: tuple[str, ...] = (),
    accept_shrink: tuple[str, ...] = (),
) -> str:
    """Start one run (of ``stores`` only, if given; publishing the ``accept_shrink`` stores'
    held-back snapshots) and print its task ARN and where to follow its logs; the ARN."""
    target = find_target(cfn, stack_name)
    task_arn = start(ecs, target, stores, accept_shrink)
    stream = f"{STREAM_PREFIX}/{task_arn.rsplit('/', 1)[-1]}"
    region_arg = f" --region {region}" if region else ""
    print(f"task: {task_arn}", file=out)
    print(f"stores: {','.join(stores) if stores else 'every active store (ETL_TIENDAS)'}", file=out)
    if accept_shrink:
        print(f"accept shrink: {','.join(accept_shrink)} (this task only)", file=out)
    print(f"log group: {target.log_group}", file=out)
    print(f"log stream: {stream}", file=out)
    print(
        f"follow: aws logs tail {target.log_group} --follow --log-stream-names {stream}"
        f"{region_arg}",
        file=out,
    )
    print(
        f"wait: aws ecs wait tasks-stopped --cluster {target.cluster} --tasks {task_arn}"
        f"{region_arg}",
        file=out,
    )
    return task_arn
