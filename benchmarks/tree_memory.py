"""Peak memory of a process *tree*, sampled: what a run really holds, children included.

``wait4``'s ``ru_maxrss`` is the largest single process of a tree, not their sum, and fluxion
fetches each store in a child process (while the parent and the fork server live on), so the
benchmark samples the tree instead: every ``interval`` seconds, the sum of PSS (proportional set
size: a page shared by N processes counts 1/N to each, so the fork server's shared pages are not
counted twice) over the root and all its descendants. A spike shorter than the interval can be
missed; at 20 ms against runs of seconds that is a small error, and the same for every tool.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


class TreeMemorySampler:
    """``with TreeMemorySampler(pid) as sampler: ...`` then ``sampler.peak_mib``."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        self.root = root
        self.interval = interval
        self.peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(pid) for pid in self._tree()))

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.scandir(PROC):
            if entry.name.isdigit():
                try:
                    stat = (PROC / entry.name / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
                parents.setdefault(ppid, []).append(int(entry.name))
        tree, i = [self.root], 0
        while i < len(tree):
            tree += parents.get(tree[i], [])
            i += 1
        return tree


def _pss_kib(pid: int) -> int:
    try:
        with open(PROC / str(pid) / "smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:  # gone already, or a zombie
        pass
    return 0
