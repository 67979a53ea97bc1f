"""Responders: the Lambda functions that close the loop, their triggers, dead-letter queues and state.

Three functions (code in ``lambdas/<function>/``, packaged by :func:`lambdas.package.build_archive`):

- ``retrain_on_alarm`` ← the ``retrain`` SNS topic (CloudWatch drift/quality alarms) and, for each model with
  ``training.retrainOnNewData``, its new-data queue (S3 "Object Created" events of the model's curated source
  table → an EventBridge rule → a KMS-encrypted SQS queue → an event source mapping that gathers a burst for
  ``batchingWindowSeconds``): starts the model's training pipeline, at most once per cooldown and ``maxPerDay``
  times a day, alarms and new data together (state in a DynamoDB table);
- ``notify_pipeline`` ← EventBridge, a stack pipeline's execution reaching a final status: tells humans;
- ``dispatch_deployment`` ← EventBridge, a version of a stack model package group becoming Approved:
  dispatches the deployment (a GitHub workflow that runs ``pulumi up``) and tells humans.

Every function is invoked asynchronously. A failed invocation is retried by Lambda and then lands in the
function's own KMS-encrypted SQS dead-letter queue (``dead_letter_config`` and the on-failure destination);
events the trigger could not deliver (SNS subscription redrive, EventBridge target DLQ) land in the same
queue. Each function logs to its own KMS-encrypted log group and runs with a role scoped to exactly what it
touches. The environment carries names and ARNs only, never a secret: the deployment token is read from
Secrets Manager at run time, by name.

No function reserves concurrency unless the stack opts in (``deployment.reserveConcurrency``): Lambda refuses
any reservation in accounts with a small concurrency quota, and correctness never depends on one (the DynamoDB
ledger's conditional write enforces the retraining cooldown and daily cap under concurrency; the deploy
workflow's per-stack concurrency group runs one ``pulumi up`` at a time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.alarms import dead_letters, metric_alarm, responder_errors
from infra.foundation import Foundation
from infra.logs import encrypted_log_group, lambda_log_group_name
from infra.naming import Kind
from infra.responders.environment import (
    REPO_ROOT,
    NewDataSource,
    ResponderModel,
    checked_environment,
    compact_json,
    deploy_hook,
    name_map,
    new_data_targets,
    program_path,
    retrain_targets,
)
from infra.responders.iam import (
    dynamodb_items,
    pipeline_execution_read,
    pipeline_start,
    secret_read,
    sns_publish,
    sqs_consume,
    sqs_send,
)
from infra.responders.triggers import (
    NewDataTrigger,
    event_trigger,
    new_data_queue,
    new_data_trigger,
    queue_policy,
    sns_trigger,
)
from infra.training.settings import curated_table
from lambdas.package import build_archive

if TYPE_CHECKING:
    from infra.context import StackContext

RETRAIN = "retrain_on_alarm"
NOTIFY = "notify_pipeline"
DISPATCH = "dispatch_deployment"
FUNCTIONS: tuple[str, ...] = (RETRAIN, NOTIFY, DISPATCH)
"""The responder functions: folder names under ``lambdas/`` and keys of every per-function output."""

ARCHIVE_DIR = REPO_ROOT / "build" / "lambdas"
"""Where the deterministic Lambda archives are built (gitignored)."""

METRICS_NAMESPACE = "MLOps/Responders"
LOG_LEVEL = "INFO"
GITHUB_API_URL = "https://api.github.com"
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
HANDLER = "app.handler"

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS maximum: two weeks to look at and redrive a failed event
MAX_EVENT_AGE_SECONDS = 6 * 3600  # Lambda's maximum: throttled events wait and are retried, not dropped
MAX_RETRY_ATTEMPTS = 2  # Lambda's maximum for asynchronous invocations

PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
DEPLOYABLE_PACKAGE_STATUS = "Completed"
"""``ModelPackageStatus`` of a version that can be served (not Pending, InProgress, Failed or Deleting)."""
RESERVED_CONCURRENCY = 1
"""What a serialised function reserves when the stack sets ``deployment.reserveConcurrency``."""
FINAL_PIPELINE_STATUSES: tuple[str, ...] = ("Failed", "Stopped", "Succeeded")
"""Execution statuses humans are told about (``Executing`` and ``Stopping`` are not final)."""


def packaged_function(
    resource_name: str,
    *,
    function: str,
    archive_dir: Path,
    name: str,
    description: pulumi.Input[str],
    role: iam.ServiceRole,
    timeout_seconds: int,
    memory_mb: int,
    environment: Mapping[str, pulumi.Input[str]],
    key_arn: pulumi.Input[str],
    dead_letter_arn: pulumi.Input[str],
    log_group: aws.cloudwatch.LogGroup,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    **options: Any,
) -> aws.lambda_.Function:
    """A platform function from ``lambdas/<function>/`` (packaged by :func:`lambdas.package.build_archive`) as every
    layer deploys one: the shared runtime, architecture and handler, environment encrypted with the platform key,
    failed asynchronous invocations to ``dead_letter_arn``, JSON logs in its own ``log_group``.

    ``environment`` is checked against Lambda's size limit at preview; ``options`` are further ``Function`` arguments
    (reserved concurrency).
    """
    archive = build_archive(function, archive_dir)
    return aws.lambda_.Function(
        resource_name,
        name=name,
        description=description,
        role=role.arn,
        code=pulumi.FileArchive(program_path(archive.path)),
        source_code_hash=archive.sha256_base64,
        runtime=RUNTIME,
        architectures=[ARCHITECTURE],
        handler=HANDLER,
        timeout=timeout_seconds,
        memory_size=memory_mb,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=checked_environment(function, environment)),
        kms_key_arn=key_arn,
        dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=dead_letter_arn),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
        tags=tags,
        # CreateFunction checks that the role may send to the dead-letter queue: the policy comes first.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role.policy, log_group]),
        **options,
    )


@dataclass(frozen=True)
class FunctionSettings:
    """Size and concurrency of one responder function."""

    description: str
    timeout_seconds: int
    memory_mb: int
    serialisable: bool
    """Reserves :data:`RESERVED_CONCURRENCY` (a cap, one invocation at a time) when the stack sets
    ``deployment.reserveConcurrency``; otherwise, and always when ``False``, it draws on the account's pool."""


