"""Reading the responders' environment variables once, at cold start, with errors that name the variable."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from responder_common.errors import ConfigurationError


def required(env: Mapping[str, str], name: str) -> str:
    """The non-empty value of ``name``; :class:`ConfigurationError` when it is missing or empty."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required and is missing or empty")
    return value


def json_object(env: Mapping[str, str], name: str) -> dict[str, Any]:
    """``name`` parsed as a JSON object; :class:`ConfigurationError` when it is missing, invalid or not an object."""
    raw = required(env, name)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"environment variable {name} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise ConfigurationError(f"environment variable {name} must be a JSON object, got {type(value).__name__}")
    return value


def string_field(source: Mapping[str, Any], key: str, where: str) -> str:
    """A required non-empty string field of a configuration object."""
    value = source.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value


def int_field(source: Mapping[str, Any], key: str, where: str, *, minimum: int) -> int:
    """A required integer field (booleans refused) of a configuration object, at least ``minimum``."""
    value = source.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def string_map(env: Mapping[str, str], name: str) -> dict[str, str]:
    """``name`` as a JSON object of string to non-empty string (e.g. ``PIPELINES``, ``MODEL_PACKAGE_GROUPS``)."""
    raw = json_object(env, name)
    for key, value in raw.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{name}[{key!r}] must be a non-empty string, got {value!r}")
    return dict(raw)
