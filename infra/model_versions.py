"""Which model version an endpoint serves, resolved at ``pulumi up`` time.

A variant either pins a model package ARN in the stack file or takes the latest ``Approved`` version of
its model's package group. Either way the program reads the registry once, while it builds the resource
graph (not inside an ``apply``), because the answer decides whether an endpoint exists at all: a group with
no approved version yet (a new stack, before the first training run is approved) gets no endpoint, and the
next ``pulumi up`` (dispatched by the approval responder) creates it. Git (the stack file) and the registry
together therefore say what is live, and Pulumi stays the only writer of endpoints.

:class:`RegistryVersions` asks SageMaker, with a client built from the stack's AWS provider settings
(:mod:`infra.aws_session`: the same profile, assumed roles and endpoints as the resources); :class:`OfflineVersions`
answers without a network for the offline plan and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines import registry


@dataclass(frozen=True)
class DeployableVersion:
    """A model package version with the baselines Model Monitor compares live traffic against."""

    arn: str
    group: str
    version: int
    data_statistics_uri: str | None = None
    """``DriftCheckBaselines.ModelDataQuality.Statistics`` (statistics.json of the training data)."""
    data_constraints_uri: str | None = None
    """``DriftCheckBaselines.ModelDataQuality.Constraints`` (constraints.json of the training data)."""


class ModelVersionSource(Protocol):
    """Resolves what a variant serves."""

    def resolve(self, group: str, pinned_arn: str | None) -> DeployableVersion | None:
        """``pinned_arn`` if given (it must exist), else the latest approved version of ``group``;
        ``None`` when the group has no approved version yet."""
        ...


def _version_of(arn: str) -> int:
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class ClientFactory(Protocol):
    """Builds boto3 clients (:class:`infra.aws_session.AwsClients` builds them from the stack's provider settings)."""

    def client(self, service: str) -> Any: ...


@dataclass
class RegistryVersions:
    """Reads the SageMaker model registry with a boto3 client (the real ``pulumi up`` / ``preview`` path).

    The client is ``client`` if given, else made by ``clients`` on first use, else boto3's default client of
    ``region`` (default credentials and endpoint).
    """

    region: str
    client: Any = None
    clients: ClientFactory | None = None
    _cache: dict[tuple[str, str | None], DeployableVersion | None] = field(default_factory=dict)

    def _sagemaker(self) -> Any:
        if self.client is None:
            if self.clients is not None:
                self.client = self.clients.client("sagemaker")
            else:
                import boto3

                self.client = boto3.client("sagemaker", region_name=self.region)
        return self.client

    def resolve(self, group: str, pinned_arn: str | None) -> DeployableVersion | None:
        key = (group, pinned_arn)
        if key not in self._cache:
            self._cache[key] = self._resolve(group, pinned_arn)
        return self._cache[key]

    def _resolve(self, group: str, pinned_arn: str | None) -> DeployableVersion | None:
        client = self._sagemaker()
        if pinned_arn is None:
            try:
                pinned_arn = registry.latest_approved(client, group).arn
            except (registry.NoApprovedModelVersionError, registry.ModelPackageGroupNotFoundError):
                return None  # first deployment of the group: no endpoint until a version is approved
        details = registry.describe_version(client, pinned_arn)  # raises ModelVersionNotFoundError
        return DeployableVersion(
            arn=pinned_arn,
            group=details.version.group or group,
            version=details.version.version or _version_of(pinned_arn),
            data_statistics_uri=details.data_statistics_uri,
            data_constraints_uri=details.data_constraints_uri,
        )


@dataclass(frozen=True)
class OfflineVersions:
    """Answers without AWS: every group has an approved version 1 with baselines under ``baseline_root``.

    Groups listed in ``unapproved`` have no approved version (to plan a brand-new stack).
    """

    region: str
    account_id: str
    baseline_root: str = "s3://offline-artifacts/baselines"
    unapproved: frozenset[str] = frozenset()

    def resolve(self, group: str, pinned_arn: str | None) -> DeployableVersion | None:
        if pinned_arn is None and group in self.unapproved:
            return None
        arn = pinned_arn or f"arn:aws:sagemaker:{self.region}:{self.account_id}:model-package/{group}/1"
        version = _version_of(arn)
        root = f"{self.baseline_root}/{group}/{version}"
        return DeployableVersion(
            arn=arn,
            group=group,
            version=version,
            data_statistics_uri=f"{root}/statistics.json",
            data_constraints_uri=f"{root}/constraints.json",
        )
