"""The generator, its CLI and the committed template agree, byte for byte."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cfn_flip
import pytest

import fluxion_cfn
from fluxion_cfn.__main__ import main
from fluxion_cfn.stack import build_template, render

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "templates" / "fluxion-etl.yaml"
REGENERATE = "PYTHONPATH=src python -m fluxion_cfn > templates/fluxion-etl.yaml"


def test_generator_output_equals_the_committed_template() -> None:
    assert render("yaml") == COMMITTED.read_text(encoding="utf-8"), (
        f"templates/fluxion-etl.yaml is stale; regenerate it: {REGENERATE}"
    )


def test_python_dash_m_prints_the_committed_template() -> None:
    src = str(Path(fluxion_cfn.__file__).resolve().parents[1])
    path = [src, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    result = subprocess.run(
        [sys.executable, "-m", "fluxion_cfn"], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout == COMMITTED.read_text(encoding="utf-8")
    assert result.stderr == ""


def test_output_is_deterministic() -> None:
    assert render("yaml") == render("yaml")
    assert render("json") == render("json")


def test_json_format_describes_the_same_template_as_yaml(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(cfn_flip.load_yaml(COMMITTED.read_text())))


def test_an_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--format", "xml"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_resource_group_is_present() -> None:
    types = sorted(resource.resource_type for resource in build_template().resources.values())
    assert types == sorted(
        [
            "AWS::CloudWatch::Alarm",  # schedule FailedInvocations
            "AWS::CloudWatch::Alarm",  # run duration
            "AWS::CloudWatch::Alarm",  # no successful run (dead man)
            "AWS::CloudWatch::Alarm",  # stores stale
            "AWS::CloudWatch::Dashboard",
            "AWS::EC2::SecurityGroup",
            "AWS::EC2::SecurityGroupEgress",  # to the PostgreSQL target's group (optional)
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupIngress",  # PostgreSQL target's group (optional)
            "AWS::EC2::SecurityGroupIngress",  # VPC endpoints' group (optional)
            "AWS::EC2::SecurityGroupEgress",  # to S3's prefix list, with the endpoints (optional)
            "AWS::ECR::Repository",
            "AWS::ECS::TaskDefinition",
            "AWS::Events::Rule",  # schedule
            "AWS::Events::Rule",  # task failed
            "AWS::IAM::Role",  # execution
            "AWS::IAM::Role",  # task
            "AWS::IAM::Role",  # events
            "AWS::IAM::Role",  # store-sync state machine
            "AWS::IAM::ManagedPolicy",  # start the store sync (the backend's one-store syncs)
            "AWS::IAM::Policy",  # execution role reads the PostgreSQL target's secret (optional)
            "AWS::IAM::Policy",  # ... and decrypts it with its KMS key (optional)
            "AWS::KMS::Key",
            "AWS::Logs::LogGroup",
            "AWS::SNS::Subscription",
            "AWS::SNS::Topic",
            "AWS::SNS::TopicPolicy",
            "AWS::SecretsManager::Secret",
            "AWS::StepFunctions::StateMachine",  # store sync
        ]
    )
