"""The stack's configuration: composes each layer's settings section, reads the stack, explains what is wrong.

Each layer declares its own section beside its component (``infra/<layer>/settings.py``, or the top of a
small layer's module) with its cross-field checks; this module only composes them into one frozen
:class:`PlatformConfig` and is the only one that reads Pulumi config.

The stack file (``stacks/Pulumi.<stack>.yaml``) holds one key per top-level field of :class:`PlatformConfig`,
in the ``mlops`` namespace (``mlops:lake``, ``mlops:models``, ...), plus ``aws:region`` and the providers' own
keys (:data:`PROVIDER_NAMESPACES`). Pulumi hands every value to the program as a string (structured values as
JSON); :func:`parse_stack_config` turns that map into one typed object and refuses, before any resource exists,
unknown keys and namespaces, wrong types, out-of-range values and invalid combinations, with a message that names
the key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationError, model_validator

from infra.catalog import CatalogSettings, table_collisions
from infra.datalake import LakeSettings
from infra.featurestore.settings import FeatureStoreSettings, feature_group_problems, resolve_spec
from infra.images.settings import ImagesSettings
from infra.monitoring.settings import MonitoringSettings, monitoring_problems
from infra.naming import S3_RESERVED_PREFIXES, ExtraTags, TagValue
from infra.notifications import AlertSettings
from infra.responders.settings import DeploymentHookSettings
from infra.security import KmsSettings
from infra.serving.settings import ServingSettings, entity_mode_problems, serving_problems
from infra.streaming.settings import streaming_problems
from infra.training.settings import TrainingSettings, new_data_problem
from infra.types import LOG_RETENTION_DAYS, KeyedValueError, LogRetentionDays, Section, sagemaker_text, to_camel

CONFIG_NAMESPACE = "mlops"
"""Pulumi config namespace of the platform (the Pulumi project name)."""
PROVIDER_NAMESPACES = ("aws", "aws-native", "docker-build", "pulumi")
"""The other config namespaces a stack may use: the program's providers (pulumi-aws, pulumi-aws-native,
pulumi-docker-build) and Pulumi's own. A key in any other namespace is a typo (``mlop:tags``) that would be ignored."""

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


@functools.cache
def sagemaker_regions() -> frozenset[str]:
    """Regions with SageMaker, in every partition, from the endpoint data botocore ships (offline)."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sagemaker", partition)
    )


def _known_region(region: str) -> str:
    # An unknown region fails later, deep in the program (no SageMaker image for it); say so here.
    known = sagemaker_regions()
    if region not in known:
        import botocore

        raise ValueError(
            f"not a region with SageMaker (per botocore {botocore.__version__}'s endpoint data; a newer region "
            f"needs a newer botocore); allowed: {', '.join(sorted(known))}"
        )
    return region


def _bucket_prefix(project: str) -> str:
    # Every bucket name starts with the project (S3's "General purpose bucket naming rules" reserve these).
    if project.startswith(S3_RESERVED_PREFIXES):
        raise ValueError(
            f"every bucket name starts with the project, and bucket names starting with "
            f"{', '.join(S3_RESERVED_PREFIXES)} are reserved by S3; choose another project name"
        )
    return project


MODEL_DESCRIPTION_MAX = 960
"""The model registry's description is ``Versions of <model>: <description>``, and SageMaker's
ModelPackageGroupDescription takes 1024 characters: 960 leaves room for the longest model name."""


def one_line(text: str) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x1b``): a key or value from a stack file can neither
    break a problem's line nor forge another one."""
    return "".join(c.encode("unicode_escape").decode("ascii") if not c.isprintable() else c for c in text)


