"""Build one model's SageMaker training pipeline, offline and deterministically.

``preprocess → train → evaluate → condition(metric >= threshold) → register | fail``

:func:`build_pipeline` returns the SDK's :class:`Pipeline` object; :func:`pipeline_definition` its JSON,
which the infrastructure passes to ``aws.sagemaker.Pipeline(pipeline_definition=...)``. Building makes no
network call and reads no credentials: every value the SDK would otherwise look up (role, default bucket,
region, image URI) comes from :class:`~pipelines.settings.PipelineSettings`, the step code is referenced by
``s3://`` URI (the SDK never uploads anything), and job names and output locations derive from the
pipeline's execution id at run time, so the same settings give the same bytes.

The SageMaker Python SDK is v3 (``sagemaker.mlops.workflow``, ``sagemaker.core.workflow``,
``sagemaker.train.ModelTrainer``, ``sagemaker.serve.ModelBuilder``); it is imported lazily, after
:func:`configure_offline_environment` has run, because importing it creates AWS clients.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pipelines.images import image_uri
from pipelines.settings import PipelineSettings

if TYPE_CHECKING:
    from sagemaker.core.workflow.parameters import Parameter
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline

# Step names: the infrastructure, the responders and the tests refer to them.
PREPROCESS_STEP = "Preprocess"
TRAIN_STEP = "Train"
EVALUATE_STEP = "Evaluate"
CONDITION_STEP = "CheckMetric"
REGISTER_STEP = "RegisterModel"
FAIL_STEP = "MetricBelowThreshold"

# Pipeline parameter names (hyperparameters add one each, see hyperparameter_parameter_name).
INPUT_DATA_URI = "InputDataUri"
DATA_VERSION = "DataVersion"
CODE_VERSION = "CodeVersion"
METRIC_THRESHOLD = "MetricThreshold"
MODEL_APPROVAL_STATUS = "ModelApprovalStatus"
PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
TRAINING_INSTANCE_TYPE = "TrainingInstanceType"

DRIFT_BASELINE_FILE = "drift-baseline.json"
"""The platform drift job's baseline in the preprocess step's ``baseline`` output (mlops.monitoring.drift.baseline)."""
SERVED_MEDIA_TYPES = ("application/json", "text/csv")
"""Request and response media types of the platform's inference server, declared on every model version."""
EVALUATION_REPORT = "EvaluationReport"
"""Name of the evaluation step's property file (``evaluation.json``)."""

# Container paths (SageMaker's processing and training layouts); the step scripts use the same defaults.
PROCESSING_ROOT = "/opt/ml/processing"
FEATURE_CODE_DIR = f"{PROCESSING_ROOT}/input/code_lib"
TRAINING_CODE_ARCHIVE = "/opt/ml/input/data/code/sourcedir.tar.gz"

# The environment variables the SDK reads at import and build time. Setting them here, once, is what makes
# building offline: no instance-metadata lookups, no IAM GetRole for the role ARN.
OFFLINE_ENVIRONMENT = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAGEMAKER_VALIDATE_ROLE": "false",
}

# A minimal SDK config, given to the session so that no config file of the machine (~/.config/sagemaker,
# /etc/xdg/sagemaker, SAGEMAKER_*_CONFIG_OVERRIDE) can change the definition. It is swapped for an empty one
# right after the session validated it: the SDK re-validates a non-empty config against its JSON schema on
# every lookup (~0.06 s each, dozens per build), re-checking the schema itself each time (see
# _sdk_shortcuts).
_SDK_CONFIG: dict[str, Any] = {"SchemaVersion": "1.0"}


