"""The ``fluxion-etl`` console script's entry: starts a run's fork server, then the CLI.

Importing the CLI costs ~0.25 s (DuckDB, structlog, rich), and the fork server that every fetch
process starts from (:mod:`fluxion_etl.run.forkserver`) imports pyarrow, DuckDB and the ODBC
engines in a fresh interpreter (~0.4 s). Started from the run itself, after the CLI's imports
and the configuration's vetting, the server's imports came after the run's, and the first fetch
waited for them. Started here, before the CLI is imported, the two import at once on the
machine's two cores. Only ``run`` starts it: the other commands fetch nothing. The secrets are
withheld first, so the server (and every fetch process) never holds them in its environment.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``fluxion-etl``: :func:`fluxion_etl.cli.main`, with a run's fork server started first."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["run"] and "-h" not in arguments and "--help" not in arguments:
        start_early()
    from fluxion_etl.cli import main as cli_main

    return cli_main(arguments)


def start_early() -> None:
    """Withhold the secrets from the environment, then start the fork server."""
    from fluxion_etl.credentials import withhold_secret_environment
    from fluxion_etl.run.forkserver import start_fork_server

    withhold_secret_environment()
    start_fork_server()
