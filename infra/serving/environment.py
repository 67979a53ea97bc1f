"""The inference container's environment for a model's endpoint: how entity request mode is switched on.

The names are the container's (``containers/inference/inference_server/settings.py``, ``ENVIRONMENT``); the unit
tests read them from there, so the two sides cannot drift apart. Rows mode sets nothing: the container's defaults
are rows mode, and a model created without an environment keeps the name (and the live model) it had.
"""

from __future__ import annotations

import re

from infra.serving.settings import ServingSettings

MAX_ENVIRONMENT_ENTRIES = 100
"""CreateModel's ContainerDefinition.Environment: at most 100 entries (SageMaker API reference)."""
MAX_ENVIRONMENT_STRING = 1024
"""... each key and each value at most 1024 bytes ..."""
MAX_ENVIRONMENT_BYTES = 32 * 1024
"""... and all keys and values together at most 32 KB."""
_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # the Environment map's key pattern


def container_environment(serving: ServingSettings, *, feature_group: str, region: str) -> dict[str, str]:
    """The model container's environment variables: empty in rows mode; in entity mode the feature group to read
    (by name: the execution role may read that group only), its region and the lookup's settings."""
    if serving.request_mode != "entity":
        return {}
    lookup = serving.online_lookup
    return {
        "INFERENCE_REQUEST_MODE": "entity",
        "INFERENCE_FEATURE_GROUP": feature_group,
        # Set explicitly rather than relying on what the hosting platform puts in the container's environment.
        "INFERENCE_ONLINE_REGION": region,
        "INFERENCE_ONLINE_TIMEOUT_MS": str(lookup.timeout_ms),
        "INFERENCE_ONLINE_MAX_ATTEMPTS": str(lookup.max_attempts),
        "INFERENCE_ONLINE_CACHE_TTL_SECONDS": str(lookup.cache_ttl_seconds),
        "INFERENCE_ONLINE_CACHE_MAX_ENTRIES": str(lookup.cache_max_entries),
    }


def environment_problems(environment: dict[str, str]) -> list[str]:
    """Why CreateModel would refuse ``environment`` (empty when it would not)."""
    problems: list[str] = []
    if len(environment) > MAX_ENVIRONMENT_ENTRIES:
        problems.append(
            f"{len(environment)} environment variables; CreateModel takes at most {MAX_ENVIRONMENT_ENTRIES}"
        )
    total = 0
    for key, value in environment.items():
        if not _KEY.match(key):
            problems.append(f"environment variable name {key!r} must match {_KEY.pattern}")
        for part in (key, value):
            size = len(part.encode())
            total += size
            if size > MAX_ENVIRONMENT_STRING:
                problems.append(
                    f"environment entry {key!r}: {size} bytes; CreateModel takes at most {MAX_ENVIRONMENT_STRING}"
                )
    if total > MAX_ENVIRONMENT_BYTES:
        problems.append(f"environment of {total} bytes; CreateModel takes at most {MAX_ENVIRONMENT_BYTES} in all")
    return problems