def configure_offline_environment(region: str) -> None:
    """Set the environment the SDK needs to build offline (existing values win; idempotent).

    ``AWS_DEFAULT_REGION`` is needed because importing the SDK creates a client; the pipeline itself
    always uses ``settings.region``.
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


_TELEMETRY_LOCK = threading.RLock()


@contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Run SDK code offline: environment set (see :func:`configure_offline_environment`), telemetry off.

    The SDK's telemetry decorator wraps ``Processor.run``, ``ModelTrainer.train``, ``ModelBuilder.register``
    and more, and sends an event from a background thread after each call (an STS call, then an HTTPS GET
    to S3). Its only opt-out is the SDK config file setting, whose lookup costs seconds per build (see
    ``_SDK_CONFIG``), so the sender is replaced by a no-op while the block runs and restored afterwards.
    """
    configure_offline_environment(region)
    with _TELEMETRY_LOCK, warnings.catch_warnings(), _sdk_log_quiet():
        from sagemaker.core.telemetry import telemetry_logging

        # Expected while building: every step says it runs "within a PipelineSession", and v3 still
        # imports its own deprecated shims.
        warnings.filterwarnings("ignore", message="Running within a PipelineSession", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sagemaker(\.|$)")
        original = telemetry_logging._send_telemetry_request
        telemetry_logging._send_telemetry_request = _no_telemetry
        try:
            yield
        finally:
            telemetry_logging._send_telemetry_request = original


@contextmanager
def _sdk_log_quiet() -> Iterator[None]:
    """Keep the SDK's expected chatter out of a plan's or `pulumi up`'s output while it builds a definition.

    Building logs about twenty records that say nothing about this platform (a telemetry notice, "Popping out
    'TrainingJobName' ...", the image it picked, IAM validation skipped) at DEBUG to WARNING, through loggers
    the SDK sets to DEBUG itself. Errors still pass; the previous setting is restored afterwards.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _no_telemetry(*args: Any, **kwargs: Any) -> None:
    return None


def hyperparameter_parameter_name(key: str) -> str:
    """Pipeline parameter name of a hyperparameter: ``max_leaf_nodes`` → ``MaxLeafNodes``."""
    return "".join(part.capitalize() for part in key.split("_"))


def metric_json_path(metric_name: str) -> str:
    """JSONPath of a metric's value in ``evaluation.json`` (Model Monitor's model-quality layout)."""
    return f"binary_classification_metrics.{metric_name}.value"


def pipeline_definition(settings: PipelineSettings) -> str:
    """The pipeline definition JSON for ``settings``: the same settings give the same bytes.

    Keys are sorted and separators fixed, so the text does not depend on the SDK's dict ordering. The
    result is a pure function of the settings, so it is cached per process (building takes ~1 s; the
    offline plan and the tests run the program many times).
    """
    return _definition_for(settings.model_dump_json())


@functools.lru_cache(maxsize=32)
def _definition_for(settings_json: str) -> str:
    settings = PipelineSettings.model_validate_json(settings_json)
    with offline_sdk(settings.region):
        definition = json.loads(build_pipeline(settings).definition())
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def build_pipeline(settings: PipelineSettings) -> Pipeline:
    """The SageMaker pipeline of one model (see the module docstring for the steps).

    Raises:
        mlops.features.FeatureSpecError: ``settings.feature_spec`` is not a registered feature spec.
    """
    from mlops.features import get_spec

    spec = get_spec(settings.feature_spec)  # fail early on an unknown spec, before any SDK object exists
    with offline_sdk(settings.region), _sdk_shortcuts():
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow import Pipeline

        class _OfflinePipeline(Pipeline):
            """A Pipeline whose ``definition()`` runs under :func:`offline_sdk` (steps compile lazily)."""

            def definition(self) -> str:
                with offline_sdk(settings.region), _sdk_shortcuts():
                    return super().definition()

        session = _pipeline_session(settings)
        params = _Parameters(settings)

        def output_uri(*parts: str) -> Any:
            # One prefix per execution: re-runs never overwrite, and the definition holds no timestamp.
            return Join(on="/", values=[settings.output_uri, ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])

        preprocess = _preprocess_step(settings, session, params, output_uri)
        train = _train_step(settings, session, params, preprocess, spec.name)
        evaluate, report = _evaluate_step(settings, session, params, preprocess, train, output_uri)
        check = _condition_step(settings, session, params, preprocess, train, evaluate, report, output_uri)

        return _OfflinePipeline(
            name=settings.pipeline_name,
            parameters=params.all,
            steps=[preprocess, train, evaluate, check],
            sagemaker_session=session,
        )


class _Parameters:
    """The pipeline's parameters, with the settings as defaults."""

    def __init__(self, settings: PipelineSettings) -> None:
        from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

        self.input_data_uri = ParameterString(INPUT_DATA_URI, default_value=settings.input_data_uri)
        self.data_version = ParameterString(DATA_VERSION, default_value=settings.data_version)
        self.code_version = ParameterString(CODE_VERSION, default_value=settings.code_version)
        self.metric_threshold = ParameterFloat(METRIC_THRESHOLD, default_value=settings.metric_threshold)
        self.approval_status = ParameterString(
            MODEL_APPROVAL_STATUS,
            default_value=settings.approval_status,
            enum_values=["PendingManualApproval", "Approved"],
        )
        self.processing_instance_type = ParameterString(
            PROCESSING_INSTANCE_TYPE, default_value=settings.processing_instance_type
        )
        self.training_instance_type = ParameterString(
            TRAINING_INSTANCE_TYPE, default_value=settings.training_instance_type
        )
        self.hyperparameters: dict[str, Parameter] = {}
        for key in sorted(settings.hyperparameters):
            value = settings.hyperparameters[key]
            name = hyperparameter_parameter_name(key)
            if isinstance(value, int):
                self.hyperparameters[key] = ParameterInteger(name, default_value=value)
            elif isinstance(value, float):
                self.hyperparameters[key] = ParameterFloat(name, default_value=value)
            else:
                self.hyperparameters[key] = ParameterString(name, default_value=value)

    @property
    def all(self) -> list[Parameter]:
        return [
            self.input_data_uri,
            self.data_version,
            self.code_version,
            self.metric_threshold,
            self.approval_status,
            self.processing_instance_type,
            self.training_instance_type,
            *self.hyperparameters.values(),
        ]


