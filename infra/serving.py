"""Serving: one SageMaker real-time endpoint per served model, with every rollout strategy of the config.

- What is served: each variant's model package version, resolved once at ``pulumi up`` time
  (:mod:`infra.model_versions`): the ARN pinned in the stack file, else the latest ``Approved`` version of
  the model's package group. A group without an approved version gets no endpoint yet (a warning says what
  to do); the approval responder's deployment creates it on the next ``pulumi up``.
- Strategies (``serving.strategy``): ``single`` (one production variant), ``ab`` (weighted production
  variants), ``shadow`` (one production variant plus one shadow variant that receives a copy of the traffic;
  AWS accepts exactly one of each) and ``serverless`` (one variant, no instances, no capture, no VPC).
- Updates are blue/green deployments of ONE stable endpoint: endpoint configurations are immutable, so each
  change creates a new one under a new content-derived name (created before the old one is deleted) and
  the endpoint, whose name never changes, is updated in place with SageMaker deployment guardrails
  (all-at-once, canary or linear traffic shifting, bake time, automatic rollback on this component's alarms).
- Rollback alarms (``rollout.rollbackAlarms``): per production variant a 5xx error-rate alarm (metric math
  over ``Invocation5XXErrors`` / ``Invocations``) and a p99 ``ModelLatency`` alarm. Their names are static, so
  a model version update never changes the endpoint's alarm list.
- Data capture into ``s3://<monitoring bucket>/<model>/data-capture``, encrypted with the platform key.
- Target-tracking autoscaling of production variants (``SageMakerVariantInvocationsPerInstance``).

What we found about updates and autoscaling (AWS docs, "Update endpoints that use auto scaling" and
"Deployment guardrails: Exclusions"), and how this module handles it:

1. The scalable target is ``endpoint/<endpoint name>/variant/<variant name>``; both names are static
   strings from the config, so a new model version (new model, new endpoint config) never replaces the
   target or its policy: Application Auto Scaling keeps tracking the same variant across the update.
2. SageMaker allows an update that changes an autoscaled variant's *model*, but refuses one that changes
   its *instance type* while the variant is a registered scalable target. Pulumi updates the endpoint before
   it could touch the target, so such a change takes two ``pulumi up`` runs: remove the variant's
   ``autoscaling`` (the target is deregistered), then change the instance type and add ``autoscaling`` back.
3. The provider's ``UpdateEndpoint`` call does not retain variant properties, so after a deployment a
   variant starts at the new config's ``instanceCount`` and target tracking scales it from there. The
   config requires ``instanceCount`` within ``minCapacity..maxCapacity``; set it near the usual load.
4. Guarded (blue/green) updates need the new endpoint config to keep the old variant names: renaming a
   variant is not a guarded deployment. Blue/green works for serverless endpoints too (only rolling updates
   exclude them).
5. The upstream provider marks ``deploymentConfig.autoRollbackConfiguration`` as force-new: changing the
   *set of alarm names* (adding or removing a production variant, switching ``rollbackAlarms``) replaces the
   endpoint, with downtime, because its name is fixed. Model updates keep the set unchanged.
6. SageMaker needs ``cloudwatch:DescribeAlarms`` on the rollback alarms; the execution role has it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.config import ModelSettings, ServingSettings, VariantSettings
from infra.context import StackContext
from infra.naming import Kind
from infra.training import output_prefix, sklearn_image_repository

SERVERLESS_VARIANT = "serverless"
"""Variant name of a serverless endpoint's only variant (stable across updates)."""

CAPTURE_PREFIX = "data-capture"
"""Key under ``<model>/`` in the monitoring bucket where the endpoint captures requests and responses."""

CAPTURE_CONTENT_TYPES = {"csv": ["text/csv"], "json": ["application/json"]}
"""Content types captured as text (others would be base64-encoded); the inference container accepts both."""

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"

ALARM_PERIOD_SECONDS = 60
ALARM_EVALUATION_PERIODS = 3
ALARM_DATAPOINTS_TO_ALARM = 2
"""Rollback alarms fire on 2 breaching minutes out of 3: fast enough for the bake time, not on one spike."""

# Instance families with local NVMe storage, which SageMaker encrypts in hardware: CreateEndpointConfig
# fails when a KmsKeyId is given for them ("Instance Store Volumes" in the SageMaker docs). Families with a
# 'd' in their suffix (m5d, c5d, r5d, g4dn, p3dn, p4d, m6id, ...) plus these newer ones.
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn1", "trn1n"})
_D_SUFFIX = re.compile(r"^[a-z]+\d+[a-z]*d[a-z]*$")


