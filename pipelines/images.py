"""SageMaker prebuilt image URIs, read from the SageMaker SDK's own bundled image tables.

:func:`image_uri` returns exactly what ``sagemaker.core.image_uris.retrieve(framework, region=region,
version=version, instance_type=instance_type)`` returns, for the frameworks in :data:`VERIFIED_FRAMEWORKS`
(``tests/unit/test_images.py`` compares the two). It reads the JSON files the SDK ships in
``sagemaker/core/image_uri_config/`` from the installed package, located with
:func:`importlib.util.find_spec`, so it never executes ``sagemaker.core``'s ``__init__`` (seconds of imports)
and makes no network call. The ECR hostname comes from botocore's endpoint data, as in the SDK.

Lookups are cached per process. Other frameworks (Hugging Face, Neuron, Graviton images, ...) have special
cases in the SDK that this module does not reproduce: use ``image_uris.retrieve`` for those.

    >>> image_uri("sklearn", "eu-west-1", "1.9-0", "ml.m5.large")
    '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3'
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

VERIFIED_FRAMEWORKS = ("model-monitor", "sklearn")
"""Frameworks whose URIs are checked against the SDK's ``image_uris.retrieve`` by the tests."""

_SDK_PACKAGE = "sagemaker.core"
_CONFIG_DIR = "image_uri_config"

# The SDK's rules for the frameworks above (sagemaker.core.image_uris / fw_utils): sklearn and xgboost
# default to the "training" images (identical to inference); Graviton instance families select the arm64
# images, whose tags follow a different scheme (not reproduced here).
_DEFAULT_SCOPE = {"sklearn": "training", "xgboost": "training"}
_GRAVITON_FAMILIES = frozenset({"m6g", "m6gd", "c6g", "c6gd", "c6gn", "c7g", "r6g", "r6gd"})
_GRAVITON_FRAMEWORKS = frozenset({"tensorflow", "pytorch", "xgboost", "sklearn"})
_INSTANCE_FAMILY = re.compile(r"^ml[\._]([a-z\d\-]+)\.?\w*$")


@functools.cache
def image_uri(framework: str, region: str, version: str | None = None, instance_type: str | None = None) -> str:
    """The ECR URI of a SageMaker prebuilt image, as ``sagemaker.core.image_uris.retrieve`` gives it.

    Args:
        framework: ``"sklearn"`` or ``"model-monitor"`` (see :data:`VERIFIED_FRAMEWORKS`).
        region: AWS region of the image's registry.
        version: framework version (``"1.9-0"``); required when the framework has several.
        instance_type: instance type the image runs on (``"ml.m5.large"``); selects cpu/gpu images.

    Raises:
        ValueError: unknown or unverified framework, region, version or instance type; the message names
            what was asked for and what is available.
    """
    if framework not in VERIFIED_FRAMEWORKS:
        raise ValueError(
            f"image_uri: framework {framework!r} is not supported here (supported: {', '.join(VERIFIED_FRAMEWORKS)}); "
            "use sagemaker.core.image_uris.retrieve for other frameworks"
        )
    family = _instance_family(instance_type)
    if instance_type is not None and "trn" in instance_type:
        raise ValueError(f"image_uri: {framework} has no image for Trainium instances ({instance_type})")
    if framework in _GRAVITON_FRAMEWORKS and family in _GRAVITON_FAMILIES:
        raise ValueError(
            f"image_uri: instance type {instance_type!r} selects the {framework} Graviton (arm64) image, which "
            "this lookup does not support; use sagemaker.core.image_uris.retrieve"
        )
    config = _scope_config(framework)
    versions: dict[str, Any] = config["versions"]
    aliases: dict[str, str] = config.get("version_aliases", {})
    if len(versions) == 1 and version not in aliases:
        resolved = next(iter(versions))  # the SDK ignores the version of single-version images
    elif version is None:
        raise ValueError(f"image_uri: {framework} has several versions, pass one of: {_options([*versions, *aliases])}")
    elif version in versions or version in aliases:
        resolved = aliases.get(version, version)
    else:
        raise ValueError(
            f"image_uri: {framework} has no version {version!r} in the SageMaker SDK's image table "
            f"({_config_path(framework)}); versions: {_options([*versions, *aliases])}"
        )
    version_config: dict[str, Any] = versions[resolved]

    py_version = _py_version(framework, resolved, version_config)
    if py_version is not None and "repository" not in version_config:
        version_config = version_config[py_version]

    registries: dict[str, str] = version_config["registries"]
    if region not in registries:
        raise ValueError(
            f"image_uri: no {framework} image{f' version {resolved}' if resolved else ''} in region {region!r}; "
            f"regions with one: {_options(registries)}"
        )
    processor = _processor(
        framework, instance_type, family, config.get("processors") or version_config.get("processors")
    )
    container_version = None
    if version_config.get("container_version"):
        container_version = version_config["container_version"][processor]
    if not version_config.get("processor_in_tag", True):
        processor = None
    tag_prefix = version_config.get("tag_prefix", resolved)
    tag = "-".join(part for part in (tag_prefix, processor, py_version, container_version) if part)
    repository = version_config["repository"] + (f":{tag}" if tag else "")
    return f"{registries[region]}.dkr.{_ecr_hostname(region)}/{repository}"


