"""AWS clients built from the stack's AWS provider settings, for the few AWS calls the program makes itself.

pulumi-aws takes its settings from the stack's ``aws:`` keys: the region, a profile, static keys, shared
files, a chain of roles to assume (``aws:assumeRoles``), custom endpoints (``aws:endpoints``). The program
reads the model registry while it builds the resource graph (:mod:`infra.model_versions`), with boto3, and
that client must reach the account and the endpoint the provider deploys to: otherwise a stack that assumes a
deployment role reads the caller's own account, and the ``local`` stack (SageMaker on moto) reads real AWS.

:func:`provider_settings` turns the raw ``aws:*`` map (Pulumi hands every value over as a string, structured
values as JSON) into :class:`AwsProviderSettings`, refusing what it cannot honour, with the key and what is
allowed. :class:`AwsClients` builds clients from it: a session from the profile / static keys / shared files,
then one STS ``AssumeRole`` per ``aws:assumeRoles`` entry, in order (each with the previous credentials: role
chaining), then each client with the ``aws:endpoints`` URL of its service. :func:`stack_aws_values` reads the
running stack's ``aws:`` keys.

The other ``aws:`` keys (``skipCredentialsValidation``, ``skipRequestingAccountId``, ``skipMetadataApiCheck``,
``s3UsePathStyle``, ``defaultTags``, ...) change how the provider checks or tags, not which account or
endpoint a SageMaker client reaches; they are ignored here. (The clients never validate credentials with STS
or ask for the account id themselves.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "aws"

DEFAULT_SESSION_NAME = "mlops-platform-program"
"""``RoleSessionName`` of an ``aws:assumeRoles`` entry without ``sessionName`` (STS requires one)."""

# AssumeRole's DurationSeconds range (the provider documents "between 15 minutes and 12 hours").
MIN_DURATION_SECONDS = 15 * 60
MAX_DURATION_SECONDS = 12 * 60 * 60

_ASSUME_ROLE_KEYS = {
    "roleArn",
    "sessionName",
    "externalId",
    "duration",
    "policy",
    "policyArns",
    "sourceIdentity",
    "tags",
    "transitiveTagKeys",
}
# Go duration units, as the provider parses ``duration`` (time.ParseDuration).
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class AwsSettingsError(ValueError):
    """An ``aws:`` key of the stack that the program cannot honour as the provider does."""


@dataclass(frozen=True)
class AssumeRole:
    """One ``aws:assumeRoles`` entry, as STS ``AssumeRole`` takes it."""

    role_arn: str
    session_name: str = DEFAULT_SESSION_NAME
    external_id: str | None = field(default=None, repr=False)
    duration_seconds: int | None = None
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    source_identity: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()

    def request(self) -> dict[str, Any]:
        """The keyword arguments of ``sts.assume_role`` for this entry."""
        request: dict[str, Any] = {"RoleArn": self.role_arn, "RoleSessionName": self.session_name}
        if self.external_id is not None:
            request["ExternalId"] = self.external_id
        if self.duration_seconds is not None:
            request["DurationSeconds"] = self.duration_seconds
        if self.policy is not None:
            request["Policy"] = self.policy
        if self.policy_arns:
            request["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        if self.source_identity is not None:
            request["SourceIdentity"] = self.source_identity
        if self.tags:
            request["Tags"] = [{"Key": key, "Value": value} for key, value in self.tags]
        if self.transitive_tag_keys:
            request["TransitiveTagKeys"] = list(self.transitive_tag_keys)
        return request


@dataclass(frozen=True)
class AwsProviderSettings:
    """The stack's provider settings that decide which account and endpoint a client reaches."""

    region: str | None = None
    profile: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    shared_config_file: str | None = None
    shared_credentials_file: str | None = None
    assume_roles: tuple[AssumeRole, ...] = ()
    endpoints: Mapping[str, str] = field(default_factory=dict)
    """Service key (``sagemaker``, ``sts``, ...) → endpoint URL."""
    sts_region: str | None = None


