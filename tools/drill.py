"""The feedback-loop drill: play the platform's whole loop locally, against LocalStack and moto's server.

``python -m tools.drill`` (``make drill``) starts both emulators on 127.0.0.1 (:mod:`tools.emulators`),
runs every step below with the platform's own code, prints each with ✓ or ✗ and its time, stops the
emulators and exits 0 only if every step passed (1 if one failed, 2 if the emulators could not start)::

    lake        a seeded customer_activity batch lands in the raw zone, then is validated, written as
                partitioned Parquet to the curated zone and catalogued in Glue (mlops.ingestion; moto S3 + Glue)
    features    the curated rows become feature records through the model's FeatureSpec, are written
                offline-store shaped to the features zone, the feature group is created (moto), and a
                point-in-time training set is built from them (mlops.featurestore)
    stream      seeded customer_activity rows (an invalid one among them) go on the table's KMS-encrypted Kinesis
                stream (LocalStack), are read back with GetShardIterator/GetRecords and delivered per shard to the
                update_online_features consumer, then a late, older row of one customer: the online store (the
                local feature store runtime, tools.featurestore_emulator) holds each customer's newest features,
                the invalid row is in the KMS-encrypted failure queue with its reason, the late row changed nothing
    pipeline    the training pipeline's real definition (pipelines.factory) is created and started (moto)
    register    the pipeline's step code trains on the lake's batch (pipelines.local_run) and its model.tar.gz is
                put at ModelDataUrl; the version is registered, pending manual approval (the pipeline's RegisterModel)
    approve     pipelines.registry.approve; it becomes the group's latest approved version
    event       a "SageMaker Model Package State Change" event crosses an EventBridge rule into SQS (LocalStack)
    dispatch    the dispatch_deployment responder gets it and POSTs a workflow_dispatch to a fake GitHub API
    serve       the approved version's model.tar.gz is extracted as SageMaker does and the inference image's `serve`
                runs (staged from its Dockerfile; SAGEMAKER_BIND_TO_PORT) in entity request mode on the feature
                group: a streamed customer's id is scored exactly as its raw row is in rows mode; an unknown id is 404
    heartbeat   the training set's drift baseline is written where the preprocess step writes it; the drift
                job, run as the monitoring pipeline runs it, finds the endpoint's capture still empty:
                RecordsAnalyzed=0 in CloudWatch; the "monitor not reporting" alarm (infra/alarms.py's spec) goes
                to ALARM and the alerts topic delivers it (moto S3, LocalStack CloudWatch + SNS → SQS)
    capture     an hour of data capture whose monthly_spend is shifted, seeded requests of the real
                customer_activity columns, lands in the monitoring bucket (moto S3)
    monitor     the drift job analyses that hour: monthly_spend drifted; FeatureDriftRatio per feature in CloudWatch
    alarm       LocalStack evaluates the feature drift alarms on those metrics: monthly_spend's goes to ALARM, the
                composite model-drift alarm follows and notifies the KMS-encrypted retrain topic; SNS → SQS
    retrain     the retrain_on_alarm responder gets the delivered notification and starts one execution (moto)
    duplicate   the same notification delivered again starts nothing
    storm       a second ALARM transition within the cooldown (the feature alarm forced OK, then ALARM) starts nothing
    notify      the notify_pipeline responder turns the execution's status-change event into an alert (SNS → SQS)

The drift alarms are put in ``setup`` from ``infra/alarms.py``'s specs (per-feature drift and the composite model
drift, wired as the stack deploys them, with 10 s periods instead of the monitor's hour:
:data:`tools.loop_harness.EMULATOR_ALARM_PERIOD_SECONDS`), so LocalStack's own evaluation, on its schedule, moves
them: the ``alarm`` step waits at most one evaluation interval (2 x 10 s) for it. The heartbeat alarm is put in
its step, right after the run it judges (why: in ``step_heartbeat``). No alarm state is set by hand, except the
forced flap of ``storm``.

The responders and the stream consumer run in this process, as Lambda would run them: each handler module is
loaded fresh (cold start) with its contract environment and ``AWS_ENDPOINT_URL_<SERVICE>`` variables that route its
boto3 clients to the right emulator (the consumer's Feature Store runtime client to the local store's HTTP front,
``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME``). Lambda itself cannot run here (it needs Docker), nor can
SageMaker's Feature Store runtime or endpoints: the store is :mod:`tools.featurestore_emulator`, started by
``stream`` and kept until the drill ends; the endpoint is the inference server's process.

The responders, events, topics, queues, alarms and the fake GitHub API come from :mod:`tools.loop_harness`,
which the integration tests use too; this module holds only the drill's steps, its output and its CLI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import math
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3

from tools.emulators import (
    EmulatorError,
    EmulatorUnavailableError,
    Endpoints,
    ensure_localstack_venv,
    running_emulators,
)
from tools.loop_harness import (
    CREDENTIALS,
    EMULATOR_ALARM_PERIOD_SECONDS,
    REGION,
    FakeGitHub,
    MonitoringRun,
    ShardReader,
    activate_encrypted_stream,
    alarm_request,
    aws_environment,
    client,
    create_encrypted_topic,
    create_state_table,
    create_stream,
    describe_alarm,
    evaluation_timeout,
    http_request,
    in_state,
    inference_server,
    is_alarm_notification,
    lambda_sns_event,
    metric_values,
    model_package_event_pattern,
    model_package_state_change_detail,
    patched_environ,
    pipeline_execution_status_change_event,
    put_alarm,
    put_capture,
    put_model_drift_alarm,
    put_rows,
    receive_matching,
    recent_datapoints,
    responder,
    route_rule_to_queue,
    run_monitoring_job,
    score_rows_in_process,
    seeded_requests,
    subscribe_queue,
    wait_for_alarm,
)

if TYPE_CHECKING:
    from pipelines.monitoring import MonitoringPipelineSettings

RETRAINING_COOLDOWN_MINUTES = 360
RETRAINING_MAX_PER_DAY = 2
MONITOR_WINDOW_HOURS = 1
MONITOR_PERIOD_SECONDS = 3600
"""The stack's default monitor: hourly runs over the last hour of capture (the alarms' spec period)."""
SHIFT = {"monthly_spend": 15.0}
"""What drift looks like in the drill's capture: every customer pays 15 more a month than in training (a raw
column the customer-churn spec passes through as the feature of the same name)."""
CAPTURE_CUSTOMERS = 100
CAPTURE_SEED = 12
STREAM_CUSTOMERS = 6
STREAM_SEED = 21
"""The stream's seeded customer_activity rows: 6 customers x 2 days, the days after the lake's batch."""


# ---------------------------------------------------------------------------------------------
# The drill


@dataclass(frozen=True)
class Names:
    """Physical names of the drill's resources (``<project>-<env>-<thing>``, as the platform derives them)."""

    prefix: str = "acme-drill"
    model: str = "customer-churn"
    feature_spec: str = "customer-churn"
    table: str = "customer_activity"
    repository: str = "acme/mlops-platform"
    workflow: str = "deploy.yml"

    def bucket(self, zone: str) -> str:
        return f"{self.prefix}-{zone}"

    def database(self, zone: str) -> str:
        return f"{self.prefix}-{zone}".replace("-", "_")

    @property
    def pipeline(self) -> str:
        return f"{self.prefix}-{self.model}"

    @property
    def group(self) -> str:
        return f"{self.prefix}-{self.model}"

    @property
    def feature_group(self) -> str:
        return f"{self.prefix}-{self.model}"

    @property
    def endpoint(self) -> str:
        return f"{self.prefix}-{self.model}"

    @property
    def capture_uri(self) -> str:
        """The endpoint's data capture, as the serving layer configures it: ``s3://<monitoring>/<model>/data-capture``."""
        return f"s3://{self.bucket('monitoring')}/{self.model}/data-capture"

    @property
    def monitoring_pipeline(self) -> str:
        return f"{self.prefix}-{self.model}-monitoring"

    def feature_drift_alarm(self, feature: str) -> str:
        return f"{self.prefix}-{self.model}-drift-{feature}"

    @property
    def model_drift_alarm(self) -> str:
        """The composite over the feature drift alarms: the alarm that retrains."""
        return f"{self.prefix}-{self.model}-model-drift"

    @property
    def heartbeat_alarm(self) -> str:
        return f"{self.prefix}-{self.model}-monitor-not-reporting"

    @property
    def token_secret(self) -> str:
        return f"{self.prefix}/github-deploy-token"

    @property
    def stream(self) -> str:
        """The source table's Kinesis stream (``<prefix>-customer-activity``, as the streaming layer names it)."""
        return f"{self.prefix}-{self.table.replace('_', '-')}"

    @property
    def online_consumer(self) -> str:
        """The model's ``update_online_features`` function (``<prefix>-<model>-online``)."""
        return f"{self.prefix}-{self.model}-online"

    @property
    def online_failures(self) -> str:
        """The consumer's failure queue."""
        return f"{self.online_consumer}-failures"