@functools.cache
def _service_model_loader() -> Any:
    """The botocore loader every build's session uses: it caches the decoded AWS service models.

    Decoding them (the SageMaker model alone is 2.6 MB of JSON, botocore's endpoint table 1.2 MB) is most of
    what creating the session's clients costs, and the garbage collector's full passes over the objects
    they allocate cost as much again. Importing the SDK already decoded the SageMaker and S3 models with
    the loader of boto3's default session (``sagemaker.ai_registry`` creates clients at import), so that
    loader is reused when it exists.
    """
    import boto3
    import botocore.loaders

    default_session = boto3.DEFAULT_SESSION
    if default_session is not None:
        return default_session._session.get_component("data_loader")
    return botocore.loaders.create_loader()


def _botocore_session() -> Any:
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", _service_model_loader())
    return session


@contextmanager
def _sdk_shortcuts() -> Iterator[None]:
    """Skip two costs of building that cannot change the definition; everything is restored afterwards.

    * ``ProcessingStep`` checks its step arguments against ``LocalSagemakerClient().create_processing_job``'s
      name, and that constructor creates a whole local-mode session (a new boto session that decodes
      botocore's endpoint table again, S3 clients, the machine's SDK config files) that is thrown away.
      The client class used there is replaced by a subclass that creates no session: the method name,
      all the check reads, is the same.
    * The SDK validates its config with ``jsonschema.validate``, which first re-validates the SDK's whole
      schema against the JSON-Schema meta-schema (~0.06 s; three times per session). The config is
      validated against the same schema, with a validator built once, without that meta-check.
    """
    from sagemaker.core.config import config_manager
    from sagemaker.core.helper import session_helper
    from sagemaker.mlops.workflow import steps

    patches = [
        (steps, "LocalSagemakerClient", _sessionless_local_client(steps.LocalSagemakerClient)),
        (session_helper, "validate_sagemaker_config", _validate_sdk_config),
        (config_manager.SageMakerConfig, "validate_sagemaker_config", staticmethod(_validate_sdk_config)),
    ]
    originals = [(owner, name, vars(owner)[name]) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@functools.cache
def _sessionless_local_client(base: type) -> type:
    class _SessionlessLocalSagemakerClient(base):
        def __init__(self, sagemaker_session: Any = None) -> None:
            self.sagemaker_session = sagemaker_session

    return _SessionlessLocalSagemakerClient


def _validate_sdk_config(sagemaker_config: dict[str, Any] | None = None) -> None:
    """``jsonschema.validate(sagemaker_config, SDK schema)`` without re-checking the schema itself."""
    from jsonschema.exceptions import best_match

    error = best_match(_sdk_config_validator().iter_errors(sagemaker_config))
    if error is not None:
        raise error


@functools.cache
def _sdk_config_validator() -> Any:
    from jsonschema.validators import validator_for
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    return validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)


