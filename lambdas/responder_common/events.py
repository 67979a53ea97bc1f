"""Typed access to incoming events, with :class:`MalformedEventError` naming what is wrong.

The handlers wrap the raw event in powertools' data classes (``EventBridgeEvent``, ``SNSEvent``) and read
fields through these helpers, so a missing or mistyped field fails with the field's path rather than a
``KeyError`` deep inside a decision. :class:`Origin` is the function's own account and region: events that
claim another are ignored (and counted), whichever way they arrived.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from responder_common.errors import ConfigurationError, MalformedEventError

ACCOUNT_ID = re.compile(r"^\d{12}$")


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
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:  # year 1 with a positive offset, year 9999 with a negative one
        raise MalformedEventError(f"{where} is out of range: {value!r}") from error


def eventbridge_event(event: Any, *, source: str, detail_type: str) -> EventBridgeEvent:
    """The event as an ``EventBridgeEvent`` after checking its ``source``, ``detail-type`` and ``detail``."""
    raw = require_mapping(event, "event")
    if raw.get("detail-type") != detail_type:
        raise MalformedEventError(f"event.detail-type must be {detail_type!r}, got {raw.get('detail-type')!r}")
    if raw.get("source") != source:
        raise MalformedEventError(f"event.source must be {source!r}, got {raw.get('source')!r}")
    require_mapping(raw.get("detail"), "event.detail")
    return EventBridgeEvent(dict(raw))


def event_ids(event: Any) -> list[str]:
    """The ids of an event, for log context: the EventBridge event id, or the SNS records' message ids."""
    ids: list[str] = []
    if isinstance(event, Mapping):
        if isinstance(event.get("id"), str):
            ids.append(event["id"])
        records = event.get("Records")
        for record in records if isinstance(records, list) else []:
            if isinstance(record, Mapping) and isinstance(record.get("Sns"), Mapping):
                ids.append(str(record["Sns"].get("MessageId", "")))
    return ids


def eventbridge_origin(event: Mapping[str, Any]) -> tuple[str, str]:
    """(account, region) an EventBridge event claims to come from (empty strings when absent)."""
    return optional_str(event, "account"), optional_str(event, "region")


def arn_origin(arn: str) -> tuple[str, str]:
    """(account, region) of an ARN (``arn:<partition>:<service>:<region>:<account>:...``); empty when not an ARN."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return "", ""
    return parts[4], parts[3]


@dataclass(frozen=True)
class Origin:
    """The function's own account and region, read from the invoked function's ARN in the Lambda context."""

    account: str
    region: str

    @classmethod
    def of_context(cls, context: Any) -> Origin | None:
        """The origin of the function ``context`` belongs to; None without a context (direct calls in tests).

        Raises :class:`ConfigurationError` when the context's ``invoked_function_arn`` is not a function ARN.
        """
        if context is None:
            return None
        arn = getattr(context, "invoked_function_arn", None)
        account, region = arn_origin(arn) if isinstance(arn, str) else ("", "")
        if not ACCOUNT_ID.match(account) or not region or ":function:" not in str(arn):
            raise ConfigurationError(f"the Lambda context's invoked_function_arn is not a function ARN: {arn!r}")
        return cls(account, region)

    def admits(self, account: str, region: str) -> bool:
        """Whether (``account``, ``region``) is this function's own."""
        return account == self.account and region == self.region
