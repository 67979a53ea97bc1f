"""How many instances an autoscaled variant runs now, read at ``pulumi up`` so a rollout keeps the fleet's size.

The provider's UpdateEndpoint never sets ``RetainAllVariantProperties``: the new endpoint config's
``InitialInstanceCount`` is what the new (green) fleet starts with. When autoscaling has grown a variant, a
rollout to the configured ``instanceCount`` would under-provision it at peak and could trip the very rollback
alarms that guard the deployment. So, for each autoscaled production variant, the program reads the endpoint
once while it builds the graph (as it reads the model registry) and chooses the count of the config it creates:

- the endpoint config it would create already exists (nothing changed; or a rollout SageMaker rolled back, whose
  config Pulumi recorded but the endpoint does not run): that config's own count, so the inputs equal what
  Pulumi recorded and the preview shows no change (a different count under the same name could not be created);
- a new endpoint config (a rollout): the variant's current desired count, within the autoscaling bounds;
- no endpoint yet, or no answer (the offline plan): the configured ``instanceCount``.

The endpoint config's name is a digest of the configured values (never of the live counts), so autoscaling
activity alone never changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.serving.settings import AutoscalingSettings


@dataclass(frozen=True)
class LiveEndpoint:
    """What an endpoint runs now."""

    config_name: str
    desired_counts: Mapping[str, int]
    """Production variant -> ``DesiredInstanceCount`` (what autoscaling asks for)."""


class FleetSource(Protocol):
    """Reads what an endpoint runs now, and what an endpoint config holds."""

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        """The endpoint's live config and desired counts; ``None`` when it does not exist (yet)."""
        ...

    def config_counts(self, config_name: str) -> Mapping[str, int] | None:
        """Production variant -> ``InitialInstanceCount`` of an endpoint config; ``None`` when it does not exist."""
        ...


@dataclass(frozen=True)
class NoFleet:
    """No endpoint exists (the offline plan, a new stack): every variant starts at its configured count."""

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        return None

    def config_counts(self, config_name: str) -> Mapping[str, int] | None:
        return None


@dataclass
class SageMakerFleet:
    """Reads DescribeEndpoint and DescribeEndpointConfig with a SageMaker client from ``client_factory``."""

    client_factory: Callable[[], Any]
    _live: dict[str, LiveEndpoint | None] = field(default_factory=dict)
    _configs: dict[str, Mapping[str, int] | None] = field(default_factory=dict)

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        if endpoint_name not in self._live:
            endpoint = self._describe("describe_endpoint", EndpointName=endpoint_name)
            self._live[endpoint_name] = (
                None
                if endpoint is None
                else LiveEndpoint(
                    config_name=endpoint["EndpointConfigName"],
                    desired_counts={
                        v["VariantName"]: int(v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount") or 0)
                        for v in endpoint.get("ProductionVariants", [])
                        if v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount")
                    },
                )
            )
        return self._live[endpoint_name]

    def config_counts(self, config_name: str) -> Mapping[str, int] | None:
        if config_name not in self._configs:
            config = self._describe("describe_endpoint_config", EndpointConfigName=config_name)
            self._configs[config_name] = (
                None
                if config is None
                else {
                    v["VariantName"]: int(v["InitialInstanceCount"])
                    for v in config.get("ProductionVariants", [])
                    if "InitialInstanceCount" in v
                }
            )
        return self._configs[config_name]

    def _describe(self, operation: str, **kwargs: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.client_factory(), operation)(**kwargs)
        except ClientError as error:
            # SageMaker answers ValidationException "Could not find ..." for a missing endpoint or config; any
            # other refusal (a malformed name, access denied) is an error, not an absent endpoint.
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationException" and "could not find" in str(details.get("Message")).lower():
                return None
            raise


def rollout_instance_count(
    variant: str,
    configured: int,
    scaling: AutoscalingSettings,
    live: LiveEndpoint | None,
    existing: Mapping[str, int] | None,
) -> int:
    """The ``InitialInstanceCount`` of an autoscaled variant in an endpoint config whose counts are ``existing``
    when a config of that name exists already (``None``: a new config)."""
    if existing is not None and variant in existing:
        return existing[variant]
    if live is None:
        return configured
    current = live.desired_counts.get(variant, configured)
    return max(scaling.min_capacity, min(scaling.max_capacity, current))