@dataclass
class StepResult:
    """One step's outcome: ✓ or ✗, its time and what it showed (or why it failed)."""

    name: str
    ok: bool
    seconds: float
    detail: str


class StepFailedError(AssertionError):
    """A drill step's check failed."""


def check(condition: bool, message: str) -> None:
    """Fail the current step with ``message`` unless ``condition`` holds."""
    if not condition:
        raise StepFailedError(message)


@dataclass
class Drill:
    """The state shared by the steps: endpoints, clients, names and what earlier steps produced."""

    endpoints: Endpoints
    names: Names = field(default_factory=Names)
    out: Any = field(default=sys.stdout)
    results: list[StepResult] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    """What steps start for later steps (the local feature store's HTTP front): closed when the drill ends."""

    def moto(self, service: str) -> Any:
        return client(self.endpoints.moto, service)

    def localstack(self, service: str) -> Any:
        return client(self.endpoints.localstack, service)

    def emit(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def run_step(self, name: str, step: Callable[[Drill], str]) -> bool:
        started = time.monotonic()
        try:
            detail = step(self)
            ok = True
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, StepFailedError):
                detail += "\n" + "".join(traceback.format_exception(exc)[-3:]).rstrip()
            ok = False
        seconds = time.monotonic() - started
        self.results.append(StepResult(name, ok, seconds, detail))
        mark = "✓" if ok else "✗"
        lines = detail.splitlines() or [""]
        self.emit(f"{mark} {name:<10} {seconds:6.2f}s  {lines[0]}")
        for extra in lines[1:]:
            self.emit(f"  {'':<10} {'':>7}  {extra}")
        return ok


# --- the steps (each returns a one-line summary, or raises) -------------------------------------


def step_lake(d: Drill) -> str:
    import awswrangler as wr
    import pandas as pd

    from mlops.ingestion import write_curated_dataset
    from pipelines.local_run import synthetic_customer_activity
    from tools.customer_activity import customer_activity_table

    s3 = d.moto("s3")
    glue = d.moto("glue")
    for zone in ("raw", "curated", "features", "artifacts"):
        s3.create_bucket(Bucket=d.names.bucket(zone), CreateBucketConfiguration={"LocationConstraint": REGION})
    glue.create_database(DatabaseInput={"Name": d.names.database("curated")})

    raw = synthetic_customer_activity(customers=40, days=3, seed=11)
    landing = f"{d.names.table}/ingest_date=2024-05-04/batch-0001.csv"
    s3.put_object(Bucket=d.names.bucket("raw"), Key=landing, Body=raw.to_csv(index=False).encode())

    table = customer_activity_table(d.names.table)
    landed = pd.read_csv(s3.get_object(Bucket=d.names.bucket("raw"), Key=landing)["Body"])
    landed["event_time"] = pd.to_datetime(landed["event_time"], utc=True)
    landed["dt"] = landed["event_time"].dt.strftime("%Y-%m-%d")
    report = write_curated_dataset(
        landed,
        table,
        bucket=d.names.bucket("curated"),
        database=d.names.database("curated"),
        boto3_session=boto3.Session(region_name=REGION, **CREDENTIALS),
        mode="overwrite_partitions",
    )
    catalogued = wr.catalog.get_partitions(
        database=d.names.database("curated"),
        table=d.names.table,
        boto3_session=boto3.Session(region_name=REGION, **CREDENTIALS),
    )
    check(report.rows == len(raw), f"ingested {report.rows} rows, landed {len(raw)}")
    check(len(catalogued) == 3, f"expected 3 daily partitions in Glue, found {len(catalogued)}")
    d.values["curated_location"] = report.location
    d.values["table"] = table
    d.values["raw_batch"] = raw
    return f"{report.rows} rows landed in s3://{d.names.bucket('raw')}/{landing}, curated to {report.location} ({len(report.files)} files, {len(catalogued)} Glue partitions)"


