"""Run the Pulumi program for a stack under Pulumi's mock engine: no CLI, no cloud, no credentials.

This is how the offline plan (``python -m verify.plan``), the unit tests and the benchmarks run the real
program (``infra.platform.program``). The mocks return the computed attributes AWS would (``arn``,
``id``, ``bucket``, ...), and a recording monitor keeps each registration with its parent and its
``protect``/``retainOnDelete`` options, which the plain mock monitor does not expose.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import CONFIG_NAMESPACE, PlatformConfig, parse_stack_config
from infra.images.registry import ImageSource, OfflineImages
from infra.model_versions import ModelVersionSource, OfflineVersions
from infra.serving.fleet import FleetSource, NoFleet

ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = ROOT / "stacks"
PROJECT = "mlops"
MOCK_ACCOUNT_ID = "123456789012"


def stack_names() -> list[str]:
    """Every stack that has a file in ``stacks/``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def read_stack_values(stack: str, path: Path | None = None) -> dict[str, str]:
    """A stack file's ``config:`` block in the form Pulumi hands it to the program (strings, JSON for objects)."""
    path = path or STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path}; stacks: {', '.join(stack_names())}")
    document = yaml.safe_load(path.read_text()) or {}
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: 'config' must be a mapping")
    return {key: to_pulumi_string(value) for key, value in raw.items()}


def to_pulumi_string(value: Any) -> str:
    """How the Pulumi CLI passes one config value to a program."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def apply_overrides(values: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, str]:
    """Replace top-level keys (``"mlops:lake"`` or ``"lake"``) with new values; ``None`` deletes a key."""
    merged = dict(values)
    for key, value in overrides.items():
        full = key if ":" in key else f"{CONFIG_NAMESPACE}:{key}"
        if value is None:
            merged.pop(full, None)
        else:
            merged[full] = to_pulumi_string(value)
    return merged


# ---------------------------------------------------------------------------------------------
# Mocks


def _fake_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def _service(type_token: str) -> str:
    # "aws:s3/bucket:Bucket" -> "s3"
    module = type_token.split(":")[1] if type_token.count(":") >= 2 else "x"
    return module.split("/")[0]


class PlatformMocks(pulumi.runtime.Mocks):
    """Returns what AWS would compute for each resource, deterministically."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if not args.custom:
            return f"{args.name}-component", state
        typ, region, account = args.typ, self.region, MOCK_ACCOUNT_ID
        physical = str(
            state.get("name")
            or state.get("bucket")
            or state.get("featureGroupName")
            or state.get("pipelineName")
            or state.get("modelPackageGroupName")
            or state.get("functionName")
            or state.get("alarmName")
            or f"{args.name}-{_fake_id(typ, args.name)[:7]}"
        )
        resource_id = physical
        svc = _service(typ)
        arn = f"arn:aws:{svc}:{region}:{account}:{typ.split(':')[-1].lower()}/{physical}"
        if typ == "aws:s3/bucket:Bucket":
            state.update(
                bucket=physical,
                bucketDomainName=f"{physical}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{physical}.s3.{region}.amazonaws.com",
                region=region,
            )
            arn = f"arn:aws:s3:::{physical}"
        elif typ == "aws:kms/key:Key":
            resource_id = _fake_id(typ, args.name)
            state["keyId"] = resource_id
            arn = f"arn:aws:kms:{region}:{account}:key/{resource_id}"
        elif typ == "aws:kms/alias:Alias":
            arn = f"arn:aws:kms:{region}:{account}:{physical}"
            state["targetKeyArn"] = f"arn:aws:kms:{region}:{account}:key/{state.get('targetKeyId', '')}"
        elif typ.startswith("aws:iam/"):
            kind = typ.split(":")[-1].lower()
            arn = f"arn:aws:iam::{account}:{kind}/{physical}"
            state.setdefault("uniqueId", _fake_id(typ, args.name).upper())
        elif typ == "aws:glue/catalogDatabase:CatalogDatabase":
            arn = f"arn:aws:glue:{region}:{account}:database/{physical}"
            resource_id = f"{account}:{physical}"
        elif typ == "aws:glue/catalogTable:CatalogTable":
            arn = f"arn:aws:glue:{region}:{account}:table/{state.get('databaseName')}/{physical}"
        elif typ == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
            arn = f"arn:aws:sqs:{region}:{account}:{physical}"
            resource_id = state["url"]
        elif typ == "aws:sns/topic:Topic":
            arn = f"arn:aws:sns:{region}:{account}:{physical}"
            resource_id = arn
        elif typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            state["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
            state["qualifiedArn"] = f"{arn}:$LATEST"
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            arn = f"arn:aws:events:{region}:{account}:rule/{physical}"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            arn = f"arn:aws:logs:{region}:{account}:log-group:{physical}"
        elif typ == "aws:dynamodb/table:Table":
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{physical}"
            state["streamArn"] = ""
        elif typ == "aws:ecr/repository:Repository":
            arn = f"arn:aws:ecr:{region}:{account}:repository/{physical}"
            state.update(registryId=account, repositoryUrl=f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}")
        elif typ == "docker-build:index:Image":
            # What a push reports: the manifest's digest (here a hash of the tags, which hold the content hash).
            tags = [str(t) for t in state.get("tags") or []]
            state["digest"] = "sha256:" + hashlib.sha256("\n".join(tags).encode()).hexdigest()
            state["ref"] = f"{tags[0].rsplit(':', 1)[0]}@{state['digest']}" if tags else ""
            resource_id = state["digest"]
        elif svc == "sagemaker":
            kind = {
                "FeatureGroup": "feature-group",
                "Pipeline": "pipeline",
                "ModelPackageGroup": "model-package-group",
                "EndpointConfiguration": "endpoint-config",
                "DataQualityJobDefinition": "data-quality-job-definition",
                "MonitoringSchedule": "monitoring-schedule",
            }.get(typ.split(":")[-1], typ.split(":")[-1].lower())
            arn = f"arn:aws:sagemaker:{region}:{account}:{kind}/{physical.lower()}"
        state.setdefault("arn", arn)
        state.setdefault("id", resource_id)
        state.setdefault("name", physical)
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        function = args.token
        if function == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/offline",
                "userId": "OFFLINE",
                "id": MOCK_ACCOUNT_ID,
            }
        if function == "aws:index/getRegion:getRegion":
            return {
                "name": self.region,
                "region": self.region,
                "id": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
            }
        if function == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            # Not a credential: the offline engine pushes nothing.
            return {"userName": "AWS", "password": "offline", "authorizationToken": "", "id": self.region}
        if function == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
        return dict(args.args)


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program registered, with the options a plain mock does not expose."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    dependencies: tuple[str, ...] = ()
    """URNs this resource waits for (``depends_on`` and the resources behind its input outputs)."""
    component: str = "stack"
    """The top-level component this resource lives under (``mlops:lake:DataLake``), or ``stack``."""
    delete_before_replace: bool | None = None
    """``delete_before_replace`` as the program set it; ``None`` when left to the provider's default."""
    replace_with: tuple[str, ...] = ()
    """URNs whose replacement replaces this resource too (``replace_with``)."""


