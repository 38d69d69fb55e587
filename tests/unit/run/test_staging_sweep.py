"""Staging directories of dead runs are removed by the next run; a live run's never are."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fluxion_etl.run.staging_area import UNOWNED_STALE_SECONDS, StagingArea, sweep_stale

#: a process that opens a staging area under argv[1] and is then killed outright
KILLED_RUN = (
    "import os, sys\n"
    "from pathlib import Path\n"
    "from fluxion_etl.run.staging_area import StagingArea\n"
    "area = StagingArea(Path(sys.argv[1]), '20261201T120000Z-abcdef')\n"
    "(area.path / 'tienda_02.staged.parquet').write_bytes(b'x' * 1000)\n"
    "os.kill(os.getpid(), 9)\n"
)


def test_a_killed_runs_staging_directory_is_removed_by_the_next_run(tmp_path: Path) -> None:
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path)], check=False)
    assert killed.returncode == -9
    (left,) = tmp_path.iterdir()
    assert (left / "tienda_02.staged.parquet").exists()

    area = StagingArea(tmp_path, "20261201T130000Z-123456")
    assert list(tmp_path.iterdir()) == [area.path]
    area.cleanup()
    assert list(tmp_path.iterdir()) == []


def test_a_live_runs_staging_directory_is_left_alone(tmp_path: Path) -> None:
    live = StagingArea(tmp_path, "20261201T120000Z-abcdef")
    assert sweep_stale(tmp_path) == []
    assert live.path.exists()
    live.cleanup()


def test_only_old_unowned_run_directories_are_removed(tmp_path: Path) -> None:
    old_run = tmp_path / "fluxion-20261201T120000Z-abcdef-x1"
    young_run = tmp_path / "fluxion-20261201T120001Z-abcdef-x2"
    not_ours = tmp_path / "fluxion-something-else"
    for directory in (old_run, young_run, not_ours):
        directory.mkdir()
    long_ago = time.time() - UNOWNED_STALE_SECONDS - 60
    for directory in (old_run, not_ours):
        os.utime(directory, (long_ago, long_ago))
    assert sweep_stale(tmp_path) == [old_run.name]
    assert young_run.exists() and not_ours.exists()
