"""Imported by the fork server alone (its preload list): the server ends without the interpreter's
teardown.

The server exits when the run's process ends (its pipe closes), and holds the run's stdout
until it has exited: whoever reads the run's output (a shell pipe, a log collector, the
benchmark) waits for it. Freeing the modules and objects of an interpreter that loaded pyarrow
and DuckDB took ~0.1 s under ``strace`` (more on a busy machine) and does nothing this process
needs: it writes no file and flushes no output. Its children (the fetch processes) never run
exit hooks (multiprocessing ends them with ``os._exit``), so the hook is the server's alone.
"""

from __future__ import annotations

import atexit
import os

atexit.register(os._exit, 0)
