"""One moto mock for a whole test module, with its backends emptied before every test.

Entering ``mock_aws()`` costs about 9 ms: it registers some 1,300 ``responses`` callbacks (for the ``requests``
library, which botocore never uses) and drops boto3's default session, so the next client builds a new session
(about 12 ms more). A new boto3 client costs about 10 ms before its first call returns (its endpoint rules and
operation models are resolved on first use). A per-test fixture entering the mock and making five clients paid
~65 ms before the test's own first line; the tests themselves take 20-100 ms.

What a test observes stays the same: :func:`empty_backends` throws away every moto backend, which is what
entering (and leaving) ``mock_aws()`` does, so each test starts from nothing and builds its own resources. Only
the mock's patching, boto3's default session and the test side's clients outlive a test: none of them holds AWS
state (moto keeps all of it in the backends).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws
from moto.core.base_backend import BackendDict
from moto.core.model_instances import reset_model_data


@dataclass(frozen=True)
class Clients:
    """The test side's clients (the code under test makes its own, or is handed these)."""

    dynamodb: Any
    sns: Any
    sqs: Any
    sagemaker: Any
    secretsmanager: Any


@contextmanager
def module_mock(region: str) -> Iterator[Clients]:
    """``mock_aws()`` for as long as the ``with`` block, and one client per service the responders' tests use."""
    with mock_aws():
        yield Clients(
            dynamodb=boto3.client("dynamodb", region_name=region),
            sns=boto3.client("sns", region_name=region),
            sqs=boto3.client("sqs", region_name=region),
            sagemaker=boto3.client("sagemaker", region_name=region),
            secretsmanager=boto3.client("secretsmanager", region_name=region),
        )


def empty_backends() -> None:
    """Forget every table, topic, queue, pipeline, secret... moto holds: the reset ``mock_aws()`` does on entry."""
    BackendDict.reset()
    reset_model_data()
