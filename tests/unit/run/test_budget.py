"""The run's concurrency from what the task has: worker count, fetch buffers, and why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fluxion_etl.config import Settings
from fluxion_etl.errors import ConfigError
from fluxion_etl.run.budget import (
    FETCH_OVERHEAD_BYTES,
    MIB,
    MIN_FETCH_BUFFER_BYTES,
    RUN_HEADROOM_BYTES,
    fetch_need,
    memory_limit,
    plan_fetches,
)

GIB = 1024 * MIB
AUTO = Settings()  # ETL_WORKERS unset, ETL_BATCH_BYTES 64 MiB


def test_every_selected_store_is_fetched_at_once_when_the_budget_holds_them() -> None:
    plan = plan_fetches(AUTO, 21, limit=(8 * GIB, "container limit"))
    assert plan.workers == 21
    assert plan.reason.startswith("every selected store at once; 8,192 MiB budget")


def test_the_plan_holds_what_a_fetch_really_holds_and_says_it() -> None:
    """Issue 25: a fetch's measured memory (benchmarks/fetch_memory.py), not a guess, so a
    4 GiB task never plans past 4 GiB; the run's first log line states it."""
    plan = plan_fetches(AUTO, 21, limit=(4 * GIB, "container limit"))
    assert plan.fetch_bytes == FETCH_OVERHEAD_BYTES + 2 * plan.buffer_bytes
    assert FETCH_OVERHEAD_BYTES >= 141 * MIB  # measured above the buffers (USS, 1.6M rows)
    assert RUN_HEADROOM_BYTES + plan.workers * plan.fetch_bytes <= 4 * GIB
    assert plan.workers == 19  # not all 21: 21 x 184 MiB do not fit beside the run
    assert plan.reason.endswith(
        "each fetch holds up to 184 MiB (2 x 4 MiB buffers + 176 MiB staging and clean-up)"
    )


def test_small_stores_share_etl_batch_bytes_instead_of_reserving_it_each() -> None:
    plan = plan_fetches(AUTO, 21, limit=(4 * GIB, "container limit"))
    assert plan.buffer_bytes == MIN_FETCH_BUFFER_BYTES  # 64 MiB / 21 is below the floor
    assert 21 * 2 * plan.buffer_bytes == 168 * MIB  # was 21 x 2 x 64 MiB = 2,688 MiB
    assert "4 MiB buffers" in plan.reason


def test_one_big_store_keeps_the_whole_fetch_buffer() -> None:
    plan = plan_fetches(AUTO, 1, limit=(4 * GIB, "container limit"))
    assert (plan.workers, plan.buffer_bytes) == (1, AUTO.batch_bytes)


def test_a_small_task_caps_the_workers_at_what_its_memory_holds() -> None:
    plan = plan_fetches(AUTO, 21, limit=(1 * GIB, "container limit"))
    available = 1 * GIB - RUN_HEADROOM_BYTES
    assert 1 < plan.workers < 21
    assert plan.workers * fetch_need(AUTO.batch_bytes, plan.workers) <= available
    more = plan.workers + 1
    assert more * fetch_need(AUTO.batch_bytes, more) > available
    assert f"holds {plan.workers} fetches" in plan.reason


def test_etl_workers_overrides_the_budget_and_the_reason_says_so() -> None:
    plan = plan_fetches(replace(AUTO, workers=8), 21, limit=(1 * GIB, "container limit"))
    assert plan.workers == 8
    assert plan.buffer_bytes == 8 * MIB
    assert plan.reason.startswith("ETL_WORKERS=8, above the")


def test_etl_workers_beyond_the_stores_starts_no_idle_workers() -> None:
    assert plan_fetches(replace(AUTO, workers=16), 3, limit=(4 * GIB, "x")).workers == 3


def test_a_budget_too_small_for_one_fetch_is_a_configuration_error() -> None:
    one = RUN_HEADROOM_BYTES + FETCH_OVERHEAD_BYTES + 2 * AUTO.batch_bytes
    assert plan_fetches(AUTO, 1, limit=(one, "container limit")).workers == 1
    with pytest.raises(ConfigError, match=r"too small for one fetch.*ETL_BATCH_BYTES") as caught:
        plan_fetches(AUTO, 21, limit=(one - MIB, "container limit"))
    assert "\n" not in str(caught.value)


def test_etl_memory_mib_replaces_the_measured_limit() -> None:
    plan = plan_fetches(replace(AUTO, memory_mib=2048), 21, limit=(64 * GIB, "machine memory"))
    assert plan.memory_bytes == 2 * GIB
    assert "(ETL_MEMORY_MIB)" in plan.reason


@pytest.fixture
def meminfo(tmp_path: Path) -> Path:
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:        8388608 kB\nMemFree:         1 kB\n")  # 8 GiB
    return path


def test_the_limit_is_cgroup_v2_memory_max(tmp_path: Path, meminfo: Path) -> None:
    v2 = tmp_path / "memory.max"
    v2.write_text(f"{4 * GIB}\n")
    assert memory_limit((v2, tmp_path / "absent"), meminfo) == (4 * GIB, f"container limit, {v2}")


def test_the_limit_is_cgroup_v1_when_there_is_no_v2(tmp_path: Path, meminfo: Path) -> None:
    v1 = tmp_path / "memory.limit_in_bytes"
    v1.write_text(f"{3 * GIB}\n")
    assert memory_limit((tmp_path / "absent", v1), meminfo)[0] == 3 * GIB


@pytest.mark.parametrize("unlimited", ["max", "9223372036854771712"])
def test_a_container_without_a_limit_gets_the_machines_memory(
    tmp_path: Path, meminfo: Path, unlimited: str
) -> None:
    cgroup = tmp_path / "limit"
    cgroup.write_text(unlimited + "\n")
    assert memory_limit((cgroup,), meminfo) == (8 * GIB, "machine memory, no container limit")