class RecordingMonitor(runtime_mocks.MockMonitor):
    """A mock monitor that also records parent, protect, retainOnDelete, deleteBeforeReplace and replaceWith of every
    registration."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.options: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        self.options[response.urn] = {
            "parent": request.parent,
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            "dependencies": tuple(request.dependencies),
            "delete_before_replace": bool(request.deleteBeforeReplace) if request.deleteBeforeReplaceDefined else None,
            "replace_with": tuple(request.replace_with),
            "custom": bool(request.custom),
            "type": request.type,
            "name": request.name,
            "inputs": rpc.deserialize_properties(request.object),
        }
        return response


@dataclass(frozen=True)
class OfflinePlan:
    """Everything one offline run produced."""

    stack: str
    config: PlatformConfig
    resources: tuple[PlannedResource, ...]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> PlannedResource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]

    def custom(self) -> Iterator[PlannedResource]:
        return (r for r in self.resources if r.custom)


def _ensure_event_loop() -> None:
    """The SDK registers resources on the thread's current loop; ``asyncio.run`` elsewhere may have closed it."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if not loop.is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    values: Mapping[str, str] | None = None,
    versions: ModelVersionSource | None = None,
    fleet: FleetSource | None = None,
    images: ImageSource | None = None,
) -> OfflinePlan:
    """Run the platform program for ``stack`` under mocks and return what it registered.

    ``values`` replaces the stack file (Pulumi's string form); ``overrides`` replaces top-level keys.
    ``versions`` answers "which model version does each endpoint serve"; default: every group has two
    approved versions, so ``latest`` is 2 and ``previous`` is 1 (:class:`infra.model_versions.OfflineVersions`).
    ``fleet`` answers "what does each endpoint run now"; default: no endpoint exists
    (:class:`infra.serving.fleet.NoFleet`). ``images`` answers "which image builds are in ECR"; default: none
    (:class:`infra.images.registry.OfflineImages`), so every image is built.
    Config is validated first: a :class:`infra.config.ConfigError` is raised before any resource exists.
    """
    from infra import platform  # imported late: the program module imports pulumi_aws

    base = dict(values) if values is not None else read_stack_values(stack)
    merged = apply_overrides(base, overrides or {})
    config = parse_stack_config(merged, stack)  # fail before the engine starts

    _ensure_event_loop()
    mocks = PlatformMocks(config.region)
    monitor = RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(merged))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    engine_settings: Any = runtime_settings.SETTINGS  # typed loosely by the SDK's decorator
    engine_settings.rpc_manager.clear()
    engine_settings.outputs.clear()

    resolved: dict[str, Any] = {}

    def program() -> None:
        outputs = platform.program(
            versions or OfflineVersions(region=config.region, account_id=MOCK_ACCOUNT_ID),
            fleet or NoFleet(),
            images or OfflineImages(),
        )

        def keep(values: dict[str, Any]) -> None:
            resolved.update(values)

        pulumi.Output.all(**outputs).apply(keep)

    _sync_await(run_pulumi_func(program))

    def top_component(urn: str) -> str:
        chain = [urn]
        while (parent := monitor.options.get(chain[-1], {}).get("parent", "")) and parent in monitor.resources:
            chain.append(parent)
        top = chain[-1]
        return str(monitor.options[top]["type"]) if not monitor.options[top]["custom"] else "stack"

    resources = []
    for urn, registration in monitor.resources.items():
        opts = monitor.options.get(urn, {})
        resources.append(
            PlannedResource(
                urn=urn,
                type=opts.get("type", urn.split("::")[2].split("$")[-1]),
                name=opts.get("name", urn.split("::")[-1]),
                custom=opts.get("custom", True),
                parent=opts.get("parent", ""),
                inputs=dict(opts.get("inputs") or {}),
                state=dict(registration.state or {}),
                protect=opts.get("protect", False),
                retain_on_delete=opts.get("retain_on_delete", False),
                dependencies=tuple(opts.get("dependencies", ())),
                component=top_component(urn),
                delete_before_replace=opts.get("delete_before_replace"),
                replace_with=tuple(opts.get("replace_with", ())),
            )
        )
    return OfflinePlan(stack=stack, config=config, resources=tuple(resources), outputs=resolved)