def has_local_storage(instance_type: str) -> bool:
    """True when ``instance_type`` (``ml.<family>.<size>``) has instance-store volumes (no KMS key allowed)."""
    family = instance_type.split(".")[1]
    return family in _LOCAL_STORAGE_FAMILIES or bool(_D_SUFFIX.match(family))


@dataclass(frozen=True, kw_only=True)
class ServingArgs:
    """Inputs of :class:`Serving`.

    ``model_package_group_name`` is the group's physical name as a plain string (it is read from the
    registry while the program builds the graph, so it cannot be an output). ``alarm_action_arns`` are
    notified when a rollback alarm changes to ALARM (default: none; the guardrails watch the alarms anyway).
    """

    context: StackContext
    model: ModelSettings
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    monitoring_bucket_name: pulumi.Input[str]
    monitoring_bucket_arn: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    model_package_group_name: str
    alarm_action_arns: tuple[pulumi.Input[str], ...] = ()


@dataclass(frozen=True)
class _Variant:
    """One variant to serve: its settings (``None`` for serverless) and the resolved package version."""

    name: str
    settings: VariantSettings | None
    package_arn: str
    shadow: bool = False


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
        model = args.model
        serving = model.serving
        if serving is None:
            raise ValueError(f"model '{model.name}' has no serving settings; create Serving only for served models")
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

    # --- what to serve ----------------------------------------------------------------------------

    def _resolve(self, args: ServingArgs, serving: ServingSettings) -> list[_Variant] | None:
        """Each variant with its model package ARN, or ``None`` (and a warning) when one has no version yet."""
        group = args.model_package_group_name
        wanted: list[tuple[str, VariantSettings | None, str | None, bool]]
        if serving.strategy == "serverless":
            pinned = serving.serverless.model_package_arn if serving.serverless else None
            wanted = [(SERVERLESS_VARIANT, None, pinned, False)]
        else:
            wanted = [(v.name, v, v.model_package_arn, False) for v in serving.variants]
            if serving.shadow_variant is not None:
                shadow = serving.shadow_variant
                wanted.append((shadow.name, shadow, shadow.model_package_arn, True))
        resolved: list[_Variant] = []
        waiting: list[str] = []
        for variant_name, settings, pinned, shadow in wanted:
            version = args.context.versions.resolve(group, pinned)
            if version is None:
                waiting.append(variant_name)
                continue
            resolved.append(_Variant(variant_name, settings, version.arn, shadow))
        if waiting:
            pulumi.log.warn(
                f"model '{args.model.name}': no endpoint yet: model package group '{group}' has no Approved "
                f"version for variant(s) {', '.join(waiting)}. Approve a version in the registry (then run "
                "`pulumi up` again; the approval responder dispatches it) or pin serving.variants[].modelPackageArn "
                "/ serving.serverless.modelPackageArn in the stack file.",
                resource=self,
            )
            return None
        return resolved

    # --- resources --------------------------------------------------------------------------------

    def _build(self, name: str, args: ServingArgs, serving: ServingSettings, variants: list[_Variant]) -> None:
        ctx, model = args.context, args.model
        tags = ctx.naming.tags(Model=model.name)
        endpoint_name = ctx.naming.name(model.name, Kind.SAGEMAKER)
        serverless = serving.strategy == "serverless"
        production = [v for v in variants if not v.shadow]
        self.variant_names = tuple(v.name for v in production)
        self.shadow_variant_name = next((v.name for v in variants if v.shadow), None)
        self.served_versions = {v.name: v.package_arn for v in variants}
        capture = serving.data_capture.enabled and not serverless
        if capture:
            self.data_capture_uri = pulumi.Output.concat(
                "s3://", args.monitoring_bucket_name, "/", model.name, "/", CAPTURE_PREFIX
            )

        # Two alarms per endpoint, named after the model only: the endpoint's rollback alarm list is
        # replace-only (AWS and the provider), so it must not change when variants or versions do. The
        # alarms' metric queries cover the current production variants and are updated in place.
        alarm_names = (
            [ctx.naming.name(f"{model.name}-rollback-{kind}", Kind.ALARM) for kind in ("5xx-rate", "p99-latency")]
            if serving.rollout.rollback_alarms
            else []
        )
        role = self._role(name, args, serving, endpoint_name, alarm_names, capture, tags)
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
            deployment_config=self._deployment_config(serving, self.rollback_alarms),
            tags=tags,
            # The alarms must exist before SageMaker watches them during a deployment.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.rollback_alarms)),
        )
        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn

        for variant in production:
            if variant.settings is not None and variant.settings.autoscaling is not None:
                self.scalable_targets[variant.name] = self._autoscaling(name, args, endpoint_name, variant, tags)

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
        the old one is deleted, and the endpoint config that references it changes with it.
        """
        ctx, model = args.context, args.model
        network = serving.network
        instance = serving.strategy != "serverless"
        vpc = bool(network.subnet_ids) and instance
        isolation = network.network_isolation and instance  # serverless endpoints support neither
        fingerprint = _digest(
            variant.name,
            variant.package_arn,
            ",".join(network.subnet_ids) if vpc else "",
            ",".join(network.security_group_ids) if vpc else "",
            str(isolation),
        )
        return aws.sagemaker.Model(
            f"{name}-model-{variant.name}",
            name=ctx.naming.name(f"{model.name}-{fingerprint}", Kind.SAGEMAKER),
            execution_role_arn=role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(model_package_name=variant.package_arn),
            vpc_config=(
                aws.sagemaker.ModelVpcConfigArgs(
                    subnets=list(network.subnet_ids), security_group_ids=list(network.security_group_ids)
                )
                if vpc
                else None
            ),
            enable_network_isolation=isolation,
            tags=ctx.naming.tags(Model=model.name, Variant=variant.name),
            # SageMaker pulls the image and model data with the role as soon as an endpoint uses the model.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role.policy]),
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
        Pulumi creates before deleting the old one (the default for a replacement whose name changes), and
        the endpoint then switches to it with a guarded blue/green update.
        """
        ctx, model = args.context, args.model
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
        storage_key = args.kms_key_arn if instance_types and not any(map(has_local_storage, instance_types)) else None
        data_capture: aws.sagemaker.EndpointConfigurationDataCaptureConfigArgsDict | None = None
        if capture:
            data_capture = {
                "enable_capture": True,
                "initial_sampling_percentage": serving.data_capture.sampling_percent,
                "destination_s3_uri": pulumi.Output.concat(
                    "s3://", args.monitoring_bucket_name, "/", model.name, "/", CAPTURE_PREFIX
                ),
                "kms_key_id": args.kms_key_arn,
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
        config_name = pulumi.Output.json_dumps(inputs).apply(
            lambda text: ctx.naming.name(f"{model.name}-{_digest(text)}", Kind.SAGEMAKER)
        )
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=config_name,
            production_variants=production,
            shadow_production_variants=shadows or None,
            kms_key_arn=storage_key,
            data_capture_config=data_capture,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
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

    @staticmethod
    def _deployment_config(
        serving: ServingSettings, alarms: list[aws.cloudwatch.MetricAlarm]
    ) -> aws.sagemaker.EndpointDeploymentConfigArgs:
        """Blue/green update policy (traffic shifting, bake time) and rollback on exactly ``alarms``."""
        rollout = serving.rollout
        kind = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}[rollout.mode]
        Routing = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs  # noqa: N806
        routing = Routing(
            type=kind,
            wait_interval_in_seconds=rollout.wait_interval_seconds,
            canary_size=(
                aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
                    type="CAPACITY_PERCENT", value=rollout.canary_percent
                )
                if rollout.mode == "canary"
                else None
            ),
            linear_step_size=(
                aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
                    type="CAPACITY_PERCENT", value=rollout.linear_step_percent
                )
                if rollout.mode == "linear"
                else None
            ),
        )
        return aws.sagemaker.EndpointDeploymentConfigArgs(
            blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=rollout.termination_wait_seconds,
                maximum_execution_timeout_in_seconds=rollout.maximum_execution_timeout_seconds,
            ),
            auto_rollback_configuration=(
                aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                    alarms=[
                        aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=a.name)
                        for a in alarms
                    ]
                )
                if alarms
                else None
            ),
        )

    def _alarms(
        self, name: str, args: ServingArgs, endpoint_name: str, alarm_names: list[str], tags: dict[str, str]
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """The endpoint's rollback alarms, over every production variant (metric math on the static names):

        - 5xx rate: all variants' ``Invocation5XXErrors`` over all their ``Invocations``, in percent;
        - p99 latency: the highest of the variants' p99 ``ModelLatency``.

        A canary's errors raise the endpoint-wide rate in proportion to its share, so thresholds apply to
        the whole endpoint; per-variant sustained alarms for on-call live in the monitoring layer.
        """
        if not alarm_names:
            return []
        rollout = args.model.serving.rollout if args.model.serving else None
        assert rollout is not None
        errors_name, latency_name = alarm_names
        common: dict[str, Any] = {
            "evaluation_periods": ALARM_EVALUATION_PERIODS,
            "datapoints_to_alarm": ALARM_DATAPOINTS_TO_ALARM,
            "comparison_operator": "GreaterThanThreshold",
            # No traffic is not an outage: an idle endpoint stays OK (and does not block a deployment).
            "treat_missing_data": "notBreaching",
            "actions_enabled": bool(args.alarm_action_arns),
            "alarm_actions": list(args.alarm_action_arns),
            "tags": tags,
        }
        dimensions = [{"EndpointName": endpoint_name, "VariantName": v} for v in self.variant_names]
        indexes = range(len(dimensions))
        errors = " + ".join(f"FILL(e{i}, 0)" for i in indexes)
        invocations = " + ".join(f"FILL(n{i}, 0)" for i in indexes)
        error_rate = aws.cloudwatch.MetricAlarm(
            f"{name}-alarm-5xx-rate",
            name=errors_name,
            alarm_description=(
                f"{endpoint_name}: 5xx errors above {rollout.error_rate_percent_threshold}% of invocations across "
                f"{', '.join(self.variant_names)}; rolls back an endpoint deployment. "
                "Runbook: docs/runbook.md#rollback-5xx-rate"
            ),
            metric_queries=[
                *(_sum_query(f"e{i}", "Invocation5XXErrors", d) for i, d in zip(indexes, dimensions, strict=True)),
                *(_sum_query(f"n{i}", "Invocations", d) for i, d in zip(indexes, dimensions, strict=True)),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression=f"IF(({invocations}) > 0, 100 * ({errors}) / ({invocations}), 0)",
                    label="5xx error rate (%)",
                    return_data=True,
                ),
            ],
            threshold=rollout.error_rate_percent_threshold,
            **common,
            opts=pulumi.ResourceOptions(parent=self),
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-alarm-p99-latency",
            name=latency_name,
            alarm_description=(
                f"{endpoint_name}: p99 model latency of a variant above {rollout.latency_p99_ms_threshold} ms; "
                "rolls back an endpoint deployment. Runbook: docs/runbook.md#rollback-p99-latency"
            ),
            metric_queries=[
                *(
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id=f"l{i}",
                        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                            namespace="AWS/SageMaker",
                            metric_name="ModelLatency",
                            dimensions=d,
                            period=ALARM_PERIOD_SECONDS,
                            stat="p99",
                            unit="Microseconds",
                        ),
                        return_data=False,
                    )
                    for i, d in zip(indexes, dimensions, strict=True)
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="p99_latency",
                    expression=f"MAX([{', '.join(f'l{i}' for i in indexes)}])",
                    label="highest variant p99 ModelLatency (microseconds)",
                    return_data=True,
                ),
            ],
            # ModelLatency is reported in microseconds.
            threshold=rollout.latency_p99_ms_threshold * 1000,
            **common,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return [error_rate, latency]

    def _autoscaling(
        self, name: str, args: ServingArgs, endpoint_name: str, variant: _Variant, tags: dict[str, str]
    ) -> aws.appautoscaling.Target:
        """Target tracking on invocations per instance, keyed by the static endpoint and variant names."""
        assert variant.settings is not None and variant.settings.autoscaling is not None
        scaling = variant.settings.autoscaling
        target = aws.appautoscaling.Target(
            f"{name}-scaling-{variant.name}",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{endpoint_name}/variant/{variant.name}",
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=scaling.min_capacity,
            max_capacity=scaling.max_capacity,
            tags=tags,
            # Registering needs the variant to exist. The resource id is a static string, so no endpoint update
            # (new model version, new endpoint config) ever replaces the target.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoint] if self.endpoint else []),
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-{variant.name}-policy",
            name=args.context.naming.name(f"{args.model.name}-{variant.name}-invocations", Kind.GENERIC),
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(scaling.target_invocations_per_instance),
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=SCALING_METRIC
                ),
                scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                scale_out_cooldown=scaling.scale_out_cooldown_seconds,
            ),
            opts=pulumi.ResourceOptions(parent=target),
        )
        return target

    # --- IAM --------------------------------------------------------------------------------------

    def _role(
        self,
        name: str,
        args: ServingArgs,
        serving: ServingSettings,
        endpoint_name: str,
        alarm_names: list[str],
        capture: bool,
        tags: dict[str, str],
    ) -> iam.ServiceRole:
        """The models' execution role: pull the image, read the model data, write logs, metrics and captures."""
        ctx, model = args.context, args.model
        region = ctx.config.region
        image_account, image_repository = sklearn_image_repository(region)
        pipeline_name = ctx.naming.name(model.name, Kind.SAGEMAKER)
        statements: list[iam.Statement] = [
            iam.statement(
                "ImagePull",
                ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                [f"arn:aws:ecr:{region}:{image_account}:repository/{image_repository}"],
            ),
            # GetAuthorizationToken is account-wide (it returns a registry login, not access to a
            # repository): IAM supports no resource-level permission for it, so "*" is the only choice.
            iam.statement("ImageAuth", ["ecr:GetAuthorizationToken"], ["*"]),
            # Model data is the training job's output under the pipeline's prefix of the artifacts bucket.
            iam.s3_read_objects("ModelDataRead", [args.artifacts_bucket_arn], output_prefix(pipeline_name)),
            iam.statement("PlatformKeyDecrypt", ["kms:Decrypt", "kms:DescribeKey"], [args.kms_key_arn]),
            iam.logs_write(
                "EndpointLogs",
                [
                    pulumi.Output.concat(
                        "arn:aws:logs:",
                        region,
                        ":",
                        args.account_id,
                        ":log-group:/aws/sagemaker/Endpoints/",
                        endpoint_name,
                        ":*",
                    )
                ],
            ),
            # PutMetricData has no resource-level permission; the condition limits it to SageMaker's namespaces.
            iam.statement(
                "EndpointMetrics",
                ["cloudwatch:PutMetricData"],
                ["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}},
            ),
        ]
        if capture:
            statements += [
                iam.statement(
                    "CaptureWrite",
                    ["s3:AbortMultipartUpload", "s3:PutObject"],
                    [pulumi.Output.concat(args.monitoring_bucket_arn, "/", model.name, "/", CAPTURE_PREFIX, "/*")],
                ),
                iam.statement("CaptureEncrypt", ["kms:Encrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
            ]
        if alarm_names:
            statements.append(
                iam.statement(
                    "RollbackAlarmsRead",
                    ["cloudwatch:DescribeAlarms"],
                    [
                        pulumi.Output.concat("arn:aws:cloudwatch:", region, ":", args.account_id, ":alarm:", alarm)
                        for alarm in alarm_names
                    ],
                )
            )
        if serving.network.subnet_ids and serving.strategy != "serverless":
            statements += _vpc_statements(region, args.account_id, serving)
        return iam.service_role(
            f"{name}-role",
            naming=ctx.naming,
            thing=f"{model.name}-serving",
            services=["sagemaker.amazonaws.com"],
            statements=statements,
            tags=tags,
            parent=self,
            source_account=args.account_id,
            description=f"{ctx.naming.prefix} endpoint of {model.name}: runs its model containers",
        )


def _sum_query(
    metric_id: str, metric_name: str, dimensions: dict[str, str]
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A per-minute Sum of one AWS/SageMaker metric, as an input of a metric math alarm."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=metric_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace="AWS/SageMaker",
            metric_name=metric_name,
            dimensions=dimensions,
            period=ALARM_PERIOD_SECONDS,
            stat="Sum",
        ),
        return_data=False,
    )


def _vpc_statements(region: str, account_id: pulumi.Input[str], serving: ServingSettings) -> list[iam.Statement]:
    """ENI permissions SageMaker needs to place the model containers in the configured subnets."""
    base = pulumi.Output.concat("arn:aws:ec2:", region, ":", account_id)
    subnets = [pulumi.Output.concat(base, ":subnet/", s) for s in serving.network.subnet_ids]
    groups = [pulumi.Output.concat(base, ":security-group/", g) for g in serving.network.security_group_ids]
    # ENI ids are generated by EC2 when SageMaker creates them, so the interfaces are "network-interface/*",
    # limited to the configured subnets by the ec2:Subnet condition where EC2 supports it.
    interfaces = pulumi.Output.concat(base, ":network-interface/*")
    return [
        iam.statement("VpcEniCreate", ["ec2:CreateNetworkInterface"], [*subnets, *groups, interfaces]),
        iam.statement(
            "VpcEniManage",
            [
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            [interfaces],
            conditions={"ArnEquals": {"ec2:Subnet": subnets}},
        ),
        # EC2's Describe* calls support no resource-level permissions: "*" is the only choice.
        iam.statement(
            "VpcDescribe",
            [
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            ["*"],
        ),
    ]
