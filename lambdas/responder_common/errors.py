"""The responders' error hierarchy and the one place a failed invocation is reported.

Every error a responder raises on purpose is a :class:`ResponderError`. The handlers report every failure,
deliberate or not, with :func:`report_failure` (one log record with the event, one ``Failed`` metric) and
re-raise it, so Lambda retries the asynchronous invocation and finally sends the event to the function's
dead-letter queue. Decisions (an alarm that is not in ALARM, a cooldown, an execution already running) are
not errors and never raise.
"""

from __future__ import annotations

import traceback
from typing import Any

from responder_common.redact import contains_secret, redact


class ResponderError(Exception):
    """Base class of every error a responder raises deliberately."""


class ConfigurationError(ResponderError):
    """An environment variable (or the Lambda context) is missing or invalid; the message names it."""


class MalformedEventError(ResponderError):
    """The event is not of the expected shape: bad JSON, a missing field, a wrong detail-type."""


class UpstreamError(ResponderError):
    """An AWS call failed after botocore's retries (the error code or exception name is kept in ``code``)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class InvalidSecretError(ResponderError):
    """A secret holds no usable value (empty, or characters an HTTP header cannot carry); never shows the value."""


class DeliveryInProgressError(ResponderError):
    """Another invocation holds this event's idempotency record: this delivery is retried later by Lambda.

    Reporting success instead would be wrong when the record is this invocation's own write whose response was
    lost (botocore retried it and found it "taken"): nobody would ever finish the work.
    """


class DispatchError(ResponderError):
    """The deployment hook refused or could not be reached (the HTTP status is kept in ``status``)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryExhaustedError(DispatchError):
    """The deployment hook still answered 429/5xx, or refused connections, after the bounded retries."""


class RedactedError(ResponderError):
    """Stands in for an error whose text held a secret: the same type name and message, the secret masked."""


def report_failure(
    logger: Any, metrics: Any, function: str, error: BaseException, event: Any, event_ids: list[Any]
) -> BaseException:
    """Log a failed invocation with its event and count it (metric ``Failed``); return the error to re-raise.

    Call it from the handler's ``except`` block (the record carries the traceback). The returned error is
    ``error`` itself, or a :class:`RedactedError` when the error's text (its chain included) holds a secret,
    which the caller raises ``from None`` so Lambda's own error report cannot show the secret either.
    """
    from aws_lambda_powertools.metrics import MetricUnit

    logger.exception(
        f"{function} failed", extra={"error_type": type(error).__name__, "event_ids": event_ids, "event": event}
    )
    metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
    if contains_secret("".join(traceback.format_exception(error)) + repr(getattr(error, "args", ()))):
        return RedactedError(f"{type(error).__name__}: {redact(str(error))}")
    return error
