"""Logging, configured once by the CLI: JSON lines on stdout, or a live display in a terminal.

Library modules only ask ``structlog.get_logger()`` and ``bind()`` context (run_id, store,
phase); they never print and never configure handlers. Every event passes through the same
processors, so the terminal display is just another renderer of the same events.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog
from structlog.typing import Processor

from fluxion_etl.progress import LiveDisplay


def configure_logging(
    level: str = "INFO", *, interactive: bool = False, stream: TextIO | None = None
) -> LiveDisplay | None:
    """Route structlog events to JSON lines (default) or to a live per-store display.

    Returns the display when ``interactive``, so the caller can start/stop it.
    """
    stream = stream or sys.stdout
    display = LiveDisplay(stream) if interactive else None
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,
    ]
    if display is not None:
        processors += [display.processor, structlog.dev.ConsoleRenderer(colors=False)]
    else:
        processors.append(structlog.processors.JSONRenderer(ensure_ascii=False))
    output = cast(TextIO, display.console_file) if display is not None else stream
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )
    return display
