"""Bounded exponential backoff for throttled AWS calls.

botocore's own retries are switched off on the clients that use this (see :func:`no_retry_config`), so there
is one retry policy, visible in the code and testable with ``botocore.stub.Stubber`` (which bypasses botocore's
retry layer anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError
from responder_common.errors import RetryExhaustedError

T = TypeVar("T")

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """At most ``attempts`` calls, sleeping ``base_seconds * 2**n`` (capped at ``max_seconds``) between them."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 4.0

    def delays(self) -> list[float]:
        """The sleeps between attempts (``attempts - 1`` of them)."""
        return [min(self.max_seconds, self.base_seconds * 2**n) for n in range(self.attempts - 1)]


def no_retry_config() -> Config:
    """A client config without botocore retries (the caller retries explicitly with :func:`call_with_backoff`)."""
    return Config(retries={"total_max_attempts": 1, "mode": "standard"})


def call_with_backoff(
    call: Callable[[], T],
    *,
    operation: str,
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, retried on throttling error codes; other ``ClientError``s propagate unchanged.

    Raises :class:`RetryExhaustedError` (code ``ThrottlingException``) after ``backoff.attempts`` throttled calls.
    """
    delays = backoff.delays()
    for attempt in range(backoff.attempts):
        try:
            return call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in THROTTLING_CODES:
                raise
            if attempt == backoff.attempts - 1:
                raise RetryExhaustedError(
                    f"{operation} still throttled after {backoff.attempts} attempts", code=code
                ) from error
            sleep(delays[attempt])
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