def step_features(d: Drill) -> str:
    import awswrangler as wr
    import pandas as pd

    from mlops.features import get_spec
    from mlops.features.spec import feature_definitions
    from mlops.featurestore import point_in_time_join, validate_record

    spec = get_spec(d.names.feature_spec)
    session = boto3.Session(region_name=REGION, **CREDENTIALS)
    curated = cast(pd.DataFrame, wr.s3.read_parquet(d.values["curated_location"], dataset=True, boto3_session=session))
    records = []
    for index, row in enumerate(curated.to_dict("records")):
        values = {
            spec.record_identifier: row[spec.record_identifier],
            spec.event_time: pd.Timestamp(row[spec.event_time]).to_pydatetime(),
            **spec.transform(row),
        }
        records.append(validate_record(spec, values, index))
    written = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    offline = pd.DataFrame(records).assign(write_time=written, api_invocation_time=written, is_deleted=False)
    location = f"s3://{d.names.bucket('features')}/{d.names.feature_group}/"
    wr.s3.to_parquet(offline, path=location, dataset=True, mode="overwrite", boto3_session=session)

    sagemaker = d.moto("sagemaker")
    sagemaker.create_feature_group(
        FeatureGroupName=d.names.feature_group,
        RecordIdentifierFeatureName=spec.record_identifier,
        EventTimeFeatureName=spec.event_time,
        FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in feature_definitions(spec)],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": location}, "DisableGlueTableCreation": True},
        RoleArn="arn:aws:iam::123456789012:role/acme-drill-featurestore",
    )
    target = spec.target or "churned"
    # Label times as ISO strings, parsed like the feature times: point_in_time_join's merge_asof refuses
    # keys of different resolutions (Parquet gives datetime64[ns], ISO strings parse to datetime64[us]).
    label_times = pd.to_datetime(curated[spec.event_time], utc=True)
    labels = pd.DataFrame(
        {
            spec.record_identifier: curated[spec.record_identifier],
            spec.event_time: label_times.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            target: curated[target],
        }
    )
    training = point_in_time_join(spec, labels, wr.s3.read_parquet(location, dataset=True, boto3_session=session))
    check(len(training) == len(curated), f"training set has {len(training)} rows for {len(curated)} labels")
    check(list(training.columns[2:-1]) == list(spec.feature_names), f"training columns {list(training.columns)}")
    status = sagemaker.describe_feature_group(FeatureGroupName=d.names.feature_group)["FeatureGroupStatus"]
    d.values["training_set"] = training
    return (
        f"{len(records)} feature records (spec {spec.name} v{spec.version}) at {location}; "
        f"feature group {status}; point-in-time training set {training.shape[0]}x{training.shape[1]}"
    )


def _stream_rows() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The stream's seeded customer_activity rows (the day after the lake's batch, in event-time order), an invalid
    row (a newer row of the first customer without ``monthly_spend``) and a late row (an older row of the second
    customer, with other values, sent after the others were applied)."""
    import pandas as pd

    from pipelines.local_run import synthetic_customer_activity

    frame = synthetic_customer_activity(customers=STREAM_CUSTOMERS, days=2, seed=STREAM_SEED)
    times = pd.to_datetime(frame["event_time"], utc=True) + pd.Timedelta(days=3)
    frame["event_time"] = times.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ordered = frame.sort_values(["event_time", "customer_id"])
    rows: list[dict[str, Any]] = json.loads(str(ordered.to_json(orient="records")))  # plain JSON values
    first, second = sorted({row["customer_id"] for row in rows})[:2]
    newest_first = max((r for r in rows if r["customer_id"] == first), key=lambda r: r["event_time"])
    invalid = {k: v for k, v in newest_first.items() if k != "monthly_spend"}
    invalid["event_time"] = _shift_time(newest_first["event_time"], hours=6)
    newest_second = max((r for r in rows if r["customer_id"] == second), key=lambda r: r["event_time"])
    late = {**newest_second, "event_time": _shift_time(newest_second["event_time"], hours=-6), "sessions": 0}
    return rows, invalid, late


def _shift_time(stamp: str, *, hours: int) -> str:
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _online_record(spec: Any, row: Mapping[str, Any]) -> dict[str, str]:
    """The online record the training path's functions give for a raw row (what the store must hold)."""
    from mlops.features.spec import feature_record
    from mlops.featurestore.records import to_put_record_payload, validate_record

    payload = to_put_record_payload(spec, validate_record(spec, feature_record(spec, row)))
    return {item["FeatureName"]: item["ValueAsString"] for item in payload}


def step_stream(d: Drill) -> str:
    from mlops.features import get_spec
    from tools.featurestore_emulator import FeatureStoreFake, FeatureStoreHttp, add_described_group
    from tools.kinesis_events import event_from_get_records

    spec = get_spec(d.names.feature_spec)
    kinesis, sqs = d.localstack("kinesis"), d.localstack("sqs")
    settings = d.values["streaming"]
    summary = activate_encrypted_stream(
        kinesis, d.names.stream, d.values["platform_key"], retention_hours=settings.retention_hours
    )
    check(summary["EncryptionType"] == "KMS", f"stream encryption {summary.get('EncryptionType')}")
    check(summary["KeyId"] == d.values["platform_key"], f"stream key {summary.get('KeyId')}")

    # The online store of the feature group the features step created (moto's control plane), served on loopback.
    store = FeatureStoreFake()
    described = d.moto("sagemaker").describe_feature_group(FeatureGroupName=d.names.feature_group)
    # The features step created it with EnableOnlineStore; moto's DescribeFeatureGroup leaves that out.
    add_described_group(store, described, online=True)
    front = d.resources.enter_context(FeatureStoreHttp(store))
    d.values["online_store"] = front

    rows, invalid, late = _stream_rows()
    placed = put_rows(kinesis, d.names.stream, [*rows, invalid])
    reader = ShardReader.open(kinesis, d.names.stream)
    environment = {
        "FEATURE_TARGETS": json.dumps(
            [{"model": d.names.model, "featureGroupName": d.names.feature_group, "featureSpec": spec.name}]
        ),
        "FAILURE_QUEUE_URL": d.values["failure_queue"],
        "POWERTOOLS_METRICS_NAMESPACE": "MLOps/Streaming",
        "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": front.url,
    }
    stream_arn = summary["StreamARN"]
    invocations = 0
    with responder("update_online_features", environment, d.endpoints) as invoke:
        # One invocation per shard with records, as the event source mapping delivers them (batch size 100).
        batches = reader.read(len(placed))
        for shard, records in sorted(batches.items()):
            event = event_from_get_records(records, stream_arn=stream_arn, shard_id=shard, region=REGION)
            result = invoke(event)
            invocations += 1
            check(result == {"batchItemFailures": []}, f"{shard}: {result}")
        # The late row arrives after its entity's newer row was applied.
        late_placed = put_rows(kinesis, d.names.stream, [late])[0]
        (shard, records), *_ = reader.read(1).items()
        check(shard == late_placed["ShardId"], f"the late row was read from {shard}, put on {late_placed['ShardId']}")
        result = invoke(event_from_get_records(records, stream_arn=stream_arn, shard_id=shard, region=REGION))
        invocations += 1
        check(result == {"batchItemFailures": []}, f"late row: {result}")
    check(
        all(r.get("EncryptionType") == "KMS" for b in batches.values() for r in b),
        "records read back are not KMS-encrypted",
    )

    newest: dict[str, dict[str, Any]] = {}
    for row in rows:  # in event-time order: the last one of an entity is its newest
        newest[row["customer_id"]] = row
    wrong = {
        entity: store.online_record(d.names.feature_group, entity)
        for entity, row in newest.items()
        if store.online_record(d.names.feature_group, entity) != _online_record(spec, row)
    }
    check(not wrong, f"online records that are not the entity's newest features: {wrong}")
    late_calls = [
        c
        for c in store.calls
        if any(f["FeatureName"] == spec.event_time and f["ValueAsString"] == late["event_time"] for f in c.record)
    ]
    check([c.outcome for c in late_calls] == ["historic"], f"the late row's PutRecord: {late_calls}")

    messages = []
    deadline = time.monotonic() + 15
    while not messages and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=d.values["failure_queue"], MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        messages = [json.loads(m["Body"]) for m in response.get("Messages", [])]
    invalid_sequence = placed[-1]["SequenceNumber"]
    check(len(messages) == 1, f"failure queue holds {len(messages)} message(s), expected the invalid row's: {messages}")
    rejected = messages[0]
    check(
        (rejected["reason"], rejected["source"]["sequenceNumber"]) == ("InvalidRecord", invalid_sequence),
        f"failure message {rejected['reason']} for {rejected['source']['sequenceNumber']}, expected InvalidRecord for {invalid_sequence}",
    )
    check("monthly_spend" in rejected["detail"], f"the reason does not name monthly_spend: {rejected['detail']}")

    served = sorted(newest)[-1]  # an entity with nothing but plain updates: the serve step scores it
    d.values["served_entity"] = served
    d.values["served_row"] = newest[served]
    shards = len(reader.iterators)
    return (
        f"{len(placed) + 1} rows on {d.names.stream} (KMS, {settings.capacity_mode}, {shards} shards) → "
        f"update_online_features x{invocations}: {len(newest)} entities' newest features online; "
        f"late row of {late['customer_id']} ({late['event_time']}) did not overwrite; "
        f"failure queue (KMS): {rejected['reason']} (field {rejected['field']}, seq …{invalid_sequence[-6:]}): "
        f"{rejected['detail'][:160]}"
    )


