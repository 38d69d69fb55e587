"""Single-run guard: one run at a time per target database.

An advisory ``flock`` on ``<database>.run.lock`` (works on local disks and on EFS, which supports
NFSv4 locks). The kernel releases it when the process dies, however it dies, so a killed run
never leaves a stale guard behind. A second run finds it taken and exits 4 without touching
anything.

The lock is keyed by the file itself, not by the name it was given: ``DATABASE_PATH`` is
resolved (symlinks followed) first, so a symlink and its target share one lock -- two runs that
named the same file differently once published it at once, and the second closed the live
first run's ledger rows as ``interrumpido``. (Two hard links to one file are not recognised.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from fluxion_etl.errors import ConfigError, RunLockedError
from fluxion_etl.targets.duckdb.path import unwritable


class RunGuard:
    def __init__(self, database_path: Path, run_id: str) -> None:
        real = database_path.resolve()  # the file, whatever symlink named it
        self.path = real.with_name(real.name + ".run.lock")
        self.run_id = run_id
        self._fd: int | None = None
        #: this run created the lock file (it removes it again when the run is refused)
        self._created = False

    def __enter__(self) -> RunGuard:
        while True:
            fd, created = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise RunLockedError(
                    f"another run holds {self.path} ({holder}); not starting a second one"
                ) from None
            if self._still_at_path(fd):
                break
            # A refused run removed the file between our open and our lock: lock the new one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid={os.getpid()} run_id={self.run_id}\n".encode())
        self._fd, self._created = fd, created
        return self

    def _open(self) -> tuple[int, bool]:
        """The lock file's descriptor, and whether this call created it."""
        while True:  # the directory is never created here: see target_path
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), True  # umask
            except FileExistsError:
                pass
            except OSError as exc:
                raise unwritable(self.path, exc) from None
            try:
                return os.open(self.path, os.O_RDWR), False
            except FileNotFoundError:  # removed between the two opens: create it
                continue
            except OSError as exc:
                raise unwritable(self.path, exc) from None

    def _still_at_path(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            # A run refused for its configuration (a file or table it will not write) leaves
            # nothing next to that file: the lock file goes, if this run made it. Removed while
            # still locked, and a run that opened it meanwhile sees it gone and starts over.
            if self._created and isinstance(exc, ConfigError):
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
