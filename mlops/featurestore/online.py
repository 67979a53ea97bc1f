"""Online lookup for inference: the feature vector the model was trained on, from the online store.

This module imports botocore only (no boto3, numpy or pandas), and from this package only
:mod:`mlops.featurestore.errors`: the inference image copies these two files and nothing else of the package
(see ``containers/inference/Dockerfile``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote, quote_plus

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError  # refused, reset, DNS

from mlops.features.spec import FeatureSpec, FeatureSpecError, Value, record_to_vector
from mlops.featurestore.errors import FeatureStoreError, RecordNotFoundError

SERVICE = "sagemaker-featurestore-runtime"
RETRY_MODE = "standard"  # botocore's standard mode: throttling, 5xx and connection errors, with a retry quota
MAX_ATTEMPTS_LIMIT = 5

StoreFailure = Literal["timeout", "throttled", "unavailable", "denied", "misconfigured", "bad_record"]
"""Why a lookup failed although the record may exist (a missing record is :class:`RecordNotFoundError`)."""

# Error codes of GetRecord (botocore's service model: ValidationError, ResourceNotFound, InternalFailure,
# ServiceUnavailable, AccessForbidden) plus the codes every AWS JSON/REST service may answer with.
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
_UNAVAILABLE = frozenset({"ServiceUnavailable", "InternalFailure", "InternalServerError", "RequestTimeout"})
_DENIED = frozenset(
    {
        "AccessForbidden",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
    }
)
_MISCONFIGURED = frozenset({"ResourceNotFound", "ResourceNotFoundException", "ValidationError", "ValidationException"})


class OnlineStoreError(FeatureStoreError):
    """``GetRecord`` failed for a reason other than a missing record.

    ``failure`` classifies it (what a caller answers: a timeout, throttling or an unavailable service are
    transient; denied, misconfigured and a record that does not match the spec are not), ``code`` is AWS's
    error code (``Timeout`` or ``ConnectionError`` when no answer came). ``detail`` is the reason without the
    record identifier (safe to log); the message names the record too. Neither holds a feature value.
    """

    def __init__(self, failure: StoreFailure, code: str, feature_group: str, record_id: str, detail: str) -> None:
        self.failure = failure
        self.code = code
        self.feature_group = feature_group
        self.detail = detail
        super().__init__(f"get_record {feature_group}/{record_id} failed: {code}: {detail}")


class GetRecordClient(Protocol):
    """What the lookup needs of a ``sagemaker-featurestore-runtime`` client."""

    def get_record(self, **kwargs: Any) -> Any: ...


def online_client(
    *,
    region_name: str,
    timeout_seconds: float,
    max_attempts: int = 2,
    max_pool_connections: int = 16,
    endpoint_url: str | None = None,
) -> Any:
    """A ``sagemaker-featurestore-runtime`` client for lookups on the request path, made once per process.

    Each HTTP attempt may take ``timeout_seconds`` to connect and ``timeout_seconds`` to read; botocore's
    standard retry mode makes at most ``max_attempts`` attempts in all (the first included), with its
    jittered backoff and client-side retry quota. The caller bounds the whole lookup with its own deadline
    (the backoff before a retry can exceed a tight budget). ``endpoint_url``, or the environment variable
    ``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME`` (botocore reads it), points it elsewhere (tests,
    a VPC endpoint's DNS name). Credentials come from botocore's default chain (the endpoint's execution role).
    """
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise ValueError(f"max_attempts must be 1..{MAX_ATTEMPTS_LIMIT}, got {max_attempts}")
    if not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
    import botocore.session
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": RETRY_MODE, "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
    )
    return botocore.session.get_session().create_client(
        SERVICE, region_name=region_name, endpoint_url=endpoint_url, config=config
    )


def _failure_of(code: str) -> StoreFailure:
    if code in _THROTTLED:
        return "throttled"
    if code in _UNAVAILABLE:
        return "unavailable"
    if code in _DENIED:
        return "denied"
    if code in _MISCONFIGURED:
        return "misconfigured"
    return "unavailable"  # an unknown code: treated as the service's problem, not the caller's


def _expired(expires_at: Any, now: float) -> bool:
    """Whether a record's ``ExpiresAt`` (ISO-8601, or Unix seconds) has passed; an unreadable one has not."""
    if expires_at is None or expires_at == "":
        return False
    try:
        moment = float(expires_at)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(str(expires_at).replace("Z", "+00:00"))
        except ValueError:
            return False
        moment = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return moment <= now


def get_online_vector(
    client: GetRecordClient,
    feature_group_name: str,
    spec: FeatureSpec,
    record_id: str,
    *,
    now: Callable[[], float] = time.time,
) -> list[Value]:
    """The model input vector of ``record_id``: values in ``spec.feature_names`` order, typed per spec.

    It goes through :func:`mlops.features.spec.record_to_vector`, the function the training set's
    vectors go through, so a record gives the same vector at training and at serving time.
    Raises :class:`RecordNotFoundError` when the online store has no such record (never written,
    deleted or expired: ``get_record`` then answers without a ``Record``) or the record's TTL has passed: Feature
    Store hard-deletes expired records in the background, "typically within a few days" (AWS's "Time to live (TTL)
    duration for records"), so the lookup asks for ``ExpiresAt`` and treats a past one as absent; and
    :class:`OnlineStoreError` (a :class:`FeatureStoreError`) when the call fails (the AWS error code is
    in ``code`` and the message: ``ResourceNotFound`` for an unknown feature group, ``AccessForbidden``,
    throttling, a timeout) or the record lacks a feature or holds a value of the wrong type
    (``failure == "bad_record"``).
    """
    try:
        response = client.get_record(
            FeatureGroupName=feature_group_name,
            RecordIdentifierValueAsString=record_id,
            FeatureNames=list(spec.feature_names),
            ExpirationTimeResponse="Enabled",
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        detail = str(error.get("Message", "")) or str(exc)
        raise OnlineStoreError(_failure_of(code), code, feature_group_name, record_id, detail) from exc
    except (ConnectTimeoutError, ReadTimeoutError) as exc:
        raise OnlineStoreError(
            "timeout", "Timeout", feature_group_name, record_id, _without(str(exc), record_id)
        ) from exc
    except BotocoreConnectionError as exc:  # after botocore's retries
        detail = _without(str(exc), record_id)
        raise OnlineStoreError("unavailable", "ConnectionError", feature_group_name, record_id, detail) from exc
    except BotoCoreError as exc:  # no credentials, bad region, ...: nothing a retry or the caller can fix
        detail = _without(str(exc), record_id)
        raise OnlineStoreError("misconfigured", type(exc).__name__, feature_group_name, record_id, detail) from exc
    values = {item["FeatureName"]: item["ValueAsString"] for item in response.get("Record") or []}
    if not values or _expired(response.get("ExpiresAt"), now()):
        raise RecordNotFoundError(feature_group_name, record_id)
    try:
        return record_to_vector(spec, values)
    except FeatureSpecError as exc:
        # The spec's message names the feature and may quote the stored value (the store's data, not a request).
        raise OnlineStoreError("bad_record", "BadRecord", feature_group_name, record_id, str(exc)) from None


def _without(text: str, record_id: str) -> str:
    """``text`` with the record identifier blanked (botocore's messages quote the URL, which holds it encoded)."""
    if not record_id:
        return text
    for form in {record_id, quote(record_id, safe=""), quote_plus(record_id, safe="")}:
        text = text.replace(form, "<id>")
    return text
