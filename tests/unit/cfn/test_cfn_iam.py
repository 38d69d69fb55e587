"""A walk over every policy statement of the template, failing on anything broader than needed.

Identity policies (the roles' inline policies, any managed policy) and the topic policy:
no wildcard action, no ``Resource: "*"`` except for the actions AWS defines on ``*`` alone,
``iam:PassRole`` only with ``iam:PassedToService``, ``ecs:RunTask`` only with ``ecs:cluster``.
Key policies follow the same action rule; their ``Resource`` is ``"*"`` by definition (it means
"this key"). Trust and resource policies never name ``*`` as principal.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from cfn_shapes import EXAMPLE_TARGET, EXAMPLE_TARGET_KEY, shape

#: Actions that have no resource-level permissions: AWS only accepts ``Resource: "*"`` for them.
STAR_ONLY_ACTIONS = {
    "ecr:GetAuthorizationToken",  # a registry login token is not tied to any repository
}

Statement = dict[str, Any]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, where, document) for every policy document in the template."""
    for name, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            yield "trust", f"{name} trust", props["AssumeRolePolicyDocument"]
            for policy in props.get("Policies", []):
                yield "identity", f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield "identity", name, props["PolicyDocument"]
        elif kind in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
            yield "resource", name, props["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield "key", name, props["KeyPolicy"]


def _condition_keys(statement: Statement) -> dict[str, set[str]]:
    return {op: set(keys) for op, keys in statement.get("Condition", {}).items()}


def violations(kind: str, statement: Statement) -> list[str]:
    """What is wrong with one statement of a policy of the given kind (empty: nothing)."""
    found = []
    for forbidden in ("NotAction", "NotResource", "NotPrincipal"):
        if forbidden in statement:
            found.append(f"uses {forbidden}")
    actions = [str(action) for action in _as_list(statement.get("Action", []))]
    found += [f"wildcard action {action}" for action in actions if "*" in action]
    if statement.get("Effect") != "Allow":
        return found

    principal = statement.get("Principal")
    if principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))):
        found.append("principal is everybody")

    resources = _as_list(statement.get("Resource", []))
    if kind == "key":
        if resources != ["*"]:
            found.append(f"key policy resource {resources} (must be '*': the key itself)")
    elif "*" in resources and not set(actions) <= STAR_ONLY_ACTIONS:
        found.append(f"Resource '*' for {sorted(set(actions) - STAR_ONLY_ACTIONS)}")

    conditions = _condition_keys(statement)
    if "iam:PassRole" in actions and "iam:PassedToService" not in conditions.get(
        "StringEquals", set()
    ):
        found.append("iam:PassRole without an iam:PassedToService condition")
    if "ecs:RunTask" in actions and not any(
        "ecs:cluster" in conditions.get(op, set())
        for op in ("ArnEquals", "ArnLike", "StringEquals")
    ):
        found.append("ecs:RunTask without an ecs:cluster condition")
    return found


TEMPLATE = shape()  # optional parts unset: today's stack (cfn_shapes.py)
DOCUMENTS = list(policy_documents(TEMPLATE))
#: The optional PostgreSQL target's own policies, from the shape with it and its key set.
TARGET_DOCUMENTS = [
    document
    for document in policy_documents(shape({**EXAMPLE_TARGET, **EXAMPLE_TARGET_KEY}))
    if document not in DOCUMENTS
]


def test_the_walk_sees_every_policy_of_the_stack() -> None:
    kinds = sorted(kind for kind, _, _ in DOCUMENTS)
    # 4 roles (trust + inline policy each), the start-store-sync managed policy, the topic
    # policy, the key policy.
    assert kinds == ["identity"] * 5 + ["key"] + ["resource"] + ["trust"] * 4
    # the target adds two policies of the execution role (its secret's read and key's decrypt)
    assert [(kind, where) for kind, where, _ in TARGET_DOCUMENTS] == [
        ("identity", "TargetCredentialsDecrypt"),
        ("identity", "TargetCredentialsRead"),
    ]


