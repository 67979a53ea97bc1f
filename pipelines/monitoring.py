"""Build one model's monitoring pipeline: a single processing step that runs the platform's drift job.

``MonitorDrift``: ``python3 monitor.py`` (the step script of the published code bundle, with the bundle's
``mlops`` package beside it, exactly as the training pipeline's processing steps get their code) on the
training pipeline's scikit-learn image, over the window of captured requests that ends when the execution
starts (the ``Execution.StartDateTime`` execution variable: a retried execution analyzes the same window).

The definition is written as plain JSON rather than with the SageMaker SDK (which :mod:`pipelines.factory` uses
for the multi-step training pipeline): one step with no property references between steps gains nothing from
the SDK's step graph, while building with SDK v3 offline needs its workarounds (environment, telemetry, session
shortcuts) and about a second per build. As plain data, :func:`monitoring_pipeline_definition` is a pure
function of :class:`MonitoringPipelineSettings` (same settings, same bytes), and the step's arguments are a
``CreateProcessingJob`` request that tests validate against botocore's model of that API; the keys and layout
follow what the SDK emits for the training pipeline's processing steps.

The job's command line is the drift job's contract (``python -m mlops.monitoring.drift``; ``pipelines/steps/
monitor.py`` runs it): see :func:`container_arguments`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from pipelines.images import image_uri
from pipelines.settings import InstanceType, KmsKeyArn, Region, RoleArn, S3Uri, SageMakerName

DEFINITION_VERSION = "2020-12-01"
"""The pipeline definition schema version the SDK emits."""
MONITOR_STEP = "MonitorDrift"
MONITOR_SCRIPT = "monitor.py"
"""The step script in the published code bundle (``<code_uri>/monitor.py``)."""
PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"
FEATURE_CODE_DIR = f"{PROCESSING_ROOT}/input/code_lib"
"""Same container layout as the training pipeline's processing steps (``MLOPS_CODE_DIR`` goes on sys.path)."""
WINDOW_END: dict[str, str] = {"Get": "Execution.StartDateTime"}
"""The execution's start time (SageMaker Pipelines execution variable ``StartDateTime``)."""
FRAMEWORK_VERSION = "1.9-0"
"""The scikit-learn image version of the training pipeline (``PipelineSettings.framework_version``)."""

MetricsNamespace = Annotated[str, StringConstraints(pattern=r"^[^:$/][^:$]{0,254}$")]


class MonitoringPipelineSettings(BaseModel):
    """Everything that defines one model's monitoring pipeline, as plain values (no Pulumi outputs)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    model_name: SageMakerName = Field(description="Model name: the Model dimension and the report partition.")
    pipeline_name: SageMakerName = Field(description="SageMaker pipeline name.")
    feature_spec: str = Field(min_length=1, description="The model's feature spec (``--model``).")
    endpoint_name: SageMakerName = Field(description="The endpoint watched: the Endpoint dimension.")
    region: Region
    role_arn: RoleArn = Field(description="Role of the processing job.")
    kms_key_arn: KmsKeyArn = Field(description="Key of the job's volume.")
    code_uri: S3Uri = Field(description="The published code bundle (``monitor.py`` and ``mlops/``).")
    baseline_uri: S3Uri = Field(description="Drift baseline of the served version (``--reference``).")
    capture_uri: S3Uri = Field(description="The endpoint's data-capture prefix (``--capture``).")
    reports_uri: S3Uri = Field(description="Where reports go (``--out``).")
    ground_truth_uri: S3Uri | None = Field(default=None, description="Labels (``--ground-truth``); None: none.")
    window_hours: int = Field(ge=1, le=168)
    instance_type: InstanceType = "ml.m5.large"
    max_runtime_seconds: int = Field(default=1800, ge=60, le=86400)
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    framework_version: str = FRAMEWORK_VERSION
    drift_thresholds: dict[str, float] = Field(default_factory=dict, description="Feature → threshold overrides.")
    segments: tuple[str, ...] = ()
    probability_threshold: float = Field(default=0.5, gt=0, lt=1)
    metrics_namespace: MetricsNamespace

    @field_validator("code_uri")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("capture_uri", "reports_uri", "ground_truth_uri")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return None if value is None else value.rstrip("/") + "/"

    @property
    def image(self) -> str:
        """The training pipeline's scikit-learn image for this region and instance type."""
        return image_uri("sklearn", self.region, self.framework_version, self.instance_type)


