"""``python -m fluxion_cfn deploy``: the stack through a CloudFormation change set (docs/aws.md).

A change set, not ``create-stack``/``update-stack``: the operator (or the pull request's CI log)
sees what would change -- which resources, and whether one is *replaced* -- before anything does,
and ``--no-execute`` stops there. The flow:

1. CREATE when the stack is absent or was left in ``REVIEW_IN_PROGRESS`` (a CREATE change set
   that was never executed), else UPDATE;
2. parameters: the overrides; on UPDATE also ``UsePreviousValue`` for every other parameter the
   deployed stack and the new template share, so a deploy that only moves ``ImageTag`` cannot
   reset ``ScheduleState`` to its default;
3. wait for the change set; an empty one is "no changes" (exit 0), whichever way the endpoint
   says so (see :func:`is_no_change`);
4. print the changes; execute unless told not to; wait; print the outputs, or the events of the
   failed operation.

Every AWS call goes through the CloudFormation client passed in, addressed by the stack *id* once
there is one: a name can refer to an older stack (the one a change set left in review).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import cfn_flip
from botocore.exceptions import ClientError, WaiterError

from fluxion_cfn.changes import (
    CHANGE_HEADER,
    EVENT_HEADER,
    OUTPUT_HEADER,
    change_rows,
    event_rows,
    output_rows,
    table,
)
from fluxion_cfn.errors import CommandError, UsageError
from fluxion_cfn.overrides import check_parameter_keys, check_tags
from fluxion_cfn.stack import render

#: How CloudFormation says a change set is empty: the FAILED change set's StatusReason, or (some
#: endpoints, and moto) a ValidationError when the change set is created.
NO_CHANGE_MARKERS = (
    "didn't contain changes",
    "No updates are to be performed",
)

#: States a stack can take an UPDATE change set in.
UPDATABLE = frozenset({
    "CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
})  # fmt: skip
#: A failed first creation: CloudFormation can only delete such a stack.
FAILED_CREATION = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"})

#: IAM resource types, and the property that gives each a custom name (CAPABILITY_NAMED_IAM).
IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::UserToGroupAddition": None,
}

STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
#: Change sets are quick; stacks with a task definition and IAM roles take minutes.
CHANGE_SET_WAIT = {"Delay": 5, "MaxAttempts": 120}
STACK_WAIT = {"Delay": 10, "MaxAttempts": 360}
#: Events printed when an execution fails: enough to reach the first failure of a large update.
EVENTS_SHOWN = 40


@dataclass(frozen=True)
class TemplateSource:
    """The template to deploy: its text, and what deploy must know of it before sending it."""

    body: str
    parameters: Mapping[str, Mapping[str, Any]]
    resources: Mapping[str, Mapping[str, Any]]

    @classmethod
    def load(cls, path: Path | None = None) -> TemplateSource:
        """The file at ``path`` (YAML or JSON), or the generated template (the committed one)."""
        if path is None:
            body = render("yaml")
        else:
            try:
                body = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--template-file: cannot read {path}: {exc.strerror}") from exc
        try:
            document, _ = cfn_flip.load(body)
        except Exception as exc:  # cfn_flip raises yaml's or json's own errors
            raise UsageError(f"--template-file: {path} is not a YAML or JSON template") from exc
        if not isinstance(document, Mapping) or not isinstance(document.get("Resources"), Mapping):
            raise UsageError(f"--template-file: {path} has no Resources section")
        return cls(body, dict(document.get("Parameters") or {}), dict(document["Resources"]))


@dataclass(frozen=True)
class DeployRequest:
    stack_name: str
    template: TemplateSource
    overrides: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    execute: bool = True

    def check(self) -> None:
        """Usage errors the arguments alone reveal; raised before any AWS call."""
        if not STACK_NAME.match(self.stack_name):
            raise UsageError(
                f"--stack-name: {self.stack_name!r} is not a stack name (a letter, then up to"
                " 127 letters, digits or hyphens)"
            )
        check_parameter_keys(self.overrides, self.template.parameters)
        check_tags(self.tags)


def required_capabilities(resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """CAPABILITY_IAM when the template has IAM resources; CAPABILITY_NAMED_IAM as well when one
    of them has a custom name. Derived, not hard-coded, so a future named role cannot fail the
    change set with InsufficientCapabilities."""
    iam = [r for r in resources.values() if r.get("Type") in IAM_NAME_PROPERTIES]
    if not iam:
        return []
    named = any(
        (prop := IAM_NAME_PROPERTIES[str(r["Type"])]) and prop in (r.get("Properties") or {})
        for r in iam
    )
    return ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"] if named else ["CAPABILITY_IAM"]


def change_set_type(stack: Mapping[str, Any] | None) -> str:
    """CREATE or UPDATE, or a CommandError saying why the stack cannot take a change set now."""
    if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        return "CREATE"
    status, name = str(stack["StackStatus"]), str(stack["StackName"])
    if status in UPDATABLE:
        return "UPDATE"
    if status in FAILED_CREATION:
        raise CommandError(
            f"stack {name} is {status}: its first creation failed and CloudFormation can only"
            f" delete it (aws cloudformation delete-stack --stack-name {name}), then deploy again"
        )
    if status.endswith("_IN_PROGRESS"):
        raise CommandError(f"stack {name} is {status}: wait for that operation to end, then retry")
    raise CommandError(
        f"stack {name} is {status}: CloudFormation cannot update it until that is resolved"
        " (see its events in the console)"
    )


def change_set_parameters(
    kind: str,
    declared: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, str],
    deployed: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The ``Parameters`` of the change set.

    CREATE: only the overrides (the template's defaults give the rest). UPDATE: the overrides,
    plus ``UsePreviousValue`` for each other parameter present in both the deployed stack and the
    new template (asking for the previous value of a parameter the stack lacks is an error; one
    the template dropped must not be sent). A parameter with no default that neither the
    overrides nor the deployed stack give is a usage error here, not a failed change set later.
    """
    previous = [] if kind == "CREATE" else [k for k in declared if k in set(deployed)]
    missing = sorted(
        name for name, spec in declared.items()
        if "Default" not in spec and name not in overrides and name not in previous
    )  # fmt: skip
    if missing:
        raise UsageError(
            f"--parameter-overrides: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'}"
            " no default and must be given"
            + (" on the first deploy" if kind == "CREATE" else " (new in this template)")
        )
    parameters: list[dict[str, Any]] = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in sorted(overrides.items())
    ]
    parameters += [
        {"ParameterKey": key, "UsePreviousValue": True}
        for key in sorted(previous)
        if key not in overrides
    ]
    return parameters


