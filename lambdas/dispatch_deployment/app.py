"""Dispatch deployment: an approved model version starts the deployment (which ends in ``pulumi up``).

Trigger: EventBridge "SageMaker Model Package State Change". Only ``ModelApprovalStatus = Approved`` of a group
listed in ``MODEL_PACKAGE_GROUPS`` acts; other statuses and groups are decisions (logged, counted).

Hook (``DEPLOY_HOOK``): ``kind: none`` publishes a notification only; ``kind: github-workflow`` reads a GitHub
token from Secrets Manager (cached for the container's lifetime, never logged), POSTs a ``workflow_dispatch`` to
``{GITHUB_API_URL}/repos/{repository}/actions/workflows/{workflow}/dispatches`` with the inputs ``model``,
``model_package_arn`` and ``stack`` (the Pulumi stack the function belongs to, which the program always sets, so
the workflow updates that stack only) and then notifies. A non-2xx answer raises :class:`DispatchError`, so
Lambda retries and finally dead-letters the event. The responder never touches the endpoint itself: Pulumi is
the only writer of what Pulumi created.

Environment (read once at cold start): ``ALERTS_TOPIC_ARN``, ``DEPLOY_HOOK``, ``MODEL_PACKAGE_GROUPS``,
``GITHUB_API_URL`` (default ``https://api.github.com``; http is accepted only for a loopback host).
"""

from __future__ import annotations

import enum
import functools
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from responder_common.errors import ConfigurationError, DispatchError, ResponderError, UpstreamError, report_failure
from responder_common.events import eventbridge_event, optional_str, require_str
from responder_common.notify import Notification, Notifier
from responder_common.settings import json_object, required, string_map

SERVICE = "dispatch_deployment"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "MLOps/Responders")

