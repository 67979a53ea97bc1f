"""The responders' retry policy: botocore's standard mode for AWS, a small full-jitter loop for HTTP.

AWS calls: every client a responder creates comes from :func:`client`, configured once with botocore's
``standard`` retry mode (:data:`AWS_MAX_ATTEMPTS` attempts, exponential backoff with jitter, retrying throttling,
5xx, connection errors and timeouts) and short timeouts, so a call never outlives the function's timeout. The
responders never retry AWS calls themselves; what survives botocore's retries fails the invocation, and Lambda
retries the event (twice, then the dead-letter queue).

HTTP calls (the GitHub deploy hook, which botocore does not cover): :func:`call_with_retries` with a
:class:`Backoff`; the caller decides what is transient by raising :class:`Transient` (5xx, 429, a connection
that never carried the request), and everything else propagates at once (4xx are never retried).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import boto3
from botocore.config import Config

T = TypeVar("T")

AWS_MAX_ATTEMPTS = 4  # the first call and three retries
AWS_CONNECT_TIMEOUT_SECONDS = 3
AWS_READ_TIMEOUT_SECONDS = 10


def aws_config() -> Config:
    """The configuration of every AWS client the responders create: botocore's standard retries, short timeouts."""
    return Config(
        # total_max_attempts counts the first call; botocore's max_attempts would count retries only.
        retries={"mode": "standard", "total_max_attempts": AWS_MAX_ATTEMPTS},
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=AWS_READ_TIMEOUT_SECONDS,
    )


def client(service: str) -> Any:
    """A boto3 client for ``service`` with :func:`aws_config` (region and credentials from the environment)."""
    return boto3.client(service, config=aws_config())  # type: ignore[call-overload]


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """At most ``attempts`` calls; before retry ``n`` (0-based) sleep a uniformly random time in
    ``[0, min(max_seconds, base_seconds * 2**n)]`` ("full jitter"), or at least the server's ``Retry-After``.
    A ``Retry-After`` above ``max_retry_after_seconds`` is not waited for: the call gives up and leaves the retry
    to Lambda, which comes back a minute or more later."""

    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 4.0
    max_retry_after_seconds: float = 10.0

    def delay(
        self, retry: int, *, retry_after: float | None = None, rand: Callable[[], float] = random.random
    ) -> float:
        """The sleep before retry ``retry`` (0 for the first retry)."""
        jittered = rand() * min(self.max_seconds, self.base_seconds * 2 ** min(retry, 32))
        return max(jittered, retry_after or 0.0)


class Transient(Exception):  # noqa: N818 (a signal to retry, not an error a caller sees)
    """Raised by a call passed to :func:`call_with_retries` for a failure worth another attempt."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def call_with_retries(
    call: Callable[[], T],
    *,
    backoff: Backoff,
    give_up: Callable[[Transient, int], Exception],
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call()``, retried while it raises :class:`Transient`; other exceptions propagate unchanged.

    Gives up (raising ``give_up(last transient, attempts made)``) after ``backoff.attempts`` calls, when the
    server asks to wait longer than ``backoff.max_retry_after_seconds``, or when the next sleep would not fit in
    ``budget_seconds`` (what is left of the invocation's time).
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Transient as transient:
            if attempt >= backoff.attempts:
                raise give_up(transient, attempt) from None
            if transient.retry_after is not None and transient.retry_after > backoff.max_retry_after_seconds:
                raise give_up(transient, attempt) from None
            delay = backoff.delay(attempt - 1, retry_after=transient.retry_after, rand=rand)
            if budget_seconds is not None and clock() - started + delay >= budget_seconds:
                raise give_up(transient, attempt) from None
            sleep(delay)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