def step_pipeline(d: Drill) -> str:
    from pipelines.bundle import code_bundle
    from pipelines.factory import pipeline_definition
    from pipelines.settings import PipelineSettings

    code_version = "drill0001"
    code_prefix = f"code/{d.names.model}/{code_version}"
    s3 = d.moto("s3")
    bundle = code_bundle()
    for key, data in sorted(bundle.items()):
        s3.put_object(Bucket=d.names.bucket("artifacts"), Key=f"{code_prefix}/{key}", Body=data)
    role = "arn:aws:iam::123456789012:role/acme-drill-pipeline"
    settings = PipelineSettings(
        model_name=d.names.model,
        pipeline_name=d.names.pipeline,
        model_package_group_name=d.names.group,
        feature_spec=d.names.feature_spec,
        role_arn=role,
        region=REGION,
        default_bucket=d.names.bucket("artifacts"),
        code_uri=f"s3://{d.names.bucket('artifacts')}/{code_prefix}",
        input_data_uri=d.values["curated_location"].rstrip("/"),
        code_version=code_version,
        # The drill runs no container (moto stores the definition as given): any image pinned by digest will do.
        inference_image_uri=f"123456789012.dkr.ecr.{REGION}.amazonaws.com/acme-drill-inference@sha256:{'0' * 64}",
    )
    with contextlib.redirect_stdout(io.StringIO()):  # the SDK prints a telemetry notice on import
        definition = pipeline_definition(settings)
    sagemaker = d.moto("sagemaker")
    sagemaker.create_pipeline(PipelineName=d.names.pipeline, PipelineDefinition=definition, RoleArn=role)
    execution = sagemaker.start_pipeline_execution(
        PipelineName=d.names.pipeline,
        PipelineParameters=[{"Name": "DataVersion", "Value": "2024-05-04"}],
        ClientRequestToken=f"drill-initial-training-{uuid.uuid4().hex}",
    )["PipelineExecutionArn"]
    status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution)["PipelineExecutionStatus"]
    check(status in ("Executing", "Succeeded"), f"execution status {status}")
    d.values["role"] = role
    d.values["code_uri"] = settings.code_uri
    return f"pipeline {d.names.pipeline} created from the real definition ({len(bundle)} code files published), execution {status}"


def step_register(d: Drill) -> str:
    from pipelines.local_run import run_local

    # The training job's output: moto runs no pipeline step, so the pipeline's own step code (preprocess, train,
    # evaluate, each run as SageMaker runs it: pipelines.local_run) trains on the lake's batch here, and its
    # model.tar.gz goes where the training step's output would be, the version's ModelDataUrl.
    model_key = f"pipelines/{d.names.pipeline}/model.tar.gz"
    with tempfile.TemporaryDirectory(prefix="drill-train-") as workdir:
        with contextlib.redirect_stdout(io.StringIO()):
            trained = run_local(
                Path(workdir), d.values["raw_batch"], data_version="2024-05-04", code_version="drill0001"
            )
        d.moto("s3").put_object(
            Bucket=d.names.bucket("artifacts"), Key=model_key, Body=trained.model_archive.read_bytes()
        )
        auc = trained.metric("auc")
    sagemaker = d.moto("sagemaker")
    sagemaker.create_model_package_group(
        ModelPackageGroupName=d.names.group, ModelPackageGroupDescription="drill: customer churn"
    )
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=d.names.group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                    "ModelDataUrl": f"s3://{d.names.bucket('artifacts')}/{model_key}",
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"data_version": "2024-05-04", "code_version": "drill0001"},
    )["ModelPackageArn"]
    status = sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]
    check(status == "PendingManualApproval", f"new version is {status}")
    d.values["package_arn"] = arn
    return (
        f"{arn.rsplit('/', 2)[-2]} v{arn.rsplit('/', 1)[-1]} registered, {status}; its model.tar.gz trained by the "
        f"pipeline's step code on the lake's batch (test auc {auc:.3f})"
    )


def step_approve(d: Drill) -> str:
    from pipelines import registry

    sagemaker = d.moto("sagemaker")
    registry.approve(sagemaker, d.values["package_arn"], "drill: auc above threshold; approved by the drill")
    latest = registry.latest_approved(sagemaker, d.names.group)
    check(latest.arn == d.values["package_arn"], f"latest approved is {latest.arn}")
    return f"version {latest.version} approved; it is the group's latest approved version"


