"""Peak memory and CPU of a process *tree*, sampled: what a run really uses, children included.

``wait4`` reports the largest single process of a tree (``ru_maxrss``), not their sum, and only
the CPU of descendants that were waited for. fluxion fetches each store in a child of a fork
server that nobody waits for, so the benchmark samples the tree instead:

* memory: every ``interval`` seconds, the sum of PSS (proportional set size: a page shared by N
  processes counts 1/N to each, so the fork server's shared pages are not counted twice) over the
  root and all its descendants; the peak of those sums;
* CPU: the largest user + system time seen for every process that was ever in the tree, summed
  (what a process burns after its last sample, less than ``interval``, is missed).

The tree is re-read every ``rescan`` seconds (a walk over /proc), the processes in it every
``interval``: sampling costs CPU on the cores being measured, so it is kept light. A spike
shorter than the interval can be missed; at 50 ms against runs of seconds that is a small error,
and the same for every tool.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ProcessTreeSampler:
    """``with ProcessTreeSampler(pid) as tree: ...``, then ``tree.peak_mib``, ``.cpu_seconds``,
    ``.main_thread``."""

    def __init__(self, root: int, interval: float = 0.05, rescan: float = 0.25) -> None:
        self.root = root
        self.interval = interval
        self.rescan = rescan
        self.peak_kib = 0
        self._cpu_ticks: dict[int, int] = {}
        self.main_thread = (0.0, 0.0)
        """The root's main thread: seconds on a core, and runnable but waiting for one (the
        kernel's run-queue delay, ``/proc/<pid>/task/<pid>/schedstat``). fluxion's main thread
        is the one that publishes: on DuckDB, while it holds the file and waits for a core, a
        reader waits too."""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ProcessTreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu_ticks.values()) / TICKS_PER_SECOND

    def _sample(self) -> None:
        tree: list[int] = []
        scanned = 0.0
        while not self._done.wait(self.interval):
            if time.monotonic() - scanned >= self.rescan:
                tree, scanned = _descendants(self.root), time.monotonic()
            total = 0
            for pid in tree:
                total += _pss_kib(pid)
                ticks = _cpu_ticks(pid)
                if ticks > self._cpu_ticks.get(pid, 0):
                    self._cpu_ticks[pid] = ticks
            self.peak_kib = max(self.peak_kib, total)
            self.main_thread = _schedstat(self.root) or self.main_thread


def _schedstat(pid: int) -> tuple[float, float] | None:
    """``pid``'s main thread: seconds on a core and waiting for one; None once it has ended."""
    path = PROC / str(pid) / "task" / str(pid) / "schedstat"
    try:
        running, waiting, _ = path.read_text().split()
    except (OSError, ValueError):
        return None
    return int(running) / 1e9, int(waiting) / 1e9


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (one walk over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, i = [root], 0
    while i < len(tree):
        tree += children.get(tree[i], [])
        i += 1
    return tree


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid, ..."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0  # utime, stime


def _pss_kib(pid: int) -> int:
    try:
        with open(PROC / str(pid) / "smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:  # gone already, or a zombie
        pass
    return 0
