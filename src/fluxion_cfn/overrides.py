"""``K=V`` arguments: ``--parameter-overrides`` and ``--tags``, checked before any AWS call.

A typo in a parameter name would otherwise reach CloudFormation as a change set that fails
minutes later, or worse, be silently ignored; here it is a one-line usage error (exit 2) naming
the key and the keys the template has.
"""

import re
from collections.abc import Iterable, Mapping

from fluxion_cfn.errors import UsageError

#: What CloudFormation accepts as a stack tag key (1-128 chars; no ``aws:`` prefix).
_TAG_KEY = re.compile(r"^(?!aws:)[\w.:/=+\-@ ]{1,128}$")
_TAG_VALUE_MAX = 256


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``["K=V", ...]`` as a dict. The value may contain ``=`` or be empty; the key may not."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{option}: {item!r} is not KEY=VALUE")
        if key in pairs:
            raise UsageError(f"{option}: {key} is given twice")
        pairs[key] = value
    return pairs


def check_parameter_keys(overrides: Mapping[str, str], declared: Iterable[str]) -> None:
    """Every overridden key must be a parameter of the template being deployed."""
    known = sorted(declared)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise UsageError(
            f"--parameter-overrides: unknown parameter {', '.join(unknown)}; the template's"
            f" parameters are {', '.join(known)}"
        )


def check_tags(tags: Mapping[str, str]) -> None:
    """Stack tags CloudFormation would reject, rejected here first (it propagates them)."""
    for key, value in tags.items():
        if not _TAG_KEY.match(key):
            raise UsageError(
                f"--tags: {key!r} is not a valid tag key (1-128 letters, digits, spaces or"
                " _.:/=+-@, not starting with aws:)"
            )
        if len(value) > _TAG_VALUE_MAX:
            raise UsageError(f"--tags: the value of {key} is longer than {_TAG_VALUE_MAX}")