def step_event(d: Drill) -> str:
    events = d.localstack("events")
    sqs = d.localstack("sqs")
    queue = route_rule_to_queue(
        events, sqs, f"{d.names.prefix}-model-approved", model_package_event_pattern(), f"{d.names.prefix}-approved"
    )
    detail = model_package_state_change_detail(d.moto("sagemaker"), d.values["package_arn"])
    check(detail.get("ModelApprovalStatus") == "Approved", f"package is {detail.get('ModelApprovalStatus')}")
    entry = {
        "Source": "aws.sagemaker",
        "DetailType": "SageMaker Model Package State Change",
        "Resources": [d.values["package_arn"]],
        "Detail": json.dumps(detail),
    }
    response = events.put_events(Entries=[entry])
    check(response.get("FailedEntryCount", 0) == 0, f"put_events failed: {response.get('Entries')}")
    event, _ = receive_matching(sqs, queue, lambda body: body.get("detail-type") == entry["DetailType"])
    check(event["detail"]["ModelPackageArn"] == d.values["package_arn"], "routed event names another package")
    d.values["approval_event"] = event
    return f"rule matched; event {event['id'][:8]}… delivered to SQS with source {event['source']}"


def step_dispatch(d: Drill) -> str:
    token = "ghp_drill_" + uuid.uuid4().hex
    d.localstack("secretsmanager").create_secret(Name=d.names.token_secret, SecretString=token)
    repository, workflow = d.names.repository, d.names.workflow
    with FakeGitHub(token) as github:
        environment = {
            "ALERTS_TOPIC_ARN": d.values["alerts_topic"],
            "DEPLOY_HOOK": json.dumps(
                {
                    "kind": "github-workflow",
                    "repository": repository,
                    "workflow": workflow,
                    "ref": "main",
                    "tokenSecretName": d.names.token_secret,
                    "stack": "dev",
                }
            ),
            "MODEL_PACKAGE_GROUPS": json.dumps({d.names.group: d.names.model}),
            "GITHUB_API_URL": github.url,
            "STATE_TABLE": d.values["state_table"],  # the approval ledger: one dispatch per approval
        }
        with responder("dispatch_deployment", environment, d.endpoints) as invoke:
            invoke(d.values["approval_event"])
        dispatches = github.dispatches()
    check("DeploymentDispatched" in invoke.metrics, f"metrics {invoke.metrics}")
    expected = f"/repos/{repository}/actions/workflows/{workflow}/dispatches"
    check(len(dispatches) == 1, f"fake GitHub got {len(dispatches)} workflow_dispatch request(s): {github.requests}")
    request = dispatches[0]
    check(request.path == expected, f"dispatched to {request.path}, expected {expected}")
    check(isinstance(request.body, dict) and request.body.get("ref") == "main", f"dispatch body {request.body}")
    inputs = request.body.get("inputs", {}) if isinstance(request.body, dict) else {}
    check(inputs.get("stack") == "dev", f"dispatched inputs {inputs}: the approval's own stack (dev) expected")
    return f"workflow_dispatch POST {request.path} ref=main inputs={sorted(inputs)}; metrics {invoke.metrics}"


