"""Typed access to incoming events, with :class:`MalformedEventError` naming what is wrong.

The handlers wrap the raw event in powertools' data classes (``EventBridgeEvent``, ``SNSEvent``) and read
fields through these helpers, so a missing or mistyped field fails with the field's path rather than a
``KeyError`` deep inside a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from responder_common.errors import MalformedEventError


def require_mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else :class:`MalformedEventError`."""
    if not isinstance(value, Mapping):
        raise MalformedEventError(f"{where} must be an object, got {type(value).__name__}")
    return value


def require_str(source: Mapping[str, Any], key: str, where: str) -> str:
    """A required non-empty string field ``where.key``."""
    value = source.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value


def optional_str(source: Mapping[str, Any], key: str) -> str:
    """An optional string field; empty when absent or null."""
    value = source.get(key)
    return value if isinstance(value, str) else ""


def parse_timestamp(value: str, where: str) -> datetime:
    """An ISO-8601 timestamp with an offset (``2019-10-02T17:04:40.985+0000``, ``...Z``) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise MalformedEventError(f"{where} is not an ISO-8601 timestamp: {value!r}") from error
    if parsed.tzinfo is None:
        raise MalformedEventError(f"{where} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def eventbridge_event(event: Any, *, source: str, detail_type: str) -> EventBridgeEvent:
    """The event as an ``EventBridgeEvent`` after checking its ``source``, ``detail-type`` and ``detail``."""
    raw = require_mapping(event, "event")
    if raw.get("detail-type") != detail_type:
        raise MalformedEventError(f"event.detail-type must be {detail_type!r}, got {raw.get('detail-type')!r}")
    if raw.get("source") != source:
        raise MalformedEventError(f"event.source must be {source!r}, got {raw.get('source')!r}")
    require_mapping(raw.get("detail"), "event.detail")
    return EventBridgeEvent(dict(raw))
