"""``python -m fluxion_cfn deploy`` / ``run-task`` find the region as the AWS CLI does:
``--region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``. Against moto's server on
127.0.0.1, where a stack lives in one region only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_local import MotoEndpoint

import fluxion_cfn

pytestmark = pytest.mark.aws
boto3 = pytest.importorskip("boto3")

STACK = "fluxion-where-it"
REGION = "eu-west-3"
#: a stack that exists, in REGION only, and is not a fluxion stack (run-task says so)
TEMPLATE = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'


@pytest.fixture(scope="module")
def endpoint(moto_endpoint: MotoEndpoint) -> MotoEndpoint:
    cfn = boto3.client("cloudformation", **{**moto_endpoint.client_kwargs, "region_name": REGION})
    cfn.create_stack(StackName=STACK, TemplateBody=TEMPLATE)
    return moto_endpoint


def run_task(endpoint: MotoEndpoint, env: dict[str, str], *args: str) -> str:
    src = str(Path(fluxion_cfn.__file__).resolve().parents[1])  # the fluxion_cfn under test
    base = {k: v for k, v in endpoint.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    path = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "fluxion_cfn", "run-task", "--stack-name", STACK,
         "--endpoint-url", endpoint.url, *args],
        env={**base, "PYTHONPATH": path, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr


FOUND = f"stack {STACK} does not give"  # the stack was found: the region was REGION
NOT_FOUND = f"there is no stack {STACK}"


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"AWS_REGION": REGION}, [], FOUND),
        ({"AWS_DEFAULT_REGION": REGION}, [], FOUND),
        ({"AWS_REGION": REGION, "AWS_DEFAULT_REGION": "us-east-1"}, [], FOUND),
        ({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": REGION}, [], NOT_FOUND),
        ({"AWS_REGION": "us-east-1"}, ["--region", REGION], FOUND),
    ],
)
def test_the_region_is_the_flag_else_aws_region_else_aws_default_region(
    endpoint: MotoEndpoint, env: dict[str, str], args: list[str], expected: str
) -> None:
    stderr = run_task(endpoint, env, *args)
    assert expected in stderr
    assert "must specify a region" not in stderr  # botocore's NoRegionError
