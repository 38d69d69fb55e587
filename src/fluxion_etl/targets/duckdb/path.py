"""Where the target DuckDB file goes: checked before the run, never created on the way.

On Fargate the target's directory is the EFS mount point. If the volume is not mounted, the
directory is missing, and creating it would publish into the container's own disk, which
vanishes with the task, while the run reports success. So a missing directory is a
configuration error (exit 2, nothing created), and a path the process cannot write gets one
line naming the path and the OS's reason (:func:`unwritable`) instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from fluxion_etl.errors import ConfigError, TargetUnwritable


def check_target_path(path: Path, source: str = "DATABASE_PATH") -> None:
    """Raise ConfigError unless ``path``'s directory exists and ``path`` is not a directory."""
    directory = path.parent
    if not directory.exists():
        raise ConfigError(
            f"{source}={path}: the directory {directory} does not exist (fluxion does not create "
            "it: on Fargate it is the EFS mount point; is the volume mounted?)"
        )
    if not directory.is_dir():
        raise ConfigError(f"{source}={path}: {directory} is not a directory")
    if path.is_dir():
        raise ConfigError(f"{source}={path} is a directory; name the DuckDB file inside it")
    refuse_non_duckdb(path, source)


#: A DuckDB database file carries these bytes at offset 8 (after the header's checksum).
DUCKDB_MAGIC = b"DUCK"


def refuse_non_duckdb(path: Path, source: str = "DATABASE_PATH") -> None:
    """ConfigError when ``path`` exists but is not a DuckDB database file (a text file, a SQLite
    database, an empty file): read from its first bytes, without opening it in DuckDB, which
    would refuse it only after trying to load an extension for it."""
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        return  # a new file: the run creates it
    except OSError as exc:  # unreadable: opening it for the run says why, in one line
        raise unwritable(path, exc) from None
    if head[8:12] == DUCKDB_MAGIC:
        return
    if head.startswith(b"SQLite format 3\x00"):
        what = "a SQLite database"
    elif not head:
        what = "an empty file"
    else:
        what = "not a DuckDB database file"
    raise ConfigError(
        f"{source}={path} is {what}, not a DuckDB database; fluxion never writes over it "
        f"(point {source} at the DuckDB file the backend reads, or at a new path)"
    )


def unwritable(path: Path, exc: BaseException) -> TargetUnwritable:
    """The one-line error for a target ``path`` that cannot be opened for writing."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
    return TargetUnwritable(f"cannot open the target {path} for writing: {reason}")


#: the mode of the files a run creates (the DuckDB file, its WAL, the run lock), unless
#: DATABASE_FILE_MODE says otherwise: the owner writes, the group (the backend) reads, no one else
DEFAULT_FILE_MODE = 0o640


def apply_file_mode(mode: int) -> None:
    """Make every file this process creates from now on get at most ``mode`` (DuckDB creates
    its file and WAL with 0666 less the umask, so the umask is the one knob that covers them);
    directories get the matching search bits (0640 -> 0750), so staging stays usable."""
    searchable = mode | ((mode & 0o444) >> 2)
    os.umask(0o777 & ~searchable)
