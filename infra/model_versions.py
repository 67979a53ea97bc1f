"""Which model version an endpoint serves, resolved at ``pulumi up`` time.

A variant says which version it serves with a selector (``serving.variants[].modelVersion``):
``latest`` (the latest ``Approved`` version of its model's package group), ``previous`` (the ``Approved``
version before the latest, by version number, which SageMaker assigns in creation order) or a pinned model
package ARN. The program reads the registry once, while it builds the resource graph (not inside an
``apply``), because the answer decides whether an endpoint exists at all: a group with no approved version yet
(a new stack, before the first training run is approved) gets no endpoint, and the next ``pulumi up``
(dispatched by the approval responder) creates it. Git (the stack file) and the registry together therefore say
what is live, and Pulumi stays the only writer of endpoints.

A source answers facts only (``previous`` with fewer than two approved versions is ``None``); what the endpoint
does then is the serving layer's decision (:meth:`infra.serving.component.Serving._resolve`).

:class:`RegistryVersions` asks SageMaker, with a client built from the stack's AWS provider settings
(:mod:`infra.aws_session`: the same profile, assumed roles and endpoints as the resources); :class:`OfflineVersions`
answers without a network for the offline plan and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from pipelines import registry

LATEST: Final = "latest"
"""Selector: the approved version with the highest version number."""
PREVIOUS: Final = "previous"
"""Selector: the approved version before :data:`LATEST` (the second-highest approved version number)."""
_RANK = {LATEST: 0, PREVIOUS: 1}


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

    def resolve(self, group: str, selector: str | None) -> DeployableVersion | None:
        """The version of ``group`` that ``selector`` names: :data:`LATEST` (also ``None``), :data:`PREVIOUS`, or a
        model package ARN (it must exist, approved or not: pinning is explicit). ``None`` when the group has no
        such approved version: none approved yet, or fewer than two for :data:`PREVIOUS`."""
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
    ``region`` (default credentials and endpoint). Each group's approved versions are listed once per run
    (``ListModelPackages`` filtered on ``Approved``, every page) and each (group, selector) is described once.
    """

    region: str
    client: Any = None
    clients: ClientFactory | None = None
    _cache: dict[tuple[str, str], DeployableVersion | None] = field(default_factory=dict, init=False, repr=False)
    _approved: dict[str, list[registry.ModelVersion]] = field(default_factory=dict, init=False, repr=False)

    def _sagemaker(self) -> Any:
        if self.client is None:
            if self.clients is not None:
                self.client = self.clients.client("sagemaker")
            else:
                import boto3

                self.client = boto3.client("sagemaker", region_name=self.region)
        return self.client

    def resolve(self, group: str, selector: str | None) -> DeployableVersion | None:
        key = (group, selector or LATEST)
        if key not in self._cache:
            self._cache[key] = self._resolve(*key)
        return self._cache[key]

    def approved_versions(self, group: str) -> list[registry.ModelVersion]:
        """The group's approved versions, newest (highest version number) first; none when the group does not
        exist yet (first deployment: the training layer creates it in this very run)."""
        if group not in self._approved:
            try:
                self._approved[group] = registry.list_versions(self._sagemaker(), group, status="Approved")
            except registry.ModelPackageGroupNotFoundError:
                self._approved[group] = []
        return self._approved[group]

    def _resolve(self, group: str, selector: str) -> DeployableVersion | None:
        if selector in _RANK:
            approved = self.approved_versions(group)
            rank = _RANK[selector]
            if len(approved) <= rank:
                return None  # no endpoint until a version is approved (or a second one, for `previous`)
            arn = approved[rank].arn
        else:
            arn = selector
        details = registry.describe_version(self._sagemaker(), arn)  # raises ModelVersionNotFoundError
        return DeployableVersion(
            arn=arn,
            group=details.version.group or group,
            version=details.version.version or _version_of(arn),
            data_statistics_uri=details.data_statistics_uri,
            data_constraints_uri=details.data_constraints_uri,
        )


@dataclass(frozen=True)
class OfflineVersions:
    """Answers without AWS: each group has ``approved`` approved versions, numbered 1..N, with baselines under
    ``baseline_root/<group>/<version>``.

    The default, two, makes ``latest`` (2) and ``previous`` (1) differ in the offline plan, as in a registry that
    has seen a retraining. ``approved_by_group`` sets the count per group; groups in ``unapproved`` have none (to
    plan a brand-new stack). A pinned ARN resolves to itself.
    """

    region: str
    account_id: str
    baseline_root: str = "s3://offline-artifacts/baselines"
    unapproved: frozenset[str] = frozenset()
    approved: int = 2
    approved_by_group: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        counts = [self.approved, *self.approved_by_group.values()]
        if any(count < 0 for count in counts):
            raise ValueError(f"approved version counts must be >= 0, got {counts}")

    def approved_count(self, group: str) -> int:
        """How many approved versions ``group`` has."""
        if group in self.unapproved:
            return 0
        return self.approved_by_group.get(group, self.approved)

    def resolve(self, group: str, selector: str | None) -> DeployableVersion | None:
        selector = selector or LATEST
        if selector in _RANK:
            version = self.approved_count(group) - _RANK[selector]
            if version < 1:
                return None
            arn = f"arn:aws:sagemaker:{self.region}:{self.account_id}:model-package/{group}/{version}"
        else:
            arn = selector
        version = _version_of(arn)
        root = f"{self.baseline_root}/{group}/{version}"
        return DeployableVersion(
            arn=arn,
            group=group,
            version=version,
            data_statistics_uri=f"{root}/statistics.json",
            data_constraints_uri=f"{root}/constraints.json",
        )
