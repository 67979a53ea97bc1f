"""Server settings: read once from the environment (SageMaker's variables first), overridable on the CLI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import InferenceServerError

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080  # SageMaker's container contract
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints reject larger payloads anyway

# Environment variable of each setting. SageMaker sets SM_MODEL_DIR and, in multi-container endpoints,
# SAGEMAKER_BIND_TO_PORT; SAGEMAKER_MODEL_SERVER_WORKERS is the name SageMaker's framework containers use.
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
    "log_level": "INFERENCE_LOG_LEVEL",
}


class SettingsError(InferenceServerError):
    """A setting has an invalid value (the message names the variable, the value and what is allowed)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How the server runs.

    ``host`` defaults to all interfaces because inside the container SageMaker connects from outside
    it; run it on a workstation with ``--host 127.0.0.1``.
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
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        for name in (
            "port", "max_rows", "max_body_bytes", "max_coalesced_rows", "threads_per_worker", "worker_start_timeout"
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise SettingsError(f"{_label(name)} must be a positive integer, got {getattr(self, name)}")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"{_label('port')} must be a TCP port (1-65535), got {self.port}")
        if self.workers < 0:
            raise SettingsError(f"{_label('workers')} must be 0 (one per CPU) or more, got {self.workers}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"{_label('log_level')} must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")

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
    return raw