DETAIL_TYPE = "SageMaker Model Package State Change"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HTTP_TIMEOUT_SECONDS = 10.0


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
    hook: DeployHook
    groups: Mapping[str, str]
    github_api_url: str = DEFAULT_GITHUB_API_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse the environment; :class:`ConfigurationError` names the bad variable."""
        return cls(
            alerts_topic_arn=required(env, "ALERTS_TOPIC_ARN"),
            hook=DeployHook.parse(json_object(env, "DEPLOY_HOOK")),
            groups=string_map(env, "MODEL_PACKAGE_GROUPS"),
            github_api_url=_api_url(env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL),
        )


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True, kw_only=True)
class PackageStateChange:
    """One model package state change, as EventBridge delivers it."""

    group: str
    package_arn: str
    approval_status: str
    version: str


def parse_event(event: Any) -> PackageStateChange:
    """The state change in the event; :class:`MalformedEventError` when the event is not one."""
    detail = eventbridge_event(event, source="aws.sagemaker", detail_type=DETAIL_TYPE).detail
    version = detail.get("ModelPackageVersion")
    return PackageStateChange(
        group=require_str(detail, "ModelPackageGroupName", "detail"),
        package_arn=require_str(detail, "ModelPackageArn", "detail"),
        approval_status=optional_str(detail, "ModelApprovalStatus"),
        version=str(version) if isinstance(version, int | str) else "",
    )


# ---------------------------------------------------------------------------------------------- decisions
class Outcome(enum.StrEnum):
    """What the responder decided; each has a metric of the same name."""

    DISPATCHED = "DeploymentDispatched"
    NOTIFIED_ONLY = "ApprovalNotified"
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


def decide(change: PackageStateChange, groups: Mapping[str, str]) -> Ignore | Deploy:
    """Pure: only an Approved version of a platform model package group is deployed."""
    model = groups.get(change.group)
    if model is None:
        return Ignore(Outcome.UNKNOWN_GROUP, f"model package group {change.group} is not one of the platform's")
    if change.approval_status != "Approved":
        return Ignore(Outcome.NOT_APPROVED, f"model package is {change.approval_status or 'without status'}")
    return Deploy(model=model, change=change)


def dispatch_request(hook: DeployHook, api_url: str, deploy: Deploy) -> tuple[str, dict[str, Any]]:
    """Pure: the workflow_dispatch URL and JSON body (inputs: model, model_package_arn, and stack if set)."""
    owner_repo = "/".join(urllib.parse.quote(part, safe="") for part in hook.repository.split("/"))
    url = f"{api_url}/repos/{owner_repo}/actions/workflows/{urllib.parse.quote(hook.workflow, safe='')}/dispatches"
    inputs = {"model": deploy.model, "model_package_arn": deploy.change.package_arn}
    if hook.stack:
        inputs["stack"] = hook.stack
    return url, {"ref": hook.ref, "inputs": inputs}


def describe_approval(deploy: Deploy, hook: DeployHook) -> Notification:
    """Pure: the notification for an approved version and what was done with it."""
    change = deploy.change
    version = f" version {change.version}" if change.version else ""
    if hook.kind == "github-workflow":
        target = f" for stack {hook.stack}" if hook.stack else ""
        action = f"Deployment dispatched: workflow {hook.workflow} of {hook.repository} on {hook.ref}{target}."
    else:
        action = "No deployment hook is configured: deploy with `pulumi up` for the stack."
    body = "\n".join(
        [
            f"Model {deploy.model}{version} was approved in {change.group}.",
            f"Model package: {change.package_arn}",
            action,
        ]
    )
    return Notification(subject=f"[mlops] model approved: {deploy.model}{version}", body=body)


# ---------------------------------------------------------------------------------------------- adapters
@dataclass
class TokenSource:
    """The GitHub token from Secrets Manager, read once per container (the value is never logged)."""

    secrets: Any
    secret_name: str
    _token: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def token(self) -> str:
        """The token; a JSON secret is read from its ``token`` key. :class:`UpstreamError` when unreadable."""
        with self._lock:
            if self._token is None:
                self._token = self._read()
            return self._token

    def _read(self) -> str:
        try:
            value = self.secrets.get_secret_value(SecretId=self.secret_name).get("SecretString") or ""
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            raise UpstreamError(f"GetSecretValue of {self.secret_name} failed: {code}", code=code) from error
        if value.lstrip().startswith("{"):
            try:
                value = str(json.loads(value).get("token", ""))
            except (json.JSONDecodeError, AttributeError):
                value = ""
        if not value.strip():
            raise UpstreamError(f"secret {self.secret_name} holds no token", code="EmptySecret")
        return value.strip()


Opener = Callable[..., Any]


@dataclass(frozen=True)
class GitHubDispatcher:
    """POSTs a workflow_dispatch with urllib (stdlib); non-2xx raises :class:`DispatchError`."""

    tokens: TokenSource
    opener: Opener = urllib.request.urlopen
    timeout: float = HTTP_TIMEOUT_SECONDS

    def dispatch(self, url: str, body: Mapping[str, Any]) -> int:
        """Send the request; returns the HTTP status (204 from GitHub)."""
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
            detail = error.read(300).decode("utf-8", "replace") if error.fp else ""
            raise DispatchError(
                f"workflow dispatch to {url} answered {error.code}: {detail}", status=error.code
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise DispatchError(f"workflow dispatch to {url} failed: {error}") from None
        if not 200 <= status < 300:
            raise DispatchError(f"workflow dispatch to {url} answered {status}", status=status)
        return status


@dataclass(frozen=True)
class Runtime:
    """Everything an invocation needs, built once per container (or by a test, with its own clients)."""

    settings: Settings
    notifier: Notifier
    dispatcher: GitHubDispatcher | None


def build_runtime(settings: Settings, *, sns: Any, secrets: Any, opener: Opener | None = None) -> Runtime:
    """Wire the adapters; the dispatcher exists only for ``github-workflow`` hooks."""
    dispatcher = None
    if settings.hook.kind == "github-workflow":
        tokens = TokenSource(secrets=secrets, secret_name=settings.hook.token_secret_name)
        dispatcher = GitHubDispatcher(tokens, opener) if opener else GitHubDispatcher(tokens)
    return Runtime(
        settings=settings, notifier=Notifier(sns=sns, topic_arn=settings.alerts_topic_arn), dispatcher=dispatcher
    )


@functools.cache
def runtime() -> Runtime:
    """The cold-start runtime: settings from the environment and default boto3 clients."""
    return build_runtime(Settings.from_env(os.environ), sns=boto3.client("sns"), secrets=boto3.client("secretsmanager"))


# ---------------------------------------------------------------------------------------------- handler
def process(event: Any, rt: Runtime) -> dict[str, Any]:
    """Parse, decide, dispatch (if a hook is configured) and notify; returns the outcome."""
    change = parse_event(event)
    decision = decide(change, rt.settings.groups)
    result: dict[str, Any] = {"group": change.group, "modelPackageArn": change.package_arn}
    if isinstance(decision, Ignore):
        logger.info(decision.why, extra={**result, "outcome": decision.outcome.value})
        result["outcome"] = decision.outcome.value
    else:
        result["model"] = decision.model
        if rt.dispatcher is not None:
            url, body = dispatch_request(rt.settings.hook, rt.settings.github_api_url, decision)
            result["httpStatus"] = rt.dispatcher.dispatch(url, body)
            result["outcome"] = Outcome.DISPATCHED.value
        else:
            result["outcome"] = Outcome.NOTIFIED_ONLY.value
        rt.notifier.publish(describe_approval(decision, rt.settings.hook))
        logger.info("approval handled", extra=result)
    metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
    return result


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: log with context and re-raise every error, so Lambda retries or dead-letters."""
    try:
        return process(event, runtime())
    except ResponderError as error:
        report_failure(logger, metrics, SERVICE, error, event, [event.get("id")] if isinstance(event, Mapping) else [])
        raise
