"""One real ``python -m fluxion_etl run`` in a child process, watched by the soak and its faults.

Its JSON log lines are collected as they come, so a fault can wait for a moment of the run (the
n-th publish, the first fetch) before it strikes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path


class RunProcess:
    """One ``python -m fluxion_etl run`` in a child process, its JSON log lines collected."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.started = time.monotonic()
        #: the run's id, from its first log line that carries one
        self.run_id: str | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fluxion_etl", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._ended = threading.Event()
        self._events: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._log = log_path.open("w", encoding="utf-8")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._log.write(raw)
            try:
                line = json.loads(raw)
                name = line.get("event")
            except (ValueError, AttributeError):
                continue
            if self.run_id is None and line.get("run_id"):
                self.run_id = str(line["run_id"])
            with self._changed:
                self._events[str(name)] += 1
                self._changed.notify_all()
        self.process.wait()
        self._ended.set()
        with self._changed:
            self._changed.notify_all()

    @property
    def running(self) -> bool:
        return not self._ended.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the run ended meanwhile."""
        return not self._ended.wait(seconds)

    def wait_for_events(self, name: str, count: int) -> bool:
        """Wait until ``count`` log lines with event ``name`` came; False if the run ended."""
        with self._changed:
            while self._events[name] < count and self.running:
                self._changed.wait(0.5)
            return self._events[name] >= count

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            self.process.send_signal(sig)

    def finish(self, timeout: float) -> tuple[int, float]:
        """(exit code, seconds); a run that outlives ``timeout`` is killed (and says so)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
            self._log.write("soak: the run did not end in time and was killed\n")
        self._reader.join(timeout=10)
        seconds = time.monotonic() - self.started
        self._end_orphans()
        self._log.close()
        return code, seconds

    def _end_orphans(self) -> None:
        """A killed run's fetch processes outlive it (as after an OOM kill): end them, so a
        finished fetch cannot write into the next run's staging directory."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
