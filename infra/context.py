"""What every component receives: the validated config, the naming helper and resource options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi

from infra.model_versions import ModelVersionSource, RegistryVersions
from infra.naming import Naming

if TYPE_CHECKING:  # the settings sections import the layer modules, which import this one
    from infra.config import PlatformConfig


@dataclass(frozen=True)
class StackContext:
    """The validated configuration of one stack plus the helpers derived from it."""

    config: PlatformConfig
    naming: Naming
    versions: ModelVersionSource = field(default_factory=lambda: RegistryVersions(region="us-east-1"))
    """Resolves the model version each endpoint variant serves (the registry at ``pulumi up``)."""

    @classmethod
    def from_config(cls, config: PlatformConfig, versions: ModelVersionSource | None = None) -> StackContext:
        return cls(
            config=config,
            versions=versions or RegistryVersions(region=config.region),
            naming=Naming(
                project=config.project,
                environment=config.environment,
                extra_tags=dict(config.tags),
                owner=config.owner,
                cost_center=config.cost_center,
            ),
        )

    def stateful(self, parent: pulumi.Resource, **kwargs: object) -> pulumi.ResourceOptions:
        """Options for stateful resources (buckets, keys, catalogs): protected/retained as the stack says."""
        return pulumi.ResourceOptions(
            parent=parent,
            protect=self.config.protect_stateful_resources,
            retain_on_delete=self.config.retain_stateful_on_delete,
            **kwargs,  # type: ignore[arg-type]
        )
