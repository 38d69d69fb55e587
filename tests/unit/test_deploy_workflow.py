"""The GitHub Actions deploy workflow: tests first, OIDC only, template checked, actions pinned by
commit, PRs review, main executes; the workflow and dependabot's config are valid."""

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
TEXT = WORKFLOW.read_text(encoding="utf-8")
DOC: dict[Any, Any] = yaml.safe_load(TEXT)


def steps(job: str) -> list[dict[str, Any]]:
    return list(DOC["jobs"][job]["steps"])


def test_credentials_come_from_an_oidc_role_and_nothing_is_stored() -> None:
    assert DOC["permissions"] == {"id-token": "write", "contents": "read"}
    (configure,) = [s for s in steps("deploy") if "configure-aws-credentials" in s.get("uses", "")]
    assert configure["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert "aws-access-key-id" not in configure["with"]
    assert not re.search(r"\b\d{12}\b", TEXT), "an account id in the workflow"
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", TEXT), "an access key in the workflow"


def test_the_template_is_linted_and_checked_against_the_generator_first() -> None:
    runs = " ".join(s.get("run", "") for s in steps("template"))
    assert "cfn-lint templates/fluxion-etl.yaml" in runs
    assert "python -m fluxion_cfn | diff -u templates/fluxion-etl.yaml -" in runs
    assert "template" in DOC["jobs"]["deploy"]["needs"]


def test_the_whole_suite_runs_first_and_gates_the_change_set_and_the_deploy() -> None:
    # The README's test command, on what CI's .ci/run gets: Debian bookworm, as root.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "./scripts/test.sh     # installs" in readme
    assert "exec ./scripts/test.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test = DOC["jobs"]["test"]
    assert [s["run"] for s in test["steps"] if "run" in s] == ["./scripts/test.sh"]
    assert test["container"]["image"] == "debian:bookworm"
    assert "--privileged" in test["container"]["options"]  # podman and debootstrap build the image
    # Every step that reviews or executes a change set is in a job that needs the tests.
    assert set(DOC["jobs"]["deploy"]["needs"]) == {"test", "template"}
    gated = steps("template") + test["steps"]
    assert all("fluxion_cfn deploy" not in s.get("run", "") for s in gated)


def test_third_party_actions_are_pinned_by_a_full_commit_sha_with_its_tag_beside_it() -> None:
    uses = re.findall(r"uses: (\S+)(.*)", TEXT)
    assert len(uses) == sum("uses" in s for job in DOC["jobs"].values() for s in job["steps"]) > 5
    for action, comment in uses:
        assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), f"{action}: no version comment"
    # the same action is pinned to the same commit everywhere
    pinned = {a.split("@")[0]: a for a, _ in uses}
    assert len(set(a for a, _ in uses)) == len(pinned)


def test_installs_in_the_workflow_come_from_the_hash_pinned_locks() -> None:
    runs = [s.get("run", "") for job in ("template", "deploy") for s in steps(job)]
    installs = [line.strip() for run in runs for line in run.splitlines() if "pip install" in line]
    assert installs == [
        "pip install --require-hashes -r requirements/dev.txt", "pip install --no-deps .",
        "pip install --require-hashes -r requirements/image.txt", "pip install --no-deps .",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("config", "schema"),
    [
        (".github/workflows/deploy.yml", "vendor.github-workflows"),
        (".github/dependabot.yml", "vendor.dependabot"),
    ],
)
def test_the_config_validates_against_its_published_schema(
    config: str, schema: str, unavailable: Callable[[str], NoReturn]
) -> None:
    """The schemas ship inside check-jsonschema: no network. tox's lint env runs the same."""
    if importlib.util.find_spec("check_jsonschema") is None:
        unavailable("check-jsonschema not installed (requirements/dev.txt)")
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(REPO / config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dependabot_proposes_upgrades_of_the_locks_the_actions_and_the_base_image() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    ecosystems = {u["package-ecosystem"]: u["directory"] for u in config["updates"]}
    assert ecosystems == {"pip": "/requirements", "github-actions": "/", "docker": "/"}
    assert (REPO / "requirements" / "image.txt").is_file() and (REPO / "Dockerfile").is_file()


def test_pull_requests_only_review_the_change_set_and_main_executes_it() -> None:
    on = DOC.get("on", DOC.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert set(on) == {"pull_request", "push"} and on["push"]["branches"] == ["main"]
    deploys = [s for s in steps("deploy") if "fluxion_cfn deploy" in s.get("run", "")]
    by_event = {s["if"]: s["run"] for s in deploys}
    assert "--no-execute" in by_event["github.event_name == 'pull_request'"]
    assert "--no-execute" not in by_event["github.event_name == 'push'"]
    pushes = [
        s.get("name") for s in steps("deploy") if s.get("if") == "github.event_name == 'push'"
    ]
    # On main the image is pushed before the deploy that pins its tag.
    assert pushes.index("Build and push the image") < pushes.index("Deploy (change set, executed)")
