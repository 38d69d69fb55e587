"""Every ODBC driver the selected stores name must be there before any store is tried.

A driver name that is not in odbcinst.ini (a typo in SQL_ODBC_DRIVER or a store's ``driver``, an
image built without Microsoft's package) makes unixODBC answer ``Can't open lib 'X' : file not
found`` at connect time, for every store, after each one's retries, worded like a dead VPN. It is
a configuration error, and the operator needs to know what *is* installed: so the run checks the
names first (exit 2, one line naming the installed drivers), and also that each registered
driver's library exists and loads (a package removed by hand, a missing ``libgssapi_krb5``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterable

import pyodbc

from fluxion_etl.errors import ConfigError
from fluxion_etl.stores import Store


def installed_drivers() -> list[str]:
    """The driver names the ODBC driver manager knows (odbcinst.ini, honouring ODBCSYSINI)."""
    return list(pyodbc.drivers())


def require_drivers(
    stores: Iterable[Store], default_driver: str, allow_paths: bool = False
) -> None:
    """ConfigError unless every driver ``stores`` use (their own, else ``default_driver``) is
    installed and its library loads; the message names the stores and the installed drivers.
    A driver given as a library path is refused, before anything loads it, unless
    ``allow_paths`` (ETL_ALLOW_DRIVER_PATHS): loading it runs its code in this process."""
    users: dict[str, list[str]] = {}
    for store in stores:
        users.setdefault(store.odbc_driver(default_driver), []).append(store.id)
    paths = [driver for driver in users if "/" in driver or "\\" in driver]
    if paths and not allow_paths:
        raise ConfigError(
            f"ODBC driver {paths[0]!r} (used by {_few(users[paths[0]])}) is a library path: "
            "name a driver registered in odbcinst.ini, or set ETL_ALLOW_DRIVER_PATHS=1"
        )
    installed = installed_drivers()
    known = {name.lower() for name in installed}
    problems = []
    for driver, ids in users.items():
        why = driver_problem(driver, known)
        if why:
            problems.append(f"ODBC driver {driver!r} (used by {_few(ids)}) {why}")
    if problems:
        raise ConfigError(
            "; ".join(problems)
            + f"; installed drivers: {', '.join(installed) or 'none'}"
            + " (set SQL_ODBC_DRIVER, or the store's driver in the stores file)"
        )


def driver_problem(driver: str, known: set[str]) -> str | None:
    """Why ``driver`` cannot be used, or None. ``known``: installed names, lower case (unixODBC
    matches them ignoring case). A name with a ``/`` is a library path, as unixODBC allows."""
    if "/" in driver:
        return _library_problem(driver)
    if driver.lower() not in known:
        return "is not installed"
    library = registered_library(driver)
    if library and os.path.isabs(library):  # a bare file name is resolved by unixODBC itself
        problem = _library_problem(library)
        return f"is registered but {problem}" if problem else None
    return None


def registered_library(driver: str) -> str | None:
    """The ``Driver=`` library of ``driver`` in odbcinst.ini, read through unixODBC's own
    libodbcinst (so ODBCSYSINI/ODBCINSTINI and the user's file count as they do at connect);
    None when that library is not available."""
    name = ctypes.util.find_library("odbcinst") or "libodbcinst.so.2"
    try:
        odbcinst = ctypes.CDLL(name)
    except OSError:
        return None
    buffer = ctypes.create_string_buffer(4096)
    length = odbcinst.SQLGetPrivateProfileString(
        driver.encode(), b"Driver", b"", buffer, len(buffer), b"ODBCINST.INI"
    )
    return buffer.value.decode(errors="replace") if length > 0 else None


def _library_problem(path: str) -> str | None:
    if not os.path.exists(path):
        return f"its library {path} does not exist"
    try:
        ctypes.CDLL(path, mode=os.RTLD_LAZY)
    except OSError as exc:
        return f"its library {path} cannot be loaded ({exc})"
    return None


def _few(ids: list[str], shown: int = 3) -> str:
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")