def container_arguments(settings: MonitoringPipelineSettings) -> list[Any]:
    """The drift job's command line: one window of capture against the served version's baseline.

    Optional arguments are left out when unset (``--ground-truth`` without model-quality monitoring,
    ``--segments`` without segments); ``--thresholds`` is always given (``{}``: the job's defaults).
    """
    arguments: list[Any] = [
        "--model", settings.feature_spec,
        "--reference", settings.baseline_uri,
        "--capture", settings.capture_uri,
        "--window-end", WINDOW_END,
        "--window-hours", str(settings.window_hours),
    ]  # fmt: skip
    if settings.ground_truth_uri is not None:
        arguments += ["--ground-truth", settings.ground_truth_uri]
    arguments += [
        "--out", settings.reports_uri,
        "--thresholds", json.dumps(dict(sorted(settings.drift_thresholds.items())), separators=(",", ":")),
    ]  # fmt: skip
    if settings.segments:
        arguments += ["--segments", ",".join(settings.segments)]
    arguments += [
        "--probability-threshold", repr(settings.probability_threshold),
        "--metrics-namespace", settings.metrics_namespace,
        "--dimension", f"Model={settings.model_name}",
        "--dimension", f"Endpoint={settings.endpoint_name}",
    ]  # fmt: skip
    return arguments


def _code_input(name: str, uri: str, destination: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "LocalPath": destination,
            "S3CompressionType": "None",
            "S3DataDistributionType": "FullyReplicated",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3Uri": uri,
        },
    }


def processing_arguments(settings: MonitoringPipelineSettings) -> dict[str, Any]:
    """The step's ``CreateProcessingJob`` request (SageMaker Pipelines names the job)."""
    return {
        "AppSpecification": {
            "ImageUri": settings.image,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{MONITOR_SCRIPT}"],
            "ContainerArguments": container_arguments(settings),
        },
        "Environment": {
            "AWS_DEFAULT_REGION": settings.region,
            "MLOPS_CODE_DIR": FEATURE_CODE_DIR,
            "PYTHONHASHSEED": "0",
        },
        # The job reads the capture window and writes its report through S3's API and publishes CloudWatch
        # metrics itself: it needs the network (unlike the training steps, whose data SageMaker stages).
        "NetworkConfig": {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": False},
        "ProcessingInputs": [
            _code_input("code", f"{settings.code_uri}/{MONITOR_SCRIPT}", CODE_DIR),
            # The trailing slash keeps "mlops-old/..." keys out of the prefix.
            _code_input("code-lib", f"{settings.code_uri}/mlops/", f"{FEATURE_CODE_DIR}/mlops"),
        ],
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": settings.instance_type,
                "VolumeKmsKeyId": settings.kms_key_arn,
                "VolumeSizeInGB": settings.volume_size_gb,
            }
        },
        "RoleArn": settings.role_arn,
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_seconds},
    }


def build_definition(settings: MonitoringPipelineSettings) -> dict[str, Any]:
    """The pipeline definition as a dict: no parameters, one processing step, no experiment tracking."""
    return {
        "Version": DEFINITION_VERSION,
        "Metadata": {},
        "Parameters": [],
        # null, as the SDK emits for pipeline_experiment_config=None: no experiment and trial per execution
        # (an hourly monitor would add 8,760 trials a year).
        "PipelineExperimentConfig": None,
        "Steps": [
            {
                "Name": MONITOR_STEP,
                "Type": "Processing",
                "Description": f"Drift and quality of {settings.endpoint_name}'s captured requests over "
                f"{settings.window_hours} h, against the served version's baseline",
                "Arguments": processing_arguments(settings),
            }
        ],
    }


def monitoring_pipeline_definition(settings: MonitoringPipelineSettings) -> str:
    """The definition JSON: keys sorted and separators fixed, so the same settings give the same bytes."""
    return json.dumps(build_definition(settings), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