@pytest.mark.parametrize(
    ("kind", "where", "document"),
    DOCUMENTS + TARGET_DOCUMENTS,
    ids=[d[1] for d in DOCUMENTS + TARGET_DOCUMENTS],
)
def test_no_statement_grants_more_than_it_needs(
    kind: str, where: str, document: dict[str, Any]
) -> None:
    statements = _as_list(document["Statement"])
    assert statements, f"{where}: empty policy"
    problems = [f"{where}: {problem}" for s in statements for problem in violations(kind, s)]
    assert problems == []


def test_resource_star_appears_only_for_the_ecr_login_token() -> None:
    star = [
        action
        for kind, _, document in DOCUMENTS
        if kind in ("identity", "resource")
        for statement in _as_list(document["Statement"])
        if "*" in _as_list(statement.get("Resource", []))
        for action in _as_list(statement["Action"])
    ]
    assert star == ["ecr:GetAuthorizationToken"]


def test_the_schedule_and_the_store_sync_pass_exactly_the_two_task_roles() -> None:
    passing = {
        where: s
        for kind, where, document in DOCUMENTS
        if kind == "identity"
        for s in document["Statement"]
        if "iam:PassRole" in s["Action"]
    }
    assert sorted(passing) == ["ScheduleRole/ScheduleRole", "StoreSyncRole/StoreSyncRole"]
    for statement in passing.values():
        assert statement["Resource"] == [
            {"Fn::GetAtt": ["ExecutionRole", "Arn"]},
            {"Fn::GetAtt": ["TaskRole", "Arn"]},
        ]
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        }


PREFIX = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}"


def _actions(document: dict[str, Any]) -> set[str]:
    return {str(a) for s in _as_list(document["Statement"]) for a in _as_list(s["Action"])}


def test_the_backends_policy_starts_the_store_sync_and_nothing_else() -> None:
    """The managed policy for the backend's role: no ecs:RunTask (whose overrides could replace
    the command and read the injected passwords), no iam:PassRole, nothing of ECS at all."""
    managed = {where: d for kind, where, d in DOCUMENTS if where in TEMPLATE["Resources"]
               and TEMPLATE["Resources"][where]["Type"] == "AWS::IAM::ManagedPolicy"}  # fmt: skip
    assert list(managed) == ["StartStoreSyncPolicy"]
    (document,) = managed.values()
    assert _actions(document) == {"states:StartExecution", "states:DescribeExecution"}
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["StartStoreSync"]["Resource"] == [{"Ref": "StoreSyncStateMachine"}]
    assert by_sid["FollowStoreSyncs"]["Resource"] == [
        {
            "Fn::Sub": [
                PREFIX % "states" + ":execution:${Name}:*",
                {"Name": {"Fn::GetAtt": ["StoreSyncStateMachine", "Name"]}},
            ]
        }
    ]


def test_no_identity_policy_but_the_schedules_and_the_state_machines_may_run_the_task() -> None:
    running = sorted(
        where
        for kind, where, document in DOCUMENTS
        if kind == "identity" and _actions(document) & {"ecs:RunTask", "iam:PassRole"}
    )
    assert running == ["ScheduleRole/ScheduleRole", "StoreSyncRole/StoreSyncRole"]


def test_the_state_machines_role_runs_this_family_in_this_cluster_and_follows_it() -> None:
    (document,) = [d for kind, where, d in DOCUMENTS if where == "StoreSyncRole/StoreSyncRole"]
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert {sid: s["Action"] for sid, s in by_sid.items()} == {
        "RunEtlTask": ["ecs:RunTask"],
        "FollowEtlTasks": ["ecs:DescribeTasks", "ecs:StopTask"],
        "TagStartedTasks": ["ecs:TagResource"],  # RunTask propagates the family's tags
        "PassTaskRoles": ["iam:PassRole"],
        "FollowTaskStateEvents": ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
    }
    ecs = PREFIX % "ecs"
    assert by_sid["RunEtlTask"]["Resource"] == [
        {"Fn::Sub": f"{ecs}:task-definition/${{AWS::StackName}}-etl:*"}
    ]
    assert by_sid["RunEtlTask"]["Condition"] == {
        "ArnEquals": {"ecs:cluster": {"Fn::Sub": f"{ecs}:cluster/${{ClusterName}}"}}
    }
    tasks = [{"Fn::Sub": f"{ecs}:task/${{ClusterName}}/*"}]
    assert by_sid["FollowEtlTasks"]["Resource"] == by_sid["TagStartedTasks"]["Resource"] == tasks
    assert by_sid["TagStartedTasks"]["Condition"] == {
        "StringEquals": {"ecs:CreateAction": "RunTask"}
    }
    assert by_sid["FollowTaskStateEvents"]["Resource"] == [
        {"Fn::Sub": PREFIX % "events" + ":rule/StepFunctionsGetEventsForECSTaskRule"}
    ]


