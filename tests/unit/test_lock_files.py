"""The lock files agree with setup.cfg, with each other, and pin every file by its hash.

`scripts/lock.sh` writes them (see its header); these checks catch a requirement added to
setup.cfg without rerunning it (tox would then install that one unpinned, and the image would not
have it at all), and an image lock drifting from the versions the tests ran with.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"


def pins(lock: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of a pip-compile/uv style lock file."""
    text = (LOCKS / lock).read_text(encoding="utf-8")
    entries = re.split(
        r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2] if text.startswith("#") else text
    )
    out: dict[str, tuple[str, list[str]]] = {}
    for entry in entries:
        if not entry.strip() or entry.startswith("#"):
            continue
        pinned = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry)
        assert pinned, f"{lock}: not an exact pin: {entry.splitlines()[0]}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
        out[canonicalize_name(pinned[1])] = (pinned[2], hashes)
    return out


def requirements(*sections: str) -> list[Requirement]:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg", encoding="utf-8")
    lines: list[str] = []
    for section in sections:
        where, key = section.split(":")
        lines += setup[where][key].strip().splitlines()
    return [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]


def dev_in() -> list[Requirement]:
    lines = (LOCKS / "dev.in").read_text(encoding="utf-8").splitlines()
    return [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]


def unmet(reqs: list[Requirement], lock: dict[str, tuple[str, list[str]]]) -> list[str]:
    return [
        str(r) for r in reqs
        if canonicalize_name(r.name) not in lock
        or not r.specifier.contains(lock[canonicalize_name(r.name)][0], prereleases=True)
    ]  # fmt: skip


def test_every_locked_package_is_an_exact_version_with_at_least_one_sha256() -> None:
    for lock in ("dev.txt", "image.txt"):
        locked = pins(lock)
        assert len(locked) > 10
        assert [name for name, (_, hashes) in locked.items() if not hashes] == []


def test_the_image_lock_satisfies_install_requires() -> None:
    assert unmet(requirements("options:install_requires"), pins("image.txt")) == []


def test_the_dev_lock_satisfies_install_requires_the_extras_and_the_ci_tools() -> None:
    wanted = requirements(
        "options:install_requires", "options.extras_require:dev", "options.extras_require:sentry"
    )
    assert unmet(wanted + dev_in(), pins("dev.txt")) == []


def test_the_image_ships_exactly_the_versions_and_files_the_tests_ran_with() -> None:
    image, dev = pins("image.txt"), pins("dev.txt")
    assert {name: image[name] for name in image} == {name: dev[name] for name in image}
    # and nothing a test or lint tool needs leaks into the image
    assert not {"pytest", "tox", "checkov", "moto", "mypy", "ruff"} & set(image)


def test_both_locks_say_which_command_regenerates_them() -> None:
    for lock in ("dev.txt", "image.txt"):
        head = (LOCKS / lock).read_text(encoding="utf-8").splitlines()[:2]
        assert head[1].strip("# ") == "scripts/lock.sh"


def test_the_sentry_extra_is_pinned_to_the_major_version_the_tests_run_with() -> None:
    """sentry-sdk 3.x changes the API fluxion's options use (Sentry would be silently off): the
    extra stops at 3, and the dev lock (what test_sentry.py runs with) holds a 2.x in range."""
    (sdk,) = requirements("options.extras_require:sentry")
    assert canonicalize_name(sdk.name) == "sentry-sdk"
    assert not sdk.specifier.contains("3.0.0") and not sdk.specifier.contains("3.1.0a1", True)
    locked, _ = pins("dev.txt")["sentry-sdk"]
    assert locked.split(".")[0] == "2" and sdk.specifier.contains(locked)
