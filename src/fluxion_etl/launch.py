"""The ``fluxion-etl`` console script's entry: starts a run's fork server, then the CLI.

Importing the CLI costs ~0.7 s of CPU (pyarrow, DuckDB, the ODBC engines, rich), and the fork
server that every fetch process starts from (:mod:`fluxion_etl.run.forkserver`) imports the
same again in a fresh interpreter. Started from the run itself, after the CLI's imports and the
configuration's vetting, the server's imports came after the run's, and the first fetch waited
for them. Started here, before the CLI is imported, the two import at once on the machine's two
cores. Only ``run`` starts it: the other commands fetch nothing. The secrets are withheld first,
so the server (and every fetch process) never holds them in its environment.

A run also ends without the interpreter's teardown (:func:`_skip_teardown`): once every exit
hook has run, freeing the modules and objects of a process that loaded pyarrow and DuckDB only
delays the exit, and whoever reads the run's output waits for it.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Sequence
from contextlib import suppress

#: the code a finished run exits with; empty while it runs (or when it raised)
_finished: list[int] = []


def main(argv: Sequence[str] | None = None) -> int:
    """``fluxion-etl``: :func:`fluxion_etl.cli.main`, with a run's fork server started first."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    run = arguments[:1] == ["run"] and "-h" not in arguments and "--help" not in arguments
    if run:
        # registered before anything else, so it is the last exit hook to run (they run in
        # reverse order): Sentry's flush, multiprocessing's clean-up and logging's go first
        atexit.register(_skip_teardown)
        start_early()
    from fluxion_etl.cli import main as cli_main

    code = cli_main(arguments)
    if run:
        _finished.append(code)
    return code


def start_early() -> None:
    """Withhold the secrets from the environment, then start the fork server."""
    from fluxion_etl.credentials import withhold_secret_environment
    from fluxion_etl.run.forkserver import start_fork_server

    withhold_secret_environment()
    start_fork_server()


def _skip_teardown() -> None:
    """The last exit hook of a run that returned its exit code: flush the output and end the
    process with that code, without the interpreter's teardown.

    Measured under ``strace``: ~0.1 s from the last exit hook to the exit for a run's process,
    more on a busy machine, and the fork server (which holds the same stdout) only begins its
    own exit after it (:mod:`fluxion_etl.run.forkserver_exit`). Everything that must happen
    at exit has happened by then: the run closed its files and connections, and the other exit
    hooks ran before this one. A run that raised exits as Python does.
    """
    if not _finished:
        return
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # a reader that left (the CLI's BrokenPipe case)
            stream.flush()
    os._exit(_finished[0])