SETTINGS: Mapping[str, FunctionSettings] = {
    # Concurrent invocations are safe: the cooldown and daily cap are claimed with one conditional write
    # in DynamoDB (a storm of concurrent alarms starts one execution; tested), so a reservation is only
    # an optional cap. With one, throttled events are not lost: Lambda retries them for MAX_EVENT_AGE_SECONDS.
    RETRAIN: FunctionSettings(
        description="Starts a model's training pipeline when its drift or quality alarm fires (rate-limited)",
        timeout_seconds=60,
        memory_mb=256,
        serialisable=True,
    ),
    # Stateless and idempotent (a message per event): never reserved.
    NOTIFY: FunctionSettings(
        description="Tells humans when a training pipeline execution finishes",
        timeout_seconds=30,
        memory_mb=256,
        serialisable=False,
    ),
    # Concurrent dispatches are safe: the deploy workflow's per-stack concurrency group runs one `pulumi up`
    # at a time (a queued run waits), and each run deploys the latest approved version. A reservation only
    # makes the dispatches themselves one at a time.
    DISPATCH: FunctionSettings(
        description="Dispatches a deployment when a model version is approved",
        timeout_seconds=60,
        memory_mb=256,
        serialisable=True,
    ),
}


@dataclass(frozen=True, kw_only=True)
class RespondersArgs:
    """Inputs of :class:`Responders`: the foundation (key, topics) and every model of the stack."""

    context: StackContext
    foundation: Foundation
    models: tuple[ResponderModel, ...]
    archive_dir: Path = field(default=ARCHIVE_DIR)
    stack: str = field(default_factory=pulumi.get_stack)
    """The Pulumi stack: the approval responder asks the deploy workflow to update this stack only."""


