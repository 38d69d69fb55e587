"""The live terminal view: redrawn on a timer, rows fetched so far, one meaning per column."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
import structlog
from rich.console import Console

from fluxion_etl.progress import FetchProgress, LiveDisplay


def screen(display: LiveDisplay) -> dict[str, list[str]]:
    """The table as text, one list of cells per store."""
    out = io.StringIO()
    Console(file=out, width=160).print(display._render())
    rows: dict[str, list[str]] = {}
    for line in out.getvalue().splitlines():
        cells = [cell.strip() for cell in line.strip()[1:-1].split("│")]
        if cells and cells[0].startswith("tienda"):
            rows[cells[0]] = cells
    return rows


def feed(display: LiveDisplay, method: str, **event: Any) -> bool:
    """Pass one event through the display; True when it lets it through as a text line."""
    try:
        display.processor(None, method, dict(event))
    except structlog.DropEvent:
        return False
    return True


@pytest.fixture
def display() -> LiveDisplay:
    shown = LiveDisplay(io.StringIO(), FetchProgress())
    feed(shown, "info", event="ETL started", phase="plan", stores=["tienda_01", "tienda_02"])
    return shown


def test_the_clock_of_a_fetching_store_moves_without_events_and_a_waiting_one_has_none(
    display: LiveDisplay,
) -> None:
    feed(display, "info", event="extract started", store="tienda_01", phase="extract", attempt=1)
    display.progress.report("tienda_01", 1234)
    first = screen(display)
    time.sleep(0.3)
    second = screen(display)
    assert first["tienda_01"][1:3] == ["fetching", "1,234"]
    assert float(second["tienda_01"][4]) >= float(first["tienda_01"][4]) + 0.3
    assert second["tienda_02"][1] == "waiting" and second["tienda_02"][4] == ""


def test_published_and_failed_stores_show_the_ledgers_seconds_and_say_why(
    display: LiveDisplay,
) -> None:
    for store in ("tienda_01", "tienda_02"):
        feed(display, "info", event="extract started", store=store, phase="extract", attempt=1)
    feed(display, "info", event="extract started", store="tienda_02", phase="extract",
         attempt=2, max_attempts=3)  # fmt: skip
    assert screen(display)["tienda_02"][5] == "attempt 2/3"
    feed(display, "info", event="extract staged", store="tienda_01", phase="stage", rows=1500)
    assert feed(display, "warning", event="target database is locked by another process; waiting",
                store="tienda_01", phase="publish", step="publishing the store",
                waited_seconds=3.2)  # fmt: skip
    assert "waiting for the target's lock (3.2 s)" in screen(display)["tienda_01"][5]
    feed(display, "info", event="store published", store="tienda_01", phase="publish",
         rows=1400, seconds=0.4, total_seconds=12.345)  # fmt: skip
    assert feed(display, "error", event="store failed", store="tienda_02", phase="extract",
                error_tipo="conexion", error="tienda_02: VPN down", seconds=7.0)  # fmt: skip
    rows = screen(display)
    assert rows["tienda_01"] == ["tienda_01", "published", "1,500", "1,400", "12.3", ""]
    assert rows["tienda_02"][1] == "failed" and rows["tienda_02"][4] == "7.0"
    assert rows["tienda_02"][5] == "conexion: tienda_02: VPN down"
