"""The run's staging area: its private directory, and what a staged store is to the run.

The run's own process keeps the directory (an owner lock while it lives; the directories of dead
runs swept) and receives each store's :class:`StagedFile` from the fetch process that wrote it
(:mod:`fluxion_etl.run.stage`). Kept apart from that writer, which needs pyarrow and the
clean-up's DuckDB, so that the run's process, which never fetches, does not import them: every
command started ~0.2 s later for it (the CLI's imports: 0.45 -> 0.25 s, ``python -X importtime``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from fluxion_etl.errors import ConfigError, LocalDiskError

#: Name of the lock file each run holds inside its staging directory while it is alive.
OWNER_FILE = ".owner"
#: A staging directory without an owner lock (left by a release before the lock existed, or a
#: run killed between creating the directory and locking it) is removed once it is this old.
UNOWNED_STALE_SECONDS = 3600.0
#: What :func:`fluxion_etl.run.pipeline.new_run_id` makes a staging directory's name start with;
#: only such directories are removed without an owner file (other ``fluxion-*`` names in a
#: shared temporary directory are not ours to judge).
_RUN_DIRECTORY = re.compile(r"fluxion-\d{8}T\d{6}Z-[0-9a-f]{6}-")
log = structlog.get_logger("fluxion_etl.run.staging_area")


@dataclass(frozen=True)
class StagedFile:
    """A complete staged extract of one store."""

    path: Path
    rows: int
    batches: int
    cleaned: bool = True
    """False: the rows are as fetched (a store of one chunk); the transform cleans them."""


#: What the OS says when the local disk cannot take a write: full, over quota, read-only, a file
#: over the size limit, no permission. DuckDB and Arrow report these in their own exceptions'
#: text, so the words are matched as well as the errno.
_LOCAL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES)
_LOCAL_DISK_WORDS = tuple(os.strerror(code) for code in _LOCAL_DISK_ERRNOS)


def local_disk_error(
    where: str, exc: BaseException, *, any_os_error: bool = False
) -> LocalDiskError | None:
    """A :class:`LocalDiskError` of ``where`` when ``exc`` is the local disk refusing a write
    (an OSError, or DuckDB's / Arrow's error carrying the OS's words); else None.
    ``any_os_error``: every OSError counts (creating the staging directory itself)."""
    if isinstance(exc, OSError) and (any_os_error or exc.errno in _LOCAL_DISK_ERRNOS):
        reason = exc.strerror or str(exc)
    else:
        text = str(exc)
        reason = next((words for words in _LOCAL_DISK_WORDS if words in text), "")
        if not reason:
            return None
    return LocalDiskError(
        f"{where}: cannot write the staging files on this machine ({reason}): free space in "
        "ETL_STAGING_DIR (default: the system's temporary directory) or point it at a "
        "writable local disk"
    )


def check_staging_dir(root: Path | None) -> None:
    """ConfigError (exit 2, before the run starts) unless ``root`` (``ETL_STAGING_DIR``) is a
    directory this process can create files in; a missing one is created, as the run would."""
    if root is None:  # the system's temporary directory
        return
    if root.exists() and not root.is_dir():
        raise ConfigError(f"ETL_STAGING_DIR={root} is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):  # a real file: a read-only mount refuses it
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"ETL_STAGING_DIR={root}: cannot create files there ({reason}); it must be a "
            "writable directory on local disk"
        ) from None


class StagingArea:
    """One run's private staging directory (local disk, not the EFS volume).

    The run holds an ``flock`` on a file inside it while it is alive. A run killed outright
    (SIGKILL, out of memory) cannot remove its directory, so every new run first removes the
    directories whose lock nobody holds: the kernel released it when their run died. Without
    that, each killed run would leave its staged files behind for good (measured by the soak).
    """

    def __init__(self, root: Path | None, run_id: str) -> None:
        base = Path(root) if root else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        swept = sweep_stale(base)
        if swept:
            log.warning("removed staging directories of dead runs", phase="plan", removed=swept)
        self.path = Path(tempfile.mkdtemp(prefix=f"fluxion-{run_id}-", dir=base))
        self._owner: int | None = os.open(self.path / OWNER_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._owner, fcntl.LOCK_EX)

    def file_for(self, store_id: str, kind: str) -> Path:
        """``staged`` is a Parquet file; ``ready`` is a DuckDB database (see transform)."""
        suffix = "duckdb" if kind == "ready" else "parquet"
        return self.path / f"{store_id}.{kind}.{suffix}"

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._owner is not None:
            os.close(self._owner)
            self._owner = None


def sweep_stale(base: Path) -> list[str]:
    """Remove the ``fluxion-*`` staging directories under ``base`` whose run is dead.

    A run is dead when nobody holds the lock on its directory's owner file (a live run, even
    one for another target sharing ``ETL_STAGING_DIR``, holds it). Returns the names removed.
    """
    removed: list[str] = []
    for directory in sorted(base.glob("fluxion-*")):
        if directory.is_dir() and _is_dead(directory):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory.name)
    return removed


def _is_dead(directory: Path) -> bool:
    try:
        fd = os.open(directory / OWNER_FILE, os.O_RDWR)
    except FileNotFoundError:
        if not _RUN_DIRECTORY.match(directory.name):
            return False
        try:
            age = time.time() - directory.stat().st_mtime
        except FileNotFoundError:
            return False
        return age > UNOWNED_STALE_SECONDS
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing also releases the lock if we took it
    return True
