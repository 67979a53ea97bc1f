"""After `pulumi up`: check that every endpoint runs the endpoint configuration the stack recorded.

When SageMaker rolls a blue/green update back (a rollback alarm fired, or the new fleet failed its health
checks), the endpoint returns to ``InService`` on its previous configuration. The terraform-based provider
waits for ``InService`` only, so it reports success and Pulumi records the new configuration while the
endpoint still runs the old one (hashicorp/terraform-provider-aws#48997, #46663). This check compares each
endpoint's ``DescribeEndpoint`` (``EndpointConfigName``, ``EndpointStatus``) with the stack outputs
``endpoints`` and ``endpointConfigs`` (model -> name) and fails, naming endpoint, expected and actual
configuration, when they differ.

    pulumi stack output --json --stack prod > outputs.json
    python -m tools.check_rollout outputs.json [--region eu-west-1]
    pulumi stack output --json --stack prod | python -m tools.check_rollout

With ``--prune``, and only when every endpoint passed, the superseded endpoint configurations and models of each
checked endpoint are deleted. The program retains them on replacement (``retain_on_delete``), so the
configuration an endpoint still runs after a silent rollback is never deleted by ``pulumi up``; pruning after a
passed check is what removes them. Only names the program derives for that endpoint
(``<endpoint>-<10 hex digits>``) are considered, and never the configuration the endpoint runs or a model it uses.

Exit status: 0 every endpoint runs its recorded configuration (or the stack has none), 1 at least one does
not (each is listed on stderr), 2 the outputs could not be read or SageMaker could not be asked.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DESCRIPTION = "Check that every endpoint runs the endpoint configuration the stack recorded."
HEALTHY_STATUSES = frozenset({"InService", "SystemUpdating"})
"""Statuses of an endpoint serving its configuration (``SystemUpdating``: AWS maintenance, which changes no
customer-specified value). Anything else (``Updating``, ``RollingBack``, ``Failed``, ``UpdateRollbackFailed``,
...) after `pulumi up` returned means the rollout did not finish as recorded."""


class RolloutCheckError(Exception):
    """The check could not run (exit status 2)."""


class OutputsError(RolloutCheckError):
    """The stack outputs are not what `pulumi stack output --json` of this program prints."""


class SageMakerError(RolloutCheckError):
    """SageMaker refused a call for a reason other than a missing endpoint (the error code is in ``code``)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What the stack recorded for one model's endpoint."""

    model: str
    endpoint: str
    endpoint_config: str


@dataclass(frozen=True, kw_only=True)
class Live:
    """What SageMaker says of one endpoint; ``exists=False`` when it has no such endpoint."""

    endpoint: str
    exists: bool
    status: str = ""
    endpoint_config: str = ""
    failure_reason: str = ""
    config_exists: bool = True
    """Whether the configuration the endpoint runs still exists (Pulumi may have deleted the one it replaced)."""


# --- pure -------------------------------------------------------------------------------------------------


def expected_endpoints(outputs: Mapping[str, Any]) -> list[Expected]:
    """The recorded endpoint and configuration of every served model, sorted by model.

    Raises :class:`OutputsError` when ``endpoints`` is missing or not a map of names, or when a model with an
    endpoint has no name in ``endpointConfigs`` (outputs of a program older than this check).
    """
    endpoints = outputs.get("endpoints")
    configs = outputs.get("endpointConfigs", {})
    if not isinstance(endpoints, Mapping):
        raise OutputsError(f"the stack outputs have no 'endpoints' map (got {type(endpoints).__name__})")
    if not isinstance(configs, Mapping):
        raise OutputsError(f"the stack output 'endpointConfigs' must be a map, got {type(configs).__name__}")
    expected = []
    for model in sorted(endpoints):
        endpoint, config = endpoints[model], configs.get(model)
        if not isinstance(endpoint, str) or not endpoint:
            raise OutputsError(f"endpoints[{model!r}] must be an endpoint name, got {endpoint!r}")
        if not isinstance(config, str) or not config:
            raise OutputsError(
                f"endpointConfigs[{model!r}] is missing or empty ({config!r}) while endpoint {endpoint} exists: "
                "the stack outputs predate this check; run `pulumi up` with the current program"
            )
        expected.append(Expected(model=str(model), endpoint=endpoint, endpoint_config=config))
    return expected


def problem(expected: Expected, live: Live) -> str | None:
    """Why ``live`` is not the rollout the stack recorded, or ``None`` when it is."""
    where = f"endpoint {expected.endpoint} (model {expected.model})"
    if not live.exists:
        return f"{where} does not exist; the stack expects it to run endpoint configuration {expected.endpoint_config}"
    reason = f" (FailureReason: {live.failure_reason})" if live.failure_reason else ""
    if live.endpoint_config != expected.endpoint_config:
        gone = (
            f"; configuration {live.endpoint_config} no longer exists (deleted after the update was reported "
            "successful), so the endpoint cannot be updated from it until it is recreated"
            if not live.config_exists
            else ""
        )
        return (
            f"{where} runs endpoint configuration {live.endpoint_config}, expected {expected.endpoint_config}: "
            f"SageMaker rolled the update back or it never applied (status {live.status}){reason}{gone}. "
            "Pulumi recorded the expected configuration; find the cause (rollback alarms, FailureReason), "
            "fix it and deploy again"
        )
    if live.status not in HEALTHY_STATUSES:
        return f"{where} runs endpoint configuration {live.endpoint_config} but is {live.status}{reason}"
    return None


# --- adapter ----------------------------------------------------------------------------------------------


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _not_found(error: ClientError) -> bool:
    # SageMaker answers a missing endpoint or configuration with ValidationException "Could not find ...".
    return _code(error) == "ValidationException" and "could not find" in _message(error).lower()


