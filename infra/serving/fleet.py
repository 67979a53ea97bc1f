"""How many instances an autoscaled variant runs now, read at ``pulumi up`` so a rollout keeps the fleet's size.

The provider's UpdateEndpoint never sets ``RetainAllVariantProperties``: the new endpoint config's
``InitialInstanceCount`` is what the new (green) fleet starts with. When autoscaling has grown a variant, a
rollout to the configured ``instanceCount`` would under-provision it at peak and could trip the very rollback
alarms that guard the deployment. So, for each autoscaled production variant, the program reads the endpoint
once while it builds the graph (as it reads the model registry) and chooses the count of the config it creates:

- the endpoint config it would create is the one already live (nothing changed): the live config's own count,
  so the inputs equal what Pulumi recorded and the preview shows no change;
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
    config_counts: Mapping[str, int]
    """Production variant -> ``InitialInstanceCount`` of the live endpoint config."""


class FleetSource(Protocol):
    """Reads what an endpoint runs now."""

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        """The endpoint's live config and counts; ``None`` when it does not exist (yet)."""
        ...


@dataclass(frozen=True)
class NoFleet:
    """No endpoint exists (the offline plan, a new stack): every variant starts at its configured count."""

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        return None


@dataclass
class SageMakerFleet:
    """Reads DescribeEndpoint and DescribeEndpointConfig with a SageMaker client from ``client_factory``."""

    client_factory: Callable[[], Any]
    _cache: dict[str, LiveEndpoint | None] = field(default_factory=dict)

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        if endpoint_name not in self._cache:
            self._cache[endpoint_name] = self._read(endpoint_name)
        return self._cache[endpoint_name]

    def _read(self, endpoint_name: str) -> LiveEndpoint | None:
        from botocore.exceptions import ClientError

        client = self.client_factory()
        try:
            endpoint = client.describe_endpoint(EndpointName=endpoint_name)
        except ClientError as error:
            # SageMaker answers ValidationException "Could not find endpoint" for a missing endpoint.
            if error.response.get("Error", {}).get("Code") == "ValidationException":
                return None
            raise
        config_name = endpoint["EndpointConfigName"]
        config = client.describe_endpoint_config(EndpointConfigName=config_name)
        return LiveEndpoint(
            config_name=config_name,
            desired_counts={
                v["VariantName"]: int(v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount") or 0)
                for v in endpoint.get("ProductionVariants", [])
                if v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount")
            },
            config_counts={
                v["VariantName"]: int(v["InitialInstanceCount"])
                for v in config.get("ProductionVariants", [])
                if "InitialInstanceCount" in v
            },
        )


def rollout_instance_count(
    variant: str,
    configured: int,
    scaling: AutoscalingSettings,
    live: LiveEndpoint | None,
    new_config_name: str,
) -> int:
    """The ``InitialInstanceCount`` of an autoscaled variant in the endpoint config named ``new_config_name``."""
    if live is None:
        return configured
    if live.config_name == new_config_name and variant in live.config_counts:
        return live.config_counts[variant]
    current = live.desired_counts.get(variant, configured)
    return max(scaling.min_capacity, min(scaling.max_capacity, current))
