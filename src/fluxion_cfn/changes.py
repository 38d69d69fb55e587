"""What deploy prints: the change set, the stack's events and its outputs, as plain tables.

Plain aligned text, not a library table: the output goes to CI logs and terminals alike, and a
reviewer reads the change set there before anything is executed.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

CHANGE_HEADER = ("Action", "Logical id", "Type", "Replacement")
EVENT_HEADER = ("Time (UTC)", "Status", "Logical id", "Reason")
OUTPUT_HEADER = ("Output", "Value")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]]
        ).rstrip()
        for line in lines
    )


def change_rows(changes: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """One row per resource change of ``DescribeChangeSet``, by logical id.

    ``Replacement`` (True / False / Conditional) is what a reviewer looks for: True on a stateful
    resource means it is recreated. CloudFormation gives it only for Modify; the others show "-".
    """
    rows = []
    for change in changes:
        resource = change.get("ResourceChange")
        if not resource:
            continue  # e.g. hook invocations: not a resource of the stack
        rows.append((
            str(resource.get("Action", "?")),
            str(resource.get("LogicalResourceId", "?")),
            str(resource.get("ResourceType", "?")),
            str(resource.get("Replacement") or "-"),
        ))  # fmt: skip
    return sorted(rows, key=lambda row: (row[1], row[0]))


def event_rows(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """``DescribeStackEvents`` entries as (time, status, logical id, reason), in the given order."""
    rows = []
    for event in events:
        stamp = event.get("Timestamp")
        when = stamp.strftime("%Y-%m-%d %H:%M:%S") if isinstance(stamp, datetime) else str(stamp)
        rows.append((
            when,
            str(event.get("ResourceStatus", "?")),
            str(event.get("LogicalResourceId", "?")),
            " ".join(str(event.get("ResourceStatusReason") or "").split()),
        ))  # fmt: skip
    return rows


def output_rows(outputs: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return sorted((str(o["OutputKey"]), str(o.get("OutputValue", ""))) for o in outputs)
