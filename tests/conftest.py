"""Shared fixtures: the program run offline for every stack file, once per test session."""

from __future__ import annotations

import os

import pytest

# No test may reach AWS: fake credentials, a region, and no instance-metadata lookups.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from verify.mock_engine import OfflinePlan, run_program, stack_names

STACKS = stack_names()


@pytest.fixture(scope="session")
def stack_plans() -> dict[str, OfflinePlan]:
    """Every stack file's program, run once under Pulumi's mock engine."""
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, stack_plans: dict[str, OfflinePlan]) -> OfflinePlan:
    """One stack's offline plan (the test runs once per stack file)."""
    return stack_plans[request.param]
