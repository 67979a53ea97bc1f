"""Physical names derive from one helper that enforces AWS limits at preview time."""

from __future__ import annotations

import re

import pytest

from infra.naming import REQUIRED_TAG_KEYS, Kind, Naming, NamingError
from verify.mock_engine import OfflinePlan

NAMING = Naming(project="acme-mlops", environment="prod", owner="team", cost_center="cc")


def test_names_are_project_env_thing() -> None:
    assert NAMING.name("raw", Kind.S3_BUCKET) == "acme-mlops-prod-raw"


def test_glue_names_use_underscores() -> None:
    assert NAMING.name("curated", Kind.GLUE) == "acme_mlops_prod_curated"


def test_too_long_name_fails_naming_the_limit() -> None:
    with pytest.raises(NamingError, match=r"SAGEMAKER name .* is 66 characters; AWS allows 1-63"):
        NAMING.name("x" * 50, Kind.SAGEMAKER)


def test_invalid_characters_fail() -> None:
    with pytest.raises(NamingError, match="may only contain lowercase letters, digits and '-'"):
        NAMING.name("Raw_Zone", Kind.S3_BUCKET)


def test_tags_carry_every_required_key() -> None:
    assert set(REQUIRED_TAG_KEYS) <= set(NAMING.tags())
    assert NAMING.tags(Zone="raw")["Zone"] == "raw"


def test_stack_names_respect_their_limits(plan: OfflinePlan) -> None:
    buckets = [r.inputs["bucket"] for r in plan.of_type("aws:s3/bucket:Bucket")]
    assert buckets and all(3 <= len(b) <= 63 and re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", b) for b in buckets)
    roles = [r.inputs["name"] for r in plan.of_type("aws:iam/role:Role")]
    assert all(len(n) <= 64 for n in roles)
    prefix = f"{plan.config.project}-{plan.config.environment}-"
    assert all(b.startswith(prefix) for b in buckets)