class ConfigError(ValueError):
    """A stack's configuration is invalid. ``problems`` lists one line per bad key."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = [one_line(p) for p in problems]
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration for stack '{stack}':\n{listing}")


class ModelSettings(Section):
    """One model the platform trains, registers, serves and monitors."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$", max_length=24)] = Field(
        description="Model name: lowercase letters, digits and '-', at most 24 characters (it is part of SageMaker names)."
    )
    description: Annotated[str, StringConstraints(max_length=MODEL_DESCRIPTION_MAX), AfterValidator(sagemaker_text)] = (
        Field(
            default="",
            description=f"Free-text description of the model: what it predicts, for whom; at most {MODEL_DESCRIPTION_MAX} "
            "characters on one line (it becomes the model registry's description).",
        )
    )
    feature_spec: str = Field(
        description="Name of the registered feature specification (mlops.features) that feeds this model."
    )
    source_table: str | None = Field(
        default=None,
        description="Name of the catalog table (catalog.tables) holding the model's raw records: its stream updates "
        "the model's online features, and new curated data in it can retrain the model. null: none.",
    )
    feature_store: FeatureStoreSettings = Field(
        default_factory=lambda: FeatureStoreSettings(),
        description="The model's feature group: online and offline stores, online TTL, offline table format.",
    )
    training: TrainingSettings = Field(
        default_factory=lambda: TrainingSettings(),
        description="The model's training pipeline: instances, hyperparameters, quality gate, approval, "
        "registry sharing and retraining schedule.",
    )
    serving: ServingSettings | None = Field(
        default=None,
        description="The model's real-time endpoint: strategy, variants, rollout, capture, network; null: not served.",
    )
    monitoring: MonitoringSettings = Field(
        default_factory=lambda: MonitoringSettings(),
        description="Drift and quality monitoring (the platform's own job, or SageMaker Model Monitor), alarms, "
        "business KPI and alarm-driven retraining (served models only).",
    )

    @model_validator(mode="after")
    def _layers(self) -> ModelSettings:
        """Each layer's cross-field checks, in dependency order (the feature spec first: the others read it)."""
        spec = resolve_spec(self.name, self.feature_spec)
        feature_names = [f.name for f in spec.features]
        for problems in (
            feature_group_problems(self.name, spec, self.feature_store),
            [
                *monitoring_problems(self.name, self.feature_spec, self.monitoring, self.serving, feature_names),
                *(serving_problems(self.name, self.serving) if self.serving is not None else []),
                *entity_mode_problems(self.name, self.serving, self.feature_store, self.monitoring),
            ],
        ):
            if problems:
                raise ValueError("; ".join(problems))
        return self


