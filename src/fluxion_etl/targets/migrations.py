"""The migration runner both targets use: which numbered steps to apply, and in which order.

Each target keeps its own steps (its SQL dialect) and its own ``fluxion_schema_version`` table;
what a version means, the refusal of a schema newer than this release, and the rule that every
step not applied yet runs exactly once are decided here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

Step = TypeVar("Step")


def apply_migrations(
    applied: Iterable[int],
    migrations: Sequence[tuple[int, Step]],
    apply: Callable[[int, Step], None],
) -> int:
    """``apply`` every step of ``migrations`` whose version is not in ``applied``, in order;
    return the highest version found before.

    Every step not applied yet runs, not only those above the highest: versions developed side
    by side may land in either order, and each must still run exactly once. A schema newer than
    the last step is refused (RuntimeError): this release would misread it.
    """
    done = set(applied)
    current = max(done, default=0)
    latest = migrations[-1][0]
    if current > latest:
        raise RuntimeError(
            f"the target database has schema version {current}, newer than this release "
            f"understands ({latest}): upgrade fluxion"
        )
    for version, step in migrations:
        if version not in done:
            apply(version, step)
    return current