def _pipeline_session(settings: PipelineSettings) -> PipelineSession:
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    session = PipelineSession(
        boto_session=boto3.Session(region_name=settings.region, botocore_session=_botocore_session()),
        default_bucket=settings.default_bucket,
        default_bucket_prefix=settings.default_bucket_prefix,
        sagemaker_config=_SDK_CONFIG,
    )
    session.sagemaker_config = {}
    # default_bucket() checks (and may create) the bucket on first use, which calls S3 and STS. The bucket
    # is the platform's, created by Pulumi: mark it as already resolved. (The SDK has no public switch.)
    session._default_bucket = settings.default_bucket
    return session


def _image_uri(settings: PipelineSettings, instance_type: str) -> str:
    # The SDK's image_uris.retrieve gives the same URI (tests/unit/test_images.py), but decodes botocore's
    # endpoint table and the image table again on every call.
    return image_uri("sklearn", settings.region, settings.framework_version, instance_type)


def _network_config(settings: PipelineSettings) -> Any:
    from sagemaker.core.network import NetworkConfig

    return NetworkConfig(
        enable_network_isolation=settings.enable_network_isolation,
        security_group_ids=list(settings.security_group_ids) or None,
        subnets=list(settings.subnets) or None,
        encrypt_inter_container_traffic=True,
    )


def _processor(settings: PipelineSettings, session: PipelineSession, params: _Parameters, job: str) -> Any:
    from sagemaker.core.processing import ScriptProcessor

    return ScriptProcessor(
        role=settings.role_arn,
        image_uri=_image_uri(settings, settings.processing_instance_type),
        command=["python3"],
        instance_type=params.processing_instance_type,
        instance_count=settings.processing_instance_count,
        volume_size_in_gb=settings.volume_size_gb,
        volume_kms_key=settings.kms_key_arn,
        output_kms_key=settings.kms_key_arn,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        base_job_name=f"{settings.model_name}-{job}",
        sagemaker_session=session,
        env={"MLOPS_CODE_DIR": FEATURE_CODE_DIR, "PYTHONHASHSEED": "0"},
        network_config=_network_config(settings),
    )


def _s3_input(name: str, source: Any, destination: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=source,
            local_path=destination,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _s3_output(name: str, source: str, destination: Any) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=destination, local_path=source, s3_upload_mode="EndOfJob"),
    )


def _output_s3_uri(step: Any, output_name: str) -> Any:
    return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri


def _preprocess_step(settings: PipelineSettings, session: PipelineSession, params: _Parameters, output_uri) -> Any:
    from sagemaker.mlops.workflow import ProcessingStep

    processor = _processor(settings, session, params, "preprocess")
    step_args = processor.run(
        code=settings.script_uri("preprocess.py"),
        inputs=[
            _s3_input("raw", params.input_data_uri, f"{PROCESSING_ROOT}/input/raw"),
            _s3_input("code-lib", settings.feature_code_uri, f"{FEATURE_CODE_DIR}/mlops"),
        ],
        outputs=[
            _s3_output(name, f"{PROCESSING_ROOT}/output/{name}", output_uri(PREPROCESS_STEP.lower(), name))
            for name in ("train", "validation", "test", "baseline")
        ],
        arguments=[
            "--feature-spec",
            settings.feature_spec,
            "--data-version",
            params.data_version,
            "--validation-fraction",
            str(settings.validation_fraction),
            "--test-fraction",
            str(settings.test_fraction),
            "--seed",
            str(settings.random_seed),
        ],
    )
    return ProcessingStep(
        name=PREPROCESS_STEP,
        step_args=step_args,
        description="Raw records → features (shared feature spec), train/validation/test split, data-quality baseline",
    )


