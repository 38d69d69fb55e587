"""How many stores to fetch at once, and how big their fetch buffers are: from what the task has.

A run is bound by the stores' links, not by the CPU: every store sits behind the VPN, tens of
milliseconds and a few MB/s away, so the run takes as long as its slowest store only if every
store is fetched at once. What limits that is memory: each concurrent fetch is a process of its
own with its arrow-odbc buffers and its staging. So by default every selected store is fetched
at once, capped by the memory budget (the container's limit from cgroups, else the machine's, or
``ETL_MEMORY_MIB``; minus the run's own headroom) divided by what one fetch needs.

Fetch buffers fit the stores: ``ETL_BATCH_BYTES`` is one budget shared by the concurrent fetches
(each gets its share, at least :data:`MIN_FETCH_BUFFER_BYTES`), so a run of 21 stores of 3,000
rows does not reserve 21 x 128 MiB, and a run of one big store keeps the whole budget.
arrow-odbc double-buffers (it fetches the next batch while the previous one is staged), so one
fetch holds two of them. The row-count per batch stays ``ETL_BATCH_SIZE``, bounded by the bytes.

``ETL_WORKERS`` overrides the count (the operator knows when the links share a bottleneck). A
budget that cannot hold one fetch is a configuration error: the run would only be killed by the
kernel later, mid-publish.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError

MIB = 1024 * 1024

#: What the run itself holds whatever the number of fetches: the interpreter and its libraries
#: (~110 MiB), the fork server, and the publish (DuckDB capped at 256 MB, see publish.py).
RUN_HEADROOM_BYTES = 448 * MIB

#: What one fetch process holds besides its two fetch buffers, measured: its private memory
#: (USS; the interpreter and libraries are the fork server's, shared) at its peak, for a store
#: big enough to be cleaned while it is fetched (more than one chunk of
#: :data:`~fluxion_etl.run.stage.CLEAN_CHUNK_ROWS`): the chunk being gathered, the chunk being
#: cleaned and the clean-up's DuckDB, the Parquet writer, and the driver. With 64 MiB buffers:
#: 140 MiB (400k rows) and 141 MiB (1.6M rows) through psqlODBC, 130 and 124 through the
#: SQLite driver (2026-12-07, since each cleaned chunk is written at once; 164-204 MiB when up
#: to a row group of cleaned rows waited for the writer): bounded, whatever the store's size.
#: Planned with a quarter's margin, and sized for a big store, since the plan is made before
#: any row is seen (a 3,000-row store's fetch holds ~20 MiB besides its buffers). See
#: benchmarks/fetch_memory.py (its "private" column) and docs/performance.md.
FETCH_OVERHEAD_BYTES = 176 * MIB

#: The smallest fetch buffer a fetch gets, however many share ETL_BATCH_BYTES: a few hundred wide
#: rows per batch; smaller buffers only add batches, not round trips (the driver fetches its own
#: blocks), so the floor is about the per-batch overhead, not the network.
MIN_FETCH_BUFFER_BYTES = 4 * MIB

#: cgroup v2, then v1: the container's memory limit as the container sees it.
CGROUP_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


@dataclass(frozen=True)
class FetchPlan:
    """The run's concurrency: how many fetches at once, each with what buffer, and why."""

    workers: int
    buffer_bytes: int
    """One fetch buffer (arrow-odbc's ``max_bytes_per_batch``); a fetch holds two."""
    memory_bytes: int
    """The memory budget the plan was made for."""
    fetch_bytes: int
    """What one fetch is planned to hold: :data:`FETCH_OVERHEAD_BYTES` and two buffers."""
    reason: str
    """One line for the run's first log line."""


def plan_fetches(
    settings: Settings, stores: int, *, limit: tuple[int, str] | None = None
) -> FetchPlan:
    """The plan for ``stores`` selected stores; ConfigError when one fetch does not fit.

    The budget is ``ETL_MEMORY_MIB`` when set, else ``limit`` (bytes, where from), else
    :func:`memory_limit`.
    """
    if settings.memory_mib is not None:
        limit = (settings.memory_mib * MIB, "ETL_MEMORY_MIB")
    memory_bytes, source = limit or memory_limit()
    stores = max(stores, 1)
    available = memory_bytes - RUN_HEADROOM_BYTES
    one = fetch_need(settings.batch_bytes, 1)
    if available < one:
        raise ConfigError(
            f"memory budget {memory_bytes // MIB:,} MiB is too small for one fetch: the run "
            f"needs {RUN_HEADROOM_BYTES // MIB} MiB plus {one // MIB} MiB per store fetched at "
            "once; give the task more memory, or lower ETL_BATCH_BYTES"
        )
    fitting = stores
    while fitting > 1 and fitting * fetch_need(settings.batch_bytes, fitting) > available:
        fitting -= 1
    budget = f"{memory_bytes // MIB:,} MiB budget ({source})"
    if settings.workers is not None:
        workers = min(settings.workers, stores)
        over = f", above the {fitting} the budget allows" if workers > fitting else ""
        why = f"ETL_WORKERS={settings.workers}{over}; {budget}"
    elif fitting == stores:
        workers = stores
        why = f"every selected store at once; {budget} holds them"
    else:
        workers = fitting
        need = fetch_need(settings.batch_bytes, fitting) // MIB
        why = (
            f"{budget} minus {RUN_HEADROOM_BYTES // MIB} MiB headroom holds {fitting} fetches "
            f"of {need} MiB"
        )
    buffer = fetch_buffer_bytes(settings.batch_bytes, workers)
    each = fetch_need(settings.batch_bytes, workers)
    reason = (
        f"{why}; ETL_BATCH_BYTES={settings.batch_bytes // MIB} MiB shared by {workers} "
        f"fetch{'es' if workers > 1 else ''}: {buffer / MIB:g} MiB buffers; each fetch holds "
        f"up to {each / MIB:g} MiB (2 x {buffer / MIB:g} MiB buffers + "
        f"{FETCH_OVERHEAD_BYTES // MIB} MiB staging and clean-up)"
    )
    return FetchPlan(workers, buffer, memory_bytes, each, reason)


def fetch_buffer_bytes(batch_bytes: int, workers: int) -> int:
    """One fetch's buffer: its share of ``ETL_BATCH_BYTES``, at least the floor (whole MiB)."""
    share = batch_bytes // max(workers, 1) // MIB * MIB
    return max(MIN_FETCH_BUFFER_BYTES, min(share, batch_bytes))


def fetch_need(batch_bytes: int, workers: int) -> int:
    """Memory one of ``workers`` concurrent fetches needs: its overhead and two buffers."""
    return FETCH_OVERHEAD_BYTES + 2 * fetch_buffer_bytes(batch_bytes, workers)


def memory_limit(
    cgroup_files: tuple[Path, ...] = CGROUP_LIMIT_FILES, meminfo: Path = Path("/proc/meminfo")
) -> tuple[int, str]:
    """(bytes, where from): the container's memory limit (cgroup v2 or v1), or the machine's
    memory when the container has none (``max``, or v1's huge "unlimited" value)."""
    machine = _machine_memory(meminfo)
    for path in cgroup_files:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < machine:
            return int(raw), f"container limit, {path}"
        break  # "max" or above the machine: no container limit
    return machine, "machine memory, no container limit"


def _machine_memory(meminfo: Path) -> int:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
