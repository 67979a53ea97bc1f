"""Dispatch deployment: an approved model version starts the deployment (which ends in ``pulumi up``), once.

Trigger: EventBridge "SageMaker Model Package State Change". Only ``ModelApprovalStatus = Approved`` of a group
listed in ``MODEL_PACKAGE_GROUPS``, from the function's own account and region, acts; other statuses, groups and
origins are decisions (logged, counted).

Hook (``DEPLOY_HOOK``): ``kind: none`` publishes a notification only; ``kind: github-workflow`` reads a GitHub
token from Secrets Manager (cached for at most 15 minutes, validated, never logged), POSTs a
``workflow_dispatch`` to ``{GITHUB_API_URL}/repos/{repository}/actions/workflows/{workflow}/dispatches`` with the
inputs ``model``, ``model_package_arn`` and ``stack`` (the Pulumi stack the function belongs to, so the workflow
updates that stack only) and then notifies. The responder never touches the endpoint itself: Pulumi is the only
writer of what Pulumi created.

At most one deployment per approval (the event's id and model package), however often the event is delivered or
retried: an :class:`ApprovalLedger` item in the state table is claimed with a conditional write before the POST
and records its outcome after it, and the notification is a separate step that a retry repeats without
dispatching again. GitHub's 429 and 5xx, and connections that never carried the request, are retried with
backoff; a redirect is refused (the token never follows one); a request GitHub received but did not answer in
time is not repeated (GitHub has no idempotency key: a second POST is a second ``pulumi up``) but recorded as
``DispatchUnconfirmed`` and humans are told to check the workflow's runs.

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``STATE_TABLE``, ``DEPLOY_HOOK``,
``MODEL_PACKAGE_GROUPS``, ``GITHUB_API_URL`` (default ``https://api.github.com``; http only for a loopback host).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import http.client
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from responder_common.errors import (
    ConfigurationError,
    DeliveryInProgressError,
    DispatchError,
    InvalidSecretError,
    RetryExhaustedError,
    UpstreamError,
    report_failure,
)
from responder_common.events import (
    Origin,
    event_ids,
    eventbridge_event,
    eventbridge_origin,
    optional_str,
    require_str,
)
from responder_common.notify import Notification, Notifier, aws_error_code
from responder_common.redact import install as install_redaction
from responder_common.redact import redact, register_secret
from responder_common.retry import Backoff, Transient, call_with_retries, client, retry_after_seconds
from responder_common.settings import json_object, required, string_map

SERVICE = "dispatch_deployment"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MLOps/Responders")

DETAIL_TYPE = "SageMaker Model Package State Change"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HTTP_TIMEOUT_SECONDS = 8.0
TOKEN_MAX_AGE_SECONDS = 15 * 60  # a rotated token is picked up within 15 minutes (at once after a 401)
LEDGER_PREFIX = "approval#"
LEDGER_TTL_SECONDS = 2 * 24 * 3600  # EventBridge redelivers for up to 24 h, Lambda retries for up to 6 h
SAFETY_MARGIN_SECONDS = 10.0  # time kept back from the invocation's deadline for the ledger write and notification
# What an HTTP header value may carry: printable ASCII without spaces (GitHub tokens are [A-Za-z0-9_]).
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True, kw_only=True)
class DeployHook:
    """Where an approval is dispatched (mirrors the stack's ``deployment`` settings) and for which stack.

    ``stack`` is the Pulumi stack of the function (the program sets it); left empty, the workflow's own
    default applies, which for ``deploy.yml`` is every stack in turn.
    """

    kind: Literal["none", "github-workflow"]
    repository: str = ""
    workflow: str = ""
    ref: str = "main"
    token_secret_name: str = ""
    stack: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> DeployHook:
        """Validate ``DEPLOY_HOOK``; :class:`ConfigurationError` names the missing or bad key."""
        kind = raw.get("kind", "none")
        if kind == "none":
            return cls(kind="none")
        if kind != "github-workflow":
            raise ConfigurationError(f"DEPLOY_HOOK.kind must be 'none' or 'github-workflow', got {kind!r}")
        values: dict[str, str] = {}
        for key in ("repository", "workflow", "ref", "tokenSecretName", "stack"):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"DEPLOY_HOOK.{key} must be a non-empty string, got {value!r}")
            values[key] = value
        missing = [k for k in ("repository", "workflow", "tokenSecretName") if k not in values]
        if missing:
            raise ConfigurationError(f"DEPLOY_HOOK with kind github-workflow needs {', '.join(missing)}")
        if values["repository"].count("/") != 1:
            raise ConfigurationError(f"DEPLOY_HOOK.repository must be 'owner/name', got {values['repository']!r}")
        return cls(
            kind="github-workflow",
            repository=values["repository"],
            workflow=values["workflow"],
            ref=values.get("ref", "main"),
            token_secret_name=values["tokenSecretName"],
            stack=values.get("stack", ""),
        )


def _api_url(raw: str) -> str:
    """``GITHUB_API_URL`` without a trailing slash; https, or http to a loopback host (the local drill)."""
    parsed = urllib.parse.urlsplit(raw)
    local_http = parsed.scheme == "http" and parsed.hostname in LOOPBACK_HOSTS
    if not (parsed.scheme == "https" or local_http) or not parsed.netloc:
        raise ConfigurationError(f"GITHUB_API_URL must be an https URL (http only for loopback), got {raw!r}")
    return raw.rstrip("/")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The function's environment, read once at cold start."""

    alerts_topic_arn: str
    state_table: str
    hook: DeployHook
    groups: Mapping[str, str]
    github_api_url: str = DEFAULT_GITHUB_API_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the environment; :class:`ConfigurationError` names the bad variable."""
        return cls(
            alerts_topic_arn=required(env, "ALERTS_TOPIC_ARN"),
            state_table=required(env, "STATE_TABLE"),
            hook=DeployHook.parse(json_object(env, "DEPLOY_HOOK")),
            groups=string_map(env, "MODEL_PACKAGE_GROUPS"),
            github_api_url=_api_url(env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL),
        )


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True, kw_only=True)
class PackageStateChange:
    """One model package state change, as EventBridge delivers it (``event_id`` is the same on redelivery)."""

    group: str
    package_arn: str
    approval_status: str
    version: str
    event_id: str = ""
    origin: tuple[str, str] = ("", "")


def parse_event(event: Any) -> PackageStateChange:
    """The state change in the event; :class:`MalformedEventError` when the event is not one."""
    detail = eventbridge_event(event, source="aws.sagemaker", detail_type=DETAIL_TYPE).detail
    version = detail.get("ModelPackageVersion")
    return PackageStateChange(
        group=require_str(detail, "ModelPackageGroupName", "detail"),
        package_arn=require_str(detail, "ModelPackageArn", "detail"),
        approval_status=optional_str(detail, "ModelApprovalStatus"),
        version=str(version) if isinstance(version, int | str) and not isinstance(version, bool) else "",
        event_id=require_str(event, "id", "event"),
        origin=eventbridge_origin(event),
    )


# ---------------------------------------------------------------------------------------------- decisions
class Outcome(enum.StrEnum):
    """What the responder decided; each has a metric of the same name."""

    DISPATCHED = "DeploymentDispatched"
    UNCONFIRMED = "DispatchUnconfirmed"
    NOTIFIED_ONLY = "ApprovalNotified"
    DUPLICATE = "DuplicateDelivery"
    FOREIGN = "IgnoredForeignOrigin"
    NOT_APPROVED = "IgnoredNotApproved"
    UNKNOWN_GROUP = "IgnoredUnknownGroup"


@dataclass(frozen=True)
class Ignore:
    """The change does not start a deployment."""

    outcome: Outcome
    why: str


@dataclass(frozen=True)
class Deploy:
    """Deploy ``change`` (an approved version of ``model``)."""

    model: str
    change: PackageStateChange


def decide(change: PackageStateChange, groups: Mapping[str, str], origin: Origin | None = None) -> Ignore | Deploy:
    """Pure: only an Approved version of a platform model package group of the function's own account and
    region (when ``origin`` is known) is deployed."""
    if origin is not None and not origin.admits(*change.origin):
        account, region = change.origin
        return Ignore(
            Outcome.FOREIGN,
            f"event comes from {account or '?'}/{region or '?'}, not this function's {origin.account}/{origin.region}",
        )
    model = groups.get(change.group)
    if model is None:
        return Ignore(Outcome.UNKNOWN_GROUP, f"model package group {change.group} is not one of the platform's")
    if change.approval_status != "Approved":
        return Ignore(Outcome.NOT_APPROVED, f"model package is {change.approval_status or 'without status'}")
    return Deploy(model=model, change=change)


def approval_key(change: PackageStateChange) -> str:
    """Pure: the ledger key of one approval: its model package and the event's id (kept on redelivery)."""
    digest = hashlib.sha256(f"{change.package_arn}|{change.event_id}".encode()).hexdigest()
    return f"{LEDGER_PREFIX}{digest[:40]}"


def dispatch_request(hook: DeployHook, api_url: str, deploy: Deploy) -> tuple[str, dict[str, Any]]:
    """Pure: the workflow_dispatch URL and JSON body (inputs: model, model_package_arn, and stack if set)."""
    owner_repo = "/".join(urllib.parse.quote(part, safe="") for part in hook.repository.split("/"))
    url = f"{api_url}/repos/{owner_repo}/actions/workflows/{urllib.parse.quote(hook.workflow, safe='')}/dispatches"
    inputs = {"model": deploy.model, "model_package_arn": deploy.change.package_arn}
    if hook.stack:
        inputs["stack"] = hook.stack
    return url, {"ref": hook.ref, "inputs": inputs}


def describe_approval(deploy: Deploy, hook: DeployHook, done: Mapping[str, Any] | None = None) -> Notification:
    """Pure: the notification for an approved version and what was done with it (``done``: the dispatch's
    recorded outcome; a dispatch when absent)."""
    change = deploy.change
    version = f" version {change.version}" if change.version else ""
    outcome = (done or {}).get("outcome", Outcome.DISPATCHED.value if hook.kind == "github-workflow" else "")
    target = f" for stack {hook.stack}" if hook.stack else ""
    subject = f"[mlops] model approved: {deploy.model}{version}"
    if hook.kind != "github-workflow":
        action = "No deployment hook is configured: deploy with `pulumi up` for the stack."
    elif outcome == Outcome.UNCONFIRMED.value:
        subject = f"[mlops] deployment dispatch unconfirmed: {deploy.model}{version}"
        action = (
            f"Deployment dispatch UNCONFIRMED: GitHub received the request for workflow {hook.workflow} of "
            f"{hook.repository} on {hook.ref}{target} but did not answer ({(done or {}).get('detail', '')}). "
            f"It is not repeated automatically (that could run `pulumi up` twice): check the runs of workflow "
            f"{hook.workflow} and, if none started, run it by hand with these inputs."
        )
    else:
        action = f"Deployment dispatched: workflow {hook.workflow} of {hook.repository} on {hook.ref}{target}."
    body = "\n".join(
        [
            f"Model {deploy.model}{version} was approved in {change.group}.",
            f"Model package: {change.package_arn}",
            action,
        ]
    )
    return Notification(subject=subject, body=body)


# ---------------------------------------------------------------------------------------------- adapters
def token_from_secret(stored: str, secret_name: str) -> str:
    """Pure: the token in a stored secret (plain, or JSON with a ``token`` key), without surrounding whitespace.

    Raises :class:`InvalidSecretError` when there is none, or when it holds whitespace or control characters
    inside (a second line, a comment): such a value cannot go in an HTTP header, and the error never shows it.
    """
    register_secret(stored)  # from here on, the value is masked in every log record
    value = stored.strip()
    if value.startswith("{"):
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            parsed = None
        value = parsed.get("token") if isinstance(parsed, dict) else None
        value = value.strip() if isinstance(value, str) else ""
        register_secret(value)
    if not value:
        raise InvalidSecretError(f"secret {secret_name} holds no token")
    if not TOKEN_PATTERN.fullmatch(value):
        raise InvalidSecretError(
            f"secret {secret_name} holds a token with whitespace or control characters inside it (a second line "
            "or a comment?): store the token alone; the value is not shown"
        )
    return value


@dataclass
class TokenSource:
    """The GitHub token from Secrets Manager, cached for at most ``max_age_seconds`` (never logged)."""

    secrets: Any
    secret_name: str
    max_age_seconds: float = TOKEN_MAX_AGE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _token: str | None = field(default=None, repr=False)
    _read_at: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def token(self) -> str:
        """The token. :class:`UpstreamError` when unreadable, :class:`InvalidSecretError` when unusable."""
        with self._lock:
            if self._token is None or self.clock() - self._read_at >= self.max_age_seconds:
                self._token = None
                self._token = token_from_secret(self._read(), self.secret_name)
                self._read_at = self.clock()
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (GitHub refused it: it may have been rotated)."""
        with self._lock:
            self._token = None

    def _read(self) -> str:
        try:
            value = self.secrets.get_secret_value(SecretId=self.secret_name).get("SecretString")
        except (ClientError, BotoCoreError) as error:
            code = aws_error_code(error)
            raise UpstreamError(f"GetSecretValue of {self.secret_name} failed: {code}", code=code) from None
        return value if isinstance(value, str) else ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuses every redirect: urllib would re-send the request, Authorization header included, wherever the
    ``Location`` points (a POST as a GET); the 3xx then surfaces as an ``HTTPError``."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


def default_opener() -> Callable[..., Any]:
    """``urlopen`` without redirects (and with the default handlers otherwise)."""
    return urllib.request.build_opener(_NoRedirects()).open


Opener = Callable[..., Any]


class _Unconfirmed(Exception):  # noqa: N818 (an outcome, not an error a caller sees)
    """GitHub received the request but its answer never arrived."""


@dataclass
class GitHubDispatcher:
    """POSTs a workflow_dispatch with urllib (stdlib). Retries 429/5xx and connections that never carried the
    request; refuses redirects; raises :class:`DispatchError` for other answers (the token is never in it)."""

    tokens: TokenSource
    opener: Opener = field(default_factory=default_opener)
    timeout: float = HTTP_TIMEOUT_SECONDS
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random

    def dispatch(self, url: str, body: Mapping[str, Any], *, budget_seconds: float | None = None) -> dict[str, Any]:
        """Send the request; the outcome: ``DeploymentDispatched`` with the 2xx status (204 from GitHub), or
        ``DispatchUnconfirmed`` when GitHub took the request and did not answer in time."""

        def give_up(transient: Transient, attempts: int) -> Exception:
            return RetryExhaustedError(
                f"workflow dispatch to {url} {transient.reason}; gave up after {attempts} attempt(s)",
                status=transient.status,
            )

        try:
            status = call_with_retries(
                lambda: self._send(url, body),
                backoff=self.backoff,
                give_up=give_up,
                sleep=self.sleep,
                rand=self.rand,
                # a retry must leave time for its own attempt
                budget_seconds=None if budget_seconds is None else budget_seconds - self.timeout,
            )
        except _Unconfirmed as unconfirmed:
            return {"outcome": Outcome.UNCONFIRMED.value, "detail": str(unconfirmed)}
        return {"outcome": Outcome.DISPATCHED.value, "httpStatus": status}

    def _send(self, url: str, body: Mapping[str, Any]) -> int:
        # S310: the URL's scheme is checked at cold start (_api_url: https, or http to a loopback host only).
        request = urllib.request.Request(  # noqa: S310
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.tokens.token()}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "mlops-dispatch-deployment",
            },
        )
        try:
            with self.opener(request, timeout=self.timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as error:
            raise self._refused(url, error) from None
        except urllib.error.URLError as error:
            # urllib wraps what fails while connecting and sending: GitHub never got a whole request.
            raise Transient(f"could not be sent ({type(error.reason).__name__})") from None
        except (OSError, http.client.HTTPException) as error:
            # The request went out (urllib wraps what fails before as URLError); the answer did not come back
            # (a timeout, a reset, a broken TLS session). Sending it again could start a second run.
            raise _Unconfirmed(f"{type(error).__name__} after the request was sent") from None
        except Exception as error:  # anything else: named, never quoted (its text may hold the request)
            raise DispatchError(f"workflow dispatch to {url} failed: {type(error).__name__}") from None
        if not 200 <= status < 300:
            raise DispatchError(f"workflow dispatch to {url} answered {status}", status=status)
        return status

    def _refused(self, url: str, error: urllib.error.HTTPError) -> Exception:
        status = error.code
        if 300 <= status < 400:
            return DispatchError(
                f"workflow dispatch to {url} answered {status} (redirect refused: the token never follows one)",
                status=status,
            )
        if status == 429 or status >= 500:
            wait = retry_after_seconds(error.headers.get("Retry-After") if error.headers else None)
            reason = f"answered {status}" + (f" with a Retry-After of {wait:.0f} s" if wait is not None else "")
            return Transient(reason, status=status, retry_after=wait)
        if status == 401:
            self.tokens.invalidate()  # a rotated token is read again by the retry
        detail = redact(error.read(300).decode("utf-8", "replace")) if error.fp else ""
        return DispatchError(f"workflow dispatch to {url} answered {status}: {detail}", status=status)


def _item_value(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name, {})
    return str(value.get("S", "")) if isinstance(value, Mapping) else ""


@dataclass(frozen=True)
class ApprovalLedger:
    """One item per approval (``pk = approval#<hash of package ARN and event id>``) in the state table.

    ``status`` is ``dispatching`` from the claim until the outcome is recorded (``done``, with ``result``);
    ``owner`` names the invocation holding the claim, so a claim whose write landed but whose answer was lost
    (botocore re-sends it and finds it taken) is still recognised as this invocation's own.
    """

    dynamodb: Any
    table: str
    clock: Callable[[], float] = time.time

    def claim(self, key: str, owner: str, deploy: Deploy) -> dict[str, Any] | None:
        """Claim the approval: None when this invocation now holds it, else the item that was there
        (``status`` ``dispatching``: another invocation holds it; ``done``: it was handled)."""
        item = {
            "pk": {"S": key},
            "status": {"S": "dispatching"},
            "owner": {"S": owner},
            "model_package_arn": {"S": deploy.change.package_arn},
            "event_id": {"S": deploy.change.event_id},
            "expires_at": {"N": str(int(self.clock()) + LEDGER_TTL_SECONDS)},
        }
        for _ in range(3):
            try:
                self.dynamodb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
                return None
            except (ClientError, BotoCoreError) as error:
                if aws_error_code(error) != "ConditionalCheckFailedException":
                    raise self._failed("claim", key, error) from error
            current = self._read(key)
            if current is None:
                continue  # released between the two calls: claim again
            if _item_value(current, "owner") == owner:
                return None
            return current
        raise UpstreamError(f"approval ledger item {key} kept changing; claim not settled", code="Contention")

    def complete(self, key: str, owner: str, result: Mapping[str, Any]) -> None:
        """Record the dispatch's outcome (once dispatched, a retry only notifies)."""
        self._update(
            key,
            "SET #status = :done, #result = :result",
            "#owner = :owner",
            {":done": {"S": "done"}, ":result": {"S": json.dumps(dict(result))}, ":owner": {"S": owner}},
        )

    def mark_notified(self, key: str) -> None:
        """Record that humans were told (a redelivery then neither dispatches nor notifies)."""
        self._update(key, "SET notified = :yes", "attribute_exists(pk)", {":yes": {"BOOL": True}})

    def release(self, key: str, owner: str) -> None:
        """Delete this invocation's claim after a dispatch that certainly did not happen."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key={"pk": {"S": key}},
                ConditionExpression="#owner = :owner AND #status = :dispatching",
                ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":dispatching": {"S": "dispatching"}},
            )
        except (ClientError, BotoCoreError) as error:
            if aws_error_code(error) != "ConditionalCheckFailedException":
                raise self._failed("release", key, error) from error

    def _update(self, key: str, update: str, condition: str, values: dict[str, Any]) -> None:
        names = {n: n[1:] for n in ("#status", "#result", "#owner") if n in f"{update} {condition}"}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except (ClientError, BotoCoreError) as error:
            raise self._failed("update", key, error) from error

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            response = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise self._failed("read", key, error) from error
        return response.get("Item")

    @staticmethod
    def _failed(action: str, key: str, error: ClientError | BotoCoreError) -> UpstreamError:
        code = aws_error_code(error)
        return UpstreamError(f"approval ledger {action} of {key} failed: {code}", code=code)


@dataclass
class Approvals:
    """Handles one approval: claim it, dispatch (if a hook is configured), record the outcome, notify.

    It counts what it does when it does it (``DeploymentDispatched`` as soon as GitHub accepted, even if the
    notification then fails; ``DuplicateDelivery`` for a delivery that finds the approval handled).
    """

    settings: Settings
    ledger: ApprovalLedger
    notifier: Notifier
    dispatcher: GitHubDispatcher | None
    owner: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)

    def handle(self, deploy: Deploy, *, budget_seconds: float | None = None) -> dict[str, Any]:
        """The outcome of this delivery of the approval.

        Raises :class:`DeliveryInProgressError` when another invocation holds the approval (Lambda retries this
        delivery), :class:`DispatchError` when the hook refused (the claim is released: a retry dispatches),
        :class:`UpstreamError` when AWS failed.
        """
        key = approval_key(deploy.change)
        owner = self.owner()
        try:
            existing = self.ledger.claim(key, owner, deploy)
        except UpstreamError:
            self._release(key, owner)  # the claim may have landed with its answer lost: nothing was dispatched
            raise
        if existing is None:
            done = self._dispatch(deploy, key, owner, budget_seconds)
            metrics.add_metric(name=done["outcome"], unit=MetricUnit.Count, value=1)  # counted when it happens
            replayed = False
        elif _item_value(existing, "status") != "done":
            raise DeliveryInProgressError(
                f"approval {deploy.change.package_arn} (event {deploy.change.event_id}) is being dispatched by "
                "another invocation, or one that stopped before recording the outcome: this delivery is retried "
                "later; if it keeps failing, check the deploy workflow's runs"
            )
        else:
            done = json.loads(_item_value(existing, "result") or "{}")
            replayed = True
            metrics.add_metric(name=Outcome.DUPLICATE.value, unit=MetricUnit.Count, value=1)
            if existing.get("notified", {}).get("BOOL"):
                return {**done, "outcome": Outcome.DUPLICATE.value, "replayedOutcome": done.get("outcome")}
        self.notifier.publish(describe_approval(deploy, self.settings.hook, done))
        try:
            self.ledger.mark_notified(key)
        except UpstreamError as error:  # humans were told; a redelivery would tell them again, nothing more
            logger.warning("approval not marked as notified", extra={"key": key, "error": str(error)})
        if replayed:  # an earlier delivery dispatched, then failed to notify: this one only notified
            return {
                **done,
                "outcome": Outcome.DUPLICATE.value,
                "replayedOutcome": done.get("outcome"),
                "notified": True,
            }
        return done

    def _dispatch(self, deploy: Deploy, key: str, owner: str, budget_seconds: float | None) -> dict[str, Any]:
        if self.dispatcher is None:
            done: dict[str, Any] = {"outcome": Outcome.NOTIFIED_ONLY.value}
        else:
            url, body = dispatch_request(self.settings.hook, self.settings.github_api_url, deploy)
            try:
                done = self.dispatcher.dispatch(url, body, budget_seconds=budget_seconds)
            except Exception:
                # Nothing was dispatched (refused, or never sent): free the approval for Lambda's retry.
                self._release(key, owner)
                raise
        try:
            self.ledger.complete(key, owner, done)
        except UpstreamError as error:
            # The dispatch happened; the claim stays "dispatching", so a redelivery is refused rather than
            # dispatched again (and dead-lettered in the end: a false alarm, never a second `pulumi up`).
            logger.warning("dispatch outcome not recorded", extra={"key": key, "error": str(error)})
            metrics.add_metric(name="DispatchNotRecorded", unit=MetricUnit.Count, value=1)
        return done

    def _release(self, key: str, owner: str) -> None:
        try:
            self.ledger.release(key, owner)
        except UpstreamError as error:
            logger.warning("approval claim not released", extra={"key": key, "error": str(error)})


@dataclass(frozen=True)
class Runtime:
    """Everything an invocation needs, built once per container (or by a test, with its own clients)."""

    settings: Settings
    approvals: Approvals


def build_runtime(
    settings: Settings,
    *,
    sns: Any,
    secrets: Any,
    dynamodb: Any,
    opener: Opener | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Runtime:
    """Wire the adapters; the dispatcher exists only for ``github-workflow`` hooks."""
    dispatcher = None
    if settings.hook.kind == "github-workflow":
        dispatcher = GitHubDispatcher(TokenSource(secrets=secrets, secret_name=settings.hook.token_secret_name))
        if opener is not None:
            dispatcher.opener = opener
        if sleep is not None:
            dispatcher.sleep = sleep
    approvals = Approvals(
        settings=settings,
        ledger=ApprovalLedger(dynamodb=dynamodb, table=settings.state_table),
        notifier=Notifier(sns=sns, topic_arn=settings.alerts_topic_arn),
        dispatcher=dispatcher,
    )
    return Runtime(settings=settings, approvals=approvals)


@functools.cache
def runtime() -> Runtime:
    """The cold-start runtime: settings from the environment, the responders' clients (standard retries)."""
    install_redaction(logger)
    return build_runtime(
        Settings.from_env(os.environ),
        sns=client("sns"),
        secrets=client("secretsmanager"),
        dynamodb=client("dynamodb"),
    )


# ---------------------------------------------------------------------------------------------- handler
def _budget(context: Any) -> float | None:
    """Seconds the GitHub retries may use: the invocation's remaining time less a margin (None without one)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    millis = remaining() if callable(remaining) else None
    if not isinstance(millis, int | float):
        return None
    return max(0.0, millis / 1000 - SAFETY_MARGIN_SECONDS)


def process(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Parse, decide, dispatch (if a hook is configured) and notify, at most once per approval.

    With a Lambda ``context``, approvals from another account or region are ignored (``IgnoredForeignOrigin``)
    and GitHub retries stop in time for the invocation to record the outcome.
    """
    change = parse_event(event)
    decision = decide(change, rt.settings.groups, Origin.of_context(context))
    result: dict[str, Any] = {"group": change.group, "modelPackageArn": change.package_arn}
    if isinstance(decision, Ignore):
        level = logger.warning if decision.outcome is Outcome.FOREIGN else logger.info
        level(decision.why, extra={**result, "outcome": decision.outcome.value})
        result["outcome"] = decision.outcome.value
        metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
    else:
        result["model"] = decision.model
        result.update(rt.approvals.handle(decision, budget_seconds=_budget(context)))  # counts its outcomes
        logger.info("approval handled", extra=result)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: report every failure (log + ``Failed``) and re-raise it, so Lambda retries or
    dead-letters the event. An error whose text would show the token is re-raised redacted."""
    try:
        return process(event, runtime(), context)
    except Exception as error:  # every failure, deliberate or not, goes through the failure log and metric
        raised = report_failure(logger, metrics, SERVICE, error, event, event_ids(event))
        if raised is error:
            raise
        raise raised from None
