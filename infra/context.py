"""What every component receives: the validated config, the naming helper and resource options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi

from infra.aws_session import AwsClients
from infra.images.registry import EcrImages, ImageSource, OfflineImages
from infra.model_versions import ModelVersionSource, RegistryVersions
from infra.naming import Naming
from infra.serving.fleet import FleetSource, NoFleet, SageMakerFleet

if TYPE_CHECKING:  # the settings sections import the layer modules, which import this one
    from infra.config import PlatformConfig


@dataclass(frozen=True)
class StackContext:
    """The validated configuration of one stack plus the helpers derived from it."""

    config: PlatformConfig
    naming: Naming
    versions: ModelVersionSource = field(default_factory=lambda: RegistryVersions(region="us-east-1"))
    """Resolves the model version each endpoint variant serves (the registry at ``pulumi up``)."""
    fleet: FleetSource = field(default_factory=NoFleet)
    """Reads what an endpoint runs now (at ``pulumi up``), so a rollout keeps an autoscaled fleet's size."""
    images: ImageSource = field(default_factory=OfflineImages)
    """Says which image builds ECR already holds (at ``pulumi up``), so a tag is never pushed twice."""

    @classmethod
    def from_config(
        cls,
        config: PlatformConfig,
        versions: ModelVersionSource | None = None,
        fleet: FleetSource | None = None,
        images: ImageSource | None = None,
    ) -> StackContext:
        """The context of ``config``; ``versions`` defaults to the registry, ``fleet`` to the live endpoints and
        ``images`` to ECR, all read as the stack's AWS provider. An injected ``versions`` (the offline plan,
        tests) means no AWS is read: ``fleet`` then defaults to :class:`~infra.serving.fleet.NoFleet` and
        ``images`` to :class:`~infra.images.registry.OfflineImages` (nothing pushed yet).

        Raises:
            infra.aws_session.AwsSettingsError: the stack's ``aws:`` keys cannot be honoured (only when
                ``versions`` is not given).
        """
        clients = AwsClients.for_stack(config.region) if versions is None else None
        if fleet is None:
            fleet = NoFleet() if clients is None else SageMakerFleet(lambda: clients.client("sagemaker"))
        return cls(
            config=config,
            # The registry is read with the provider's account and endpoints (aws:profile, aws:assumeRoles,
            # aws:endpoints, ...), not with whatever credentials the shell happens to have.
            versions=versions or RegistryVersions(region=config.region, clients=clients),
            fleet=fleet,
            images=images or (OfflineImages() if clients is None else EcrImages(clients)),
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
