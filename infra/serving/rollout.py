"""How an endpoint changes: SageMaker deployment guardrails (blue/green traffic shifting, rollback on alarms)
and target-tracking autoscaling of its production variants.

What we found about updates and autoscaling (AWS docs, "Update endpoints that use auto scaling" and
"Deployment guardrails: Exclusions"), and how the serving layer handles it:

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
   *set of alarm names* replaces the endpoint, with downtime, because its name is fixed. The alarms are named
   after the model only, so only switching ``rollbackAlarms`` changes the set.
6. SageMaker needs ``cloudwatch:DescribeAlarms`` on the rollback alarms; the execution role has it.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.naming import Kind, ModelNames, Naming
from infra.serving.settings import AutoscalingSettings, ServingSettings

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"


def deployment_config(
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


def autoscaling(
    name: str,
    naming: Naming,
    names: ModelNames,
    variant: str,
    scaling: AutoscalingSettings,
    tags: dict[str, str],
    *,
    parent: pulumi.Resource,
    endpoint: pulumi.Resource,
) -> aws.appautoscaling.Target:
    """Target tracking on invocations per instance of ``variant``, keyed by the static endpoint and variant names."""
    target = aws.appautoscaling.Target(
        f"{name}-scaling-{variant}",
        service_namespace="sagemaker",
        resource_id=f"endpoint/{names.endpoint}/variant/{variant}",
        scalable_dimension=SCALABLE_DIMENSION,
        min_capacity=scaling.min_capacity,
        max_capacity=scaling.max_capacity,
        tags=tags,
        # Registering needs the variant to exist. The resource id is a static string, so no endpoint update
        # (new model version, new endpoint config) ever replaces the target.
        # Replacing the endpoint (e.g. switching rollbackAlarms) deregisters its scalable targets in AWS while
        # Pulumi's state still holds them: the target is replaced together with the endpoint. Delete-first: the
        # target has no name of its own, so a create-first replacement would register the same resource id and
        # then deregister it (with its policies) when the old one is deleted.
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[endpoint], replace_with=[endpoint], delete_before_replace=True
        ),
    )
    aws.appautoscaling.Policy(
        f"{name}-scaling-{variant}-policy",
        name=naming.name(f"{names.model}-{variant}-invocations", Kind.GENERIC),
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
        # Deregistering a target deletes its scaling policies in AWS: the policy is recreated with its target.
        opts=pulumi.ResourceOptions(parent=target, replace_with=[target]),
    )
    return target
