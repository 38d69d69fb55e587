"""The fork server the fetch processes start from, startable before the run imports anything big.

Children start from a small, single-threaded process that has already imported the engines
(fast starts), never from the multi-threaded run itself (fork would copy its locks). The
console script's entry is preloaded too: multiprocessing re-imports the parent's main script in
every child (for ``fluxion-etl``, :mod:`fluxion_etl.launch`, which imports nothing big), and the
snapshot guard, whose questions to a store run in these children too. The CLI is not: no child
needs it, and it cost the server's start ~60 ms of CPU more.

This module imports nothing but :mod:`multiprocessing`, so :mod:`fluxion_etl.launch` can start
the server first thing in a ``run``: its imports (pyarrow, DuckDB, the ODBC engines: ~0.4 s)
then run on the second core while the run imports its own (DuckDB, not pyarrow nor the engines:
it never fetches) and vets its configuration, instead of after them.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver

context = multiprocessing.get_context("forkserver")
context.set_forkserver_preload(
    [
        "fluxion_etl.launch",
        "fluxion_etl.run.fetch",
        "fluxion_etl.run.stage",
        "fluxion_etl.run.guard",
        "fluxion_etl.source.engines.arrow_engine",
        "fluxion_etl.source.engines.pyodbc_engine",
    ]
)


def start_fork_server() -> None:
    """Start the fork server now (nothing if it runs already), so its imports overlap the run's
    own start-up. The server inherits this process's environment: withhold the secrets first
    (:func:`fluxion_etl.credentials.withhold_secret_environment`)."""
    forkserver.ensure_running()
