"""The live per-store progress display shown when stdout is a terminal.

It is a structlog processor: it reads the same events the JSON logs carry (``store``, ``phase``,
``rows``), updates a rich table, and lets only warnings and errors through as text lines above it.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.live import Live
from rich.table import Table

_PHASE_LABELS = {
    "extract": "fetching",
    "stage": "staged",
    "transform": "transformed",
    "publish": "published",
}


@dataclass
class _Row:
    state: str = "waiting"
    rows: int | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    detail: str = ""


class LiveDisplay:
    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream)
        self.console_file = _ConsoleFile(self.console)
        self.rows: dict[str, _Row] = {}
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=4, transient=False
        )

    def __enter__(self) -> LiveDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.stop()

    def processor(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        store, phase = event.get("store"), event.get("phase")
        if phase == "plan" and isinstance(event.get("stores"), list):
            for store_id in event["stores"]:
                self.rows.setdefault(store_id, _Row())
        if isinstance(store, str):
            row = self.rows.setdefault(store, _Row())
            if event.get("event") == "store failed":
                row.state = f"failed ({event.get('error_tipo')})"
                row.detail = str(event.get("error", ""))[:80]
                row.seconds = time.monotonic() - row.started
            elif phase in _PHASE_LABELS:
                row.state = _PHASE_LABELS[phase]
                if event.get("rows") is not None:
                    row.rows = int(event["rows"])
                if phase == "publish":
                    row.seconds = time.monotonic() - row.started
        self.live.update(self._render())
        if method in ("warning", "error", "critical", "exception") or phase == "done":
            return event
        raise structlog.DropEvent

    def _render(self) -> Table:
        table = Table(title="fluxion-etl", expand=False)
        for column in ("store", "state", "rows", "seconds", "detail"):
            table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
        for store_id, row in self.rows.items():
            seconds = row.seconds if row.seconds is not None else time.monotonic() - row.started
            table.add_row(
                store_id,
                row.state,
                "" if row.rows is None else f"{row.rows:,}",
                f"{seconds:.1f}",
                row.detail,
            )
        return table


class _ConsoleFile:
    """A file-like object that prints lines above the live table (warnings, errors)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str) -> int:
        if text.strip():
            self._console.print(text.rstrip("\n"), markup=False, highlight=False)
        return len(text)

    def flush(self) -> None:
        pass
