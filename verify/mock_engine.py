"""Run the Pulumi program for a stack under Pulumi's mock engine: no CLI, no cloud, no credentials.

This is how the offline plan (``python -m verify.plan``), the unit tests and the benchmarks run the real
program (``infra.platform.program``). The mocks return the computed attributes AWS would (``arn``,
``id``, ``bucket``, ...), and a recording monitor keeps each registration with its parent and its
``protect``/``retainOnDelete`` options, which the plain mock monitor does not expose.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import CONFIG_NAMESPACE, ConfigError, PlatformConfig, parse_stack_config, plain_string_keys
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
    """A stack file's ``config:`` block in the form Pulumi hands it to the program (strings, JSON for objects).

    Raises ``FileNotFoundError`` when the file does not exist, and :class:`infra.config.ConfigError` naming the file
    or the key when it cannot be used: not UTF-8, not YAML, not a mapping with a ``config`` mapping, a key given
    twice, aliases expanding beyond :data:`MAX_EXPANDED_NODES` (a "billion laughs" file), nesting deeper than
    :data:`MAX_DEPTH`, or a value YAML reads as something no key takes (a date, a boolean where a string belongs).
    """
    path = path or STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path}; stacks: {', '.join(stack_names())}")
    try:
        root, document = _load_stack_file(path)
    except _UnusableFileError as error:
        raise ConfigError(stack, [f"{path}: {error}"]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(stack, [f"{path}: the document must be a mapping with a 'config' key, got {_kind(document)}"])
    raw = document.get("config")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            stack, [f"{path}: 'config' must be a mapping of <namespace>:<key> to values, got {_kind(raw)}"]
        )
    problems: list[str] = []
    values: dict[str, str] = {}
    strings = plain_string_keys()
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"{path}: config key {_shown(key)} is not a string; quote it")
        elif key in strings and not isinstance(value, str):
            text = _source_text(root, key)
            if _reads_as_written(value, text):
                values[key] = str(text)  # costCenter: 4711 is the string Pulumi passes, "4711"
            else:
                problems.append(_not_a_string(key, value, text))
        else:
            values[key] = to_pulumi_string(_plain(value, key if key.strip() else json.dumps(key), problems))
    if problems:
        raise ConfigError(stack, problems)
    return values


MAX_STACK_FILE_BYTES = 1 << 20
"""Largest stack file read (the example stacks hold a few kilobytes)."""
MAX_EXPANDED_NODES = 50_000
"""Most YAML values a stack file may hold once its aliases are expanded (the example stacks hold a few hundred):
a few lines of nested aliases otherwise expand to gigabytes when the values are handed on as JSON."""
MAX_DEPTH = 64
"""Deepest nesting of a stack file's values (the config model nests about ten levels)."""


class _UnusableFileError(Exception):
    """The file cannot be a stack file (the message says why, without the path)."""


class _StackFileLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (Pulumi refuses it; PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                identity = (key_node.tag, key_node.value)
                if identity in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"{key_node.value}: given twice (lines {seen[identity]} and {line})",
                        key_node.start_mark,
                    )
                seen[identity] = line
        return super().construct_mapping(node, deep=deep)


