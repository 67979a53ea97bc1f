"""Settings of a model's training pipeline and registry group (stack key ``models[].training``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from infra.types import AccountId, CronExpression, InstanceType, KeyedValueError, Section
from pipelines.settings import ApprovalStatus, HyperparameterValue, MetricName

if TYPE_CHECKING:
    from infra.catalog import TableSpec


@dataclass(frozen=True)
class HyperparameterRule:
    """What ``train.py`` accepts for one hyperparameter: its type and the estimator's lower bound."""

    kind: type[int] | type[float]
    minimum: float
    exclusive: bool = False
    """True when the bound itself is refused (``learning_rate`` > 0)."""

    def problem(self, value: int | float) -> str | None:
        """Why ``value`` (already of the right type) is out of range, or None."""
        if not math.isfinite(value):
            return "expected a finite number"
        if self.exclusive and value <= self.minimum:
            return f"must be greater than {self.minimum:g}"
        if value < self.minimum:
            return f"must be at least {self.minimum:g}"
        return None


HYPERPARAMETER_RULES: dict[str, HyperparameterRule] = {
    "learning_rate": HyperparameterRule(float, 0, exclusive=True),
    "max_iter": HyperparameterRule(int, 1),
    "max_leaf_nodes": HyperparameterRule(int, 2),
    "min_samples_leaf": HyperparameterRule(int, 1),
    "l2_regularization": HyperparameterRule(float, 0),
}
"""The hyperparameters ``pipelines/steps/train.py`` passes to its HistGradientBoostingClassifier (its
``HYPERPARAMETERS``, with the defaults in ``pipelines.settings.DEFAULT_HYPERPARAMETERS``), and the estimator's own
bounds (scikit-learn's parameter constraints, checked at fit time). A unit test holds the three in step."""


def _hyperparameter(name: str, value: Any) -> int | float:
    """``value`` as train.py takes it (an integer given for a float hyperparameter becomes a float: the pipeline
    parameter's type follows the value's), or :class:`KeyedValueError` naming the hyperparameter, the value and what
    is allowed."""
    rule = HYPERPARAMETER_RULES.get(name)
    if rule is None:
        raise KeyedValueError(
            (name,), f"not a hyperparameter train.py reads; allowed: {', '.join(sorted(HYPERPARAMETER_RULES))}", value
        )
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if rule.kind is int and not (numeric and isinstance(value, int)):
        raise KeyedValueError((name,), "expected an integer (train.py reads it with int())", value)
    if rule.kind is float and not numeric:
        raise KeyedValueError((name,), "expected a number (train.py reads it with float())", value)
    typed = rule.kind(value)
    problem = rule.problem(typed)
    if problem:
        raise KeyedValueError((name,), problem, value)
    return typed


MAX_BATCHING_WINDOW_SECONDS = 300
"""Lambda's largest ``MaximumBatchingWindowInSeconds`` for an SQS event source mapping."""
UNENCODED_PREFIX = re.compile(r"^[A-Za-z0-9_.\-/]+$")
"""Key prefixes S3 leaves as they are when it URL-encodes a key in an event notification."""
RESERVED_PREFIXES = ("_staging/", "_commits/")
"""``mlops.ingestion``'s staging area and commit markers (``STAGING_PREFIX``, ``COMMITS_PREFIX``): never a table."""


class NewDataRetrainingSettings(Section):
    """Start the training pipeline when a new load lands in the model's source table (curated zone).

    Starts share the model's ledger with alarm-driven ones: ``monitoring.retraining.cooldownMinutes`` and
    ``maxPerDay`` bound both together, and a start is refused (and humans told) within the cooldown.
    """

    enabled: bool = Field(
        default=False,
        description="Start the pipeline on new data in the model's sourceTable (a curated table); needs sourceTable.",
    )
    match: Literal["commits", "objects"] = Field(
        default="commits",
        description="commits: only the commit marker mlops.ingestion writes once a load is complete "
        "(_commits/<table prefix><batch id>.json; one event per load); objects: every data object under the table "
        "prefix (producers that write no marker; a burst is gathered by batchingWindowSeconds).",
    )
    batching_window_seconds: int = Field(
        default=MAX_BATCHING_WINDOW_SECONDS,
        ge=1,
        le=MAX_BATCHING_WINDOW_SECONDS,
        description="Longest the responder waits to gather a burst of new-data events into one decision "
        "(Lambda's MaximumBatchingWindowInSeconds for SQS, 1-300); loads gathered together start one run.",
    )


def new_data_problem(
    index: int, source_table: str | None, settings: NewDataRetrainingSettings, tables: Sequence[TableSpec]
) -> KeyedValueError | None:
    """Why ``models[index].training.retrainOnNewData`` cannot work with the declared tables, or None.

    It needs ``sourceTable`` naming a table of the curated zone (the lake sends the curated bucket's events to
    EventBridge) whose prefix is not ingestion's own (``_staging/``, ``_commits/``).
    """
    if not settings.enabled:
        return None
    path = ("models", index, "training", "retrainOnNewData", "enabled")
    if source_table is None:
        return KeyedValueError(
            path, "retrainOnNewData.enabled=true needs models[].sourceTable (a table of catalog.tables in zone curated)"
        )
    curated = curated_table(source_table, tables)
    if curated is None:
        zones = sorted(t.zone for t in tables if t.name == source_table)
        return KeyedValueError(
            path,
            f"retrainOnNewData.enabled=true needs sourceTable '{source_table}' in the curated zone; it is declared in "
            f"zone(s) {', '.join(zones) or '(none)'} (catalog.tables[].zone must be curated)",
        )
    if not UNENCODED_PREFIX.match(curated.location_prefix):
        return KeyedValueError(
            path,
            f"sourceTable '{source_table}' has prefix '{curated.location_prefix}'; retraining on new data needs a "
            "prefix of letters, digits and '_-./' only (S3 URL-encodes other characters in its events, and the "
            "rule's prefix filter compares the encoded key)",
        )
    if curated.location_prefix.startswith(RESERVED_PREFIXES):
        return KeyedValueError(
            path,
            f"sourceTable '{source_table}' has prefix '{curated.location_prefix}', inside ingestion's "
            f"{' or '.join(RESERVED_PREFIXES)}; choose another catalog.tables[].prefix",
        )
    return None


def curated_table(name: str, tables: Sequence[TableSpec]) -> TableSpec | None:
    """The table called ``name`` in the curated zone, if declared."""
    return next((t for t in tables if t.name == name and t.zone == "curated"), None)


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
        description="Overrides of train.py's default hyperparameters: learning_rate (> 0), max_iter (integer >= 1), "
        "max_leaf_nodes (integer >= 2), min_samples_leaf (integer >= 1), l2_regularization (>= 0); each becomes a "
        "pipeline parameter.",
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
    retrain_on_new_data: NewDataRetrainingSettings = Field(
        default_factory=lambda: NewDataRetrainingSettings(),
        description="Start the pipeline when new data lands in the model's sourceTable (curated zone): enabled, "
        "match (commits or objects), batchingWindowSeconds. Limited by monitoring.retraining's cooldown and cap.",
    )

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _hyperparameters_train_py_accepts(cls, value: Any) -> Any:
        """Names, types and ranges checked now, not hours later when the training job starts."""
        if not isinstance(value, dict):
            return value  # the field's own type check says what is expected
        return {name: _hyperparameter(name, item) for name, item in value.items()}

    @field_validator("registry_account_ids")
    @classmethod
    def _unique_accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"registryAccountIds lists an account twice: {list(value)}")
        return value
