"""``python -m fluxion_cfn``: print the stack template (YAML, or JSON with ``--format json``).

The bare command prints the template so that ``python -m fluxion_cfn > stack.yaml`` works;
subcommands (``deploy``, ``run-task``) hang off the same parser.
"""

import argparse
import sys
from collections.abc import Sequence

from fluxion_cfn.stack import FORMATS, render


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fluxion_cfn",
        description="Print the CloudFormation template of the fluxion ETL stack.",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="yaml", help="output format (default: yaml)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sys.stdout.write(render(args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
