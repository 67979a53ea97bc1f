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

import botocore.loaders
import moto.sns.models

from verify.mock_engine import OfflinePlan, run_program, stack_names


def _parse_botocore_data_once() -> None:
    """Parse each of botocore's JSON data files once per test process.

    botocore caches a parsed service model per ``Session``, and the code under test (a responder's cold start, an
    assumed-role session) makes a new session whenever production would: every such test used to parse the
    SageMaker, DynamoDB, SNS... models again, about a third of the unit tier's time. The files are read-only data
    and botocore's own cache already shares one parsed object between the clients of a session, so sharing it
    between sessions changes nothing the tests observe.
    """
    parse = botocore.loaders.JSONFileLoader.load_file
    parsed: dict[str, object] = {}

    def load_file(self: botocore.loaders.JSONFileLoader, file_path: str) -> object:
        if file_path not in parsed:
            parsed[file_path] = parse(self, file_path)
        return parsed[file_path]

    botocore.loaders.JSONFileLoader.load_file = load_file  # type: ignore[method-assign]


def _one_sns_signing_key() -> None:
    """moto's SNS makes a 2048-bit RSA key for every mocked topic (to sign HTTP deliveries, which no test uses):
    60 ms each. One key per test process signs the same way. Only moto's SNS module sees the cached key."""
    rsa = moto.sns.models.rsa  # pyright: ignore[reportPrivateImportUsage]
    keys: dict[tuple[int, int], object] = {}

    class CachedKeys:
        def __getattr__(self, name: str) -> object:
            return getattr(rsa, name)

        @staticmethod
        def generate_private_key(public_exponent: int, key_size: int, backend: object = None) -> object:
            if (public_exponent, key_size) not in keys:
                keys[(public_exponent, key_size)] = rsa.generate_private_key(public_exponent, key_size)
            return keys[(public_exponent, key_size)]

    moto.sns.models.rsa = CachedKeys()  # type: ignore[assignment]


_parse_botocore_data_once()
_one_sns_signing_key()

STACKS = stack_names()


@pytest.fixture(scope="session")
def stack_plans() -> dict[str, OfflinePlan]:
    """Every stack file's program, run once under Pulumi's mock engine."""
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest, stack_plans: dict[str, OfflinePlan]) -> OfflinePlan:
    """One stack's offline plan (the test runs once per stack file)."""
    return stack_plans[request.param]