def _train_step(
    settings: PipelineSettings, session: PipelineSession, params: _Parameters, preprocess: Any, spec_name: str
) -> Any:
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig, StoppingCondition
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    # CreateTrainingJob's HyperParameters is a string-to-string map, and SageMaker type-checks parameter
    # references when the pipeline is created: an Integer or Float parameter placed raw is refused ("Cannot
    # assign property reference ... to argument of type [String]"). ModelTrainer (v3) passes pipeline
    # variables through unconverted, so each is converted here, as SDK v2's estimators did: to_string() is
    # Std:Join of the one value (a String parameter is itself). The parameters stay typed for executions.
    hyperparameters: dict[str, Any] = {key: param.to_string() for key, param in params.hyperparameters.items()}
    hyperparameters.update(
        {
            "feature_spec": spec_name,
            "data_version": params.data_version,
            "code_version": params.code_version,
            # Script mode of the SageMaker scikit-learn container (sagemaker-training-toolkit): the code
            # arrives as the "code" channel (staged by SageMaker, so network isolation and VPC-only jobs
            # need no S3 access from the container) and the toolkit extracts it and runs the program.
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": TRAINING_CODE_ARCHIVE,
            "sagemaker_region": settings.region,
            "sagemaker_container_log_level": 20,
        }
    )
    networking = None
    if settings.subnets or settings.enable_network_isolation:
        networking = Networking(
            subnets=list(settings.subnets) or None,
            security_group_ids=list(settings.security_group_ids) or None,
            enable_network_isolation=settings.enable_network_isolation,
            enable_inter_container_traffic_encryption=True,
        )
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=settings.role_arn,
        training_image=_image_uri(settings, settings.training_instance_type),
        base_job_name=f"{settings.model_name}-train",
        compute=Compute(
            instance_type=params.training_instance_type,
            instance_count=settings.training_instance_count,
            volume_size_in_gb=settings.volume_size_gb,
            volume_kms_key_id=settings.kms_key_arn,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=settings.max_runtime_seconds),
        output_data_config=OutputDataConfig(
            s3_output_path=Join(
                on="/", values=[settings.output_uri, ExecutionVariables.PIPELINE_EXECUTION_ID, TRAIN_STEP.lower()]
            ),
            kms_key_id=settings.kms_key_arn,
        ),
        networking=networking,
        hyperparameters=hyperparameters,
        environment={"PYTHONHASHSEED": "0"},
    )
    step_args = trainer.train(
        input_data_config=[
            InputData(channel_name="train", data_source=_output_s3_uri(preprocess, "train"), content_type="text/csv"),
            InputData(
                channel_name="validation",
                data_source=_output_s3_uri(preprocess, "validation"),
                content_type="text/csv",
            ),
            InputData(channel_name="code", data_source=settings.training_source_uri),
        ],
    )
    return TrainingStep(
        name=TRAIN_STEP,
        step_args=step_args,
        description="Fit the scikit-learn model; writes model.joblib and model-metadata.json",
    )


def _evaluate_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: _Parameters,
    preprocess: Any,
    train: Any,
    output_uri,
) -> tuple[Any, Any]:
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    report = PropertyFile(name=EVALUATION_REPORT, output_name="evaluation", path="evaluation.json")
    processor = _processor(settings, session, params, "evaluate")
    step_args = processor.run(
        code=settings.script_uri("evaluate.py"),
        inputs=[
            _s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING_ROOT}/input/model"),
            _s3_input("test", _output_s3_uri(preprocess, "test"), f"{PROCESSING_ROOT}/input/test"),
            _s3_input("code-lib", settings.feature_code_uri, f"{FEATURE_CODE_DIR}/mlops"),
        ],
        outputs=[
            _s3_output(
                "evaluation", f"{PROCESSING_ROOT}/output/evaluation", output_uri(EVALUATE_STEP.lower(), "evaluation")
            )
        ],
    )
    step = ProcessingStep(
        name=EVALUATE_STEP,
        step_args=step_args,
        property_files=[report],
        description="Score the test split; writes evaluation.json and predictions.csv",
    )
    return step, report


