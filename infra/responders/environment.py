"""What the responders' environments hold, computed without the engine: the retraining targets, the deploy
hook, name maps, and Lambda's 4 KB environment limit checked at preview."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from infra.monitoring.settings import RetrainingSettings
from infra.responders.settings import DeploymentHookSettings
from infra.training.settings import NewDataRetrainingSettings

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
LAMBDA_ENV_LIMIT_BYTES = 4096  # AWS: total size of a function's environment variables (keys + values)


class ResponderConfigError(ValueError):
    """The responders cannot be built as configured (for example, an environment over Lambda's 4 KB)."""


@dataclass(frozen=True, kw_only=True)
class ResponderModel:
    """What the responders need to know of one model.

    ``retraining_alarm_names`` are the alarms (``ModelMonitoring.retraining_alarm_names``) whose actions
    publish to the retrain topic; empty for a model that is not served or not monitored.
    """

    model: str
    retraining: RetrainingSettings
    pipeline_name: pulumi.Input[str]
    pipeline_arn: pulumi.Input[str]
    model_package_group_name: pulumi.Input[str]
    retraining_alarm_names: Sequence[str] = ()


COMMITS_PREFIX = "_commits/"
"""``mlops.ingestion.COMMITS_PREFIX`` (a unit test holds the two equal; infra does not import the job code)."""


@dataclass(frozen=True, kw_only=True)
class NewDataSource:
    """Where a model's new data appears: its source table in the curated zone (``sourceTable``) and how it
    retrains on it (``training.retrainOnNewData``)."""

    model: str
    settings: NewDataRetrainingSettings
    retraining: RetrainingSettings
    """The model's limits (``monitoring.retraining``): one ledger per model, shared with its alarms."""
    pipeline_name: pulumi.Input[str]
    pipeline_arn: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    table_prefix: str

    @property
    def key_prefix(self) -> str:
        """The object keys that announce new data (what the rule matches and the function checks again)."""
        return f"{COMMITS_PREFIX}{self.table_prefix}" if self.settings.match == "commits" else self.table_prefix


def new_data_targets(sources: Sequence[NewDataSource]) -> dict[str, dict[str, Any]]:
    """``NEW_DATA_TARGETS``: model → its table's bucket and prefix, which objects announce a load, its pipeline
    and limits (the same as its alarms': ``monitoring.retraining``)."""
    return {
        source.model: {
            "pipelineName": source.pipeline_name,
            "bucket": source.bucket_name,
            "tablePrefix": source.table_prefix,
            "match": source.settings.match,
            "cooldownMinutes": source.retraining.cooldown_minutes,
            "maxPerDay": source.retraining.max_per_day,
        }
        for source in sorted(sources, key=lambda s: s.model)
    }


def object_created_pattern(source: NewDataSource) -> dict[str, Any]:
    """The EventBridge pattern of the objects announcing the model's new data.

    S3's "Object Created" event carries ``detail.bucket.name`` and ``detail.object.key`` (also ``size``, ``etag``,
    ``version-id``, ``sequencer``, ``reason``). One ``prefix`` filter on the key does it: a table's prefix never
    starts with ``_staging/`` (refused by the config and by ingestion), so staged files never match; in
    ``commits`` mode the prefix is the table's marker folder, so data files never match either. (Several filters
    in one field's array are OR'ed, so "prefix AND NOT _staging/" could not be said in one field anyway; the
    function checks the key again.)
    """
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [source.bucket_name]},
            "object": {"key": [{"prefix": source.key_prefix}]},
        },
    }


def retrain_targets(models: Sequence[ResponderModel]) -> dict[str, dict[str, Any]]:
    """``RETRAIN_TARGETS``: alarm name → the model it retrains, its pipeline and rate limits.

    Models with ``monitoring.retraining.enabled=false`` are left out. Raises :class:`ResponderConfigError`
    when one alarm name is claimed by two models (the responder could not tell which to retrain).
    """
    targets: dict[str, dict[str, Any]] = {}
    for model in models:
        retraining = model.retraining
        if not retraining.enabled:
            continue
        for alarm in model.retraining_alarm_names:
            if alarm in targets:
                raise ResponderConfigError(
                    f"alarm '{alarm}' retrains both '{targets[alarm]['model']}' and '{model.model}'; "
                    "an alarm may retrain one model only"
                )
            targets[alarm] = {
                "model": model.model,
                "pipelineName": model.pipeline_name,
                "cooldownMinutes": retraining.cooldown_minutes,
                "maxPerDay": retraining.max_per_day,
            }
    return dict(sorted(targets.items()))


def deploy_hook(hook: DeploymentHookSettings, stack: str) -> dict[str, str | None]:
    """``DEPLOY_HOOK``: where approvals are dispatched, for which stack. Holds the token secret's NAME, never its
    value.

    ``stack`` (the Pulumi stack) becomes the workflow's ``stack`` input: an approval deploys its own stack
    only, never the workflow's default (every stack, dev -> staging -> prod).
    """
    return {
        "kind": hook.kind,
        "repository": hook.repository,
        "workflow": hook.workflow,
        "ref": hook.ref,
        "tokenSecretName": hook.token_secret_name,
        "stack": stack,
    }


def name_map(names: Sequence[pulumi.Input[str]], models: Sequence[str]) -> pulumi.Output[str]:
    """JSON ``{"<name>": "<model>"}`` where the names are outputs (JSON keys must be known strings)."""
    return pulumi.Output.all(*names).apply(
        lambda resolved: json.dumps(dict(zip(resolved, models, strict=True)), sort_keys=True, separators=(",", ":"))
    )


def compact_json(value: Any) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(value, sort_keys=True, separators=(",", ":"))


def check_environment_size(function: str, variables: dict[str, str]) -> dict[str, str]:
    """``variables`` unchanged, or :class:`ResponderConfigError` when they exceed Lambda's 4 KB limit."""
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > LAMBDA_ENV_LIMIT_BYTES:
        raise ResponderConfigError(
            f"{function}: environment variables take {size} bytes; Lambda allows {LAMBDA_ENV_LIMIT_BYTES} "
            "(fewer retraining alarms or shorter names)"
        )
    return variables


def checked_environment(function: str, variables: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
    """The variables as one output, refused at preview when over Lambda's limit (the deployment would fail)."""
    return pulumi.Output.all(**variables).apply(lambda resolved: check_environment_size(function, resolved))


def program_path(path: Path) -> str:
    """``path`` relative to the repository (the program's working directory under the Pulumi CLI) when inside it.

    The same checkout on another machine then gives the same ``code`` input, byte for byte.
    """
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)