def provider_settings(values: Mapping[str, Any]) -> AwsProviderSettings:
    """The provider settings in a stack's config map (``aws:<key>`` → string, structured values as JSON).

    Keys of other namespaces are ignored, so the whole config map may be passed.

    Raises:
        AwsSettingsError: a value is malformed, or asks for what boto3 cannot do as the provider does (more
            than one shared config or credentials file, ``aws:assumeRoleWithWebIdentity``); the message names
            the key and what is allowed (never a secret's value).
    """
    raw = {key[len(NAMESPACE) + 1 :]: value for key, value in values.items() if key.startswith(f"{NAMESPACE}:")}
    if raw.get("assumeRoleWithWebIdentity") not in (None, "", "null"):
        raise AwsSettingsError(
            "aws:assumeRoleWithWebIdentity: not supported for the program's own AWS calls (reading the model "
            "registry); use aws:assumeRoles, or inject a version source"
        )
    access_key, secret_key = _string(raw, "accessKey"), _string(raw, "secretKey")
    if (access_key is None) != (secret_key is None):
        raise AwsSettingsError("aws:accessKey and aws:secretKey must be set together")
    return AwsProviderSettings(
        region=_string(raw, "region"),
        profile=_string(raw, "profile"),
        access_key=access_key,
        secret_key=secret_key,
        token=_string(raw, "token"),
        shared_config_file=_single_file(raw, "sharedConfigFiles"),
        shared_credentials_file=_single_file(raw, "sharedCredentialsFiles"),
        assume_roles=tuple(
            _assume_role(entry, index) for index, entry in enumerate(_list(raw, "assumeRoles")) if entry is not None
        ),
        endpoints=_endpoints(raw),
        sts_region=_string(raw, "stsRegion"),
    )


def stack_aws_values() -> dict[str, Any]:
    """The running stack's ``aws:`` keys, read the way :func:`infra.config.load_config` reads its keys."""
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key: value for key, value in values.items() if key.startswith(f"{NAMESPACE}:")}


class AwsClients:
    """boto3 clients with the provider's account and endpoints (see the module docstring).

    Nothing is called until the first :meth:`client`: the session (and the role chain) is built then, once.
    Assumed-role credentials are not refreshed: they serve the reads of one program run, which take seconds,
    well inside the shortest session STS grants (15 minutes).
    """

    def __init__(self, settings: AwsProviderSettings, *, region: str | None = None) -> None:
        self.settings = settings
        self.region = region or settings.region
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    @classmethod
    def for_stack(cls, region: str) -> AwsClients:
        """Clients for the running stack (its ``aws:`` keys), in ``region``."""
        return cls(provider_settings(stack_aws_values()), region=region)

    def client(self, service: str) -> Any:
        """The boto3 client of ``service`` (boto3's name; the endpoint is ``aws:endpoints``' entry of that key),
        made once: the registry and the live endpoints share it (a client decodes its service model)."""
        if service not in self._clients:
            self._clients[service] = self.session().client(
                service, region_name=self.region, endpoint_url=self.settings.endpoints.get(service)
            )
        return self._clients[service]

    def session(self) -> Any:
        """The boto3 session the clients come from: the base credentials, then every role of the chain."""
        if self._session is None:
            session = self._base_session()
            for role in self.settings.assume_roles:
                session = self._assume(session, role)
            self._session = session
        return self._session

    def _base_session(self) -> Any:
        import boto3
        import botocore.session

        settings = self.settings
        core = botocore.session.Session()
        if settings.shared_config_file is not None:
            core.set_config_variable("config_file", settings.shared_config_file)
        if settings.shared_credentials_file is not None:
            core.set_config_variable("credentials_file", settings.shared_credentials_file)
        return boto3.Session(
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            aws_session_token=settings.token,
            region_name=self.region,
            profile_name=settings.profile,
            botocore_session=core,
        )

    def _assume(self, session: Any, role: AssumeRole) -> Any:
        import boto3

        sts = session.client(
            "sts",
            region_name=self.settings.sts_region or self.region,
            endpoint_url=self.settings.endpoints.get("sts"),
        )
        credentials = sts.assume_role(**role.request())["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.region,
        )


