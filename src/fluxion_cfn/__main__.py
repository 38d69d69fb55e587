"""``python -m fluxion_cfn``: print the stack template (YAML, or JSON with ``--format json``).

The bare command prints the template so that ``python -m fluxion_cfn > stack.yaml`` works;
subcommands (``deploy``, ``run-task``) hang off the same parser. This is the only place that
turns their errors into an exit code and one line on stderr: 1 when AWS or the stack failed,
2 for bad arguments (argparse's own usage errors are 2 as well).
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from botocore.parsers import ResponseParserError

from fluxion_cfn.errors import CommandError
from fluxion_cfn.stack import FORMATS, render


def _aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", required=True, help="the CloudFormation stack")
    parser.add_argument(
        "--region",
        help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's)",
    )
    parser.add_argument(
        "--endpoint-url", help="CloudFormation/ECS endpoint (a local stand-in such as moto)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fluxion_cfn",
        description="Print the CloudFormation template of the fluxion ETL stack, deploy it"
        " through a change set, or start one run of the deployed task.",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="yaml", help="output format (default: yaml)"
    )
    commands = parser.add_subparsers(dest="command", metavar="{deploy,run-task}")

    deploy = commands.add_parser(
        "deploy",
        help="create (or update) the stack through a change set",
        description="Create a change set (CREATE for a new stack, else UPDATE keeping the"
        " previous value of every parameter not overridden), print it, and execute it unless"
        " --no-execute. An empty change set is 'no changes' (exit 0).",
    )
    _aws_options(deploy)
    deploy.add_argument(
        "--parameter-overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="template parameters to set (e.g. ImageTag=1a2b3c ScheduleState=ENABLED)",
    )  # fmt: skip
    deploy.add_argument(
        "--tags", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="stack tags (CloudFormation propagates them); on an update they replace the"
        " stack's tags, and without --tags the stack keeps its tags",
    )  # fmt: skip
    deploy.add_argument(
        "--no-execute", action="store_true", help="create and print the change set, stop there"
    )
    deploy.add_argument(
        "--template-file", type=Path,
        help="deploy this template file instead of the generated one (the committed template)",
    )  # fmt: skip

    run = commands.add_parser(
        "run-task",
        help="start one ETL run now with the stack's network settings",
        description="Start one task of the stack's task definition in its cluster, private"
        " subnets and security group (as the schedule would), and print where its logs go.",
    )
    _aws_options(run)
    run.add_argument(
        "--stores", metavar="ID,ID",
        help="run only these stores (overrides ETL_TIENDAS for this task: a one-store sync)",
    )  # fmt: skip
    run.add_argument(
        "--stores-file", type=Path,
        help="stores file to check the --stores ids against before starting (default:"
        " ETL_STORES_FILE if set; without one, the task itself refuses an unknown id, exit 2)",
    )  # fmt: skip
    run.add_argument(
        "--accept-shrink", metavar="ID,ID|all",
        help="publish these stores' snapshots even if the snapshot guard would hold them back"
        " (overrides ETL_ACCEPT_SHRINK for this task only); each must be a store the task runs",
    )  # fmt: skip
    return parser


def _region(args: argparse.Namespace) -> str | None:
    """The region as the AWS CLI picks it: ``--region``, else ``AWS_REGION``, else None, which
    leaves boto3 to ``AWS_DEFAULT_REGION`` and the profile. boto3 itself reads no
    ``AWS_REGION`` (botocore 1.35), which the README tells the operator to export."""
    return args.region or os.environ.get("AWS_REGION", "").strip() or None


def _client(service: str, args: argparse.Namespace) -> Any:
    import boto3

    session = boto3.session.Session(region_name=_region(args))
    return session.client(service, endpoint_url=args.endpoint_url)


def _deploy(args: argparse.Namespace) -> None:
    from fluxion_cfn.deploy import DeployRequest, TemplateSource, deploy
    from fluxion_cfn.overrides import parse_pairs

    request = DeployRequest(
        stack_name=args.stack_name,
        template=TemplateSource.load(args.template_file),
        overrides=parse_pairs(args.parameter_overrides, "--parameter-overrides"),
        tags=parse_pairs(args.tags, "--tags"),
        execute=not args.no_execute,
    )
    request.check()  # usage errors before a client (and its region/credentials) is needed
    deploy(_client("cloudformation", args), request, sys.stdout)


def _run_task(args: argparse.Namespace) -> None:
    from fluxion_cfn.run_task import requested_accept, requested_stores, run_task

    stores = requested_stores(args.stores, args.stores_file)  # before any client or AWS call
    accept = requested_accept(args.accept_shrink, stores, args.stores_file)
    run_task(
        _client("cloudformation", args), _client("ecs", args), args.stack_name, sys.stdout,
        _region(args), stores, accept,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        sys.stdout.write(render(args.format))
        return 0
    command = {"deploy": _deploy, "run-task": _run_task}[args.command]
    try:
        command(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: AWS refused: {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:  # no region, no credentials, endpoint unreachable, ...
        hint = " (pass --region or set AWS_REGION)" if isinstance(exc, NoRegionError) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    except ResponseParserError as exc:  # the endpoint answered with something not AWS-shaped
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: unreadable answer from the endpoint: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