class PlatformConfig(Section):
    """The whole platform's configuration for one stack (environment)."""

    project: Annotated[
        str,
        StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$", min_length=3, max_length=20),
        AfterValidator(_bucket_prefix),
    ] = Field(
        description="Prefix of every physical name (<project>-<env>-<thing>); S3 names are global, so make it unique "
        "to your organisation (not starting with xn--, sthree- or amzn-s3-demo-, which S3 reserves)."
    )
    environment: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*$", min_length=2, max_length=10)] = Field(
        description="Environment name, second part of every physical name (dev, staging, prod, ...)."
    )
    region: Annotated[str, StringConstraints(pattern=_REGION.pattern), AfterValidator(_known_region)] = Field(
        description="AWS region with SageMaker; read from the 'aws:region' key of the stack."
    )
    owner: Annotated[TagValue, StringConstraints(min_length=1)] = Field(
        description="Owning team (tag 'Owner': letters, digits, spaces and + - = . _ : / @, at most 256)."
    )
    cost_center: Annotated[TagValue, StringConstraints(min_length=1)] = Field(
        description="Cost centre (tag 'CostCenter': letters, digits, spaces and + - = . _ : / @, at most 256)."
    )
    tags: ExtraTags = Field(default_factory=dict, description="Extra tags on every taggable resource.")
    protect_stateful_resources: bool = Field(
        default=True, description="Protect buckets, keys and catalogs: Pulumi refuses to delete them."
    )
    retain_stateful_on_delete: bool = Field(
        default=True, description="Keep buckets, keys and catalogs in AWS when removed from the program."
    )
    production: bool = Field(
        default=False,
        description="Production environment: endpoints must keep rollback alarms (the policy pack adds more checks).",
    )
    log_retention_days: LogRetentionDays = Field(
        default=365, description=f"CloudWatch Logs retention; one of {list(LOG_RETENTION_DAYS)}."
    )
    kms: KmsSettings = Field(default_factory=lambda: KmsSettings(), description="The platform KMS key.")
    lake: LakeSettings = Field(default_factory=lambda: LakeSettings(), description="The S3 data lake.")
    catalog: CatalogSettings = Field(default_factory=lambda: CatalogSettings(), description="The Glue catalog.")
    models: tuple[ModelSettings, ...] = Field(
        default=(), description="Models the platform trains, serves and monitors."
    )
    images: ImagesSettings = Field(
        default_factory=lambda: ImagesSettings(),
        description="The platform's container images (containers/<name>): built and pushed to ECR by `pulumi up`.",
    )
    alerts: AlertSettings = Field(
        default_factory=lambda: AlertSettings(), description="Humans notified of alarms, pipeline results, deployments."
    )
    deployment: DeploymentHookSettings = Field(
        default_factory=lambda: DeploymentHookSettings(),
        description="Deployment dispatched when a model version is approved (it ends in `pulumi up`).",
    )

    @model_validator(mode="after")
    def _combinations(self) -> PlatformConfig:
        if self.protect_stateful_resources and self.lake.force_destroy:
            raise ValueError(
                "lake.forceDestroy=true contradicts protectStatefulResources=true: "
                "a protected lake must not be force-destroyed (set one of them to false)"
            )
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"models declared twice: {dupes}")
        # A model's sourceTable first: the streaming and new-data checks below read the table it names.
        declared = sorted({t.name for t in self.catalog.tables})
        for index, m in enumerate(self.models):
            if m.source_table is not None and m.source_table not in declared:
                raise KeyedValueError(
                    ("models", index, "sourceTable"),
                    f"'{m.source_table}' is not a table declared in catalog.tables; declared: "
                    f"{', '.join(declared) or '(none)'}",
                    m.source_table,
                )
        collisions = table_collisions(self) or streaming_problems(self)
        if collisions:
            raise collisions[0]
        for index, m in enumerate(self.models):
            problem = new_data_problem(index, m.source_table, m.training.retrain_on_new_data, self.catalog.tables)
            if problem is not None:
                raise problem
        new_data = [m.name for m in self.models if m.training.retrain_on_new_data.enabled]
        if self.deployment.reserve_concurrency and new_data:
            # Lambda's SQS event source mapping ignores reserved concurrency and scales to at least 2 concurrent
            # invocations (ScalingConfig.MaximumConcurrency >= 2): with 1 reserved, new-data batches would be
            # throttled back to the queue until they dead-letter, and no retraining would start.
            raise KeyedValueError(
                ("deployment", "reserveConcurrency"),
                f"reserveConcurrency=true reserves one concurrent execution for retrain_on_alarm, but "
                f"training.retrainOnNewData of {', '.join(new_data)} invokes it from an SQS queue at up to 2 at once "
                "(the lowest maximum concurrency Lambda allows for SQS): the extra invocations would be throttled "
                "until the new-data events dead-letter. Set reserveConcurrency=false (the state table's conditional "
                "write already serialises retraining starts) or disable retrainOnNewData",
                True,
            )
        if self.production:
            for m in self.models:
                if m.serving is not None and not m.serving.rollout.rollback_alarms:
                    raise ValueError(
                        f"model '{m.name}': serving.rollout.rollbackAlarms=false is not allowed with production=true "
                        "(a production endpoint update must roll back on errors and latency)"
                    )
        return self

    def model(self, name: str) -> ModelSettings:
        """The settings of the model called ``name`` (KeyError if absent)."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


# --- reading the stack -----------------------------------------------------------------------


def _expects_plain_string(annotation: Any) -> bool:
    """True when a top-level field takes a plain string (Pulumi passes it unquoted)."""
    if annotation is str:
        return True
    if get_origin(annotation) is Annotated:
        return _expects_plain_string(get_args(annotation)[0])
    if get_origin(annotation) is Literal:
        return all(isinstance(a, str) for a in get_args(annotation))
    return False


def plain_string_keys() -> frozenset[str]:
    """The full keys whose value is a plain string (``mlops:project``, ``aws:region``, ...), not JSON."""
    return frozenset(
        "aws:region" if name == "region" else f"{CONFIG_NAMESPACE}:{_alias_of(name)}"
        for name, field in PlatformConfig.model_fields.items()
        if _expects_plain_string(field.annotation)
    )


def _alias_of(field_name: str) -> str:
    return to_camel(field_name)


_QUOTE_HINT = (
    "expected a string; YAML reads unquoted yes/no/on/off/true/false as booleans and null or ~ as null: quote the value"
)


def _suggestion(word: str, candidates: list[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def _format_error(err: Any, raw: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err["loc"] if p != "[key]"]
    value = err.get("input")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedValueError):  # a problem below the validated key (a map entry, a table)
        loc += [str(p) for p in cause.path]
        value = cause.value if cause.value is not KeyedValueError.NO_VALUE else {}
        msg = cause.message
    key = f"{CONFIG_NAMESPACE}:{'.'.join(loc)}" if loc else f"{CONFIG_NAMESPACE}"
    if loc == ["region"]:
        key = "aws:region"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}{_suggestion(loc[-1], allowed)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "string_type" and (value is None or isinstance(value, bool)):
        msg = _QUOTE_HINT
    if isinstance(value, Mapping):  # a rule over several keys: the message names them and their values
        return f"{key}: {msg}"
    shown = json.dumps(value, default=str)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return f"{key}: got {shown}; {msg}"


def _allowed_keys(loc: list[str]) -> list[str]:
    """The camelCase keys the model accepts at ``loc`` (a path of aliases, indexes and dict keys)."""
    model: Any = PlatformConfig
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            break
        field = next((f for n, f in model.model_fields.items() if _alias_of(n) == part), None)
        if field is None:
            continue  # a list index or dict key: stay on the element model resolved below
        model = nested_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(_alias_of(n) for n in model.model_fields)
    return []


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The config section class inside a field's annotation (``tuple[TableSpec, ...]`` → ``TableSpec``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def parse_stack_config(values: Mapping[str, str], stack: str) -> PlatformConfig:
    """Turn a stack's config map (Pulumi's ``namespace:key`` → string form) into a ``PlatformConfig``.

    Keys outside the ``mlops`` namespace must belong to a provider (:data:`PROVIDER_NAMESPACES`); they are left to
    it. Raises :class:`ConfigError` listing every problem (key, bad value, what is allowed).
    """
    problems: list[str] = []
    fields = PlatformConfig.model_fields
    by_alias = {_alias_of(name): name for name in fields}
    namespaces = [CONFIG_NAMESPACE, *PROVIDER_NAMESPACES]
    data: dict[str, Any] = {}
    unreadable = False  # a value could not be read: its default would stand in for it and mislead the checks
    for full_key, raw in sorted(values.items()):
        namespace, colon, key = full_key.partition(":")
        if not (colon and namespace and key):
            shown = full_key if full_key.strip() else json.dumps(full_key)
            problems.append(
                f"{shown}: not a <namespace>:<key> configuration key; write {CONFIG_NAMESPACE}:<key> for the "
                f"platform's keys or <provider>:<key> for a provider's ({', '.join(PROVIDER_NAMESPACES)})"
            )
            continue
        if namespace != CONFIG_NAMESPACE:
            if namespace not in PROVIDER_NAMESPACES:
                close = difflib.get_close_matches(namespace, namespaces, n=1)
                problems.append(
                    f"{full_key}: unknown namespace '{namespace}' (neither the platform nor a provider reads it)"
                    f"{f'; did you mean {close[0]}:{key}?' if close else ''}; known namespaces: {', '.join(namespaces)}"
                )
            continue
        if key == "region":
            problems.append(f"{full_key}: unknown key; the region is read from 'aws:region'")
            continue
        if key not in by_alias:
            allowed = sorted(a for a in by_alias if a != "region")
            problems.append(
                f"{full_key}: unknown key; allowed keys: {', '.join(allowed)}"
                f"{_suggestion(key, allowed, CONFIG_NAMESPACE + ':')}"
            )
            continue
        annotation = fields[by_alias[key]].annotation
        if isinstance(raw, str) and not _expects_plain_string(annotation):
            try:
                data[key] = json.loads(raw)
            except (ValueError, RecursionError):  # not JSON, an integer too long to read, nested too deeply
                problems.append(f"{full_key}: got {raw!r}; expected a {_describe(annotation)} (JSON/YAML value)")
                unreadable = True
                continue
        else:
            data[key] = raw
    region = values.get("aws:region")
    if region is not None:
        data["region"] = region
    if unreadable:
        raise ConfigError(stack, problems)
    try:
        # JSON mode keeps strict typing (no "3" -> 3) while accepting arrays for tuple fields. Unknown keys are
        # left out (they set nothing), so their problems and the values' are reported at once.
        config = PlatformConfig.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise ConfigError(stack, [*problems, *(_format_error(e, data) for e in exc.errors())]) from None
    except RecursionError:
        raise ConfigError(stack, [*problems, f"{CONFIG_NAMESPACE}: a value is nested too deeply to read"]) from None
    if problems:
        raise ConfigError(stack, problems)
    return config


def _describe(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if origin in (tuple, list):
        return "list"
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "mapping"
    return str(annotation)


def load_config() -> PlatformConfig:
    """Read and validate the current stack's config from the Pulumi runtime (the real ``pulumi up`` path)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    values: dict[str, str] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse_stack_config(values, pulumi.get_stack())


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the stack config (published as ``docs/config.schema.json``)."""
    return PlatformConfig.model_json_schema(by_alias=True)
