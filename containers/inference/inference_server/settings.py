"""Server settings: read once from the environment (SageMaker's variables first), overridable on the CLI."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import InferenceServerError

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080  # SageMaker's container contract
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints reject larger payloads anyway
# SageMaker gives the container 60 s to answer an invocation. A request whose headers and body are not in after
# 10 + 30 s cannot be answered usefully anyway, and the deadlines leave 20 s to predict and answer the rest.
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
# Longer than SageMaker's front end keeps an idle connection, so the server is never the side that closes one
# just as the front end reuses it (which the caller would see as a failed invocation).
DEFAULT_KEEP_ALIVE_TIMEOUT = 75
# Per worker. Requests take milliseconds, so a worker rarely has more than a few dozen connections with work in
# them; the cap bounds what a flood can pin (buffered bodies: 512 x 6 MiB at worst, file descriptors).
DEFAULT_MAX_CONNECTIONS = 512
# Request line and headers. SageMaker's front end sends a few hundred bytes; uvicorn with httptools has no limit.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
# Entity request mode (online lookup). A GetRecord answers in milliseconds; the budget bounds what a slow or
# failing store adds to a request (SageMaker gives the whole invocation 60 s).
DEFAULT_ONLINE_TIMEOUT_MS = 300
MAX_ONLINE_TIMEOUT_MS = 10_000
MAX_ONLINE_ATTEMPTS = 5
MAX_CACHE_TTL_SECONDS = 86_400
MAX_CACHE_ENTRIES = 1_000_000
REQUEST_MODES = ("rows", "entity")
# GetRecord's FeatureGroupName: a feature group name or ARN (SageMaker API reference, GetRecord).
_FEATURE_GROUP = re.compile(
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:feature-group/)?[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$"
)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# Environment variable of each setting. SageMaker hosting extracts the model into /opt/ml/model (the default);
# SM_MODEL_DIR, the training toolkit's name for that folder, points the server elsewhere (tests, workstations).
# SageMaker sets SAGEMAKER_BIND_TO_PORT in multi-container inference pipelines (the Dockerfile's label says the
# server honours it); SAGEMAKER_MODEL_SERVER_WORKERS is the name SageMaker's framework containers use.
ENVIRONMENT: dict[str, str] = {
    "model_dir": "SM_MODEL_DIR",
    "host": "INFERENCE_HOST",
    "port": "SAGEMAKER_BIND_TO_PORT",
    "workers": "SAGEMAKER_MODEL_SERVER_WORKERS",
    "max_rows": "INFERENCE_MAX_ROWS",
    "max_body_bytes": "INFERENCE_MAX_BODY_BYTES",
    "coalesce": "INFERENCE_COALESCE",
    "max_coalesced_rows": "INFERENCE_MAX_COALESCED_ROWS",
    "threads_per_worker": "INFERENCE_THREADS_PER_WORKER",
    "worker_start_timeout": "INFERENCE_WORKER_START_TIMEOUT",
    "header_timeout": "INFERENCE_HEADER_TIMEOUT",
    "body_timeout": "INFERENCE_BODY_TIMEOUT",
    "keep_alive_timeout": "INFERENCE_KEEP_ALIVE_TIMEOUT",
    "max_connections": "INFERENCE_MAX_CONNECTIONS",
    "max_header_bytes": "INFERENCE_MAX_HEADER_BYTES",
    "log_level": "INFERENCE_LOG_LEVEL",
    "request_mode": "INFERENCE_REQUEST_MODE",
    "feature_group": "INFERENCE_FEATURE_GROUP",
    "online_region": "INFERENCE_ONLINE_REGION",
    "online_timeout_ms": "INFERENCE_ONLINE_TIMEOUT_MS",
    "online_max_attempts": "INFERENCE_ONLINE_MAX_ATTEMPTS",
    "online_cache_ttl_seconds": "INFERENCE_ONLINE_CACHE_TTL_SECONDS",
    "online_cache_max_entries": "INFERENCE_ONLINE_CACHE_MAX_ENTRIES",
    "online_concurrency": "INFERENCE_ONLINE_CONCURRENCY",
}
REGION_FALLBACKS = ("AWS_REGION", "AWS_DEFAULT_REGION")
"""Where ``online_region`` comes from when ``INFERENCE_ONLINE_REGION`` is unset (the stack always sets it)."""


class SettingsError(InferenceServerError):
    """A setting has an invalid value (the message names the variable, the value and what is allowed)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How the server runs.

    ``host`` defaults to all interfaces because inside the container SageMaker connects from outside
    it; run it on a workstation with ``--host 127.0.0.1``.

    Connection limits (seconds, per connection; the cap is per worker process): ``header_timeout`` from a
    request's first byte to the end of its headers (answered 408, then closed); ``body_timeout`` from the end
    of the headers to the end of the body (408, then closed); ``keep_alive_timeout`` for a connection with
    no request under way (closed); ``max_connections`` open at once (requests on more get 503, then closed);
    ``max_header_bytes`` of request line and headers (431, then closed).

    Request mode: ``rows`` (requests carry raw records) or ``entity`` (requests carry entity ids; the features
    are read from ``feature_group``'s online store in ``online_region``). ``online_timeout_ms`` bounds a
    request's whole lookup, retries included (then 504); each HTTP attempt may also take that long to connect
    and to read, and at most ``online_max_attempts`` are made. ``online_cache_ttl_seconds`` keeps a looked-up
    vector this long in a per-process LRU cache of ``online_cache_max_entries`` (0 for either: no cache).
    ``online_concurrency`` lookups run at once per worker process (threads; also the connection pool size).
    """

    model_dir: str = DEFAULT_MODEL_DIR
    host: str = "0.0.0.0"  # noqa: S104  (container default; tests and benchmarks pass 127.0.0.1)
    port: int = DEFAULT_PORT
    workers: int = 0  # 0: one per CPU
    max_rows: int = 10_000
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    coalesce: bool = True
    max_coalesced_rows: int = 4096
    threads_per_worker: int = 1
    worker_start_timeout: int = 120  # seconds a worker may take to start or to answer a health check
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keep_alive_timeout: int = DEFAULT_KEEP_ALIVE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    log_level: str = "INFO"
    request_mode: str = "rows"
    feature_group: str = ""
    online_region: str = ""
    online_timeout_ms: int = DEFAULT_ONLINE_TIMEOUT_MS
    online_max_attempts: int = 2
    online_cache_ttl_seconds: float = 0.0
    online_cache_max_entries: int = 10_000
    online_concurrency: int = 16

    def __post_init__(self) -> None:
        for name in (
            "port", "max_rows", "max_body_bytes", "max_coalesced_rows", "threads_per_worker", "worker_start_timeout",
            "keep_alive_timeout", "max_connections", "max_header_bytes",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise SettingsError(f"{_label(name)} must be a positive integer, got {getattr(self, name)}")
        for name in ("header_timeout", "body_timeout"):
            seconds = getattr(self, name)
            if not (math.isfinite(seconds) and seconds > 0):
                raise SettingsError(f"{_label(name)} must be a positive number of seconds, got {seconds}")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"{_label('port')} must be a TCP port (1-65535), got {self.port}")
        if self.workers < 0:
            raise SettingsError(f"{_label('workers')} must be 0 (one per CPU) or more, got {self.workers}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"{_label('log_level')} must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        self._check_online()

    def _check_online(self) -> None:
        """The entity mode's settings: checked whatever the mode, so a typo fails before it is switched on."""
        if self.request_mode not in REQUEST_MODES:
            raise SettingsError(f"{_label('request_mode')} must be rows or entity, got {self.request_mode!r}")
        bounds: tuple[tuple[str, float, float], ...] = (
            ("online_timeout_ms", 1, MAX_ONLINE_TIMEOUT_MS),
            ("online_max_attempts", 1, MAX_ONLINE_ATTEMPTS),
            ("online_cache_ttl_seconds", 0, MAX_CACHE_TTL_SECONDS),
            ("online_cache_max_entries", 0, MAX_CACHE_ENTRIES),
            ("online_concurrency", 1, 256),
        )
        for name, low, high in bounds:
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise SettingsError(f"{_label(name)} must be within {low:g}..{high:g}, got {value}")
        if self.request_mode != "entity":
            return
        if not _FEATURE_GROUP.match(self.feature_group):
            raise SettingsError(
                f"{_label('feature_group')} must name the feature group to read (its name or ARN) when "
                f"{ENVIRONMENT['request_mode']}=entity, got {self.feature_group!r}"
            )
        if not _REGION.match(self.online_region):
            raise SettingsError(
                f"{_label('online_region')} (or {' / '.join(REGION_FALLBACKS)}) must be the feature group's AWS "
                f"region (e.g. eu-west-1) when {ENVIRONMENT['request_mode']}=entity, got {self.online_region!r}"
            )

    @property
    def online_cache_enabled(self) -> bool:
        return self.online_cache_ttl_seconds > 0 and self.online_cache_max_entries > 0

    @property
    def worker_count(self) -> int:
        """Worker processes to run (``workers``, or one per CPU when 0)."""
        return self.workers or os.cpu_count() or 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), then ``overrides`` (CLI values; ``None`` = unset)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(ENVIRONMENT[field.name])
            if raw is not None and raw != "":
                values[field.name] = _convert(field.name, raw, type(field.default))
        if "online_region" not in values:
            region = next((environ[name] for name in REGION_FALLBACKS if environ.get(name)), None)
            if region is not None:
                values["online_region"] = region
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (how worker processes receive them)."""
        env: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            env[ENVIRONMENT[field.name]] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return env


def _label(name: str) -> str:
    return f"{name} ({ENVIRONMENT[name]})"


def _convert(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{ENVIRONMENT[name]}={raw!r} is not a boolean (use 1/0, true/false)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{ENVIRONMENT[name]}={raw!r} is not an integer") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{ENVIRONMENT[name]}={raw!r} is not a number (seconds, e.g. 10 or 2.5)") from None
    return raw
