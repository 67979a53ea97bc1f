"""The GitHub workflows (``.github/workflows``): OIDC only, a preview per stack with the policy pack, and a
guarded dev -> staging -> prod roll-forward. Parsed as YAML, so a broken file fails here, not on GitHub."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from verify.mock_engine import read_stack_values, stack_names

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
DEPLOY_ORDER = ("dev", "staging", "prod")
STATIC_KEY_INPUTS = ("aws-access-key-id", "aws-secret-access-key", "aws-session-token")


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    return document


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow.get("on") or workflow[True]  # PyYAML reads the bare key `on` as the boolean True


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, job)
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for name, job in load(path.name)["jobs"].items()
    ]


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"pull-request.yml", "deploy.yml"}


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_no_static_aws_keys(path: Path) -> None:
    text = path.read_text()
    assert not [k for k in STATIC_KEY_INPUTS if k in text]
    assert "secrets.AWS_" not in text


def test_every_job_assuming_an_aws_role_may_request_an_oidc_token() -> None:
    assuming = [(f, n, j) for f, n, j in all_jobs() if uses(j, "aws-actions/configure-aws-credentials")]
    assert assuming, "no job assumes an AWS role"
    for file, name, job in assuming:
        assert (job.get("permissions") or {}).get("id-token") == "write", f"{file}:{name}"
        for step in uses(job, "aws-actions/configure-aws-credentials"):
            assert step["with"]["role-to-assume"], f"{file}:{name}"


def test_actions_are_pinned_to_a_version() -> None:
    for file, name, job in all_jobs():
        for step in steps(job):
            if "uses" in step and not str(step["uses"]).startswith("./"):
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), f"{file}:{name}: {step['uses']}"


def preview_stacks(workflow: dict[str, Any]) -> set[str]:
    """Stacks that some job previews with pulumi/actions (matrix values expanded)."""
    found: set[str] = set()
    for job in workflow["jobs"].values():
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        for step in uses(job, "pulumi/actions"):
            if step["with"].get("command") != "preview":
                continue
            stack = str(step["with"]["stack-name"])
            found.update(matrix.get("stack", []) if "matrix.stack" in stack else [stack])
    return found


def test_every_stack_file_has_a_preview_job() -> None:
    assert preview_stacks(load("pull-request.yml")) == set(stack_names())


def test_previews_comment_on_the_pull_request() -> None:
    workflow = load("pull-request.yml")
    [matrix_preview] = uses(workflow["jobs"]["preview"], "pulumi/actions")
    assert matrix_preview["with"]["comment-on-pr"] is True
    assert workflow["jobs"]["preview"]["permissions"]["pull-requests"] == "write"


def test_previews_wait_for_lint_types_and_tests() -> None:
    workflow = load("pull-request.yml")
    runs = [str(s.get("run", "")).strip() for s in steps(workflow["jobs"]["checks"])]
    # What `make test` runs, each part once (no target runs another's checks again).
    assert [r for r in runs if r.startswith("make ") and r != "make setup"] == [
        "make check",
        "make test-unit",
        "make test-integration",
    ]
    for name, job in workflow["jobs"].items():
        if name != "checks":
            assert job["needs"] == "checks", name


@pytest.mark.parametrize("file", ["pull-request.yml", "deploy.yml"])
def test_every_pulumi_run_uses_the_policy_pack(file: str) -> None:
    workflow_runs = [s for j in load(file)["jobs"].values() for s in uses(j, "pulumi/actions")]
    assert workflow_runs
    for step in workflow_runs:
        assert step["with"]["policyPacks"] == "policies"
        assert (WORKFLOWS.parents[1] / step["with"]["policyPackConfigs"]).is_file()


def test_policy_pack_gets_its_virtualenv_before_pulumi_runs() -> None:
    for file, name, job in all_jobs():
        if uses(job, "pulumi/actions"):
            script = " ".join(str(s.get("run", "")) for s in steps(job))
            assert "policies/venv/bin/pip install" in script and "policies/requirements.txt" in script, f"{file}:{name}"


def test_deploy_runs_on_main_and_on_dispatch_with_the_responder_inputs() -> None:
    on = triggers(load("deploy.yml"))
    assert on["push"]["branches"] == ["main"]
    assert set(on["workflow_dispatch"]["inputs"]) == {"model", "model_package_arn", "stack"}


def test_dispatch_stack_choices_are_the_deploy_jobs() -> None:
    stack = triggers(load("deploy.yml"))["workflow_dispatch"]["inputs"]["stack"]
    assert stack["options"] == ["all", *DEPLOY_ORDER] and stack["default"] == "all"


def test_deploy_order_is_dev_staging_prod() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert "needs" not in jobs["dev"]
    assert [jobs[s].get("needs") for s in DEPLOY_ORDER[1:]] == list(DEPLOY_ORDER[:-1])


@pytest.mark.parametrize("stack", DEPLOY_ORDER)
def test_each_deploy_job_has_its_environment_and_a_per_stack_concurrency_group(stack: str) -> None:
    job = load("deploy.yml")["jobs"][stack]
    assert job["environment"] == stack
    assert job["concurrency"] == {"group": f"pulumi-up-{stack}", "cancel-in-progress": False}
    [up] = uses(job, "pulumi/actions")
    assert (up["with"]["command"], up["with"]["stack-name"]) == ("up", stack)


@pytest.mark.parametrize("stack", DEPLOY_ORDER[1:])
def test_a_later_stage_never_runs_after_a_failed_one(stack: str) -> None:
    condition = load("deploy.yml")["jobs"][stack]["if"]
    assert "!failure()" in condition and "!cancelled()" in condition


def step_index(job: dict[str, Any], predicate: Any) -> list[int]:
    return [i for i, step in enumerate(steps(job)) if predicate(step)]


def is_pulumi(command: str) -> Any:
    return lambda s: str(s.get("uses", "")).split("@")[0] == "pulumi/actions" and s["with"].get("command") == command


@pytest.mark.parametrize("stack", DEPLOY_ORDER)
def test_each_deploy_job_refreshes_the_state_before_up(stack: str) -> None:
    """Replacing an endpoint deregisters its scalable targets outside Pulumi: `up` must start from AWS's state."""
    job = load("deploy.yml")["jobs"][stack]
    [up] = step_index(job, is_pulumi("up"))
    up_step = steps(job)[up]
    # pulumi/actions v6+: `refresh: true` runs `pulumi up --refresh` (v5 ran a refresh first); or a refresh step.
    version = re.search(r"@v(\d+)", up_step["uses"])
    refreshed_by_up = up_step["with"].get("refresh") is True and version is not None and int(version.group(1)) >= 5
    assert refreshed_by_up or any(i < up for i in step_index(job, is_pulumi("refresh")))


