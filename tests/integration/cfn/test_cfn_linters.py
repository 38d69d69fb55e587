"""The real linters on the committed template: cfn-lint (every region) and checkov.

checkov is heavy and installed by tox only (not a package extra); without it the checkov test
skips and says how to get it. It runs offline: no platform download, no update check.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "templates" / "fluxion-etl.yaml"


def test_cfn_lint_reports_no_error_or_warning_in_any_region() -> None:
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint is not installed (extra [dev])")
    from cfnlint.helpers import REGIONS

    matches = api.lint(TEMPLATE.read_text(encoding="utf-8"), config=api.ManualArgs(regions=REGIONS))
    assert [str(match) for match in matches] == []


def _checkov() -> str | None:
    beside_python = Path(sys.executable).parent / "checkov"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("checkov")


def _checkov_report(unavailable: Callable[[str], NoReturn]) -> dict[str, Any]:
    checkov = _checkov()
    if checkov is None:
        unavailable(
            "checkov is not installed (tox installs it; locally: python3 -m venv /tmp/ckv &&"
            " /tmp/ckv/bin/pip install checkov, then put /tmp/ckv/bin on PATH)"
        )
    env = {
        **{k: v for k, v in os.environ.items() if k != "BC_API_KEY"},
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no PyPI query
        "BC_SKIP_MAPPING": "TRUE",  # no guidelines download
    }
    result = subprocess.run(
        [checkov, "--file", str(TEMPLATE), "--framework", "cloudformation",
         "--skip-download", "--output", "json"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1 = failed checks, reported below
    report = json.loads(result.stdout)
    return dict(report[0] if isinstance(report, list) else report)


@pytest.mark.checkov
def test_checkov_reports_no_failed_check(unavailable: Callable[[str], NoReturn]) -> None:
    report = _checkov_report(unavailable)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    # A skip is only legitimate through the resource's Metadata, with a written reason.
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 30, skipped["check_id"]