def step_serve(d: Drill) -> str:
    import tarfile

    from pipelines import registry

    # What SageMaker does for the approved version's endpoint: its ModelDataUrl extracted to /opt/ml/model, the
    # image's `serve` started with SAGEMAKER_BIND_TO_PORT; the container environment is entity request mode on the
    # model's feature group (the stack's requestMode: entity), its store the one the stream step filled.
    sagemaker = d.moto("sagemaker")
    latest = registry.latest_approved(sagemaker, d.names.group)
    package = sagemaker.describe_model_package(ModelPackageName=latest.arn)
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, _, key = model_url.removeprefix("s3://").partition("/")
    entity, row = d.values["served_entity"], d.values["served_row"]
    front = d.values["online_store"]
    environment = {
        "INFERENCE_REQUEST_MODE": "entity",
        "INFERENCE_FEATURE_GROUP": d.names.feature_group,
        "INFERENCE_ONLINE_REGION": REGION,
        "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": front.url,
        # 300 ms by default; a busy 2-core machine running the emulators may need longer for one lookup.
        "INFERENCE_ONLINE_TIMEOUT_MS": "3000",
    }
    missing = "drill-nobody"
    with tempfile.TemporaryDirectory(prefix="drill-serve-") as workdir:
        root = Path(workdir)
        model_dir = root / "opt" / "ml" / "model"
        model_dir.mkdir(parents=True)
        archive = root / "model.tar.gz"
        archive.write_bytes(d.moto("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(model_dir, filter="data")
        with inference_server(root, model_dir, environment) as server:
            status, answer = http_request(server.url + "/invocations", {"entityId": entity})
            missing_status, missing_answer = http_request(server.url + "/invocations", {"entityId": missing})
        check(status == 200, f"POST {{'entityId': {entity!r}}} answered {status}: {answer}")
        check(missing_status == 404, f"an entity never written answered {missing_status}: {missing_answer}")
        check(missing in str(missing_answer), f"the 404 does not name the entity: {missing_answer}")
        served = float(answer["predictions"][0])
        # The same model, in this process, in rows mode: the entity's raw row as a rows-mode caller sends it.
        not_sent = {"customer_id", "event_time", "churned"}  # identifier, event time, label
        rows_mode = score_rows_in_process(model_dir, [{k: v for k, v in row.items() if k not in not_sent}])[0]
    check(
        math.isclose(served, rows_mode, rel_tol=1e-12, abs_tol=0.0),
        f"entity mode served {served!r} for {entity}, rows mode scores its raw row {rows_mode!r}",
    )
    d.values["served_probability"] = served
    return (
        f"{d.names.model} v{latest.version} served (serve, entity mode, {d.names.feature_group}): "
        f"{entity} → {served:.6f} = rows mode on its raw row {rows_mode:.6f}; unknown entity → {missing_status}"
    )


def _monitoring_settings(d: Drill) -> MonitoringPipelineSettings:
    """The drill model's monitoring pipeline settings, as the platform engine builds them for the stack."""
    from infra.alarms import PLATFORM_METRICS_NAMESPACE
    from infra.monitoring.reports import REPORTS_PREFIX
    from pipelines.monitoring import MonitoringPipelineSettings

    return MonitoringPipelineSettings(
        model_name=d.names.model,
        pipeline_name=d.names.monitoring_pipeline,
        feature_spec=d.names.feature_spec,
        endpoint_name=d.names.endpoint,
        region=REGION,
        role_arn=f"arn:aws:iam::123456789012:role/{d.names.monitoring_pipeline}-job",
        kms_key_arn=f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-4000-8000-000000000000",
        code_uri=d.values["code_uri"],
        baseline_uri=d.values["baseline_uri"],
        capture_uri=d.names.capture_uri,
        reports_uri=f"s3://{d.names.bucket('monitoring')}/{REPORTS_PREFIX}",
        window_hours=MONITOR_WINDOW_HOURS,
        metrics_namespace=PLATFORM_METRICS_NAMESPACE,
    )


def _run_monitor(d: Drill, execution_start: dt.datetime) -> MonitoringRun:
    """One execution of the monitoring pipeline: its processing step run here (see run_monitoring_job)."""
    with tempfile.TemporaryDirectory(prefix="drill-monitor-") as workdir:
        run = run_monitoring_job(
            _monitoring_settings(d), d.endpoints, execution_start=execution_start, workdir=Path(workdir)
        )
    tail = "\n".join(run.output.strip().splitlines()[-5:])
    check(run.returncode == 0, f"the drift job exited {run.returncode}:\n{tail}")
    check(run.report is not None, f"the drift job wrote no report under {_monitoring_settings(d).reports_uri}")
    return run


def _platform_metric(d: Drill, metric: str, **extra: str) -> list[float]:
    from infra.alarms import PLATFORM_METRICS_NAMESPACE, platform_dimensions

    dimensions = platform_dimensions(d.names.model, d.names.endpoint, **extra)
    return metric_values(d.localstack("cloudwatch"), PLATFORM_METRICS_NAMESPACE, metric, dimensions)


def step_heartbeat(d: Drill) -> str:
    from infra.alarms import RECORDS_ANALYZED, monitor_heartbeat
    from mlops.features import get_spec
    from mlops.monitoring.drift import BASELINE_FILE, compute_baseline

    # The served version's drift baseline, where the training pipeline's preprocess step writes it: computed
    # by the drift engine's own code over the point-in-time training set of the features step.
    spec = get_spec(d.names.feature_spec)
    baseline = compute_baseline(spec, d.values["training_set"], source="drill: point-in-time training set")
    s3 = d.moto("s3")
    key = f"pipelines/{d.names.pipeline}/preprocess/baseline/{BASELINE_FILE}"
    s3.put_object(Bucket=d.names.bucket("artifacts"), Key=key, Body=json.dumps(baseline).encode())
    d.values["baseline_uri"] = f"s3://{d.names.bucket('artifacts')}/{key}"
    s3.create_bucket(Bucket=d.names.bucket("monitoring"), CreateBucketConfiguration={"LocationConstraint": REGION})

    run = _run_monitor(d, dt.datetime.now(dt.UTC))  # nothing captured yet
    report = cast(dict[str, Any], run.report)
    check(report["records"] == 0, f"an empty capture prefix gave {report['records']} records")
    published = _platform_metric(d, RECORDS_ANALYZED)
    check(published == [0.0], f"{RECORDS_ANALYZED} in CloudWatch: {published}, expected the run's 0")

    # Put now rather than in setup: LocalStack evaluates an alarm when it is put, then every 3 x 10 s. Put in
    # setup it would already be in ALARM from missing data alone (treated as breaching: "never reported"),
    # and staying in ALARM changes nothing one could see; put after the run, its first evaluation reads the
    # RecordsAnalyzed=0 the run published (its state reason's recent datapoints show it).
    spec_alarm = monitor_heartbeat(d.names.model, d.names.endpoint, MONITOR_PERIOD_SECONDS)
    request = alarm_request(
        spec_alarm,
        name=d.names.heartbeat_alarm,
        alarm_actions=[d.values["alerts_topic"]],
        ok_actions=[d.values["alerts_topic"]],
        period=EMULATOR_ALARM_PERIOD_SECONDS,
    )
    put_alarm(d.localstack("cloudwatch"), request)
    alarm = wait_for_alarm(
        d.localstack("cloudwatch"),
        d.names.heartbeat_alarm,
        in_state("ALARM", evaluated=True),
        timeout=2 * evaluation_timeout(request),
        reset_unread_after=2.0,
    )
    check(recent_datapoints(alarm) == [0.0], f"the heartbeat alarm read {recent_datapoints(alarm)}, not the run's 0")
    alert, _ = receive_matching(
        d.localstack("sqs"), d.values["alerts_queue"], is_alarm_notification(d.names.heartbeat_alarm)
    )
    message = json.loads(alert["Message"])
    return (
        f"empty capture window: 0 records, {RECORDS_ANALYZED}=0 published; {d.names.heartbeat_alarm} "
        f"{message['OldStateValue']} → ALARM ({request['EvaluationPeriods']} periods < 1 record), on the alerts topic"
    )


def step_capture(d: Drill) -> str:
    # The next monitoring execution starts now; its window is the whole hour before (the drift job rounds the
    # window's end down to the hour), so the capture goes in that hour's folder.
    start = dt.datetime.now(dt.UTC)
    hour = start.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=MONITOR_WINDOW_HOURS)
    rows = seeded_requests(CAPTURE_CUSTOMERS, CAPTURE_SEED, shift=SHIFT)
    uri = put_capture(d.moto("s3"), d.names.capture_uri, endpoint=d.names.endpoint, hour=hour, rows=rows)
    d.values["execution_start"] = start
    shifted = ", ".join(f"{column} +{delta:g}" for column, delta in SHIFT.items())
    return f"{len(rows)} captured rows (seed {CAPTURE_SEED}; {shifted}) at {uri}"


def step_monitor(d: Drill) -> str:
    from infra.alarms import FEATURE_DRIFT_RATIO

    run = _run_monitor(d, d.values["execution_start"])
    report = cast(dict[str, Any], run.report)
    shifted = sorted(SHIFT)
    check(report["records"] > 0, "the drift job analysed no record: the capture is outside its window")
    check(report["drifted"] == shifted, f"drifted features {report['drifted']}, expected {shifted}")
    ratios = {}
    for feature in report["features"]:
        published = _platform_metric(d, FEATURE_DRIFT_RATIO, Feature=feature)
        check(len(published) == 1, f"{FEATURE_DRIFT_RATIO}[{feature}] in CloudWatch: {published}")
        ratios[feature] = published[0]
    check(
        all((ratio >= 1) == (feature in shifted) for feature, ratio in ratios.items()),
        f"{FEATURE_DRIFT_RATIO} {ratios}: only {shifted} should reach 1",
    )
    d.values["drifted_feature"] = shifted[0]
    d.values["drifted_ratio"] = ratios[shifted[0]]
    listed = ", ".join(f"{f} {r:.2f}" for f, r in sorted(ratios.items(), key=lambda item: -item[1]))
    return f"{report['records']} records analysed, drifted {report['drifted']}; {FEATURE_DRIFT_RATIO} {listed}; report {run.report_uri}"


def step_alarm(d: Drill) -> str:
    from infra.alarms import FEATURE_DRIFT_RATIO

    cloudwatch = d.localstack("cloudwatch")
    feature_alarm = d.names.feature_drift_alarm(d.values["drifted_feature"])
    # The feature alarms were put in setup: LocalStack's next scheduled evaluation reads the run's datapoints.
    fired = wait_for_alarm(
        cloudwatch, feature_alarm, in_state("ALARM", evaluated=True), timeout=d.values["drift_alarm_timeout"]
    )
    evaluated = recent_datapoints(fired)
    check(
        evaluated == [d.values["drifted_ratio"]],
        f"{feature_alarm} was evaluated on {evaluated}, not the published {d.values['drifted_ratio']}",
    )
    composite = describe_alarm(cloudwatch, d.names.model_drift_alarm)
    check(composite["StateValue"] == "ALARM", f"{d.names.model_drift_alarm} is {composite['StateValue']}")
    envelope, _ = receive_matching(
        d.localstack("sqs"), d.values["retrain_queue"], is_alarm_notification(d.names.model_drift_alarm)
    )
    message = json.loads(envelope["Message"])
    children = [child["Arn"].rsplit(":", 1)[-1] for child in message.get("TriggeringChildren", [])]
    check(children == [feature_alarm], f"the notification names {children} as its trigger, not {feature_alarm}")
    d.values["envelope"] = envelope
    return (
        f"{feature_alarm} → ALARM on the published {FEATURE_DRIFT_RATIO} {evaluated[0]:.2f} ({fired['StateReason']}); "
        f"{message['AlarmName']} {message['OldStateValue']} → {message['NewStateValue']}; SNS (KMS) delivered it to SQS"
    )


def _executions(d: Drill) -> list[dict[str, Any]]:
    sagemaker = d.moto("sagemaker")
    return sagemaker.list_pipeline_executions(PipelineName=d.names.pipeline)["PipelineExecutionSummaries"]


def _retrain_environment(d: Drill) -> dict[str, str]:
    return {
        "ALERTS_TOPIC_ARN": d.values["alerts_topic"],
        "STATE_TABLE": d.values["state_table"],
        "RETRAIN_TARGETS": json.dumps(
            {
                d.names.model_drift_alarm: {
                    "model": d.names.model,
                    "pipelineName": d.names.pipeline,
                    "cooldownMinutes": RETRAINING_COOLDOWN_MINUTES,
                    "maxPerDay": RETRAINING_MAX_PER_DAY,
                }
            }
        ),
    }


def step_retrain(d: Drill) -> str:
    before = _executions(d)
    event = lambda_sns_event(d.values["envelope"], d.values["retrain_subscription"])
    with responder("retrain_on_alarm", _retrain_environment(d), d.endpoints) as invoke:
        invoke(event)
    after = _executions(d)
    check(len(after) == len(before) + 1, f"{len(after) - len(before)} execution(s) started, expected 1")
    check(invoke.metrics == ["RetrainStarted"], f"metrics {invoke.metrics}")
    new = next(e for e in after if e["PipelineExecutionArn"] not in {b["PipelineExecutionArn"] for b in before})
    d.values["retraining_execution"] = new["PipelineExecutionArn"]
    return f"retraining execution {new['PipelineExecutionArn'].rsplit('/', 1)[-1]} started on {d.names.pipeline}; metrics {invoke.metrics}"


def step_duplicate(d: Drill) -> str:
    before = len(_executions(d))
    event = lambda_sns_event(d.values["envelope"], d.values["retrain_subscription"])
    with responder("retrain_on_alarm", _retrain_environment(d), d.endpoints) as invoke:
        invoke(event)  # SNS delivers at least once: the same message again, to a new cold start
    after = len(_executions(d))
    check(after == before, f"the duplicate delivery started {after - before} execution(s)")
    check("DuplicateDelivery" in invoke.metrics, f"metrics {invoke.metrics}")
    return f"same notification delivered again: still {after} executions; metrics {invoke.metrics}"


def step_storm(d: Drill) -> str:
    cloudwatch = d.localstack("cloudwatch")
    sqs = d.localstack("sqs")
    before = len(_executions(d))
    # A flapping feature alarm, forced: OK then ALARM again. The composite follows it through its rule, and a
    # scheduled evaluation in between can only make the second ALARM its own (still one new transition).
    feature_alarm = d.names.feature_drift_alarm(d.values["drifted_feature"])
    cloudwatch.set_alarm_state(AlarmName=feature_alarm, StateValue="OK", StateReason="drill: recovered")
    cloudwatch.set_alarm_state(AlarmName=feature_alarm, StateValue="ALARM", StateReason="drill: drift again")
    envelope, _ = receive_matching(sqs, d.values["retrain_queue"], is_alarm_notification(d.names.model_drift_alarm))
    check(envelope["MessageId"] != d.values["envelope"]["MessageId"], "got the first notification again")
    with responder("retrain_on_alarm", _retrain_environment(d), d.endpoints) as invoke:
        invoke(lambda_sns_event(envelope, d.values["retrain_subscription"]))
    after = len(_executions(d))
    check(after == before, f"a second alarm within the cooldown started {after - before} execution(s)")
    check(invoke.metrics == ["SkippedCooldown"], f"metrics {invoke.metrics}")
    return f"second ALARM within the {RETRAINING_COOLDOWN_MINUTES}-minute cooldown: still {after} executions; metrics {invoke.metrics}"


def step_notify(d: Drill) -> str:
    sagemaker = d.moto("sagemaker")
    event = pipeline_execution_status_change_event(
        sagemaker, d.values["retraining_execution"], account=d.values["account"]
    )
    with responder(
        "notify_pipeline",
        {"ALERTS_TOPIC_ARN": d.values["alerts_topic"], "PIPELINES": json.dumps({d.names.pipeline: d.names.model})},
        d.endpoints,
    ) as invoke:
        invoke(event)
    subject = f"[mlops] pipeline {event['detail']['currentPipelineExecutionStatus']}: {d.names.model}"
    alert, _ = receive_matching(
        d.localstack("sqs"),
        d.values["alerts_queue"],
        lambda body: body.get("Type") == "Notification" and str(body.get("Subject", "")).startswith(subject),
    )
    check(
        d.values["retraining_execution"] in alert["Message"], f"alert does not name the execution: {alert['Message']}"
    )
    return f"alert {alert['Subject']!r} reached the alerts topic's subscriber; metrics {invoke.metrics}"


def _prepare_shared(d: Drill) -> str:
    """What the deployed stack provides before the loop runs: the alerts and retrain topics (KMS-encrypted, each
    with a queue to read it), the responders' state table, and the model's drift alarms (platform engine)."""
    sns = d.localstack("sns")
    sqs = d.localstack("sqs")
    kms = d.localstack("kms")
    d.values["account"] = d.localstack("sts").get_caller_identity()["Account"]
    alerts, _ = create_encrypted_topic(sns, kms, f"{d.names.prefix}-alerts", d.values["account"])
    d.values["alerts_topic"] = alerts
    d.values["alerts_queue"], _ = subscribe_queue(sns, sqs, alerts, f"{d.names.prefix}-alerts-inbox")
    retrain, _ = create_encrypted_topic(sns, kms, f"{d.names.prefix}-retrain", d.values["account"])
    d.values["retrain_queue"], d.values["retrain_subscription"] = subscribe_queue(
        sns, sqs, retrain, f"{d.names.prefix}-retrain-delivery"
    )
    # moto's DynamoDB: LocalStack's needs a download
    table = create_state_table(d.moto("dynamodb"), f"{d.names.prefix}-responder-state")
    d.values["state_table"] = table
    alarms = _put_drift_alarms(d, alerts=alerts, retrain=retrain)
    stream = _create_streaming(d)
    return f"alerts and retrain topics (KMS), state table; {alarms}; {stream}"


def _create_streaming(d: Drill) -> str:
    """The streaming layer of the source table (``infra/streaming/component.py``): the Kinesis stream in the
    platform's default capacity mode (its encryption follows in ``stream``, once it is ACTIVE: LocalStack's Kinesis
    takes seconds to start, and the steps in between use that time) and the online consumer's failure queue, both
    with the platform key."""
    from infra.streaming.settings import StreamingSettings

    settings = StreamingSettings()  # the platform's defaults for a streamed table
    key = d.localstack("kms").create_key(Description=f"{d.names.prefix} platform key")["KeyMetadata"]["Arn"]
    create_stream(
        d.localstack("kinesis"), d.names.stream, capacity_mode=settings.capacity_mode, shard_count=settings.shard_count
    )
    queue = d.localstack("sqs").create_queue(QueueName=d.names.online_failures, Attributes={"KmsMasterKeyId": key})
    d.values["platform_key"] = key
    d.values["streaming"] = settings
    d.values["failure_queue"] = queue["QueueUrl"]
    return f"stream {d.names.stream} ({settings.capacity_mode}) and failure queue (KMS)"


def _put_drift_alarms(d: Drill, *, alerts: str, retrain: str) -> str:
    """One drift alarm per feature of the spec (alerts on-call) and the composite model-drift alarm over them
    (alerts and retrains), wired as infra/monitoring/component.py wires them, from infra/alarms.py's specs."""
    from infra.alarms import platform_feature_drift
    from mlops.features import get_spec

    spec = get_spec(d.names.feature_spec)
    cloudwatch = d.localstack("cloudwatch")
    arns = []
    for feature in spec.feature_names:
        request = alarm_request(
            platform_feature_drift(d.names.model, feature, d.names.endpoint, MONITOR_PERIOD_SECONDS),
            name=d.names.feature_drift_alarm(feature),
            alarm_actions=[alerts],
            ok_actions=[alerts],
            period=EMULATOR_ALARM_PERIOD_SECONDS,
        )
        arns.append(put_alarm(cloudwatch, request))
        d.values["drift_alarm_timeout"] = evaluation_timeout(request)
    put_model_drift_alarm(
        cloudwatch,
        name=d.names.model_drift_alarm,
        model=d.names.model,
        feature_alarm_arns=arns,
        alarm_actions=[alerts, retrain],
        ok_actions=[alerts],
    )
    check(set(SHIFT) <= set(spec.feature_names), f"the drill shifts {sorted(SHIFT)}: not all features of {spec.name}")
    return f"{len(arns)} feature drift alarms + {d.names.model_drift_alarm} ({EMULATOR_ALARM_PERIOD_SECONDS} s periods)"


STEPS: tuple[tuple[str, Callable[[Drill], str]], ...] = (
    ("lake", step_lake),
    ("features", step_features),
    ("stream", step_stream),
    ("pipeline", step_pipeline),
    ("register", step_register),
    ("approve", step_approve),
    ("event", step_event),
    ("dispatch", step_dispatch),
    ("serve", step_serve),
    ("heartbeat", step_heartbeat),
    ("capture", step_capture),
    ("monitor", step_monitor),
    ("alarm", step_alarm),
    ("retrain", step_retrain),
    ("duplicate", step_duplicate),
    ("storm", step_storm),
    ("notify", step_notify),
)


def run_drill(endpoints: Endpoints, *, out: Any = sys.stdout, names: Names | None = None) -> list[StepResult]:
    """Run every step against running emulators; stop at the first failure (later steps depend on it).

    Returns the results of the steps that ran. Sets ``AWS_ENDPOINT_URL_*`` and fake credentials in the
    process environment while it runs (awswrangler and the SDK create their own clients), then restores them.
    """
    drill = Drill(endpoints=endpoints, names=names or Names(), out=out)
    with patched_environ(aws_environment(endpoints)), drill.resources:
        if not drill.run_step("setup", _prepare_shared):
            return drill.results
        for name, step in STEPS:
            if not drill.run_step(name, step):
                skipped = [n for n, _ in STEPS[STEPS.index((name, step)) + 1 :]]
                if skipped:
                    drill.emit(f"- not run: {', '.join(skipped)}")
                break
    return drill.results


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.drill``: start the emulators, run the drill, print a summary; exit 0/1/2."""
    del argv
    # Configure logging first: a SageMaker SDK module calls logging.basicConfig(level=INFO) on import, and
    # the SDK sets its own loggers to INFO/DEBUG; the handler's level keeps the step lines readable.
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("  %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("sagemaker").setLevel(logging.ERROR)  # "Popping out ..." notices while building
    started = time.monotonic()
    try:
        ensure_localstack_venv()
        with running_emulators() as endpoints:
            print(
                f"✓ {'emulators':<10} {time.monotonic() - started:6.2f}s  LocalStack {endpoints.localstack}, moto {endpoints.moto}"
            )
            results = run_drill(endpoints)
    except EmulatorUnavailableError as exc:
        print(f"✗ emulators: {exc}", file=sys.stderr)
        return 2
    except EmulatorError as exc:
        print(f"✗ emulators: {exc}", file=sys.stderr)
        return 2
    passed = sum(r.ok for r in results)
    failed = len(results) - passed
    total = len(STEPS) + 1
    print(f"\n{passed}/{total} steps passed, {failed} failed in {time.monotonic() - started:.1f}s")
    return 0 if failed == 0 and passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