@pytest.mark.parametrize("stack", DEPLOY_ORDER)
def test_each_deploy_job_checks_the_rollout_after_up(stack: str) -> None:
    """A rollout SageMaker rolled back behind a successful `pulumi up` fails the job (tools/check_rollout.py)."""
    job = load("deploy.yml")["jobs"][stack]
    [up] = step_index(job, is_pulumi("up"))
    checks = step_index(job, lambda s: "tools.check_rollout" in str(s.get("run", "")))
    assert len(checks) == 1 and checks[0] > up
    script = str(steps(job)[checks[0]]["run"])
    assert f"pulumi stack output --json --stack {stack}" in script
    assert ".venv/bin/python -m tools.check_rollout --prune" in script  # retained configs go only after a pass
    assert (WORKFLOWS.parents[1] / "tools" / "check_rollout.py").is_file()


def test_every_stack_dispatching_deploy_yml_is_one_of_its_stack_choices() -> None:
    """The approval responder sends its Pulumi stack as the `stack` input; GitHub refuses a value not offered."""
    choices = triggers(load("deploy.yml"))["workflow_dispatch"]["inputs"]["stack"]["options"]
    dispatching = []
    for stack in stack_names():
        deployment = json.loads(read_stack_values(stack).get("mlops:deployment", "{}"))
        if deployment.get("kind") == "github-workflow" and deployment.get("workflow") == "deploy.yml":
            dispatching.append(stack)
            assert stack in choices, stack
    assert dispatching, "no stack dispatches deploy.yml"