# --- parsing the raw values ------------------------------------------------------------------------


def _decoded(raw: Mapping[str, Any], key: str) -> Any:
    """A structured value: JSON text as Pulumi passes it (or an already-decoded value)."""
    value = raw.get(key)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise AwsSettingsError(f"aws:{key}: expected a JSON/YAML value, got {value!r}") from None


def _string(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AwsSettingsError(f"aws:{key}: expected a string")
    return value


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = _decoded(raw, key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise AwsSettingsError(f"aws:{key}: expected a list, got {json.dumps(value)}")
    return value


def _single_file(raw: Mapping[str, Any], key: str) -> str | None:
    files = _list(raw, key)
    if not all(isinstance(f, str) and f for f in files):
        raise AwsSettingsError(f"aws:{key}: expected a list of file paths, got {json.dumps(files)}")
    if len(files) > 1:
        raise AwsSettingsError(f"aws:{key}: boto3 reads one file, got {len(files)}; give one path")
    return files[0] if files else None


def _endpoints(raw: Mapping[str, Any]) -> dict[str, str]:
    """``aws:endpoints``: a list of maps of service key → URL (the provider merges them)."""
    endpoints: dict[str, str] = {}
    for index, entry in enumerate(_list(raw, "endpoints")):
        if not isinstance(entry, Mapping):
            raise AwsSettingsError(f"aws:endpoints[{index}]: expected a map of service → URL")
        for service, url in entry.items():
            if url in (None, ""):
                continue
            if not isinstance(url, str):
                raise AwsSettingsError(f"aws:endpoints[{index}].{service}: expected a URL, got {json.dumps(url)}")
            endpoints[str(service)] = url
    return endpoints


def _assume_role(entry: Any, index: int) -> AssumeRole:
    key = f"aws:assumeRoles[{index}]"
    if not isinstance(entry, Mapping):
        raise AwsSettingsError(f"{key}: expected a map with roleArn, sessionName, externalId, duration, ...")
    unknown = sorted(set(entry) - _ASSUME_ROLE_KEYS)
    if unknown:
        raise AwsSettingsError(f"{key}: unknown keys {unknown}; allowed keys: {', '.join(sorted(_ASSUME_ROLE_KEYS))}")
    role_arn = entry.get("roleArn")
    if not isinstance(role_arn, str) or not role_arn.startswith("arn:"):
        raise AwsSettingsError(f"{key}.roleArn: expected an IAM role ARN, got {json.dumps(role_arn)}")
    tags = entry.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise AwsSettingsError(f"{key}.tags: expected a map of tag → value")
    duration = entry.get("duration")
    return AssumeRole(
        role_arn=role_arn,
        session_name=entry.get("sessionName") or DEFAULT_SESSION_NAME,
        external_id=entry.get("externalId") or None,
        duration_seconds=None if duration in (None, "") else _duration_seconds(f"{key}.duration", duration),
        policy=entry.get("policy") or None,
        policy_arns=tuple(entry.get("policyArns") or ()),
        source_identity=entry.get("sourceIdentity") or None,
        tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
        transitive_tag_keys=tuple(entry.get("transitiveTagKeys") or ()),
    )


def _duration_seconds(key: str, value: Any) -> int:
    """A Go duration (``"1h"``, ``"90m"``, ``"1h30m"``) in whole seconds, within AssumeRole's range."""
    text = str(value)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise AwsSettingsError(f"{key}: got {text!r}; expected a duration such as 1h, 90m or 1h30m")
    seconds = int(sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts))
    if not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise AwsSettingsError(f"{key}: got {text!r}; must be between 15m and 12h")
    return seconds