def _load_stack_file(path: Path) -> tuple[yaml.Node | None, Any]:
    """The file's YAML node graph and document, once the graph is known to be small, acyclic and shallow."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_STACK_FILE_BYTES + 1)
    except IsADirectoryError:
        raise _UnusableFileError("is a directory, not a stack file") from None
    except OSError as error:
        raise _UnusableFileError(f"cannot be read: {error.strerror or error}") from None
    if len(data) > MAX_STACK_FILE_BYTES:
        raise _UnusableFileError(f"larger than {MAX_STACK_FILE_BYTES} bytes: not a stack file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = data[error.start : error.start + 1]
        raise _UnusableFileError(
            f"not UTF-8 text (byte {error.start} is {byte!r}; UTF-16 or binary?): save it as UTF-8"
        ) from None
    loader: _StackFileLoader | None = None
    try:
        loader = _StackFileLoader(text)  # refuses non-printable characters at once
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_expansion(root)
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise _UnusableFileError(f"not valid YAML: {error.problem or error.context}{where}") from None
    except yaml.YAMLError as error:
        raise _UnusableFileError(f"not valid YAML: {error}") from None
    except (ValueError, OverflowError) as error:  # a scalar PyYAML cannot construct, e.g. an integer of 5,000 digits
        raise _UnusableFileError(f"not valid YAML: {error}") from None
    except RecursionError:
        raise _UnusableFileError(f"nested too deeply (allowed: {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that is cyclic, deeper than MAX_DEPTH or larger than MAX_EXPANDED_NODES once every alias
    is expanded. Iterative, and each node is sized once, so a hostile file costs no more than its own size."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    pending: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while pending:
        node, depth, finished = pending.pop()
        children = _children(node)
        line = node.start_mark.line + 1
        if finished:
            on_path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_EXPANDED_NODES:
                raise _UnusableFileError(
                    f"its aliases expand to more than {MAX_EXPANDED_NODES} values (line {line}); a stack file holds "
                    "a few hundred: write the values out, or use fewer nested aliases"
                )
        elif id(node) in on_path:
            raise _UnusableFileError(f"an alias refers to a value that contains it (line {line})")
        elif depth > MAX_DEPTH:
            raise _UnusableFileError(f"nested deeper than {MAX_DEPTH} levels (line {line})")
        elif id(node) not in sizes:
            on_path.add(id(node))
            pending.append((node, depth, True))
            pending.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _source_text(root: yaml.Node | None, key: str) -> str | None:
    """The text a top-level config key's value has in the file (``on``, ``2024-01-01``), for messages."""
    if not isinstance(root, yaml.MappingNode):
        return None
    config = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "config"), None)
    if not isinstance(config, yaml.MappingNode):
        return None
    found = next((v for k, v in config.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return found.value if isinstance(found, yaml.ScalarNode) else None


def _kind(value: Any) -> str:
    """What YAML made of a value, for messages: ``the YAML boolean true``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the YAML boolean {json.dumps(value)}"
    if isinstance(value, datetime.datetime):
        return f"the YAML timestamp {value.isoformat(sep=' ')}"
    if isinstance(value, datetime.date):
        return f"the YAML date {value.isoformat()}"
    if isinstance(value, int | float):
        return f"the YAML number {json.dumps(value)}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes):
        return "YAML binary data"
    if isinstance(value, set | frozenset):
        return "a YAML set"
    return f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)


def _reads_as_written(value: Any, text: str | None) -> bool:
    """True for a number YAML reads exactly as it is written (``4711``), which Pulumi passes as that string; not for
    the ones YAML 1.1 reinterprets (``0755`` is octal, ``1_000`` is 1000, ``1.0e+3`` is 1000.0)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and text == to_pulumi_string(value)


def _not_a_string(key: str, value: Any, text: str | None) -> str:
    """A top-level key that takes a string got another YAML value: say what YAML read, and how to quote it."""
    if isinstance(value, dict | list | tuple):
        return f"{key}: got {_kind(value)}; expected a string"
    if value is None and not text:
        return f"{key}: got null (the value is empty); expected a string"
    quoted = f"'{text}'" if text is not None else "the value"
    if value is None:
        return (
            f"{key}: got null; expected a string (YAML reads null and ~ as null): quote {quoted} if you mean the word"
        )
    return (
        f"{key}: got {_kind(value)}; expected a string: YAML 1.1 reads unquoted yes/no/on/off/true/false as booleans, "
        f"numbers and dates as such: quote it, {quoted}"
    )


def _plain(value: Any, where: str, problems: list[str]) -> Any:
    """``value`` as JSON can hold it; YAML dates, binary data, sets and non-string keys become problems at
    ``where`` (``mlops:models.0.description``)."""
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                plain[key] = _plain(item, f"{where}.{key}", problems)
            else:
                problems.append(
                    f"{where}: key {_shown(key)} is not a string ({_kind(key)}); quote it, e.g. '{_shown(key)}'"
                )
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}.{index}", problems) for index, item in enumerate(value)]
    if isinstance(value, datetime.date):  # and datetime
        text = value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
        problems.append(f"{where}: got {_kind(value)}; if it is a string, quote it: '{text}'")
        return None
    if isinstance(value, bytes | set | frozenset):
        problems.append(f"{where}: got {_kind(value)}; no key takes it (write a string or a list)")
        return None
    return value


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


@contextlib.contextmanager
def _without_source_positions() -> Iterator[None]:
    """Skip the SDK's capture of where each resource was declared, for the length of one offline run.

    The SDK walks the whole Python stack (``traceback.extract_stack``) at every registration so that the engine can
    show the declaring line; the mocks never read it. Under a deep caller (pytest, the policy runner) that walk
    was a quarter of a program's CPU. Registration itself is unchanged: it receives an empty trace, which the SDK
    sends when it finds no user frame.
    """
    capture = runtime_resource._get_stack_trace  # pyright: ignore[reportPrivateUsage]
    runtime_resource._get_stack_trace = source_pb2.StackTrace  # pyright: ignore[reportPrivateUsage]
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = capture  # pyright: ignore[reportPrivateUsage]


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

    with _without_source_positions():
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
