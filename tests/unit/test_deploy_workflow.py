"""The GitHub Actions deploy workflow: OIDC only, template checked, PRs review, main executes."""

import re
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "deploy.yml"
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
    assert DOC["jobs"]["deploy"]["needs"] == "template"


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
