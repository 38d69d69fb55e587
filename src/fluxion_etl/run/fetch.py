"""Each fetch runs in a child process of its own, which writes the store's staged file.

ODBC drivers are native code that the run cannot protect itself from. psqlODBC 13 dies of a
segmentation fault when a link drops between two fetch blocks (reproduced by
tests/integration/source/test_faults.py), and any driver can block in a socket read that no thread
can interrupt. In a child process a crash costs one attempt of one store, classified and retried
like the dropped link it usually is, and a stop (deadline, SIGTERM) kills the child at once, which
also closes its connection to the store's server. Only the staged file's summary crosses back; the
rows go through the staged Parquet file, as they would in-process. Other work that talks to a
store's driver during a run (the snapshot guard asking a store why its snapshot looks wrong) runs
the same way, through :func:`run_isolated`.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from fluxion_etl.credentials import Credentials, redact
from fluxion_etl.errors import ConnectionFailed, DataError, Interrupted, StoreError
from fluxion_etl.run.forkserver import context as _context
from fluxion_etl.run.staging_area import StagedFile, local_disk_error
from fluxion_etl.source.engines.base import FetchRequest

T = TypeVar("T")
#: how often the parent checks for a stop request while the child fetches
_POLL_SECONDS = 0.2


def fetch_to_staging(
    engine: str,
    request: FetchRequest,
    path: Path,
    stop: threading.Event,
    on_rows: Callable[[int], None] | None = None,
) -> StagedFile:
    """Fetch ``request`` with ``engine`` into the staged file ``path``, in a child process.

    Raises what the fetch raised (a StoreError), ``Interrupted`` when ``stop`` is set first, or
    ``ConnectionFailed`` (transient) when the child died without an answer. ``on_rows`` is
    called at every poll with the rows the child has fetched so far: the child stores its count
    in a shared 64-bit integer once per fetched batch (no lock, no message; the parent only
    reads it), which costs the fetch nothing measurable (benchmarks/fetch_progress.py).
    """
    fetched = _context.Value("q", 0, lock=False)
    return run_isolated(
        _fetch,
        (engine, request, str(path), fetched),
        where=request.where,
        credentials=request.credentials,
        stop=stop,
        doing="fetching",
        name=f"fluxion-fetch-{path.stem}",
        on_poll=None if on_rows is None else lambda: on_rows(fetched.value),
    )


def run_isolated(
    function: Callable[..., T],
    args: tuple[object, ...],
    *,
    where: str,
    credentials: Credentials | None,
    stop: threading.Event,
    doing: str,
    name: str,
    on_poll: Callable[[], None] | None = None,
) -> T:
    """``function(*args)`` in a child process of the fork server, for any work that talks to a
    store's driver (the fetch; the snapshot guard's questions to the store).

    ``function`` must be importable by name and return something picklable. Raises what it
    raised (a StoreError; anything else becomes a ``DataError`` of ``where``), ``Interrupted``
    when ``stop`` is set first, or ``ConnectionFailed`` (transient) when the child died.
    ``on_poll`` is called at every poll while the child works.
    """
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(
        target=_call_in_child,
        args=(function, args, where, credentials, sender, os.getpid()),
        name=name,
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        while not receiver.poll(_POLL_SECONDS):
            if on_poll is not None:
                on_poll()
            if stop.is_set():
                raise Interrupted(f"{where}: stopped while {doing}")
            if not child.is_alive() and not receiver.poll(0):
                raise _died(where, doing, child.exitcode)
        try:
            outcome: T | StoreError = receiver.recv()
        except EOFError:  # the child died after the poll saw its pipe close
            child.join()
            raise _died(where, doing, child.exitcode) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if isinstance(outcome, StoreError):
        raise outcome
    return outcome


def _died(where: str, doing: str, exitcode: int | None) -> ConnectionFailed:
    if exitcode is not None and exitcode < 0:
        how = f"was killed by {signal.Signals(-exitcode).name}"
    else:
        how = f"exited with code {exitcode}"
    return ConnectionFailed(
        f"{where}: the ODBC driver's process {how} while {doing} "
        "(drivers crash like this when the link drops mid-transfer)"
    )


def _fetch(engine: str, request: FetchRequest, path: str, fetched: Any) -> StagedFile:
    """The fetch's work in the child: fetch and stage; the rows fetched so far go to the shared
    ``fetched`` value as they arrive.

    The engines and the staging writer are imported here, in the fetch process (the fork server
    has them preloaded: :mod:`fluxion_etl.run.forkserver`), never by the run's own process,
    which does not fetch: pyarrow, arrow-odbc and their kin were ~0.2 s of every command's
    start."""
    from fluxion_etl.run.stage import stage_batches
    from fluxion_etl.source.engines import get_engine

    batches = get_engine(engine).batches(request)
    return stage_batches(
        batches, Path(path), request.where, on_rows=partial(setattr, fetched, "value")
    )


def _call_in_child(
    function: Callable[..., object],
    args: tuple[object, ...],
    where: str,
    credentials: Credentials | None,
    sender: Connection,
    run_pid: int,
) -> None:
    """The child: run the work, then send back its result or the StoreError."""
    # The parent decides when to stop (and kills us): a Ctrl-C in the terminal reaches the
    # whole process group, and must not turn into a half-written traceback here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with(run_pid)
    outcome: object
    try:
        outcome = function(*args)
    except StoreError as exc:
        outcome = exc
    except Exception as exc:  # unexpected data or a bug: one store's DataError, never a crash
        outcome = local_disk_error(where, exc) or DataError(
            f"{where}: {type(exc).__name__}: {redact(str(exc), credentials)}"
        )
    sender.send(outcome)
    sender.close()


#: prctl(2) option: the signal the kernel sends this process when its parent ends
_PR_SET_PDEATHSIG = 1


def die_with(run_pid: int) -> None:
    """End this child (SIGKILL) as soon as the run's process ends, however it ends.

    A SIGKILL of the run gives it no chance to kill its fetches, which would keep fetching and
    writing staged files. The child's parent is the fork server, so two guards: the kernel's
    parent-death signal (``PR_SET_PDEATHSIG``: the fork server exits when the run's end closes
    its pipe), and a thread that waits on a pidfd of the run's process itself and kills this
    process the moment it ends. If the run is gone already, the child ends at once.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pidfd watch (or nothing) remains
        pass
    try:
        pidfd = os.pidfd_open(run_pid)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    except (OSError, AttributeError):  # a kernel before 5.3: the parent-death signal remains
        return

    def watch() -> None:
        select.select([pidfd], [], [])  # readable once the run's process has ended
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="fluxion-run-watch", daemon=True).start()
