"""The platform's inference image: ECR repository, build and push, digest in every registered version, pull rights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.images.component import lifecycle_policy, registry_host, repository_arn_of
from infra.images.context import BuildContextError, DockerIgnore, build_context
from infra.images.registry import EcrImages, OfflineImages
from tests.support.plans import prefix
from tests.support.types import PIPELINE
from verify.mock_engine import MOCK_ACCOUNT_ID, OfflinePlan, read_stack_values, run_program

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
BUILD = "docker-build:index:Image"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STOCK_ACCOUNTS = {"141502667606", "683313688378", "246618743249"}  # SageMaker's framework image accounts (some)


def registered_images(plan: OfflinePlan) -> dict[str, str]:
    """Pipeline name -> the image its register step names."""
    images = {}
    for pipeline in plan.of_type(PIPELINE):
        if pipeline.component != "mlops:training:TrainingPipeline":
            continue  # the monitoring pipelines register nothing
        definition = json.loads(pipeline.inputs["pipelineDefinition"])
        registers = [s for s in _walk(definition["Steps"]) if s["Type"] == "RegisterModel"]
        (register,) = registers
        (container,) = register["Arguments"]["InferenceSpecification"]["Containers"]
        images[pipeline.inputs["pipelineName"]] = container["Image"]
    return images


def _walk(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            found += _walk(step.get("Arguments", {}).get(branch, []))
    return found


def serving_pull_statements(plan: OfflinePlan) -> list[dict[str, Any]]:
    statements = []
    for policy in plan.of_type(ROLE_POLICY):
        if policy.component != "mlops:serving:Serving":
            continue
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            if "ecr:BatchGetImage" in statement["Action"]:
                statements.append(statement)
    return statements


def with_images(stack: str, **inference: Any) -> dict[str, Any]:
    return {"images": {"inference": inference}}


# --- every stack -----------------------------------------------------------------------------


def test_every_registered_version_names_the_platform_image_by_digest(plan: OfflinePlan) -> None:
    images = registered_images(plan)
    assert images, "every stack trains at least one model"
    expected = plan.outputs["inferenceImage"]
    for pipeline, image in images.items():
        assert image == expected, pipeline
        registry, _, rest = image.partition("/")
        assert registry.split(".")[0] not in STOCK_ACCOUNTS
        assert "sagemaker-scikit-learn" not in rest
        assert "@sha256:" in rest and len(rest.rsplit(":", 1)[1]) == 64


def test_a_built_image_is_pushed_to_the_stacks_repository(plan: OfflinePlan) -> None:
    settings = plan.config.images.inference
    builds = plan.of_type(BUILD)
    if not settings.build:
        assert builds == [] and plan.of_type(REPOSITORY) == []
        assert plan.outputs["inferenceImage"] == settings.uri
        return
    (repository,) = plan.of_type(REPOSITORY)
    (build,) = builds
    name = f"{prefix(plan)}-inference"
    host = registry_host(MOCK_ACCOUNT_ID, plan.config.region)
    tag = build_context("inference").tag(settings.platforms)
    assert repository.inputs["name"] == name
    assert build.inputs["tags"] == [f"{host}/{name}:{tag}"]
    assert build.inputs["push"] is True
    assert build.inputs["platforms"] == list(settings.platforms)
    assert build.inputs["dockerfile"]["location"] == "containers/inference/Dockerfile"
    assert build.inputs["context"]["location"] == "."  # relative: the same state on every machine
    (registry,) = build.inputs["registries"]
    assert registry["address"] == host and registry["username"] == "AWS"
    assert plan.outputs["inferenceImage"] == f"{host}/{name}@{build.state['digest']}"
    # Deleting the build resource would delete the pushed manifest that model versions name.
    assert build.retain_on_delete
    assert repository.urn in build.dependencies


def test_repository_is_encrypted_immutable_scanned_and_keeps_its_images(plan: OfflinePlan) -> None:
    for repository in plan.of_type(REPOSITORY):
        inputs = repository.inputs
        (key,) = plan.of_type("aws:kms/key:Key")
        assert inputs["imageTagMutability"] == "IMMUTABLE"
        assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key.state["arn"]}]
        assert inputs["forceDelete"] is False
        assert repository.protect is plan.config.protect_stateful_resources
        (lifecycle,) = plan.of_type(LIFECYCLE)
        rules = json.loads(lifecycle.inputs["policy"])["rules"]
        settings = plan.config.images.inference
        untagged, tagged = sorted(rules, key=lambda r: r["rulePriority"])
        assert untagged["selection"]["tagStatus"] == "untagged"
        assert untagged["selection"]["countNumber"] == settings.untagged_expire_days
        assert tagged["selection"] == {
            "tagStatus": "tagged",
            "tagPatternList": ["*"],
            "countType": "imageCountMoreThan",
            "countNumber": settings.keep_images,
        }


def test_serving_roles_pull_only_the_platform_repository(plan: OfflinePlan) -> None:
    statements = serving_pull_statements(plan)
    if not any(m.serving for m in plan.config.models):
        return
    assert statements
    expected = (
        plan.of_type(REPOSITORY)[0].state["arn"]
        if plan.of_type(REPOSITORY)
        else repository_arn_of(plan.config.images.inference.uri or "")
    )
    for statement in statements:
        assert statement["Resource"] == [expected]
        assert sorted(statement["Action"]) == [
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
        ]


def test_no_repository_policy_without_registry_consumers(plan: OfflinePlan) -> None:
    consumers = {a for m in plan.config.models for a in m.training.registry_account_ids}
    assert bool(plan.of_type(REPOSITORY_POLICY)) is bool(consumers and plan.config.images.inference.build)


# --- switches --------------------------------------------------------------------------------


def test_registry_consumer_accounts_may_pull_and_nothing_else() -> None:
    models = json.loads(read_stack_values("dev")["mlops:models"])
    for model in models:
        model["training"] = {**model.get("training", {}), "registryAccountIds": ["246813579135", "975318642097"]}
    plan = run_program("dev", overrides={"models": models})
    (policy,) = plan.of_type(REPOSITORY_POLICY)
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::246813579135:root", "arn:aws:iam::975318642097:root"]}
    assert sorted(statement["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert statement["Effect"] == "Allow" and "Resource" not in statement  # a repository policy names no resource


def test_a_tag_ecr_already_holds_is_not_built_again() -> None:
    """A revert brings back a content hash ECR holds; pushing that tag again would fail, so nothing is built."""
    settings = parse_stack_config(read_stack_values("dev"), "dev").images.inference
    tag = build_context("inference").tag(settings.platforms)
    digest = "sha256:" + "e" * 64
    plan = run_program("dev", images=OfflineImages(pushed={("acme-mlops-dev-inference", tag): digest}))
    assert plan.of_type(BUILD) == []
    assert len(plan.of_type(REPOSITORY)) == 1  # the repository stays
    image = f"{registry_host(MOCK_ACCOUNT_ID, 'eu-west-1')}/acme-mlops-dev-inference@{digest}"
    assert plan.outputs["inferenceImage"] == image
    assert set(registered_images(plan).values()) == {image}


def test_a_configured_image_replaces_repository_and_build() -> None:
    uri = f"210987654321.dkr.ecr.eu-west-1.amazonaws.com/acme-mlops-staging-inference@sha256:{'a1' * 32}"
    plan = run_program("prod", overrides=with_images("prod", build=False, uri=uri))
    assert plan.of_type(BUILD) == [] and plan.of_type(REPOSITORY) == [] and plan.of_type(LIFECYCLE) == []
    assert set(registered_images(plan).values()) == {uri}
    for statement in serving_pull_statements(plan):
        assert statement["Resource"] == ["arn:aws:ecr:eu-west-1:210987654321:repository/acme-mlops-staging-inference"]


def test_platforms_are_built_as_configured_and_change_the_tag() -> None:
    both = run_program("dev", overrides=with_images("dev", platforms=["linux/amd64", "linux/arm64"]))
    one = run_program("dev")
    (build_both,) = both.of_type(BUILD)
    (build_one,) = one.of_type(BUILD)
    assert build_both.inputs["platforms"] == ["linux/amd64", "linux/arm64"]
    # A different platform set is a different image: it must not reuse a tag ECR keeps immutable.
    assert build_both.inputs["tags"] != build_one.inputs["tags"]


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        ({"build": False}, "build=false needs uri"),
        ({"uri": f"123456789013.dkr.ecr.eu-west-1.amazonaws.com/x@sha256:{'0' * 64}"}, "only used with build=false"),
        ({"build": False, "uri": "123456789013.dkr.ecr.eu-west-1.amazonaws.com/x:latest"}, "uri"),
        ({"platforms": ["linux/arm/v7"]}, "platforms"),
        ({"platforms": []}, "platforms"),
        ({"platforms": ["linux/amd64", "linux/amd64"]}, "more than once"),
        ({"keepImages": 0}, "keepImages"),
        ({"tags": "latest"}, "tags"),
    ],
)
def test_bad_image_settings_fail_before_any_resource(inference: dict[str, Any], message: str) -> None:
    values = {**read_stack_values("dev"), "mlops:images": json.dumps({"inference": inference})}
    with pytest.raises(ConfigError, match=message) as raised:
        parse_stack_config(values, "dev")
    assert "images.inference" in str(raised.value)


# --- build context ---------------------------------------------------------------------------


def test_the_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    context = build_context("inference")
    files = set(context.files)
    assert "mlops/features/spec.py" in files
    assert "containers/inference/inference_server/app.py" in files
    assert "containers/inference/requirements.txt" in files
    assert not any(f.startswith((".venv/", "tests/", "stacks/", "infra/")) or "__pycache__" in f for f in files)


def _repository(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


IGNORE = "*\n!app/\n!lib/shared.py\n**/__pycache__\n"


def test_the_tag_changes_with_what_goes_into_the_image_and_only_that(tmp_path: Path) -> None:
    files = {
        "containers/web/Dockerfile": "FROM scratch\n",
        "containers/web/Dockerfile.dockerignore": IGNORE,
        "app/main.py": "print(1)\n",
        "lib/shared.py": "X = 1\n",
        "lib/other.py": "Y = 1\n",
        "README.md": "docs\n",
    }
    tags = []
    for change in ({}, {"README.md": "more docs\n", "lib/other.py": "Y = 2\n"}, {"lib/shared.py": "X = 2\n"}):
        root = _repository(tmp_path / f"r{len(tags)}", {**files, **change})
        tags.append(build_context("web", root).tag(["linux/amd64"]))
    unrelated, related = tags[1], tags[2]
    assert unrelated == tags[0]  # files the image never sees do not change it
    assert related != tags[0]


def test_a_container_without_its_ignore_file_is_refused(tmp_path: Path) -> None:
    root = _repository(tmp_path, {"containers/web/Dockerfile": "FROM scratch\n"})
    with pytest.raises(BuildContextError, match=r"Dockerfile\.dockerignore is missing"):
        build_context("web", root)


@pytest.mark.parametrize(
    ("path", "included"),
    [
        ("app/main.py", True),  # re-included directory: everything below it
        ("app/deep/x.py", True),
        ("app/__pycache__/main.cpython-311.pyc", False),  # a later rule excludes again
        ("lib/shared.py", True),
        ("lib/other.py", False),
        ("README.md", False),
    ],
)
def test_ignore_rules_follow_dockers_semantics(path: str, included: bool) -> None:
    assert DockerIgnore(IGNORE.splitlines()).excludes(path) is not included


# --- helpers ---------------------------------------------------------------------------------


def test_registry_host_and_repository_arn_follow_the_partition() -> None:
    assert registry_host("123456789013", "cn-north-1") == "123456789013.dkr.ecr.cn-north-1.amazonaws.com.cn"
    uri = f"123456789013.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app@sha256:{'0' * 64}"
    assert repository_arn_of(uri) == "arn:aws-cn:ecr:cn-north-1:123456789013:repository/team/app"


def test_lifecycle_expires_untagged_before_counting_tagged_images() -> None:
    rules = json.loads(lifecycle_policy(keep_images=5, untagged_expire_days=3))["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2]
    assert rules[0]["selection"]["tagStatus"] == "untagged"
    assert rules[1]["selection"]["countNumber"] == 5


class _Ecr:
    def __init__(self, error: str | None = None, digest: str | None = None) -> None:
        self.error, self.digest, self.calls = error, digest, 0

    def client(self, service: str) -> _Ecr:
        assert service == "ecr"
        return self

    def describe_images(self, **request: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "DescribeImages")
        return {"imageDetails": [{"imageDigest": self.digest}]}


@pytest.mark.parametrize("code", ["ImageNotFoundException", "RepositoryNotFoundException"])
def test_ecr_lookup_reads_absent_as_build_it(code: str) -> None:
    assert EcrImages(_Ecr(error=code)).pushed_digest("repo", "tag") is None


def test_ecr_lookup_stops_on_other_refusals_and_caches_answers() -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        EcrImages(_Ecr(error="AccessDeniedException")).pushed_digest("repo", "tag")
    ecr = _Ecr(digest="sha256:" + "1" * 64)
    lookup = EcrImages(ecr)
    assert lookup.pushed_digest("repo", "tag") == lookup.pushed_digest("repo", "tag") == "sha256:" + "1" * 64
    assert ecr.calls == 1