def repository_of(uri: str) -> tuple[str, str]:
    """``(account, repository)`` of an ECR image URI (tag or digest dropped).

    >>> repository_of("141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3")
    ('141502667606', 'sagemaker-scikit-learn')
    """
    registry, _, rest = uri.partition("/")
    if not rest or ".dkr.ecr." not in registry:
        raise ValueError(f"not an ECR image URI: {uri!r}")
    return registry.split(".")[0], rest.split(":")[0].split("@")[0]


@functools.cache
def _config_dir() -> Path:
    # find_spec of a subpackage imports only its parent, the "sagemaker" namespace package; the spec gives
    # sagemaker.core's directory without running sagemaker.core/__init__.py.
    try:
        spec = importlib.util.find_spec(_SDK_PACKAGE)
    except ModuleNotFoundError:  # not even the "sagemaker" namespace package
        spec = None
    for location in (spec and spec.submodule_search_locations) or ():
        candidate = Path(location) / _CONFIG_DIR
        if candidate.is_dir():
            return candidate
    raise ValueError(f"image_uri: the SageMaker SDK ({_SDK_PACKAGE}) with its {_CONFIG_DIR}/ is not installed")


def _config_path(framework: str) -> Path:
    return _config_dir() / f"{framework}.json"


@functools.cache
def _framework_config(framework: str) -> dict[str, Any]:
    path = _config_path(framework)
    if not path.is_file():
        raise ValueError(f"image_uri: the SageMaker SDK has no image table for {framework!r} ({path} is missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def _scope_config(framework: str) -> dict[str, Any]:
    """The part of a framework's table that holds ``versions`` (the SDK's scope selection)."""
    config = _framework_config(framework)
    if "scope" in config:  # one table for every scope it lists
        return config
    scope = _DEFAULT_SCOPE.get(framework)
    if scope is None and len(config) == 1:
        scope = next(iter(config))
    if scope not in config:
        raise ValueError(f"image_uri: cannot choose an image scope for {framework!r} among {_options(config)}")
    return config[scope]


def _py_version(framework: str, version: str, version_config: dict[str, Any]) -> str | None:
    available = version_config.get("py_versions") if "repository" in version_config else list(version_config)
    if not available:
        return None
    if len(available) > 1:
        raise ValueError(
            f"image_uri: {framework} {version} has several Python versions ({_options(available)}); "
            "this lookup does not choose one"
        )
    return available[0]


def _processor(framework: str, instance_type: str | None, family: str, available: list[str] | None) -> str | None:
    if not available:
        return None
    if not instance_type:
        if len(available) == 1:
            return available[0]
        raise ValueError(f"image_uri: {framework} needs an instance type to choose among {_options(available)}")
    if instance_type.startswith("local"):
        processor = "cpu" if instance_type == "local" else "gpu"
    elif not family:
        raise ValueError(f"image_uri: invalid SageMaker instance type {instance_type!r} (expected ml.<family>.<size>)")
    elif family in available:
        processor = family
    elif family.startswith(("inf", "trn")):
        processor = family[:3]
    else:
        processor = "gpu" if family[0] in ("g", "p") else "cpu"
    if processor not in available:
        raise ValueError(
            f"image_uri: no {framework} image for {processor} instances ({instance_type}); "
            f"processors: {_options(available)}"
        )
    return processor


def _instance_family(instance_type: str | None) -> str:
    match = _INSTANCE_FAMILY.match(instance_type) if instance_type else None
    return match[1] if match else ""


@functools.cache
def _ecr_hostname(region: str) -> str:
    # As the SDK does (sagemaker.core.common_utils._botocore_resolver): botocore's endpoint table, read with a
    # new loader. Only the hostname is kept: the table is ~23,000 objects that every later full collection
    # of the garbage collector would have to traverse.
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    endpoint = resolver.construct_endpoint("ecr", region)
    if region == "il-central-1" and not endpoint:
        return f"ecr.{region}.amazonaws.com"
    if not endpoint:
        raise ValueError(f"image_uri: botocore knows no ECR endpoint in region {region!r}")
    return str(endpoint["hostname"])


def _options(values: Any) -> str:
    return ", ".join(repr(v) for v in values) or "none"
