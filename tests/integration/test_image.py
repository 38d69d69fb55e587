"""The production Dockerfile, built here and its command run from the built image's filesystem.

`scripts/image-here.sh` builds the Dockerfile with podman (`--isolation chroot`) on a local
debootstrap base (Debian bookworm + Python 3.11 + pip) passed as `PYTHON_IMAGE`, with Microsoft's
repository step switched off (`INSTALL_MSODBCSQL18=no`: the repository is unreachable here), so
the image has FreeTDS as its only SQL Server driver. `podman run` cannot start containers on this
machine (no usable cgroups), so each check creates a container without starting it, mounts its
writable filesystem and runs the image's own command, environment, working directory and user
(from the image's config) under `chroot --userspec`, in a private mount namespace with /proc and
/dev. The first build takes a few minutes (debootstrap, apt, PyPI); a rebuild reuses the cached
base and podman's layers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from etl_cli import ledger_rows

from fluxion_cfn.task import RUN_AS

pytestmark = pytest.mark.image

TAG = "localhost/fluxion-etl:test"
BUILD_TIMEOUT_S = 20 * 60


@dataclass(frozen=True)
class ImageRoot:
    """A created (never started) container of the built image, its filesystem mounted."""

    path: Path
    user: str
    cmd: list[str]
    env: list[str]
    workdir: str

    def run(
        self, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` as the image would run it: its user, environment and working directory."""
        environment = [*self.env, *(f"{k}={v}" for k, v in (env or {}).items())]
        inner = ["chroot", f"--userspec={self.user}", str(self.path), "env", "-i", *environment,
                 "sh", "-c", 'cd "$0" && exec "$@"', self.workdir, *argv]  # fmt: skip
        # Mounts made in the private namespace vanish with it: nothing to clean up.
        script = 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && exec "$@"'
        return subprocess.run(
            ["unshare", "--mount", "--fork", "sh", "-c", script, str(self.path), *inner],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _image_here(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLUXION_IMAGE_TAG": TAG}
    return subprocess.run(
        [str(repo_root / "scripts" / "image-here.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


def _build(repo_root: Path) -> str:
    """Build the image and return its ID (scripts/image-here.sh prints it)."""
    built = _image_here(repo_root)
    if built.returncode != 0:
        pytest.fail(f"image build failed (exit {built.returncode}):\n{built.stderr[-4000:]}")
    image_id = built.stdout.strip()
    assert re.fullmatch(r"(sha256:)?[0-9a-f]{64}", image_id), built.stdout
    return image_id


@pytest.fixture(scope="module")
def image(repo_root: Path, unavailable: Callable[[str], NoReturn]) -> Iterator[ImageRoot]:
    missing = [tool for tool in ("podman", "debootstrap", "unshare", "chroot")
               if shutil.which(tool) is None]  # fmt: skip
    if missing:
        unavailable(f"{', '.join(missing)} not installed (scripts/system-packages.sh --image)")
    if os.geteuid() != 0:
        unavailable("building and mounting the image needs root")
    image_id = _build(repo_root)
    (config,) = json.loads(
        subprocess.run(
            ["podman", "image", "inspect", image_id], capture_output=True, text=True, check=True
        ).stdout
    )
    # Created, never started: podman run needs cgroups this machine does not give it.
    container = subprocess.run(
        ["podman", "create", "--network=none", image_id], capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    try:
        mounted = subprocess.run(
            ["podman", "mount", container], capture_output=True, text=True, check=True
        ).stdout.strip()
        spec = config["Config"]
        yield ImageRoot(Path(mounted), spec["User"], spec["Cmd"], spec["Env"], spec["WorkingDir"])
    finally:
        subprocess.run(["podman", "umount", container], capture_output=True, check=False)
        subprocess.run(["podman", "rm", container], capture_output=True, check=False)


def test_the_image_runs_its_command_as_the_task_definitions_uid_1000(image: ImageRoot) -> None:
    assert image.user == RUN_AS == "1000:1000"
    ran = image.run(["sh", "-c", 'echo "$(id -u):$(id -g) $PWD" && touch write-test'])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["1000:1000", "/home/fluxion"]
    assert (image.path / "home/fluxion/write-test").stat().st_uid == 1000


def test_the_image_finds_freetds_by_the_name_the_stack_uses(image: ImageRoot) -> None:
    """FreeTDS, the name a stores file's `driver` gives it; Microsoft's ODBC Driver 18 is absent
    only because its repository step is switched off for this build."""
    ran = image.run(["python", "-c", "import json, pyodbc; print(json.dumps(pyodbc.drivers()))"])
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == ["FreeTDS"]


def test_the_ca_bundle_fluxion_verifies_postgresql_with_holds_every_rds_root(
    image: ImageRoot, repo_root: Path
) -> None:
    """With no PGSSLROOTCERT, a PostgreSQL target is verified against the system bundle
    (targets/postgres/tls.py): in the image that bundle must hold RDS's roots, or every run
    against RDS would end in a certificate error (or tempt an operator to turn TLS checks off)."""
    probe = (
        "import json, ssl; from fluxion_etl.targets.postgres.tls import system_bundle; "
        "ctx = ssl.create_default_context(cafile=system_bundle()); "
        "print(json.dumps([dict(p[0] for p in c['subject']).get('commonName', '') "
        "for c in ctx.get_ca_certs()]))"
    )
    ran = image.run(["python", "-c", probe])
    assert ran.returncode == 0, ran.stderr
    trusted = set(json.loads(ran.stdout))
    pem = (repo_root / "docker" / "rds-ca-roots.pem").read_text(encoding="ascii")
    rds = set(re.findall(r"^# (Amazon RDS .+ Root CA .+ G1)$", pem, re.M))
    assert len(rds) >= 50
    assert rds - trusted == set()
    assert any(not name.startswith("Amazon RDS") for name in trusted)  # the public CAs stay


def test_python_m_fluxion_cfn_in_the_image_prints_the_committed_template(
    image: ImageRoot, repo_root: Path
) -> None:
    ran = image.run(["python", "-m", "fluxion_cfn"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == (repo_root / "templates" / "fluxion-etl.yaml").read_text(encoding="utf-8")


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: bound by the kernel's choice, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_the_images_command_against_a_closed_port_ends_conexion_exit_1(image: ImageRoot) -> None:
    home = image.path / "home" / "fluxion"
    stores = home / "stores.toml"
    stores.write_text(
        f"""
[[stores]]
id = "tienda_99"
name = "SIN VPN"
type = "tienda"
host = "127.0.0.1"
port = {_closed_port()}
database = "VAD10"
warehouse = "9902"
""",
        encoding="utf-8",
    )
    db = home / "fluxion.duckdb"
    for path in (db, db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)
    env = {
        "ETL_STORES_FILE": "/home/fluxion/stores.toml",
        "DATABASE_PATH": "/home/fluxion/fluxion.duckdb",
        "SQL_ODBC_DRIVER": "FreeTDS",
        "SQL_USER": "etl_reader",
        "SQL_PASS": "not-a-real-password",
        "ETL_MAX_RETRIES": "1",
    }
    ran = image.run(image.cmd, env)
    assert image.cmd == ["fluxion-etl", "run"]
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr[-2000:]
    row = ledger_rows(db)["tienda_99"]
    assert (row["estado"], row["error_tipo"]) == ("fallido", "conexion"), row["error_mensaje"]
    assert db.stat().st_uid == 1000
    assert "not-a-real-password" not in ran.stdout + ran.stderr


def test_a_misspelt_install_msodbcsql18_fails_the_build_instead_of_dropping_the_driver(
    image: ImageRoot, repo_root: Path
) -> None:
    built = _image_here(repo_root, "--build-arg", "INSTALL_MSODBCSQL18=si")
    assert built.returncode != 0
    assert "INSTALL_MSODBCSQL18 must be yes or no, not 'si'" in built.stderr
