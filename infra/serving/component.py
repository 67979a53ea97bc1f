"""Serving: one SageMaker real-time endpoint per served model, with every rollout strategy of the config.

- What is served: each variant's model package version, resolved once at ``pulumi up`` time
  (:mod:`infra.model_versions`) from its ``modelVersion``: ``latest`` (the latest ``Approved`` version of the
  model's package group), ``previous`` (the ``Approved`` version before it) or a pinned ARN. A group without an
  approved version gets no endpoint yet (a warning says what to do); the approval responder's deployment
  creates it on the next ``pulumi up``. While only one version is approved, ``previous`` serves that one (with
  a warning) rather than dropping the variant: the endpoint keeps its variant names, which blue/green updates
  require. Variants that serve the same version get a warning (their comparison cannot show a difference).
- Strategies (``serving.strategy``): ``single`` (one production variant), ``ab`` (weighted production
  variants), ``shadow`` (one production variant plus one shadow variant that receives a copy of the traffic;
  AWS accepts exactly one of each) and ``serverless`` (one variant, no instances, no capture, no VPC).
- Updates are blue/green deployments of ONE stable endpoint: endpoint configurations are immutable, so each
  change creates a new one under a new content-derived name (the old one is retained until
  ``tools/check_rollout.py --prune`` verifies the rollout) and the endpoint, whose name never changes, is
  updated in place with SageMaker deployment guardrails
  (all-at-once, canary or linear traffic shifting, bake time, automatic rollback on this component's alarms).
- Rollback alarms (``rollout.rollbackAlarms``, defined in :mod:`infra.alarms`): the endpoint's 5xx rate over
  every production variant and the highest variant p99 ``ModelLatency``. Their names depend on the model only,
  so neither a model version update nor a new variant changes the endpoint's (replace-only) alarm list.
- Data capture into ``s3://<monitoring bucket>/<model>/data-capture``, encrypted with the platform key.
- Request mode (``serving.requestMode``): in ``entity`` mode each model's container gets the environment that
  switches the inference server to online lookups (:mod:`infra.serving.environment`), and the execution role may
  call ``sagemaker:GetRecord`` on the model's feature group only.
- Target-tracking autoscaling of production variants (``SageMakerVariantInvocationsPerInstance``); how
  updates and autoscaling interact: :mod:`infra.serving.rollout`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pulumi
import pulumi_aws as aws

from infra import alarms, iam
from infra.foundation import Foundation
from infra.model_versions import LATEST, PREVIOUS, DeployableVersion
from infra.naming import Kind, ModelNames
from infra.serving.environment import container_environment, environment_problems
from infra.serving.fleet import rollout_instance_count
from infra.serving.iam import CAPTURE_PREFIX, execution_role
from infra.serving.rollout import autoscaling, deployment_config
from infra.serving.settings import AutoscalingSettings, ServingSettings, VariantSettings, has_local_storage

if TYPE_CHECKING:
    from infra.context import StackContext

SERVERLESS_VARIANT = "serverless"
"""Variant name of a serverless endpoint's only variant (stable across updates)."""

CAPTURE_CONTENT_TYPES = {"csv": ["text/csv"], "json": ["application/json"]}
"""Content types captured as text (others would be base64-encoded); the inference container accepts both."""


@dataclass(frozen=True, kw_only=True)
class ServingArgs:
    """Inputs of :class:`Serving`: the model's names and serving settings.

    What each variant serves is read from the registry group ``names.package_group`` (a plain string: the
    registry is read while the program builds the graph, so it cannot be an output).
    """

    context: StackContext
    foundation: Foundation
    names: ModelNames
    settings: ServingSettings
    image_repository_arn: pulumi.Input[str]
    """The ECR repository of the inference image the registered versions name (the role pulls only there)."""
    feature_group_arn: pulumi.Input[str] | None = None
    """The model's feature group (the feature store layer's output): in entity mode the role reads only it."""