def describe(sagemaker: Any, endpoint: str) -> Live:
    """The endpoint as SageMaker sees it, with the client given; :class:`SageMakerError` for any other refusal."""
    try:
        found = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if _not_found(error):
            return Live(endpoint=endpoint, exists=False)
        raise SageMakerError(f"DescribeEndpoint of {endpoint} failed: {_code(error)}", code=_code(error)) from error
    config = str(found.get("EndpointConfigName", ""))
    return Live(
        endpoint=endpoint,
        exists=True,
        status=str(found.get("EndpointStatus", "")),
        endpoint_config=config,
        failure_reason=str(found.get("FailureReason", "")),
    )


def config_exists(sagemaker: Any, name: str) -> bool:
    """Whether the endpoint configuration ``name`` exists; :class:`SageMakerError` for any other refusal."""
    try:
        sagemaker.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as error:
        if _not_found(error):
            return False
        raise SageMakerError(f"DescribeEndpointConfig of {name} failed: {_code(error)}", code=_code(error)) from error
    return True


def check(outputs: Mapping[str, Any], sagemaker: Any) -> tuple[list[Expected], list[str]]:
    """Every recorded endpoint and the problems found (empty: the rollout is what the stack recorded)."""
    expected = expected_endpoints(outputs)
    problems = []
    for item in expected:
        live = describe(sagemaker, item.endpoint)
        if live.exists and live.endpoint_config != item.endpoint_config:
            live = replace(live, config_exists=config_exists(sagemaker, live.endpoint_config))
        if (found := problem(item, live)) is not None:
            problems.append(found)
    return expected, problems


def superseded(endpoint: str, names: Sequence[str], keep: set[str]) -> list[str]:
    """The names among ``names`` the program derived for ``endpoint`` (``<endpoint>-<10 hex>``), except ``keep``."""
    own = re.compile(rf"^{re.escape(endpoint)}-[0-9a-f]{{10}}$")
    return sorted(n for n in names if own.match(n) and n not in keep)


def _names(sagemaker: Any, operation: str, key: str, name_field: str, contains: str) -> list[str]:
    names: list[str] = []
    for page in sagemaker.get_paginator(operation).paginate(NameContains=contains):
        names += [str(item[name_field]) for item in page.get(key, [])]
    return names


def prune(expected: Sequence[Expected], sagemaker: Any) -> list[str]:
    """Delete the superseded endpoint configs and models of each (passed) endpoint; returns what was deleted."""
    deleted = []
    for item in expected:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=item.endpoint_config)
        variants = [*config.get("ProductionVariants", []), *config.get("ShadowProductionVariants", [])]
        in_use = {str(v["ModelName"]) for v in variants if "ModelName" in v}
        configs = _names(sagemaker, "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", item.endpoint)
        for name in superseded(item.endpoint, configs, {item.endpoint_config}):
            sagemaker.delete_endpoint_config(EndpointConfigName=name)
            deleted.append(f"endpoint config {name}")
        models = _names(sagemaker, "list_models", "Models", "ModelName", item.endpoint)
        for name in superseded(item.endpoint, models, in_use):
            sagemaker.delete_model(ModelName=name)
            deleted.append(f"model {name}")
    return deleted


# --- command ----------------------------------------------------------------------------------------------


def read_outputs(source: TextIO) -> dict[str, Any]:
    """The JSON object `pulumi stack output --json` printed; :class:`OutputsError` when it is not one."""
    text = source.read()
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputsError(f"the stack outputs are not JSON ({error}): {text[:200]!r}") from error
    if not isinstance(outputs, dict):
        raise OutputsError(f"the stack outputs must be a JSON object, got {type(outputs).__name__}")
    return outputs


def main(
    argv: Sequence[str] | None = None,
    *,
    sagemaker: Any = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the check; returns the exit status. ``sagemaker`` defaults to a boto3 client (``--region``)."""
    source, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = argparse.ArgumentParser(prog="python -m tools.check_rollout", description=DESCRIPTION)
    parser.add_argument("outputs", nargs="?", help="file with `pulumi stack output --json` (default: stdin)")
    parser.add_argument("--region", help="AWS region of the stack (default: the environment's)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="when every endpoint passed, delete the superseded endpoint configs and models the program retained",
    )
    args = parser.parse_args(argv)
    try:
        if args.outputs:
            with Path(args.outputs).open(encoding="utf-8") as file:
                outputs = read_outputs(file)
        else:
            outputs = read_outputs(source)
        if sagemaker is None:
            sagemaker = boto3.client("sagemaker", region_name=args.region)
        expected, problems = check(outputs, sagemaker)
        pruned = prune(expected, sagemaker) if args.prune and not problems else []
    except (RolloutCheckError, BotoCoreError, OSError) as error:  # BotoCoreError: no credentials, no region, ...
        print(f"rollout check could not run: {error}", file=stderr)
        return 2
    except ClientError as error:  # a prune call refused: the check itself passed, nothing is wrong with the rollout
        print(f"rollout check passed, but pruning failed: {_code(error)}: {_message(error)}", file=stderr)
        return 2
    for item in problems:
        print(f"error: {item}", file=stderr)
    if problems:
        print(f"rollout check failed: {len(problems)} of {len(expected)} endpoint(s)", file=stderr)
        return 1
    if not expected:
        print("rollout check: the stack has no endpoint", file=stdout)
    for e in expected:
        print(f"ok: endpoint {e.endpoint} (model {e.model}) runs {e.endpoint_config}", file=stdout)
    for item in pruned:
        print(f"pruned: {item}", file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
