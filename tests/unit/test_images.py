"""Image URIs read from the SDK's bundled tables equal what the SDK's ``image_uris.retrieve`` returns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import images
from pipelines.factory import offline_sdk
from pipelines.images import image_uri, repository_of

ROOT = Path(__file__).resolve().parents[2]
SKLEARN_VERSION = "1.9-0"
INSTANCE_TYPE = "ml.m5.large"


def stack_regions() -> set[str]:
    regions = set()
    for path in (ROOT / "stacks").glob("Pulumi.*.yaml"):
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        if "aws:region" in config:
            regions.add(config["aws:region"])
    return regions


STACK_REGIONS = stack_regions()
REGIONS = sorted(STACK_REGIONS | {"us-east-1", "eu-west-1", "ap-southeast-2"})


def retrieve(framework: str, region: str, **kwargs: Any) -> str:
    with offline_sdk(region):
        from sagemaker.core import image_uris

        return image_uris.retrieve(framework, region=region, **kwargs)


def test_every_stack_declares_a_region() -> None:
    assert STACK_REGIONS


@pytest.mark.parametrize("region", REGIONS)
def test_sklearn_image_equals_the_sdks(region: str) -> None:
    expected = retrieve("sklearn", region, version=SKLEARN_VERSION, instance_type=INSTANCE_TYPE)
    assert image_uri("sklearn", region, SKLEARN_VERSION, INSTANCE_TYPE) == expected


@pytest.mark.parametrize("region", REGIONS)
def test_model_monitor_image_equals_the_sdks(region: str) -> None:
    assert image_uri("model-monitor", region) == retrieve("model-monitor", region)


@pytest.mark.parametrize("version", sorted(images._scope_config("sklearn")["versions"]))
@pytest.mark.parametrize("instance_type", ["ml.m5.large", "ml.c5.xlarge", "ml.p3.2xlarge", None])
def test_every_sklearn_version_equals_the_sdks(version: str, instance_type: str | None) -> None:
    try:
        expected: Any = retrieve("sklearn", "eu-west-1", version=version, instance_type=instance_type)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            image_uri("sklearn", "eu-west-1", version, instance_type)
    else:
        assert image_uri("sklearn", "eu-west-1", version, instance_type) == expected


def test_the_pipeline_image_is_the_scikit_learn_cpu_image() -> None:
    uri = image_uri("sklearn", "eu-west-1", SKLEARN_VERSION, INSTANCE_TYPE)
    assert uri == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
    assert repository_of(uri) == ("141502667606", "sagemaker-scikit-learn")


def test_repository_of_drops_tag_and_digest_and_refuses_non_ecr_uris() -> None:
    digest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/model@sha256:" + "0" * 64
    assert repository_of(digest) == ("123456789012", "team/model")
    with pytest.raises(ValueError, match="not an ECR image URI"):
        repository_of("docker.io/library/python:3.11")


@pytest.mark.parametrize("framework", ["sklearn", "model-monitor"])
def test_unknown_region_is_refused_naming_framework_region_and_available_regions(framework: str) -> None:
    version = SKLEARN_VERSION if framework == "sklearn" else None
    with pytest.raises(
        ValueError, match=rf"no {framework} image.* in region 'xx-nowhere-1'; regions with one: .*'eu-west-1'"
    ):
        image_uri(framework, "xx-nowhere-1", version, INSTANCE_TYPE)


def test_unknown_version_is_refused_listing_the_versions() -> None:
    with pytest.raises(ValueError, match=r"sklearn has no version '0\.1'.*versions: .*'1\.9-0'"):
        image_uri("sklearn", "eu-west-1", "0.1", INSTANCE_TYPE)
    with pytest.raises(ValueError, match=r"sklearn has several versions, pass one of: .*'1\.9-0'"):
        image_uri("sklearn", "eu-west-1", None, INSTANCE_TYPE)


def test_frameworks_not_verified_against_the_sdk_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"framework 'xgboost' is not supported here \(supported: model-monitor, sklearn\)"
    ):
        image_uri("xgboost", "eu-west-1", "1.7-1", INSTANCE_TYPE)
    with pytest.raises(ValueError, match="Graviton"):
        image_uri("sklearn", "eu-west-1", SKLEARN_VERSION, "ml.c6g.large")


def test_lookup_does_not_import_the_sdk() -> None:
    """The point of the module: no ``sagemaker.core`` import (seconds), no AWS region needed."""
    code = (
        "import sys\n"
        "from pipelines.images import image_uri\n"
        f"image_uri('sklearn', 'eu-west-1', {SKLEARN_VERSION!r}, {INSTANCE_TYPE!r})\n"
        "image_uri('model-monitor', 'eu-west-1')\n"
        "print(sorted(m for m in sys.modules if m.startswith('sagemaker')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['sagemaker']"  # the namespace package only
