"""Code shared by the responders: errors, settings parsing, event parsing, notifications, retries and redaction.

It sits at the root of every responder's archive (``import responder_common``) and imports nothing from
``infra/`` or Pulumi.
"""

from responder_common.errors import (
    ConfigurationError,
    DeliveryInProgressError,
    DispatchError,
    InvalidSecretError,
    MalformedEventError,
    RedactedError,
    ResponderError,
    RetryExhaustedError,
    UpstreamError,
)

__all__ = [
    "ConfigurationError",
    "DeliveryInProgressError",
    "DispatchError",
    "InvalidSecretError",
    "MalformedEventError",
    "RedactedError",
    "ResponderError",
    "RetryExhaustedError",
    "UpstreamError",
]
