"""The container image's recipe agrees with the task that runs it and the package it installs.

The recipe is read here; tests/integration/test_image.py builds it with podman and runs its
command. Checked from the text: the command the task runs exists in the package, the user and the
driver names match the stack, dependencies come only from the hash-pinned lock, and the build
context holds what the build needs and nothing else.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import pytest

from fluxion_cfn.parameters import ETL_SETTINGS
from fluxion_cfn.task import COMMAND, RUN_AS
from fluxion_etl import cli

REPO = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def final_stage_text() -> str:
    return "\n".join(f"{name} {args}" for name, args in final_stage())


def build_arg(name: str) -> str:
    (value,) = [a.split("=", 1)[1] for n, a in instructions() if n == "ARG" and a.startswith(name)]
    return value


def test_the_image_is_python_3_11_slim_bookworm() -> None:
    assert build_arg("PYTHON_IMAGE") == "python:3.11-slim-bookworm"
    assert final_stage()[0] == ("FROM", "${PYTHON_IMAGE}")


def test_the_task_definitions_command_run_in_the_image_is_fluxion_etl_run() -> None:
    stage = final_stage()
    # ECS runs ENTRYPOINT + Command (Command replaces CMD): no ENTRYPOINT, or it would double up.
    assert [n for n, _ in stage if n == "ENTRYPOINT"] == []
    (cmd,) = [json.loads(args) for name, args in stage if name == "CMD"]
    assert cmd == COMMAND == ["fluxion-etl", "run"]


def test_fluxion_etl_is_an_installed_console_script_with_a_run_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    scripts = dict(
        line.replace(" ", "").split("=", 1)
        for line in setup["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    assert scripts["fluxion-etl"] == "fluxion_etl.launch:main"
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--help"])
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_the_image_runs_as_the_task_definitions_non_root_user() -> None:
    users = [args for name, args in final_stage() if name == "USER"]
    assert users[-1] == RUN_AS == "1000:1000"
    uid, gid = RUN_AS.split(":")
    (created,) = [args for name, args in final_stage() if name == "RUN" and "useradd" in args]
    assert f"--uid {uid}" in created and f"--gid {gid}" in created


def test_output_is_unbuffered_so_every_log_line_reaches_cloudwatch_at_once() -> None:
    env = " ".join(args for name, args in final_stage() if name == "ENV")
    assert "PYTHONUNBUFFERED=1" in shlex.split(env)


def test_the_drivers_are_installed_and_checked_under_the_names_the_stack_uses() -> None:
    (install,) = [a for n, a in final_stage() if n == "RUN" and "msodbcsql18" in a]
    assert "ACCEPT_EULA=Y apt-get install" in install
    assert re.search(r"\bunixodbc\b", install) and re.search(r"\btdsodbc\b", install)
    assert "packages.microsoft.com/debian/12/prod bookworm main" in install
    (default,) = [p["Default"] for env, _, p in ETL_SETTINGS if env == "SQL_ODBC_DRIVER"]
    assert f'odbcinst -q -d -n "{default}"' in install
    assert 'odbcinst -q -d -n "FreeTDS"' in install


def test_microsofts_driver_is_on_unless_the_build_switches_it_off_by_name() -> None:
    """Production keeps the default; a value other than yes or no fails the build, so a typo
    cannot ship an image without the production driver."""
    assert [a for n, a in final_stage() if n == "ARG"] == ["INSTALL_MSODBCSQL18=yes"]
    (install,) = [a for n, a in final_stage() if n == "RUN" and "msodbcsql18" in a]
    guard = re.search(r'case "\$INSTALL_MSODBCSQL18" in (.*?) esac;', install)
    assert guard and "yes|no) ;;" in guard.group(1) and "exit 1" in guard.group(1)
    microsoft_step = install[install.index('if [ "$INSTALL_MSODBCSQL18" = yes ]') :]
    assert "packages.microsoft.com" in microsoft_step.split("fi;")[0]
    assert "packages.microsoft.com" not in install[: install.index("if [")]


def test_dependencies_come_only_from_the_lock_with_their_hashes_then_the_wheel_alone() -> None:
    runs = [a for n, a in instructions() if n == "RUN" and "pip " in a]
    (wheel,) = [r for r in runs if "pip wheel" in r]
    assert "--no-deps" in wheel
    (locked,) = [r for r in runs if "-r /tmp/requirements.txt" in r]
    assert "--require-hashes" in locked and "--only-binary :all:" in locked
    (own,) = [r for r in runs if "pip install --no-deps" in r]
    assert "--from=build /wheels /tmp/wheels" in final_stage_text()
    assert re.search(r"pip install --no-deps \S*wheels/\*\.whl && pip check", own)
    copies = [a for n, a in final_stage() if n == "COPY"]
    assert "requirements/image.txt /tmp/requirements.txt" in copies
    # the lock's layer comes first: it is rebuilt only when the lock changes
    assert runs.index(locked) < runs.index(own)


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: last matching pattern wins, ``!`` re-includes, a matched
    directory excludes its content, ``*`` stays within one path segment, ``**`` crosses them."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = re.escape(pattern.strip("/"))
        out = out.replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        return re.compile(out.replace(r"\?", "[^/]") + "$")

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        compiled = regex(pattern.lstrip("!"))
        if any(compiled.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_the_build_context_keeps_the_sources_and_drops_local_state() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    needed = [
        "setup.cfg", "pyproject.toml", "README.md", "src/fluxion_etl/cli.py",
        "src/fluxion_etl/sql/inventario.sql", "src/fluxion_cfn/task.py", "requirements/image.txt",
        "docker/rds-ca-roots.pem",
    ]  # fmt: skip
    dropped = [
        ".git/HEAD", ".venv/bin/python", ".tox/py311/log", "fluxion.duckdb",
        "fluxion-demo/fluxion.duckdb", "data/x.duckdb.wal", "src/fluxion.egg-info/PKG-INFO",
        "src/fluxion_etl/__pycache__/cli.cpython-311.pyc", "tests/unit/test_config.py",
        ".pytest_cache/v/cache", "benchmarks/.work/x.parquet", ".cache/image/python-base-1.tar",
    ]  # fmt: skip
    assert [p for p in needed if _ignored(p, patterns)] == []
    assert [p for p in dropped if not _ignored(p, patterns)] == []
    # Whatever the Dockerfile copies from the context is in the context.
    copied = [src for n, a in instructions() if n == "COPY" and "--from" not in a
              for src in a.split()[:-1]]  # fmt: skip
    assert copied == [
        "setup.cfg", "pyproject.toml", "README.md", "src", "docker/rds-ca-roots.pem",
        "requirements/image.txt",
    ]  # fmt: skip
    assert [src for src in copied if _ignored(src, patterns)] == []
