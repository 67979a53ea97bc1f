"""Shared fixtures: the program run offline for every stack file, once per test session."""

from __future__ import annotations

import gc
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


def _one_botocore_data_cache() -> None:
    """Share botocore's loader cache between all sessions of a test process with the same search paths.

    botocore's ``Loader`` caches what it finds and parses (the list of services, each service model, endpoint
    rules) per instance, and every ``Session`` makes a new loader. The code under test makes a new session
    whenever production would (a responder's cold start, an assumed-role session), so every such test used to
    list botocore's data folders and parse the SageMaker, DynamoDB, SNS... models again: about a third of the tier.
    The files are read-only and one session's clients already share the loader's objects, so sharing them between
    sessions that search the same folders changes nothing the tests observe.
    """
    caches: dict[tuple[str, ...], dict[object, object]] = {}

    def shared_cache(loader: botocore.loaders.Loader) -> dict[object, object]:
        return caches.setdefault(tuple(loader.search_paths), {})

    def ignore_own_cache(loader: botocore.loaders.Loader, value: object) -> None:
        """``Loader.__init__`` assigns an empty per-instance cache: the shared one stands in for it."""

    botocore.loaders.Loader._cache = property(shared_cache, ignore_own_cache)  # type: ignore[attr-defined]


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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep the garbage collector off the objects every test shares, and let it run less often.

    After collection a test process holds about 600,000 long-lived objects (pulumi-aws, botocore's parsed models,
    the SageMaker SDK, moto, scikit-learn). Each full collection walked all of them, and Pulumi's mock engine or a
    moto backend allocates enough to trigger many: a stack's program ran 1.7 times slower for it. ``gc.freeze``
    moves what exists now out of the collector's sight (it stays alive, as it would anyway) and a larger first
    generation makes collections rarer; cycles the tests create are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


_one_botocore_data_cache()
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
