"""Model registry helpers: list a model package group's versions, find the latest approved one, approve or
reject a version.

The infrastructure resolves "latest approved" at ``pulumi up`` time with :func:`latest_approved`; responders
and on-call engineers approve or reject with :func:`approve` / :func:`reject`. Every function takes the
SageMaker boto3 client from its caller (no client is created here) and turns the service's errors into
:class:`RegistryError` subclasses that name the group or version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

ApprovalStatus = Literal["Approved", "Rejected", "PendingManualApproval"]
APPROVAL_STATUSES: tuple[ApprovalStatus, ...] = ("Approved", "Rejected", "PendingManualApproval")
MAX_DESCRIPTION = 1024  # ApprovalDescription limit of UpdateModelPackage


class RegistryError(Exception):
    """A registry operation failed; the message names the group or version."""


class ModelPackageGroupNotFoundError(RegistryError):
    """The model package group does not exist."""


class ModelVersionNotFoundError(RegistryError):
    """The model package (version) does not exist."""


class NoApprovedModelVersionError(RegistryError):
    """The group exists but holds no approved version."""


@dataclass(frozen=True)
class ModelVersion:
    """One model package of a group, as listed."""

    arn: str
    group: str
    version: int
    approval_status: str
    created: datetime | None
    description: str = ""


@dataclass(frozen=True)
class ModelVersionDetails:
    """A model package with what a deployment needs: its container image and model data."""

    version: ModelVersion
    image_uri: str
    model_data_url: str
    approval_description: str
    customer_metadata: dict[str, str]
    data_statistics_uri: str | None = None
    """``DriftCheckBaselines.ModelDataQuality.Statistics`` (Model Monitor's data-quality baseline)."""
    data_constraints_uri: str | None = None
    """``DriftCheckBaselines.ModelDataQuality.Constraints``."""


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _summary(item: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        arn=item["ModelPackageArn"],
        group=item.get("ModelPackageGroupName", ""),
        version=int(item.get("ModelPackageVersion", 0)),
        approval_status=item.get("ModelApprovalStatus", ""),
        created=item.get("CreationTime"),
        description=item.get("ModelPackageDescription", ""),
    )


def _require_group(client: Any, group: str) -> None:
    try:
        client.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        if _error_code(error) in ("ValidationException", "ResourceNotFound"):
            raise ModelPackageGroupNotFoundError(f"model package group '{group}' does not exist") from error
        raise


def list_versions(client: Any, group: str, *, status: ApprovalStatus | None = None) -> list[ModelVersion]:
    """The group's versions, newest (highest version number) first; only those in ``status`` if given.

    Raises:
        ModelPackageGroupNotFoundError: the group does not exist.
    """
    if status is not None and status not in APPROVAL_STATUSES:
        raise ValueError(f"status '{status}' is not one of {', '.join(APPROVAL_STATUSES)}")
    _require_group(client, group)
    request: dict[str, Any] = {"ModelPackageGroupName": group, "ModelPackageType": "Versioned", "MaxResults": 100}
    if status is not None:
        request["ModelApprovalStatus"] = status
    versions: list[ModelVersion] = []
    while True:
        page = client.list_model_packages(**request)
        versions.extend(_summary(item) for item in page.get("ModelPackageSummaryList", []))
        token = page.get("NextToken")
        if not token:
            break
        request["NextToken"] = token
    return sorted(versions, key=lambda v: v.version, reverse=True)


def latest_approved(client: Any, group: str) -> ModelVersion:
    """The approved version with the highest version number.

    Raises:
        ModelPackageGroupNotFoundError: the group does not exist.
        NoApprovedModelVersionError: no version of the group is approved (yet, or any more).
    """
    approved = list_versions(client, group, status="Approved")
    if not approved:
        raise NoApprovedModelVersionError(
            f"model package group '{group}' has no approved version; approve one "
            "(pipelines.registry.approve) or pin a model package ARN in the stack config"
        )
    return approved[0]


def describe_version(client: Any, arn: str) -> ModelVersionDetails:
    """A version's image, model data and metadata (for deploying it).

    Raises:
        ModelVersionNotFoundError: no model package has this ARN.
    """
    try:
        package = client.describe_model_package(ModelPackageName=arn)
    except ClientError as error:
        if _error_code(error) in ("ValidationException", "ResourceNotFound"):
            raise ModelVersionNotFoundError(f"model package '{arn}' does not exist") from error
        raise
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers:
        raise RegistryError(f"model package '{arn}' has no inference container")
    quality = (package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    return ModelVersionDetails(
        version=_summary(package),
        image_uri=containers[0]["Image"],
        model_data_url=containers[0].get("ModelDataUrl", ""),
        approval_description=package.get("ApprovalDescription", ""),
        customer_metadata=dict(package.get("CustomerMetadataProperties") or {}),
        data_statistics_uri=(quality.get("Statistics") or {}).get("S3Uri"),
        data_constraints_uri=(quality.get("Constraints") or {}).get("S3Uri"),
    )


def _set_status(client: Any, arn: str, status: ApprovalStatus, description: str) -> None:
    if not description.strip():
        raise ValueError("an approval decision needs a description (who decided, and why)")
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(f"description has {len(description)} characters; at most {MAX_DESCRIPTION} are allowed")
    try:
        client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=description)
    except ClientError as error:
        if _error_code(error) in ("ValidationException", "ResourceNotFound"):
            raise ModelVersionNotFoundError(f"cannot set model package '{arn}' to {status}: {error}") from error
        raise


def approve(client: Any, arn: str, description: str) -> None:
    """Approve a version (the approval event then dispatches its deployment)."""
    _set_status(client, arn, "Approved", description)


def reject(client: Any, arn: str, description: str) -> None:
    """Reject a version (a rejected latest version makes the previous approved one the latest again)."""
    _set_status(client, arn, "Rejected", description)
