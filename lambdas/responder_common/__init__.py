"""Code shared by the responders: errors, settings parsing, event parsing, notifications and retries.

It sits at the root of every responder's archive (``import responder_common``) and imports nothing from
``infra/`` or Pulumi.
"""

from responder_common.errors import (
    ConfigurationError,
    DispatchError,
    MalformedEventError,
    ResponderError,
    RetryExhaustedError,
    UpstreamError,
)

__all__ = [
    "ConfigurationError",
    "DispatchError",
    "MalformedEventError",
    "ResponderError",
    "RetryExhaustedError",
    "UpstreamError",
]