def _condition_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: _Parameters,
    preprocess: Any,
    train: Any,
    evaluate: Any,
    report: Any,
    output_uri,
) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    # Typed Any where the SDK's annotations are narrower than what it accepts and emits (JsonGet as a
    # condition operand, a list of a Condition subclass, the core ModelMetrics/DriftCheckBaselines classes
    # in register(), and register()'s step arguments under a PipelineSession).
    metric: Any = JsonGet(
        step_name=evaluate.name, property_file=report, json_path=metric_json_path(settings.metric_name)
    )
    register = _register_step(settings, session, params, preprocess, train, evaluate)
    fail = FailStep(
        name=FAIL_STEP,
        error_message=Join(
            on="",
            values=[
                f"Model not registered: {settings.metric_name} = ",
                metric,
                f" is below the {METRIC_THRESHOLD} ",
                params.metric_threshold,
                " (evaluation report: ",
                output_uri(EVALUATE_STEP.lower(), "evaluation", "evaluation.json"),
                ")",
            ],
        ),
    )
    conditions: list[Any] = [ConditionGreaterThanOrEqualTo(left=metric, right=params.metric_threshold)]
    return ConditionStep(
        name=CONDITION_STEP,
        conditions=conditions,
        if_steps=[register],
        else_steps=[fail],
        description=f"Register the model only if {settings.metric_name} >= {METRIC_THRESHOLD}",
    )


def _register_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: _Parameters,
    preprocess: Any,
    train: Any,
    evaluate: Any,
) -> Any:
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    def source(step: Any, output: str, file: str) -> Any:
        return MetricsSource(
            content_type="application/json", s3_uri=Join(on="/", values=[_output_s3_uri(step, output), file])
        )

    evaluation = source(evaluate, "evaluation", "evaluation.json")
    if settings.monitoring_engine == "platform":
        # The platform drift job's baseline, computed by the code that computes the live statistics
        # (mlops.monitoring.drift): what a deployment of this version hands its drift job as the reference.
        drift = source(preprocess, "baseline", DRIFT_BASELINE_FILE)
        model_metrics: Any = ModelMetrics(model_statistics=evaluation, model_data_statistics=drift)
        baselines: Any = DriftCheckBaselines(model_data_statistics=drift)
    else:
        statistics = source(preprocess, "baseline", "statistics.json")
        constraints = source(preprocess, "baseline", "constraints.json")
        model_metrics = ModelMetrics(
            model_statistics=evaluation, model_data_statistics=statistics, model_data_constraints=constraints
        )
        baselines = DriftCheckBaselines(model_data_statistics=statistics, model_data_constraints=constraints)
    builder = ModelBuilder(
        image_uri=settings.inference_image_uri,
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=settings.role_arn,
        sagemaker_session=session,
        # The model artifact is complete as trained (model.joblib + model-metadata.json): no code to
        # repack, so no upload and no script-mode environment (SAGEMAKER_PROGRAM) in the container.
        dependencies=None,
        env_vars={"MLOPS_FEATURE_SPEC": settings.feature_spec},
    )
    step_args: Any = builder.register(
        model_package_group_name=settings.model_package_group_name,
        # Exactly what the inference server parses and answers (containers/inference/inference_server/payload.py):
        # a client or a batch transform job may ask for either.
        content_types=list(SERVED_MEDIA_TYPES),
        response_types=list(SERVED_MEDIA_TYPES),
        inference_instances=["ml.m5.large", "ml.m5.xlarge"],
        transform_instances=["ml.m5.large"],
        approval_status=params.approval_status,
        model_metrics=model_metrics,
        drift_check_baselines=baselines,
        customer_metadata_properties={
            "feature_spec": settings.feature_spec,
            "data_version": params.data_version,
            "code_version": params.code_version,
            "input_data_uri": params.input_data_uri,
        },
    )
    return ModelStep(name=REGISTER_STEP, step_args=step_args)
