"""Settings of a model's training pipeline and registry group (stack key ``models[].training``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from infra.types import AccountId, CronExpression, InstanceType, Section
from pipelines.settings import ApprovalStatus, HyperparameterValue, MetricName

_HYPERPARAMETER_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class TrainingSettings(Section):
    """A model's training pipeline (preprocess, train, evaluate, register) and its model registry group."""

    processing_instance_type: InstanceType = Field(
        default="ml.m5.large", description="Instance type of the preprocess and evaluate jobs (ml.<family>.<size>)."
    )
    processing_instance_count: int = Field(default=1, ge=1, le=100, description="Instances per processing job.")
    training_instance_type: InstanceType = Field(
        default="ml.m5.large", description="Instance type of the training job (ml.<family>.<size>)."
    )
    training_instance_count: int = Field(
        default=1, ge=1, le=1, description="Instances of the training job; scikit-learn trains on one instance."
    )
    hyperparameters: dict[str, HyperparameterValue] = Field(
        default_factory=dict,
        description="Overrides of train.py's default hyperparameters (snake_case key: int, float or string); "
        "each becomes a pipeline parameter.",
    )
    metric_name: MetricName = Field(
        default="auc", description="Evaluation metric the pipeline's condition step compares with metricThreshold."
    )
    metric_threshold: float = Field(
        default=0.75, ge=0.0, le=1.0, description="Register a new model version only if the metric is >= this (0..1)."
    )
    approval_status: ApprovalStatus = Field(
        default="PendingManualApproval",
        description="Approval status of newly registered versions: PendingManualApproval (a human approves) or Approved.",
    )
    max_runtime_seconds: int = Field(
        default=3600, ge=60, le=28 * 24 * 3600, description="Time limit of each processing and training job."
    )
    registry_account_ids: tuple[AccountId, ...] = Field(
        default=(),
        description="12-digit AWS account ids allowed to read (describe, list, get) the model package group "
        "and its versions, e.g. a central registry or deployment account. Empty: no resource policy.",
    )
    retrain_schedule: CronExpression | None = Field(
        default=None,
        description="EventBridge cron expression that starts the pipeline on a schedule; null: run on demand only.",
    )

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameter_keys(cls, value: dict[str, HyperparameterValue]) -> dict[str, HyperparameterValue]:
        for key in value:
            if not _HYPERPARAMETER_KEY.match(key):
                raise ValueError(f"hyperparameter '{key}' must match {_HYPERPARAMETER_KEY.pattern} (snake_case)")
        return value

    @field_validator("registry_account_ids")
    @classmethod
    def _unique_accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"registryAccountIds lists an account twice: {list(value)}")
        return value