@dataclass(frozen=True)
class ServedEndpoint:
    """What the monitoring layer needs of an endpoint: what it watches and the rollout's alarm thresholds."""

    name: pulumi.Output[str]
    variant_names: tuple[str, ...]  # production variants (a shadow variant answers no client)
    data_capture_uri: pulumi.Output[str] | None  # None for serverless endpoints and when capture is off
    served_version_arn: str | None
    """The model package the primary production variant serves (its drift baselines are the monitors')."""
    latency_p99_ms_threshold: int
    error_rate_percent_threshold: float


@dataclass(frozen=True)
class _Variant:
    """One variant to serve: its settings (``None`` for serverless) and the resolved package version."""

    name: str
    settings: VariantSettings | None
    package_arn: str
    shadow: bool = False


def _scaling(variant: _Variant) -> AutoscalingSettings | None:
    """The autoscaling of a production variant (``None`` for shadow, serverless and fixed-size ones)."""
    return None if variant.shadow or variant.settings is None else variant.settings.autoscaling


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:10]


class Serving(pulumi.ComponentResource):
    """A model's endpoint: models per variant, endpoint config, endpoint, rollback alarms, autoscaling.

    Outputs (attributes): ``endpoint_name`` (``None`` until the group has an approved version),
    ``endpoint_arn``, ``variant_names`` (production variants), ``shadow_variant_name``,
    ``rollback_alarm_names``, ``data_capture_uri`` (``None`` without capture), ``served_versions``
    (variant → model package ARN), ``role_arn``.
    Raises ``infra.naming.NamingError`` at preview when a derived name breaks AWS's limits, and whatever the
    version source raises for a pinned ARN that does not exist.
    """

    endpoint: aws.sagemaker.Endpoint | None
    endpoint_name: pulumi.Output[str] | None
    endpoint_arn: pulumi.Output[str] | None
    endpoint_config: aws.sagemaker.EndpointConfiguration | None
    models: dict[str, aws.sagemaker.Model]
    variant_names: tuple[str, ...]
    shadow_variant_name: str | None
    rollback_alarms: list[aws.cloudwatch.MetricAlarm]
    rollback_alarm_names: list[str]
    data_capture_uri: pulumi.Output[str] | None
    served_versions: dict[str, str]
    scalable_targets: dict[str, aws.appautoscaling.Target]
    role: aws.iam.Role | None
    role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:Serving", name, None, opts)
        serving = args.settings
        self._settings = serving
        self._environment: dict[str, str] = {}
        self.endpoint = None
        self.endpoint_name = None
        self.endpoint_arn = None
        self.endpoint_config = None
        self.models = {}
        self.variant_names = ()
        self.shadow_variant_name = None
        self.rollback_alarms = []
        self.rollback_alarm_names = []
        self.data_capture_uri = None
        self.served_versions = {}
        self.scalable_targets = {}
        self.role = None
        self.role_arn = None

        variants = self._resolve(args, serving)
        if variants is not None:
            self._build(name, args, serving, variants)

        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "variant_names": list(self.variant_names),
                "shadow_variant_name": self.shadow_variant_name,
                "rollback_alarm_names": self.rollback_alarm_names,
                "data_capture_uri": self.data_capture_uri,
                "served_versions": self.served_versions,
            }
        )

    @property
    def served(self) -> ServedEndpoint | None:
        """The endpoint as the monitoring layer sees it; ``None`` until a version is approved (no endpoint)."""
        if self.endpoint_name is None:
            return None
        rollout = self._settings.rollout
        return ServedEndpoint(
            name=self.endpoint_name,
            variant_names=self.variant_names,
            data_capture_uri=self.data_capture_uri,
            served_version_arn=self.served_versions.get(self.variant_names[0]),
            latency_p99_ms_threshold=rollout.latency_p99_ms_threshold,
            error_rate_percent_threshold=rollout.error_rate_percent_threshold,
        )

    # --- what to serve ----------------------------------------------------------------------------

    def _resolve(self, args: ServingArgs, serving: ServingSettings) -> list[_Variant] | None:
        """Each variant with its model package ARN, or ``None`` (and a warning) when one has no version yet.

        ``previous`` while the group has a single approved version serves that version, with a warning, instead
        of dropping the variant: SageMaker's blue/green updates need the new endpoint config to keep the old
        variant names, so a variant that vanished at the first approval could not come back with a guarded update
        at the second (and the rollback alarms, scalable targets and per-variant monitoring would change twice).
        """
        group, model = args.names.package_group, args.names.model
        # (variant name, its settings key, settings, selector, shadow)
        wanted: list[tuple[str, str, VariantSettings | None, str, bool]]
        if serving.strategy == "serverless":
            selector = serving.serverless.model_version if serving.serverless else LATEST
            wanted = [(SERVERLESS_VARIANT, "serving.serverless", None, selector, False)]
        else:
            wanted = [
                (v.name, f"serving.variants[{i}]", v, v.model_version, False) for i, v in enumerate(serving.variants)
            ]
            if serving.shadow_variant is not None:
                shadow = serving.shadow_variant
                wanted.append((shadow.name, "serving.shadowVariant", shadow, shadow.model_version, True))
        versions = args.context.versions
        resolved: list[tuple[_Variant, DeployableVersion]] = []
        waiting: list[str] = []
        stand_ins: list[str] = []
        for variant_name, key, settings, selector, shadow in wanted:
            version = versions.resolve(group, selector)
            if version is None and selector == PREVIOUS:
                version = versions.resolve(group, LATEST)
                if version is not None:
                    stand_ins.append(variant_name)
                    pulumi.log.warn(
                        f"model '{model}': variant '{variant_name}' asks for the previous Approved version "
                        f"({key}.modelVersion=previous), but model package group '{group}' has only one Approved "
                        f"version: it serves that one, version {version.version} ({version.arn}), until a second "
                        "version is approved. The variant is kept rather than dropped so the endpoint keeps its "
                        "variant names, which SageMaker's blue/green updates require.",
                        resource=self,
                    )
            if version is None:
                waiting.append(variant_name)
                continue
            resolved.append((_Variant(variant_name, settings, version.arn, shadow), version))
        if waiting:
            pulumi.log.warn(
                f"model '{model}': no endpoint yet: model package group '{group}' has no Approved "
                f"version for variant(s) {', '.join(waiting)}. Approve a version in the registry (then run "
                "`pulumi up` again; the approval responder dispatches it) or pin a model package version ARN in the "
                "variant's modelVersion (serving.variants[].modelVersion, serving.shadowVariant.modelVersion or "
                "serving.serverless.modelVersion) in the stack file.",
                resource=self,
            )
            return None
        self._warn_shared_versions(model, serving, resolved, stand_ins)
        return [variant for variant, _ in resolved]

    def _warn_shared_versions(
        self,
        model: str,
        serving: ServingSettings,
        resolved: list[tuple[_Variant, DeployableVersion]],
        stand_ins: list[str],
    ) -> None:
        """Warn when several variants serve one version: an A/B or shadow test of a version against itself."""
        by_arn: dict[str, list[str]] = {}
        for variant, _ in resolved:
            by_arn.setdefault(variant.package_arn, []).append(variant.name)
        test = "shadow test" if serving.strategy == "shadow" else "A/B test"
        for variant, version in resolved:
            sharing = by_arn[variant.package_arn]
            if len(sharing) < 2 or variant.name != sharing[0]:
                continue  # one warning per shared version
            names = f"{', '.join(sharing[:-1])} and {sharing[-1]} {'both' if len(sharing) == 2 else 'all'}"
            if any(name in stand_ins for name in sharing):
                remedy = " until a second version is approved."  # the selectors differ: nothing to change
            else:
                remedy = ". Give them different modelVersion values (latest, previous or a pinned model package ARN)."
            pulumi.log.warn(
                f"model '{model}': variants {names} serve version {version.version} ({version.arn}), so the "
                f"{test} compares that version with itself{remedy}",
                resource=self,
            )

    # --- resources --------------------------------------------------------------------------------

    def _build(self, name: str, args: ServingArgs, serving: ServingSettings, variants: list[_Variant]) -> None:
        ctx, model = args.context, args.names.model
        tags = ctx.naming.tags(Model=model)
        endpoint_name = args.names.endpoint
        serverless = serving.strategy == "serverless"
        production = [v for v in variants if not v.shadow]
        self.variant_names = tuple(v.name for v in production)
        self.shadow_variant_name = next((v.name for v in variants if v.shadow), None)
        self.served_versions = {v.name: v.package_arn for v in variants}
        capture = serving.data_capture.enabled and not serverless
        if capture:
            self.data_capture_uri = pulumi.Output.concat(
                "s3://", args.foundation.buckets["monitoring"].name, "/", model, "/", CAPTURE_PREFIX
            )

        # Two alarms per endpoint, named after the model only: the endpoint's rollback alarm list is
        # replace-only (AWS and the provider), so it must not change when variants or versions do. The
        # alarms' metric queries cover the current production variants and are updated in place.
        alarm_names = list(args.names.rollback_alarms) if serving.rollout.rollback_alarms else []
        self._environment = container_environment(
            serving, feature_group=args.names.feature_group, region=args.foundation.region
        )
        problems = environment_problems(self._environment)
        if problems:  # fixed names and bounded numbers: only a much longer feature group name could get here
            raise ValueError(f"model '{model}': the model container's environment: {'; '.join(problems)}")
        if serving.request_mode == "entity" and args.feature_group_arn is None:
            raise ValueError(f"model '{model}': serving.requestMode=entity needs ServingArgs.feature_group_arn")
        feature_group_arn = args.feature_group_arn if serving.request_mode == "entity" else None
        role = execution_role(
            f"{name}-role",
            ctx,
            args.foundation,
            args.names,
            serving,
            alarm_names,
            capture,
            tags,
            image_repository_arn=args.image_repository_arn,
            feature_group_arn=feature_group_arn,
            parent=self,
        )
        self.role = role.role
        self.role_arn = role.arn

        for variant in variants:
            self.models[variant.name] = self._model(name, args, serving, variant, role, tags)

        self.rollback_alarms = self._alarms(name, args, endpoint_name, alarm_names, tags)
        self.rollback_alarm_names = alarm_names
        self.endpoint_config = self._endpoint_config(name, args, serving, variants, capture, tags)
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=endpoint_name,
            endpoint_config_name=self.endpoint_config.name,
            deployment_config=deployment_config(serving, self.rollback_alarms),
            tags=tags,
            # The alarms must exist before SageMaker watches them during a deployment.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.rollback_alarms)),
        )
        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn

        for variant in production:
            if variant.settings is not None and variant.settings.autoscaling is not None:
                self.scalable_targets[variant.name] = autoscaling(
                    name,
                    ctx.naming,
                    args.names,
                    variant.name,
                    variant.settings.autoscaling,
                    tags,
                    parent=self,
                    endpoint=self.endpoint,
                )

    def _model(
        self,
        name: str,
        args: ServingArgs,
        serving: ServingSettings,
        variant: _Variant,
        role: iam.ServiceRole,
        tags: dict[str, str],
    ) -> aws.sagemaker.Model:
        """A SageMaker model from the registered package (the package carries the image and model data).

        Its name is derived from everything that defines it, so a new version is a new model, created before
        the old one is deleted, and the endpoint config that references it changes with it. That includes the
        container's environment (every argument of a SageMaker model forces a new one, the environment too):
        switching the request mode or a lookup setting is a new model and a guarded endpoint update. Rows mode
        sets no environment and leaves the digest as it was, so existing models keep their names.
        """
        ctx, model = args.context, args.names.model
        network = serving.network
        instance = serving.strategy != "serverless"
        vpc = bool(network.subnet_ids) and instance
        isolation = network.network_isolation and instance  # serverless endpoints support neither
        environment = self._environment
        fingerprint = _digest(
            variant.name,
            variant.package_arn,
            ",".join(network.subnet_ids) if vpc else "",
            ",".join(network.security_group_ids) if vpc else "",
            str(isolation),
            *([json.dumps(environment, sort_keys=True)] if environment else []),
        )
        return aws.sagemaker.Model(
            f"{name}-model-{variant.name}",
            name=ctx.naming.name(f"{model}-{fingerprint}", Kind.SAGEMAKER),
            execution_role_arn=role.arn,
            # CreateModel takes an Environment beside ModelPackageName (the SageMaker SDK's ModelPackage(env=...)
            # sends exactly this); the package's image and model data stay the registered ones.
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                model_package_name=variant.package_arn, environment=environment or None
            ),
            vpc_config=(
                aws.sagemaker.ModelVpcConfigArgs(
                    subnets=list(network.subnet_ids), security_group_ids=list(network.security_group_ids)
                )
                if vpc
                else None
            ),
            enable_network_isolation=isolation,
            tags=ctx.naming.tags(Model=model, Variant=variant.name),
            # The role's policy first: SageMaker pulls the image and model data as soon as an endpoint uses it.
            # Replaced create-first (the bridge replaces explicitly named resources delete-first by default) and
            # retained: after a silent auto-rollback the endpoint still uses the old model, which
            # tools/check_rollout.py --prune deletes once a rollout is verified.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[role.policy], delete_before_replace=False, retain_on_delete=True
            ),
        )

    def _endpoint_config(
        self,
        name: str,
        args: ServingArgs,
        serving: ServingSettings,
        variants: list[_Variant],
        capture: bool,
        tags: dict[str, str],
    ) -> aws.sagemaker.EndpointConfiguration:
        """The (immutable) endpoint configuration: variants, storage key, data capture.

        Its name is a digest of all its inputs: any change makes a new configuration with a new name, which
        Pulumi creates before deleting the old one (``delete_before_replace=False``: set explicitly, since the
        bridge replaces explicitly named resources delete-first), and the endpoint then switches to it with a
        guarded blue/green update.
        """
        ctx, model, foundation = args.context, args.names.model, args.foundation
        production = [self._production_variant(v, serving) for v in variants if not v.shadow]
        shadows: list[aws.sagemaker.EndpointConfigurationShadowProductionVariantArgsDict] = [
            {
                "variant_name": v.name,
                "model_name": self.models[v.name].name,
                "instance_type": v.settings.instance_type,
                "initial_instance_count": v.settings.instance_count,
                "initial_variant_weight": v.settings.weight,
            }
            for v in variants
            if v.shadow and v.settings is not None
        ]
        instance_types = [v.settings.instance_type for v in variants if v.settings is not None]
        # Storage volumes of instance variants are encrypted with the platform key, unless an instance type
        # has local NVMe storage (hardware-encrypted; AWS refuses a KmsKeyId then). Serverless has no volume.
        storage_key = foundation.key_arn if instance_types and not any(map(has_local_storage, instance_types)) else None
        data_capture: aws.sagemaker.EndpointConfigurationDataCaptureConfigArgsDict | None = None
        if capture:
            data_capture = {
                "enable_capture": True,
                "initial_sampling_percentage": serving.data_capture.sampling_percent,
                "destination_s3_uri": pulumi.Output.concat(
                    "s3://", foundation.buckets["monitoring"].name, "/", model, "/", CAPTURE_PREFIX
                ),
                "kms_key_id": foundation.key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": CAPTURE_CONTENT_TYPES["csv"],
                    "json_content_types": CAPTURE_CONTENT_TYPES["json"],
                },
            }
        inputs: dict[str, Any] = {
            "production_variants": production,
            "shadow_production_variants": shadows,
            "kms_key_arn": storage_key,
            "data_capture_config": data_capture,
        }
        # A digest of the configured values (autoscaling never renames it); the counts: infra.serving.fleet.
        config_name = pulumi.Output.json_dumps(inputs).apply(
            lambda text: ctx.naming.name(f"{model}-{_digest(text)}", Kind.SAGEMAKER)
        )
        live = ctx.fleet.live(args.names.endpoint) if any(_scaling(v) for v in variants) else None
        deployed: list[aws.sagemaker.EndpointConfigurationProductionVariantArgsDict] = []
        for variant, entry in zip([v for v in variants if not v.shadow], production, strict=True):
            scaling = _scaling(variant)
            if scaling is None or live is None or variant.settings is None:
                deployed.append(entry)
                continue
            count = config_name.apply(
                lambda new, v=variant.name, n=variant.settings.instance_count, a=scaling: rollout_instance_count(
                    v, n, a, live, ctx.fleet.config_counts(new)
                )
            )
            deployed.append(
                cast(
                    aws.sagemaker.EndpointConfigurationProductionVariantArgsDict,
                    {**entry, "initial_instance_count": count},
                )
            )
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=config_name,
            production_variants=deployed,
            shadow_production_variants=shadows or None,
            kms_key_arn=storage_key,
            data_capture_config=data_capture,
            tags=tags,
            # Create the new configuration before deleting the old one, which the endpoint runs until
            # UpdateEndpoint finishes (AWS: never delete an endpoint config in use). Explicit: the bridge
            # replaces a resource with an explicit name delete-first by default.
            # Retained too (see the models): pruned by tools/check_rollout.py --prune after a verified rollout.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False, retain_on_delete=True),
        )

    def _production_variant(
        self, variant: _Variant, serving: ServingSettings
    ) -> aws.sagemaker.EndpointConfigurationProductionVariantArgsDict:
        """A production variant: instances and a traffic weight, or a serverless config."""
        model_name = self.models[variant.name].name
        if variant.settings is not None:
            return {
                "variant_name": variant.name,
                "model_name": model_name,
                "instance_type": variant.settings.instance_type,
                "initial_instance_count": variant.settings.instance_count,
                "initial_variant_weight": variant.settings.weight,
            }
        assert serving.serverless is not None  # config validation: strategy serverless needs serving.serverless
        serverless: aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgsDict = {
            "memory_size_in_mb": serving.serverless.memory_size_mb,
            "max_concurrency": serving.serverless.max_concurrency,
        }
        if serving.serverless.provisioned_concurrency is not None:
            serverless["provisioned_concurrency"] = serving.serverless.provisioned_concurrency
        return {"variant_name": variant.name, "model_name": model_name, "serverless_config": serverless}

    def _alarms(
        self, name: str, args: ServingArgs, endpoint_name: str, alarm_names: list[str], tags: dict[str, str]
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """The endpoint's rollback alarms over every production variant (:func:`infra.alarms.rollback_error_rate`,
        :func:`infra.alarms.rollback_latency`); they notify the alerts topic: on-call hears about a rollback."""
        if not alarm_names:
            return []
        rollout = args.settings.rollout
        errors_name, latency_name = alarm_names
        actions = {"actions_enabled": True, "alarm_actions": [args.foundation.alerts_topic_arn]}
        specs = (
            (
                f"{name}-alarm-5xx-rate",
                errors_name,
                alarms.rollback_error_rate(endpoint_name, self.variant_names, rollout.error_rate_percent_threshold),
            ),
            (
                f"{name}-alarm-p99-latency",
                latency_name,
                alarms.rollback_latency(endpoint_name, self.variant_names, rollout.latency_p99_ms_threshold),
            ),
        )
        return [
            alarms.metric_alarm(resource, alarm, spec, tags=tags, parent=self, **actions)
            for resource, alarm, spec in specs
        ]