def parameter_changes(
    overrides: Mapping[str, str], deployed: Mapping[str, str], hidden: Collection[str] = ()
) -> list[str]:
    """``Key: old -> new`` for each override that changes the deployed value.

    Printed with the change set because a parameter-only change (a new ``ImageTag``) is the
    common deploy and the resource table alone does not say which value moved. A ``hidden``
    (``NoEcho``) parameter is named, never its value: CloudFormation reports the deployed one as
    ``****`` and the new one must not reach a terminal or a CI log either.
    """
    lines = []
    for key, value in sorted(overrides.items()):
        if key in hidden:
            lines.append(f"{key}: (NoEcho: value not shown)")
        elif key not in deployed:
            lines.append(f"{key}: (new) -> {value!r}")
        elif deployed[key] != value:
            lines.append(f"{key}: {deployed[key]!r} -> {value!r}")
    return lines


def no_echo(declared: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """The template's ``NoEcho`` parameters (their values are never printed)."""
    return frozenset(k for k, spec in declared.items() if str(spec.get("NoEcho")).lower() == "true")


def is_no_change(reason: str | None) -> bool:
    return any(marker in (reason or "") for marker in NO_CHANGE_MARKERS)


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """The stack, or None when CloudFormation has no stack of that name."""
    try:
        (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            return None
        raise
    return dict(stack)


def stack_parameters(stack: Mapping[str, Any]) -> dict[str, str]:
    """The deployed stack's parameter values by key (``DescribeStacks`` ``Parameters``)."""
    return {
        str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
        for p in stack.get("Parameters") or []
    }


def _change_set_name(kind: str) -> str:
    return f"fluxion-{kind.lower()}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def _describe_changes(cfn: Any, change_set_id: str) -> dict[str, Any]:
    """DescribeChangeSet with every page of ``Changes`` gathered."""
    described = dict(cfn.describe_change_set(ChangeSetName=change_set_id))
    changes = list(described.get("Changes") or [])
    while token := described.get("NextToken"):
        described = dict(cfn.describe_change_set(ChangeSetName=change_set_id, NextToken=token))
        changes += described.get("Changes") or []
    described["Changes"] = changes
    return described


def _operation_events(cfn: Any, stack_id: str, stack_name: str) -> list[dict[str, Any]]:
    """This operation's events, oldest first: newest back to the stack's "User Initiated" start."""
    events: list[dict[str, Any]] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id):
        for event in page["StackEvents"]:
            events.append(event)
            started = (
                event.get("LogicalResourceId") == stack_name
                and event.get("ResourceType") == "AWS::CloudFormation::Stack"
                and str(event.get("ResourceStatus", "")).endswith("_IN_PROGRESS")
                and event.get("ResourceStatusReason") == "User Initiated"
            )
            if started or len(events) >= EVENTS_SHOWN:
                return events[::-1]
    return events[::-1]


class Deployer:
    """One deploy of one stack; ``run`` is the whole flow, each step a method."""

    def __init__(self, cfn: Any, request: DeployRequest, out: TextIO) -> None:
        self.cfn = cfn
        self.request = request
        self.out = out

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self) -> None:
        request = self.request
        request.check()
        stack = describe_stack(self.cfn, request.stack_name)
        kind = change_set_type(stack)
        # A stack left in review was never deployed: it has no values to keep or compare with.
        deployed = {} if kind == "CREATE" else stack_parameters(stack or {})
        parameters = change_set_parameters(
            kind, request.template.parameters, request.overrides, list(deployed)
        )
        created = self.create_change_set(kind, parameters)
        if created is None:
            return
        change_set_id, stack_id = created
        if not self.wait_for_change_set(change_set_id):
            return
        described = _describe_changes(self.cfn, change_set_id)
        hidden = no_echo(request.template.parameters)
        self.show_changes(kind, described, parameter_changes(request.overrides, deployed, hidden))
        if not request.execute:
            self.say(
                f"\nNot executed (--no-execute). Review it, then execute it with:\n"
                f"  aws cloudformation execute-change-set --change-set-name {change_set_id}"
            )
            return
        self.execute(kind, change_set_id, stack_id)

    def create_change_set(
        self, kind: str, parameters: list[dict[str, Any]]
    ) -> tuple[str, str] | None:
        """(change set id, stack id), or None when the endpoint already said "no changes"."""
        request = self.request
        name = _change_set_name(kind)
        args: dict[str, Any] = {
            "StackName": request.stack_name,
            "ChangeSetName": name,
            "ChangeSetType": kind,
            "TemplateBody": request.template.body,
            "Parameters": parameters,
            "Capabilities": required_capabilities(request.template.resources),
            "Description": "python -m fluxion_cfn deploy",
        }
        if request.tags:
            args["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(request.tags.items())]
        self.say(f"Creating change set {name} ({kind} of stack {request.stack_name}) ...")
        try:
            response = self.cfn.create_change_set(**args)
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", exc))
            if is_no_change(message):
                self.say(f"No changes: stack {request.stack_name} is up to date ({message})")
                return None
            raise CommandError(f"the change set was refused: {message}") from exc
        return str(response["Id"]), str(response["StackId"])

    def wait_for_change_set(self, change_set_id: str) -> bool:
        """True when the change set is ready to review; False when it is the empty one."""
        try:
            self.cfn.get_waiter("change_set_create_complete").wait(
                ChangeSetName=change_set_id, WaiterConfig=CHANGE_SET_WAIT
            )
        except WaiterError as exc:
            described = self.cfn.describe_change_set(ChangeSetName=change_set_id)
            reason = str(described.get("StatusReason") or exc)
            if described.get("Status") == "FAILED" and is_no_change(reason):
                self.say(f"No changes: stack {self.request.stack_name} is up to date ({reason})")
                # An empty change set can never be executed; leaving it would only pile up.
                self.cfn.delete_change_set(ChangeSetName=change_set_id)
                return False
            raise CommandError(f"the change set failed: {reason}") from exc
        return True

    def show_changes(self, kind: str, described: Mapping[str, Any], moved: list[str]) -> None:
        rows = change_rows(described["Changes"])
        self.say(f"\n{kind} {self.request.stack_name}: {len(rows)} resource change(s)")
        if rows:
            self.say(table(CHANGE_HEADER, rows))
        if moved:
            self.say("\nParameters this deploy sets or changes:")
            for line in moved:
                self.say(f"  {line}")

    def execute(self, kind: str, change_set_id: str, stack_id: str) -> None:
        self.say(f"\nExecuting {change_set_id} ...")
        self.cfn.execute_change_set(ChangeSetName=change_set_id)
        waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
        try:
            self.cfn.get_waiter(waiter).wait(StackName=stack_id, WaiterConfig=STACK_WAIT)
        except WaiterError as exc:
            self.show_failure(stack_id)
            status = (exc.last_response or {}).get("Stacks", [{}])[0].get("StackStatus", "?")
            raise CommandError(
                f"stack {self.request.stack_name} did not reach {kind}_COMPLETE (it is"
                f" {status}); its events are above"
            ) from exc
        (stack,) = self.cfn.describe_stacks(StackName=stack_id)["Stacks"]
        self.say(f"\nStack {self.request.stack_name}: {stack['StackStatus']}")
        outputs = output_rows(stack.get("Outputs") or [])
        self.say(table(OUTPUT_HEADER, outputs) if outputs else "(the stack reports no outputs)")

    def show_failure(self, stack_id: str) -> None:
        events = _operation_events(self.cfn, stack_id, self.request.stack_name)
        self.say(f"\nEvents of the failed operation (oldest first, at most {EVENTS_SHOWN}):")
        self.say(table(EVENT_HEADER, event_rows(events)))


def deploy(cfn: Any, request: DeployRequest, out: TextIO) -> None:
    """Run one deploy; raises :class:`CommandError` (exit 1) or :class:`UsageError` (exit 2)."""
    Deployer(cfn, request, out).run()
