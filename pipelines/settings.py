"""Typed, validated settings of one model's training pipeline.

:class:`PipelineSettings` is everything :func:`pipelines.factory.build_pipeline` needs, as plain values:
no Pulumi outputs, no AWS calls. The infrastructure resolves its outputs (role ARN, bucket, KMS key) first
and then builds the settings, so a bad value fails with a message naming the field before any definition
is serialised.

Defaults are the safe, cheap choice: new versions wait for manual approval, jobs stop after an hour, and
the step code is taken from one immutable, versioned code prefix (see ``pipelines/README.md``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

ApprovalStatus = Literal["PendingManualApproval", "Approved"]
"""Approval status a new model version is registered with (``Rejected`` is for humans, not pipelines)."""

MetricName = Literal["auc", "accuracy", "precision", "recall", "f1"]
"""Metrics ``evaluate.py`` reports; the condition step compares one of them with the threshold."""

HyperparameterValue = int | float | str

# AWS patterns: SageMaker entity names (pipelines, model package groups) and the pieces the factory checks.
_SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_HYPERPARAMETER_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

SageMakerName = Annotated[str, StringConstraints(pattern=_SAGEMAKER_NAME)]
RoleArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$", max_length=2048)
]
KmsKeyArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9_/-]+$")
]
S3Uri = Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")]
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
EcrDigestImageUri = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$"
    ),
]
"""An ECR image pinned by digest: a tag may later name other bytes, a digest never does."""
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]

DEFAULT_HYPERPARAMETERS: dict[str, HyperparameterValue] = {
    "learning_rate": 0.05,
    "max_iter": 100,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
}
"""Defaults of ``train.py``'s HistGradientBoostingClassifier; a stack may override any of them."""

STEP_SCRIPTS = ("preprocess.py", "train.py", "evaluate.py", "monitor.py")
"""Step scripts published under :attr:`PipelineSettings.code_uri` (plus ``sourcedir.tar.gz`` and ``mlops/``)."""