# --- the component ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Responder:
    """One deployed responder function and what belongs to it."""

    function: aws.lambda_.Function
    dead_letter_queue: aws.sqs.Queue
    log_group: aws.cloudwatch.LogGroup
    role: iam.ServiceRole
    invoke_config: aws.lambda_.FunctionEventInvokeConfig


REDRIVE_ALLOW_MAX_SOURCE_QUEUES = 10
"""SQS's RedriveAllowPolicy lists at most 10 source queues (SetQueueAttributes, ``sourceQueueArns``)."""


class Responders(pulumi.ComponentResource):
    """The stack's responder functions, their state table, dead-letter queues and triggers.

    Outputs: ``function_arns`` and ``dead_letter_queue_urls`` (keyed by function: ``retrain_on_alarm``,
    ``notify_pipeline``, ``dispatch_deployment``) and ``state_table_name``. ``pipeline_rule`` and
    ``approval_rule`` are ``None`` for a stack without models (nothing to match). ``new_data`` (model → its
    rule, queue and event source mapping) and ``new_data_dead_letter_queue`` exist for models that retrain on
    new data only.
    Raises :class:`ResponderConfigError` for an alarm claimed by two models or an over-large environment,
    and ``infra.naming.NamingError`` when a derived name breaks AWS's limits.
    """

    state_table: aws.dynamodb.Table
    state_table_name: pulumi.Output[str]
    responders: dict[str, Responder]
    function_arns: dict[str, pulumi.Output[str]]
    dead_letter_queue_urls: dict[str, pulumi.Output[str]]
    retrain_subscription: aws.sns.TopicSubscription
    pipeline_rule: aws.cloudwatch.EventRule | None
    approval_rule: aws.cloudwatch.EventRule | None
    new_data: dict[str, NewDataTrigger]
    new_data_dead_letter_queue: aws.sqs.Queue | None

    def __init__(self, name: str, args: RespondersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:responders:Responders", name, None, opts)
        ctx = args.context
        self._args = args
        self._name = name
        targets = retrain_targets(args.models)
        sources = self._new_data_sources()
        fed = {source.model for source in sources}
        retrained = [m for m in args.models if (m.retraining.enabled and m.retraining_alarm_names) or m.model in fed]

        self.state_table = aws.dynamodb.Table(
            f"{name}-state",
            name=ctx.naming.name("responder-state", Kind.GENERIC),
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S")],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="expires_at", enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=args.foundation.key_arn
            ),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=ctx.config.protect_stateful_resources,
            tags=ctx.naming.tags(),
            # The retraining ledger (cooldowns, daily caps) and idempotency records live here.
            opts=ctx.stateful(self),
        )
        self.state_table_name = self.state_table.name

        common = {
            "ALERTS_TOPIC_ARN": args.foundation.alerts_topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": LOG_LEVEL,
        }
        pipeline_arns = [m.pipeline_arn for m in args.models]
        alerts = [args.foundation.alerts_topic_arn]
        new_data_queues = self._new_data_queues(sources)

        self.responders = {
            RETRAIN: self._responder(
                RETRAIN,
                environment={
                    **common,
                    "STATE_TABLE": self.state_table.name,
                    "RETRAIN_TARGETS": compact_json(targets),
                    "NEW_DATA_TARGETS": compact_json(new_data_targets(sources)),
                },
                statements=[
                    dynamodb_items("StateItems", [self.state_table.arn]),
                    *([pipeline_start("StartPipelines", [m.pipeline_arn for m in retrained])] if retrained else []),
                    *(
                        [sqs_consume("NewDataQueues", [q.arn for q in new_data_queues.values()])]
                        if new_data_queues
                        else []
                    ),
                    sns_publish("Alerts", alerts),
                ],
            ),
            NOTIFY: self._responder(
                NOTIFY,
                environment={
                    **common,
                    "PIPELINES": name_map([m.pipeline_name for m in args.models], [m.model for m in args.models]),
                },
                statements=[
                    *(
                        [
                            pipeline_execution_read(
                                "ReadExecutions", [pulumi.Output.concat(arn, "/execution/*") for arn in pipeline_arns]
                            )
                        ]
                        if pipeline_arns
                        else []
                    ),
                    sns_publish("Alerts", alerts),
                ],
            ),
            DISPATCH: self._responder(
                DISPATCH,
                environment={
                    **common,
                    "DEPLOY_HOOK": compact_json(deploy_hook(ctx.config.deployment, args.stack)),
                    "MODEL_PACKAGE_GROUPS": name_map(
                        [m.model_package_group_name for m in args.models], [m.model for m in args.models]
                    ),
                    "GITHUB_API_URL": GITHUB_API_URL,
                    # The approval ledger: one dispatch per approval, however often it is delivered.
                    "STATE_TABLE": self.state_table.name,
                },
                # The event carries everything the function needs: it describes nothing in SageMaker.
                statements=[
                    dynamodb_items("StateItems", [self.state_table.arn]),
                    *self._secret_statements(),
                    sns_publish("Alerts", alerts),
                ],
            ),
        }

        self.retrain_subscription = sns_trigger(
            f"{name}-{RETRAIN.replace('_', '-')}", self.responders[RETRAIN], args.foundation.retrain_topic_arn
        )
        self.pipeline_rule = None
        self.approval_rule = None
        if args.models:
            self.pipeline_rule = event_trigger(
                f"{name}-pipeline-status",
                ctx.naming,
                self.responders[NOTIFY],
                parent=self,
                part="pipeline-status",
                description="A training pipeline of this stack finished: notify humans",
                pattern={
                    "source": ["aws.sagemaker"],
                    "detail-type": [PIPELINE_STATUS_CHANGE],
                    "detail": {
                        "pipelineArn": pipeline_arns,
                        "currentPipelineExecutionStatus": list(FINAL_PIPELINE_STATUSES),
                    },
                },
            )
            self.approval_rule = event_trigger(
                f"{name}-model-approved",
                ctx.naming,
                self.responders[DISPATCH],
                parent=self,
                part="model-approved",
                description="A model version of this stack was approved: dispatch its deployment",
                pattern={
                    "source": ["aws.sagemaker"],
                    "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
                    "detail": {
                        "ModelPackageGroupName": [m.model_package_group_name for m in args.models],
                        "ModelApprovalStatus": ["Approved"],
                        # Not every state change of an approved version (e.g. its deletion): a servable one.
                        "ModelPackageStatus": [DEPLOYABLE_PACKAGE_STATUS],
                    },
                },
            )
        dead_letter_sources = {
            RETRAIN: ("sns.amazonaws.com", args.foundation.retrain_topic_arn),
            NOTIFY: ("events.amazonaws.com", self.pipeline_rule.arn if self.pipeline_rule else None),
            DISPATCH: ("events.amazonaws.com", self.approval_rule.arn if self.approval_rule else None),
        }
        for key, (service, source_arn) in dead_letter_sources.items():
            queue = self.responders[key].dead_letter_queue
            queue_policy(f"{name}-{key.replace('_', '-')}-dlq-policy", queue, service, source_arn)
        self.new_data = self._new_data_triggers(sources, new_data_queues)

        self.function_arns = {key: r.function.arn for key, r in self.responders.items()}
        self.dead_letter_queue_urls = {key: r.dead_letter_queue.url for key, r in self.responders.items()}
        self.register_outputs(
            {
                "function_arns": self.function_arns,
                "dead_letter_queue_urls": self.dead_letter_queue_urls,
                "state_table_name": self.state_table_name,
                "new_data_queue_urls": {model: t.queue.url for model, t in self.new_data.items()},
            }
        )

    # --- parts ---------------------------------------------------------------------------------

    def _new_data_sources(self) -> list[NewDataSource]:
        """The models that retrain on new data, with their curated source table's bucket and prefix (the config
        guarantees the table exists in the curated zone; the lake sends that bucket's events to EventBridge)."""
        ctx, foundation = self._args.context, self._args.foundation
        sources = []
        for model in self._args.models:
            settings = ctx.config.model(model.model)
            table = curated_table(settings.source_table or "", ctx.config.catalog.tables)
            if not settings.training.retrain_on_new_data.enabled or table is None:
                continue
            sources.append(
                NewDataSource(
                    model=model.model,
                    settings=settings.training.retrain_on_new_data,
                    retraining=model.retraining,
                    pipeline_name=model.pipeline_name,
                    pipeline_arn=model.pipeline_arn,
                    bucket_name=foundation.buckets["curated"].name,
                    table_prefix=table.location_prefix,
                )
            )
        return sources

    def _new_data_queues(self, sources: Sequence[NewDataSource]) -> dict[str, aws.sqs.Queue]:
        """Each model's new-data queue, and their shared dead-letter queue with its depth alarm."""
        self.new_data_dead_letter_queue = None
        if not sources:
            return {}
        ctx, key_arn, name = self._args.context, self._args.foundation.key_arn, self._name
        tags = ctx.naming.tags(Responder=RETRAIN)
        dlq = aws.sqs.Queue(
            f"{name}-new-data-dlq",
            name=ctx.naming.name("new-data-dlq", Kind.SQS_QUEUE),
            kms_master_key_id=key_arn,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        metric_alarm(
            f"{name}-new-data-dead-letters",
            ctx.naming.name("new-data-dead-letters", Kind.ALARM),
            dead_letters(f"{RETRAIN} (new data)", dlq.name),
            tags=tags,
            parent=dlq,
            alarm_actions=[self._args.foundation.alerts_topic_arn],
            ok_actions=[self._args.foundation.alerts_topic_arn],
        )
        self.new_data_dead_letter_queue = dlq
        parts = {source.model: f"new-data-{source.model}" for source in sources}
        # Only the new-data queues may use it as their dead-letter queue. Their ARNs come from their names, not
        # from the queues: the allow list is in place before a new queue names this one in its redrive policy.
        # SQS takes at most 10 source queues ("to allow more than 10 source queues ... set allowAll").
        queue_arns = [self._arn("sqs", ctx.naming.name(part, Kind.SQS_QUEUE)) for part in parts.values()]
        allow = (
            {"redrivePermission": "byQueue", "sourceQueueArns": queue_arns}
            if len(queue_arns) <= REDRIVE_ALLOW_MAX_SOURCE_QUEUES
            else {"redrivePermission": "allowAll"}
        )
        allowed = aws.sqs.RedriveAllowPolicy(
            f"{name}-new-data-dlq-redrive-allow",
            queue_url=dlq.url,
            redrive_allow_policy=pulumi.Output.json_dumps(allow),
            opts=pulumi.ResourceOptions(parent=dlq),
        )
        return {
            source.model: new_data_queue(
                f"{name}-new-data-{source.model}",
                ctx.naming,
                part=parts[source.model],
                source=source,
                key_arn=key_arn,
                dead_letter_queue=dlq,
                function_timeout_seconds=SETTINGS[RETRAIN].timeout_seconds,
                tags=tags,
                parent=self,
                depends_on=[allowed],
            )
            for source in sources
        }

    def _new_data_triggers(
        self, sources: Sequence[NewDataSource], queues: Mapping[str, aws.sqs.Queue]
    ) -> dict[str, NewDataTrigger]:
        """Each model's rule → queue → function path; the shared DLQ admits the rules and the queues only."""
        dlq = self.new_data_dead_letter_queue
        if dlq is None:
            return {}
        ctx, name, responder = self._args.context, self._name, self.responders[RETRAIN]
        triggers = {
            source.model: new_data_trigger(
                f"{name}-new-data-{source.model}",
                ctx.naming,
                responder,
                part=f"new-data-{source.model}",
                source=source,
                queue=queues[source.model],
                dead_letter_queue=dlq,
                depends_on=[responder.role.policy],
                parent=self,
            )
            for source in sources
        }
        queue_policy(
            f"{name}-new-data-dlq-policy",
            dlq,
            "events.amazonaws.com",
            [t.rule.arn for t in triggers.values()],
            sid="RulesDeadLetter",
        )
        return triggers

    def _arn(self, service: str, resource: str) -> pulumi.Output[str]:
        return self._args.foundation.arn(service, resource)

    def _secret_statements(self) -> list[iam.Statement]:
        secret = self._args.context.config.deployment.token_secret_name
        if self._args.context.config.deployment.kind == "none" or secret is None:
            return []
        # Secrets Manager appends '-' and six random characters to a secret's name in its ARN; '??????'
        # matches exactly those, so a secret named '<name>-other' is not matched.
        return [secret_read("DeployToken", [self._arn("secretsmanager", f"secret:{secret}-??????")])]

    def _responder(
        self, key: str, *, environment: Mapping[str, pulumi.Input[str]], statements: Sequence[iam.Statement]
    ) -> Responder:
        """A function with its dead-letter queue, log group, execution role and asynchronous invoke config."""
        args, ctx, name = self._args, self._args.context, self._name
        settings = SETTINGS[key]
        thing = key.replace("_", "-")
        part = f"{name}-{thing}"
        tags = ctx.naming.tags(Responder=key)
        function_name = ctx.naming.name(thing, Kind.LAMBDA)
        log_group_name = lambda_log_group_name(function_name)

        queue = aws.sqs.Queue(
            f"{part}-dlq",
            name=ctx.naming.name(f"{thing}-dlq", Kind.SQS_QUEUE),
            kms_master_key_id=args.foundation.key_arn,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        log_group = encrypted_log_group(
            f"{part}-logs",
            name=log_group_name,
            retention_days=ctx.config.log_retention_days,
            key_arn=args.foundation.key_arn,
            tags=tags,
            parent=self,
        )
        role = iam.service_role(
            f"{part}-role",
            naming=ctx.naming,
            thing=f"{thing}-lambda",
            # No aws:SourceAccount condition: Lambda assumes execution roles without that context key.
            services=["lambda.amazonaws.com"],
            statements=[
                *statements,
                sqs_send("DeadLetters", [queue.arn]),
                iam.logs_write("OwnLogs", [self._arn("logs", f"log-group:{log_group_name}:*")]),
                # Encrypted DLQ, topics, environment and table: the function encrypts and decrypts with the key.
                iam.kms_use("PlatformKeyUse", [args.foundation.key_arn]),
            ],
            tags=tags,
            parent=self,
            description=f"{ctx.naming.prefix} {key} responder: least-privilege execution role",
        )
        function = packaged_function(
            part,
            function=key,
            archive_dir=args.archive_dir,
            name=function_name,
            description=settings.description,
            role=role,
            timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": key},
            key_arn=args.foundation.key_arn,
            dead_letter_arn=queue.arn,
            log_group=log_group,
            tags=tags,
            parent=self,
            # None leaves the provider's default (-1: no reservation, removing one a previous update made).
            reserved_concurrent_executions=(
                RESERVED_CONCURRENCY if settings.serialisable and ctx.config.deployment.reserve_concurrency else None
            ),
        )
        invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{part}-async",
            function_name=function.name,
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(destination=queue.arn)
            ),
            opts=pulumi.ResourceOptions(parent=function),
        )
        # Someone hears of an event the retries could not handle before SQS expires it, and of failing invocations.
        alerts: dict[str, Any] = {
            "alarm_actions": [args.foundation.alerts_topic_arn],
            "ok_actions": [args.foundation.alerts_topic_arn],
        }
        metric_alarm(
            f"{part}-dead-letters",
            ctx.naming.name(f"{thing}-dead-letters", Kind.ALARM),
            dead_letters(key, queue.name),
            tags=tags,
            parent=queue,
            **alerts,
        )
        metric_alarm(
            f"{part}-errors",
            ctx.naming.name(f"{thing}-errors", Kind.ALARM),
            responder_errors(key, function.name),
            tags=tags,
            parent=function,
            **alerts,
        )
        return Responder(
            function=function, dead_letter_queue=queue, log_group=log_group, role=role, invoke_config=invoke_config
        )