def test_roles_are_assumable_only_by_their_service_for_this_account() -> None:
    trusted = {}
    for kind, where, document in DOCUMENTS:
        if kind != "trust":
            continue
        (statement,) = document["Statement"]
        trusted[where] = statement["Principal"]["Service"]
        assert statement["Action"] == ["sts:AssumeRole"]
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
    assert trusted == {
        "ExecutionRole trust": "ecs-tasks.amazonaws.com",
        "TaskRole trust": "ecs-tasks.amazonaws.com",
        "ScheduleRole trust": "events.amazonaws.com",
        "StoreSyncRole trust": "states.amazonaws.com",
    }
    (sync,) = [d for kind, where, d in DOCUMENTS if where == "StoreSyncRole trust"]
    assert sync["Statement"][0]["Condition"]["ArnLike"] == {
        "aws:SourceArn": {"Fn::Sub": PREFIX % "states" + ":stateMachine:*"}
    }


@pytest.mark.parametrize(
    ("kind", "statement", "problem"),
    [
        ("identity", {"Effect": "Allow", "Action": "*", "Resource": ["x"]}, "wildcard action *"),
        ("identity", {"Effect": "Allow", "Action": ["s3:*"], "Resource": "x"}, "wildcard action"),
        ("identity", {"Effect": "Allow", "Action": ["logs:Put*"], "Resource": "x"}, "wildcard"),
        ("identity", {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}, "'*' for"),
        ("resource", {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"}, "'*' for"),
        ("identity", {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": "r"}, "PassRole"),
        ("identity", {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "t"}, "ecs:cluster"),
        ("key", {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "arn"}, "key policy"),
        ("resource", {"Effect": "Allow", "Principal": "*", "Action": ["sns:Publish"]}, "everybody"),
        ("identity", {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "x"}, "NotAction"),
    ],
)
def test_the_walk_catches_broad_statements(kind: str, statement: Statement, problem: str) -> None:
    assert any(problem in found for found in violations(kind, statement))


def _key_statements() -> dict[str, Statement]:
    (document,) = [d for kind, _, d in DOCUMENTS if kind == "key"]
    return {s["Sid"]: s for s in document["Statement"]}


def test_every_service_statement_of_the_key_is_bound_to_this_account() -> None:
    """A service principal on the key without a condition is a confused deputy: any account's
    alarm or topic could have the service use this key."""
    unbound = [
        sid
        for sid, s in _key_statements().items()
        if "Service" in s["Principal"] and not s.get("Condition")
    ]
    assert unbound == []


def test_the_alarms_statement_names_this_accounts_alarms_and_topics() -> None:
    statement = _key_statements()["AlarmsPublishToEncryptedTopic"]
    regional = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {"Fn::Sub": regional % ("cloudwatch", "alarm:*")},
            "kms:EncryptionContext:aws:sns:topicArn": {"Fn::Sub": regional % ("sns", "*")},
        },
    }


def test_the_events_statement_is_bound_by_the_topics_encryption_context() -> None:
    """EventBridge's delivery through SNS carries no aws:SourceAccount/SourceArn to KMS (AWS's
    SNS key management docs): the account's topics, by SNS's encryption context, bind it."""
    statement = _key_statements()["EventsPublishToEncryptedTopic"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:sns:topicArn": {
                "Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:*"
            }
        }
    }