class PipelineSettings(BaseModel):
    """Everything that defines one model's pipeline definition.

    Every field is a plain value, so the same settings always serialise to the same definition. Names
    (pipeline, model package group) must already follow SageMaker's rules; the platform's naming helper
    derives them as ``<project>-<env>-<model>``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    model_name: SageMakerName = Field(description="Model name, used in job name prefixes and metadata.")
    pipeline_name: SageMakerName = Field(description="SageMaker pipeline name.")
    model_package_group_name: SageMakerName = Field(description="Model package group new versions go to.")
    feature_spec: str = Field(description="Name of the model's FeatureSpec (mlops.features registry).")
    role_arn: RoleArn = Field(description="Execution role of the pipeline's jobs (a full ARN: no IAM lookup).")
    region: Region = Field(description="AWS region of the pipeline (selects the scikit-learn image).")
    default_bucket: BucketName = Field(description="Bucket of the pipeline's outputs (preset: no S3/STS lookup).")
    default_bucket_prefix: str = Field(default="pipelines", description="Key prefix of outputs in the bucket.")
    code_uri: S3Uri = Field(
        description="Immutable S3 prefix holding the published step code of one code version "
        "(preprocess.py, train.py, evaluate.py, sourcedir.tar.gz, mlops/).",
    )
    input_data_uri: S3Uri = Field(description="Default S3 prefix of the raw records (InputDataUri parameter).")
    data_version: str = Field(default="unversioned", min_length=1, description="Default DataVersion parameter.")
    code_version: str = Field(default="unknown", min_length=1, description="Default CodeVersion (git commit).")
    framework_version: str = Field(
        default="1.9-0",
        description="SageMaker scikit-learn container version; its scikit-learn must equal the inference image's.",
    )
    inference_image_uri: EcrDigestImageUri = Field(
        description="The platform's inference image (containers/inference), by digest: every registered version "
        "names it, so a version and the code that serves it are one immutable pair. A stock framework image "
        "cannot serve these models (no inference code, no raw-record contract).",
    )
    monitoring_engine: Literal["platform", "model-monitor"] = Field(
        default="platform",
        description="Which drift baseline a version registers: the platform drift job's (drift-baseline.json) "
        "or Model Monitor's statistics and constraints.",
    )
    processing_instance_type: InstanceType = "ml.m5.large"
    processing_instance_count: int = Field(default=1, ge=1, le=100)
    training_instance_type: InstanceType = "ml.m5.large"
    training_instance_count: int = Field(
        default=1, ge=1, le=1, description="scikit-learn trains on one instance; more would only add cost."
    )
    volume_size_gb: int = Field(default=30, ge=1, le=16384, description="EBS volume of each job instance.")
    hyperparameters: dict[str, HyperparameterValue] = Field(
        default_factory=lambda: dict(DEFAULT_HYPERPARAMETERS),
        description="Training hyperparameters; each becomes a pipeline parameter with this default.",
    )
    metric_name: MetricName = Field(default="auc", description="Evaluation metric the condition step checks.")
    metric_threshold: float = Field(default=0.75, ge=0.0, le=1.0, description="Register only if metric >= this.")
    approval_status: ApprovalStatus = Field(
        default="PendingManualApproval", description="Default ModelApprovalStatus parameter."
    )
    max_runtime_seconds: int = Field(default=3600, ge=60, le=28 * 24 * 3600, description="Per-job time limit.")
    kms_key_arn: KmsKeyArn | None = Field(default=None, description="KMS key of job volumes and outputs.")
    subnets: tuple[SubnetId, ...] = Field(default=(), description="VPC subnets of the jobs (empty: no VPC).")
    security_group_ids: tuple[SecurityGroupId, ...] = Field(default=(), description="Security groups in the VPC.")
    enable_network_isolation: bool = Field(
        default=True,
        description="Run the job containers without network access (the step scripts make no network call; "
        "SageMaker itself stages inputs and uploads outputs).",
    )
    validation_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0.0, lt=0.5)
    random_seed: int = Field(default=42, ge=0)

    @field_validator("default_bucket_prefix")
    @classmethod
    def _prefix_is_a_key_prefix(cls, value: str) -> str:
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError(f"default_bucket_prefix '{value}' must not start or end with '/' or contain '//'")
        return value

    @field_validator("code_uri", "input_data_uri")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameter_keys(cls, value: dict[str, HyperparameterValue]) -> dict[str, HyperparameterValue]:
        for key, item in value.items():
            if not _HYPERPARAMETER_KEY.match(key):
                raise ValueError(f"hyperparameter '{key}' must match {_HYPERPARAMETER_KEY.pattern}")
            if isinstance(item, bool):
                raise ValueError(f"hyperparameter '{key}' is a bool; use 0/1 or a string")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> PipelineSettings:
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ValueError("subnets and security_group_ids must be set together (a VPC config needs both)")
        if self.validation_fraction + self.test_fraction >= 0.6:
            raise ValueError(
                f"validation_fraction + test_fraction = {self.validation_fraction + self.test_fraction} "
                "leaves too little training data; keep the sum below 0.6"
            )
        return self

    def script_uri(self, script: str) -> str:
        """S3 URI of one published step script (``preprocess.py``, ``train.py`` or ``evaluate.py``)."""
        if script not in STEP_SCRIPTS:
            raise ValueError(f"unknown step script '{script}'; expected one of {', '.join(STEP_SCRIPTS)}")
        return f"{self.code_uri}/{script}"

    @property
    def feature_code_uri(self) -> str:
        """S3 prefix of the ``mlops`` package (feature specs) processing jobs download next to their script."""
        return f"{self.code_uri}/mlops/"  # the trailing slash keeps "mlops-old/..." keys out of the prefix

    @property
    def training_source_uri(self) -> str:
        """S3 URI of ``sourcedir.tar.gz`` (train.py and the ``mlops`` package) for the training container."""
        return f"{self.code_uri}/sourcedir.tar.gz"

    @property
    def output_uri(self) -> str:
        """S3 prefix under which every execution writes its outputs (one sub-prefix per execution id)."""
        return f"s3://{self.default_bucket}/{self.default_bucket_prefix}/{self.pipeline_name}"
