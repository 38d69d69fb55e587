"""Fixtures any test may use. Service fixtures (PostgreSQL, ...) live in the conftest of the tests
that need them, so the unit tests never import or start anything."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the directory holding setup.cfg)."""
    return Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """True when CI is set (CI=false/0/"" opts out); tox.ini passes CI through."""
    value = os.environ.get("CI")
    return value is not None and value.strip().lower() not in ("", "0", "false", "no")


def part_unavailable(message: str) -> NoReturn:
    """Skip a test whose real part is truly absent, saying so; in CI, fail instead.

    .ci/run installs and starts every part, so a missing one there is a broken CI, not a skip.
    """
    if in_ci():
        pytest.fail(f"{message} (CI is set: tests must not be skipped)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def unavailable() -> Callable[[str], NoReturn]:
    """The skip-or-fail rule above, for tests and fixtures in any folder."""
    return part_unavailable
