"""The responders' error hierarchy.

Every error a responder raises on purpose is a :class:`ResponderError`. The handlers log it with context and
re-raise it, so Lambda retries the asynchronous invocation and finally sends the event to the function's
dead-letter queue. Decisions (an alarm that is not in ALARM, a cooldown, an execution already running) are
not errors and never raise.
"""

from __future__ import annotations

from typing import Any


class ResponderError(Exception):
    """Base class of every error a responder raises deliberately."""


class ConfigurationError(ResponderError):
    """An environment variable is missing or invalid (raised at cold start, names the variable)."""


class MalformedEventError(ResponderError):
    """The event is not of the expected shape: bad JSON, a missing field, a wrong detail-type."""


class UpstreamError(ResponderError):
    """An AWS call failed with an error the responder does not handle (the code is kept in ``code``)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class RetryExhaustedError(UpstreamError):
    """A throttled AWS call was still throttled after the bounded number of attempts."""


class DispatchError(ResponderError):
    """The deployment hook refused or could not be reached (the HTTP status is kept in ``status``)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def report_failure(
    logger: Any, metrics: Any, function: str, error: ResponderError, event: Any, event_ids: list[Any]
) -> None:
    """Log a failed invocation with its event and count it (metric ``Failed``).

    The caller re-raises: Lambda retries the asynchronous invocation, then dead-letters the event.
    """
    from aws_lambda_powertools.metrics import MetricUnit

    logger.exception(
        f"{function} failed", extra={"error_type": type(error).__name__, "event_ids": event_ids, "event": event}
    )
    metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
