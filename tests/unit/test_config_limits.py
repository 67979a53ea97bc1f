"""Values AWS refuses are refused by the config validation, before any resource exists (issue 15, item 6).

Each test names the AWS rule it enforces and where AWS states it. Every refusal must name the key, the bad value
and what is allowed; the example stacks keep planning clean (tests/unit/test_config.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, PlatformConfig, parse_stack_config
from infra.naming import MAX_STACK_TAGS, REQUIRED_TAG_KEYS, Kind, Naming, NamingError
from mlops.features import get_spec
from verify.mock_engine import read_stack_values

ROOT = Path(__file__).resolve().parents[2]


def values(stack: str = "prod") -> dict[str, str]:
    return read_stack_values(stack)


def problems_for(config: dict[str, str], stack: str = "prod") -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        parse_stack_config(config, stack)
    return excinfo.value.problems


def parses(config: dict[str, str], stack: str = "prod") -> PlatformConfig:
    return parse_stack_config(config, stack)


def with_section(key: str, change: Callable[[Any], None], stack: str = "prod") -> dict[str, str]:
    """The stack's values with the JSON value of ``mlops:<key>`` changed in place by ``change``."""
    base = values(stack)
    document = json.loads(base.get(f"mlops:{key}", "{}"))
    change(document)
    return base | {f"mlops:{key}": json.dumps(document)}


def with_model(change: Callable[[dict[str, Any]], None], stack: str = "prod") -> dict[str, str]:
    return with_section("models", lambda models: change(models[0]), stack)


def read_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    return read_stack_values("dev", path)


def file_problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        parse_stack_config(read_file(tmp_path, text), "dev")
    return excinfo.value.problems


DEV = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()


# --- non-finite numbers --------------------------------------------------------------------------
# JSON has no NaN or Infinity, and every AWS API that takes a number refuses them (a NaN traffic weight or alarm
# threshold cannot be sent at all); YAML's .nan/.inf and JSON's 1e999 would otherwise reach the program.


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_variant_weight_is_refused(bad: float) -> None:
    [problem] = problems_for(with_model(lambda m: m["serving"]["variants"][0].update(weight=bad)))
    assert problem.startswith("mlops:models.0.serving.variants.0.weight: got ")
    assert "finite number" in problem


def test_a_non_finite_kpi_threshold_is_refused() -> None:
    [problem] = problems_for(with_model(lambda m: m["monitoring"]["businessKpi"].update(threshold=math.inf)))
    assert problem.startswith("mlops:models.0.monitoring.businessKpi.threshold: got Infinity;")
    assert "finite number" in problem


@pytest.mark.parametrize(
    "path",
    [
        ("training", "metricThreshold"),
        ("monitoring", "modelQuality", "metricThreshold"),
        ("monitoring", "modelQuality", "probabilityThreshold"),
        ("serving", "rollout", "errorRatePercentThreshold"),
    ],
)
def test_every_float_field_refuses_nan(path: tuple[str, ...]) -> None:
    def change(model: dict[str, Any]) -> None:
        node = model
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = math.nan

    [problem] = problems_for(with_model(change))
    assert problem.startswith(f"mlops:models.0.{'.'.join(path)}: got NaN;")


def test_yaml_nan_from_a_stack_file_is_refused(tmp_path: Path) -> None:
    text = DEV.replace("metricThreshold: 0.6", "metricThreshold: .nan")
    [problem] = file_problems(tmp_path, text)
    assert problem.startswith("mlops:models.0.training.metricThreshold: got NaN;")


def test_a_huge_json_exponent_is_infinity_and_refused() -> None:
    config = values()
    assert '"threshold": 0.3' in config["mlops:models"]
    config["mlops:models"] = config["mlops:models"].replace('"threshold": 0.3', '"threshold": 1e999')
    [problem] = problems_for(config)
    assert problem.startswith("mlops:models.0.monitoring.businessKpi.threshold: got Infinity;")


# --- cron and rate expressions -----------------------------------------------------------------------
# EventBridge's cron reference ("Cron expressions reference", EventBridge user guide): six fields, minutes 0-59,
# hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT, year 1970-2199; "You can't
# use * in both the Day-of-month and Day-of-week fields. If you use it in one, you must use ? in the other."
# Glue crawlers, EventBridge rules and SageMaker monitoring schedules take the same syntax.


def crawler_schedule(expression: str) -> dict[str, str]:
    return with_section("catalog", lambda catalog: catalog.update(crawlerSchedule=expression))


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 3 * * ? *)",
        "cron(15 10 ? * 6L 2026-2030)",
        "cron(0/15 * * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(30 2 L * ? *)",
        "cron(0 12 LW * ? *)",
        "cron(0 12 15W * ? *)",
        "cron(0 0 1 JAN,JUL ? *)",
        "cron(0 */4 * * ? *)",
    ],
)
def test_documented_cron_expressions_are_accepted(expression: str) -> None:
    assert parses(crawler_schedule(expression)).catalog.crawler_schedule == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 3 * * * *)", "one of day-of-month and day-of-week must be '?'"),
        ("cron(0 3 ? * ? *)", "one of day-of-month and day-of-week must be '?'"),
        ("cron(0 3 1 * MON *)", "one of day-of-month and day-of-week must be '?'"),
        ("cron(60 3 * * ? *)", "minutes"),
        ("cron(0 24 * * ? *)", "hours"),
        ("cron(0 3 32 * ? *)", "day-of-month"),
        ("cron(0 3 0 * ? *)", "day-of-month"),
        ("cron(0 3 * 13 ? *)", "month"),
        ("cron(0 3 ? * 8 *)", "day-of-week"),
        ("cron(0 3 ? * FUNDAY *)", "day-of-week"),
        ("cron(0 3 * * ? 2200)", "year"),
        ("cron(0 3 * * ? 1969)", "year"),
        ("cron(? 3 * * ? *)", "minutes"),
        ("cron(0/0 3 * * ? *)", "minutes"),
        ("cron(0 3 5-40 * ? *)", "day-of-month"),
        ("cron(0 3 ? * 3#6 *)", "day-of-week"),
        ("cron(0 3 ? * 3#1,6#3 *)", "day-of-week"),
        ("cron(0 3 * * ?)", "six fields"),
        ("cron(0 3 * * ? * *)", "six fields"),
        ("cron(0 3 * * ? *)\n", "six fields"),
        (" cron(0 3 * * ? *)", "six fields"),
        ("cron(0  3 * * ? *)", "six fields"),
    ],
)
def test_impossible_cron_expressions_are_refused(expression: str, reason: str) -> None:
    [problem] = problems_for(crawler_schedule(expression))
    assert problem.startswith(f"mlops:catalog.crawlerSchedule: got {json.dumps(expression)};")
    assert reason in problem


def test_retrain_schedule_with_a_trailing_newline_is_refused() -> None:
    [problem] = problems_for(with_model(lambda m: m["training"].update(retrainSchedule="cron(0 4 ? * MON *)\n")))
    assert problem.startswith('mlops:models.0.training.retrainSchedule: got "cron(0 4 ? * MON *)\\n";')


@pytest.mark.parametrize("expression", ["rate(1 hour)\n", "cron(0 * ? * * *)\n", "rate(1 hour) ", "rate(01 hour)"])
def test_monitor_schedule_with_trailing_whitespace_or_padding_is_refused(expression: str) -> None:
    [problem] = problems_for(with_model(lambda m: m["monitoring"]["platform"].update(schedule=expression)))
    assert problem.startswith(f"mlops:models.0.monitoring.platform.schedule: got {json.dumps(expression)};")


@pytest.mark.parametrize("expression", ["rate(5 minutes)", "cron(0/5 * ? * * *)"])
def test_a_platform_monitor_every_5_minutes_is_refused(expression: str) -> None:
    # The platform's own floor (a SageMaker processing job takes minutes to start), not AWS's: kept by the
    # monitoring rework; pinned here because issue 15 found 5-minute monitors planning clean.
    [problem] = problems_for(with_model(lambda m: m["monitoring"]["platform"].update(schedule=expression)))
    assert problem.startswith("mlops:models.0.monitoring.platform")


def test_a_model_monitor_schedule_every_5_minutes_is_refused() -> None:
    # AWS: Model Monitor schedules run hourly at most often ("The cron expression for monitoring schedule").
    def change(model: dict[str, Any]) -> None:
        model["monitoring"] = {"engine": "model-monitor", "dataQuality": {"schedule": "cron(0/5 * ? * * *)"}}

    problems = problems_for(with_model(change))
    assert any(p.startswith("mlops:models.0.monitoring.dataQuality.schedule: got ") for p in problems), problems


# --- tags ------------------------------------------------------------------------------------------------
# AWS's tagging rules (e.g. "Tag restrictions", AWS Batch user guide; the same list in most services' guides):
# at most 50 user tags per resource; keys 1-128 and values 0-256 Unicode characters; letters, numbers, spaces
# and + - = . _ : / @; the aws: prefix (any case) is reserved for keys and values. The IAM, SageMaker, Lambda and
# CloudWatch Logs API models carry the character rule as the pattern [\p{L}\p{Z}\p{N}_.:/=+\-@].


def tags(extra: dict[str, str]) -> dict[str, str]:
    return values() | {"mlops:tags": json.dumps(extra)}


def test_the_stack_may_add_tags_up_to_what_aws_leaves_after_the_platforms_own() -> None:
    # Resources carry the 5 common tags plus at most 2 of their own (Model and Variant, Model and FeatureSpec).
    assert 50 - len(REQUIRED_TAG_KEYS) - 2 == MAX_STACK_TAGS
    allowed = {f"Team{i}": "x" for i in range(MAX_STACK_TAGS)}
    assert len(parses(tags(allowed)).tags) == MAX_STACK_TAGS


def test_more_tags_than_aws_allows_per_resource_are_refused() -> None:
    [problem] = problems_for(tags({f"Team{i}": "x" for i in range(MAX_STACK_TAGS + 1)}))
    assert problem.startswith("mlops:tags: ")
    assert f"{MAX_STACK_TAGS + 1} tags" in problem
    assert f"at most {MAX_STACK_TAGS}" in problem


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("a<b>", "x", "tag key 'a<b>'"),
        ("Team", "v|w", "tag 'Team' value 'v|w'"),
        ("Team", "line\nbreak", "tag 'Team' value 'line\\nbreak'"),
        ("Team*", "x", "tag key 'Team*'"),
        ("aws:team", "x", "reserved 'aws:' prefix"),
        ("AWS:Team", "x", "reserved 'aws:' prefix"),
        ("Team", "aws:x", "reserved 'aws:' prefix"),
        ("", "x", "1-128 characters"),
        ("k" * 129, "x", "1-128 characters"),
        ("Team", "v" * 257, "at most 256 characters"),
    ],
)
def test_tags_aws_refuses_are_refused(key: str, value: str, expected: str) -> None:
    [problem] = problems_for(tags({key: value}))
    assert problem.startswith("mlops:tags")
    assert expected in problem


def test_tags_in_any_script_with_the_allowed_symbols_are_accepted() -> None:
    accepted = {"Équipe": "données clients", "CostCode": "a+b-c=d.e_f:g/h@i", "k" * 128: "v" * 256, "Empty": ""}
    assert parses(tags(accepted)).tags == accepted


@pytest.mark.parametrize("key", ["Model", "Variant", "Zone", "FeatureSpec", "Topic", "Container", "Responder"])
def test_a_stack_tag_the_platform_sets_per_resource_is_refused(key: str) -> None:
    [problem] = problems_for(tags({key: "mine"}))
    assert f"tag key '{key}' is set by the platform" in problem


def test_naming_refuses_a_resource_tag_that_would_overwrite_a_stack_tag() -> None:
    naming = Naming(project="acme", environment="dev", extra_tags={"Model": "mine"})
    with pytest.raises(NamingError, match="'Model'"):
        naming.tags(Model="churn")


def test_naming_refuses_more_tags_than_aws_allows() -> None:
    naming = Naming(project="acme", environment="dev", extra_tags={f"T{i}": "x" for i in range(45)})
    with pytest.raises(NamingError, match="at most 50"):
        naming.tags(Model="churn")


# --- descriptions and comments ---------------------------------------------------------------------------
# The limits come from the API models botocore ships (the contract check's source): SageMaker's
# ModelPackageGroupDescription 1024 characters of [\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}] (no control characters), Glue's
# TableInput.Description 2048 and Column.Comment 255 characters (a comment takes no line break).


def test_a_model_description_longer_than_the_registry_takes_is_refused() -> None:
    [problem] = problems_for(with_model(lambda m: m.update(description="x" * 961)))
    assert problem.startswith("mlops:models.0.description: got ")
    assert "at most 960 characters" in problem


def test_a_model_description_with_a_line_break_is_refused() -> None:
    [problem] = problems_for(with_model(lambda m: m.update(description="churn\nrisk")))
    assert problem.startswith('mlops:models.0.description: got "churn\\nrisk";')
    assert "control character" in problem


def test_the_longest_model_description_fits_the_registry_description() -> None:
    # The registry's description is "Versions of <model>: <description>" (infra/training/component.py).
    config = parses(with_model(lambda m: m.update(description="x" * 960, name="m" * 24)))
    model = config.models[0]
    assert len(f"Versions of {model.name}: {model.description}") <= 1024


def test_a_table_description_over_glues_limit_is_refused() -> None:
    [problem] = problems_for(with_section("catalog", lambda c: c["tables"][0].update(description="d" * 2049)))
    assert problem.startswith("mlops:catalog.tables.0.description: got ")
    assert "at most 2048 characters" in problem


@pytest.mark.parametrize(("comment", "expected"), [("c" * 256, "at most 255 characters"), ("a\nb", "control")])
def test_a_column_comment_glue_refuses_is_refused(comment: str, expected: str) -> None:
    [problem] = problems_for(with_section("catalog", lambda c: c["tables"][0]["columns"][0].update(comment=comment)))
    assert problem.startswith("mlops:catalog.tables.0.columns.0.comment: got ")
    assert expected in problem


# --- KMS principals ------------------------------------------------------------------------------------------
# A key policy principal is a whole ARN: IAM's Principal element takes no wildcard inside an ARN ("*" alone means
# everyone), and KMS refuses the policy (MalformedPolicyDocumentException, "invalid principals").


@pytest.mark.parametrize(
    "arn", ["arn:aws:iam::210987654321:role/*", "arn:aws:iam::210987654321:role/admin-?", "*", "arn:aws:iam::*:root"]
)
def test_a_wildcard_kms_administrator_is_refused(arn: str) -> None:
    [problem] = problems_for(with_section("kms", lambda kms: kms.update(administratorArns=[arn])))
    assert problem.startswith(f"mlops:kms.administratorArns.0: got {json.dumps(arn)};")
    assert "wildcard" in problem


def test_a_named_kms_administrator_is_accepted() -> None:
    arn = "arn:aws:iam::210987654321:role/platform-key-admins"
    assert parses(with_section("kms", lambda kms: kms.update(administratorArns=[arn]))).kms.administrator_arns == (arn,)


# --- S3 bucket names --------------------------------------------------------------------------------------------
# S3's "General purpose bucket naming rules": names must not start with xn--, sthree- or amzn-s3-demo-, nor end
# with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3. Every bucket name starts with the project.


@pytest.mark.parametrize("project", ["sthree-acme", "xn--acme", "amzn-s3-demo-acme"])
def test_a_project_that_starts_a_reserved_bucket_prefix_is_refused(project: str) -> None:
    [problem] = problems_for(values() | {"mlops:project": project})
    assert problem.startswith(f'mlops:project: got "{project}";')
    assert "reserved" in problem


@pytest.mark.parametrize("thing", ["x-s3alias", "x--ol-s3", "x--x-s3", "x--table-s3"])
def test_naming_refuses_a_bucket_name_with_a_reserved_suffix(thing: str) -> None:
    with pytest.raises(NamingError, match="reserves"):
        Naming(project="acme", environment="dev").name(thing, Kind.S3_BUCKET)


# --- the catalog: one table per name ---------------------------------------------------------------------------


def test_a_declared_table_colliding_with_a_feature_groups_offline_table_is_refused() -> None:
    version = get_spec("customer-churn").version
    offline = f"acme_mlops_prod_customer_churn_v{version}"

    def change(catalog: dict[str, Any]) -> None:
        catalog["tables"].append({**catalog["tables"][0], "name": offline, "zone": "features"})

    [problem] = problems_for(with_section("catalog", change))
    assert problem.startswith(f"mlops:catalog.tables.1: table features.{offline} is the offline-store table")
    assert "customer-churn" in problem


def test_the_same_table_name_in_another_zone_is_accepted() -> None:
    offline = f"acme_mlops_prod_customer_churn_v{get_spec('customer-churn').version}"

    def change(catalog: dict[str, Any]) -> None:
        catalog["tables"].append({**catalog["tables"][0], "name": offline, "zone": "curated"})

    assert len(parses(with_section("catalog", change)).catalog.tables) == 2


def test_a_declared_table_colliding_with_the_drift_reports_table_is_refused() -> None:
    def change(catalog: dict[str, Any]) -> None:
        catalog["tables"].append({**catalog["tables"][0], "name": "drift_reports", "zone": "monitoring"})

    [problem] = problems_for(with_section("catalog", change))
    assert problem.startswith("mlops:catalog.tables.1: table monitoring.drift_reports is the drift reports table")


# --- one resource per name (real Pulumi stops on a duplicate URN; the mocks do not) -------------------------------


def test_duplicate_drift_alarm_features_are_refused() -> None:
    def change(model: dict[str, Any]) -> None:
        model["monitoring"]["dataQuality"] = {"driftAlarmFeatures": ["sessions", "plan_tier", "sessions"]}

    [problem] = problems_for(with_model(change))
    assert problem.startswith("mlops:models.0.monitoring.dataQuality.driftAlarmFeatures: got ")
    assert "['sessions'] more than once" in problem


def test_an_email_address_listed_twice_in_any_case_is_refused() -> None:
    alerts = {"emailAddresses": ["ml-oncall@example.com", "ML-Oncall@example.com"]}
    [problem] = problems_for(values() | {"mlops:alerts": json.dumps(alerts)})
    assert problem.startswith("mlops:alerts.emailAddresses: got ")
    assert "more than once" in problem


# --- YAML's surprises in the stack file ---------------------------------------------------------------------


def test_a_null_project_is_refused_not_named_null(tmp_path: Path) -> None:
    [problem] = file_problems(tmp_path, DEV.replace("mlops:project: acme-mlops", "mlops:project: null"))
    assert problem.startswith("mlops:project: got null; expected a string")


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "true", "False"])
def test_a_yaml_boolean_where_a_string_belongs_is_refused_with_a_hint_to_quote(tmp_path: Path, word: str) -> None:
    # YAML 1.1 (PyYAML) reads these unquoted words as booleans: `environment: on` would become "true".
    text = DEV.replace("mlops:environment: dev", f"mlops:environment: {word}")
    [problem] = file_problems(tmp_path, text)
    assert problem.startswith("mlops:environment: got the YAML boolean ")
    assert f"'{word}'" in problem  # the quoted form to write


def test_a_yaml_boolean_in_a_nested_string_is_refused_with_a_hint_to_quote(tmp_path: Path) -> None:
    text = DEV.replace("description: Daily churn risk per customer", "description: yes")
    [problem] = file_problems(tmp_path, text)
    assert problem.startswith("mlops:models.0.description: got true;")
    assert "quote" in problem


def test_a_yaml_date_in_a_nested_value_is_refused_with_a_hint_to_quote(tmp_path: Path) -> None:
    text = DEV.replace("description: Daily churn risk per customer", "description: 2024-01-01")
    [problem] = file_problems(tmp_path, text)
    assert problem.startswith("mlops:models.0.description: got the YAML date 2024-01-01;")
    assert "'2024-01-01'" in problem


@pytest.mark.parametrize(
    ("key", "suggestion"), [("mlop:tags", "mlops:tags"), ("aws-nativ:region", "aws-native:region")]
)
def test_a_misspelt_namespace_is_refused_with_a_suggestion(tmp_path: Path, key: str, suggestion: str) -> None:
    [problem] = file_problems(tmp_path, DEV + f"  {key}: x\n")
    assert problem.startswith(f"{key}: unknown namespace")
    assert f"did you mean {suggestion}?" in problem


def test_a_key_without_a_namespace_is_refused(tmp_path: Path) -> None:
    [problem] = file_problems(tmp_path, DEV + "  tags: x\n")
    assert problem.startswith("tags: not a <namespace>:<key> configuration key")


def test_a_misspelt_platform_key_gets_a_suggestion() -> None:
    [problem] = problems_for(values() | {"mlops:tag": "{}"})
    assert problem.startswith("mlops:tag: unknown key; allowed keys: ")
    assert problem.endswith("; did you mean mlops:tags?")


def test_provider_namespaces_are_accepted() -> None:
    extra = {
        "aws:skipMetadataApiCheck": "true",
        "aws-native:region": "eu-west-1",
        "pulumi:disable-default-providers": '["*"]',
    }
    assert parses(values() | extra).project == "acme-mlops"


def test_a_non_string_mapping_key_is_refused(tmp_path: Path) -> None:
    text = DEV.replace("  mlops:alerts:\n    emailAddresses: []", "  mlops:alerts:\n    emailAddresses: []\n    on: 1")
    [problem] = file_problems(tmp_path, text)
    assert problem.startswith("mlops:alerts: key true is not a string")


def test_a_region_aws_does_not_have_is_refused() -> None:
    [problem] = problems_for(values() | {"aws:region": "xx-nowhere-9"})
    assert problem.startswith('aws:region: got "xx-nowhere-9";')
    assert "eu-west-1" in problem


def test_a_region_is_accepted_in_every_partition() -> None:
    for region in ("us-east-1", "cn-north-1", "us-gov-west-1", "ap-southeast-2"):
        assert parses(values() | {"aws:region": region}).region == region


# --- hyperparameters: what train.py accepts, checked at plan time, not hours later in the training job ---------


def hyperparameters(given: dict[str, Any]) -> dict[str, str]:
    return with_model(lambda m: m["training"].update(hyperparameters=given))


def test_an_unknown_hyperparameter_is_refused_with_the_allowed_set() -> None:
    [problem] = problems_for(hyperparameters({"max_depth": 5}))
    assert problem.startswith("mlops:models.0.training.hyperparameters.max_depth: got 5;")
    assert "l2_regularization, learning_rate, max_iter, max_leaf_nodes, min_samples_leaf" in problem


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("max_iter", "many", "an integer"),
        ("max_iter", 2.5, "an integer"),
        ("max_iter", True, "an integer"),
        ("learning_rate", "fast", "a number"),
        ("learning_rate", False, "a number"),
        ("learning_rate", 0, "greater than 0"),
        ("max_leaf_nodes", 1, "at least 2"),
        ("min_samples_leaf", 0, "at least 1"),
        ("l2_regularization", -0.5, "at least 0"),
    ],
)
def test_a_hyperparameter_of_the_wrong_type_or_range_is_refused(name: str, value: Any, expected: str) -> None:
    [problem] = problems_for(hyperparameters({name: value}))
    assert problem.startswith(f"mlops:models.0.training.hyperparameters.{name}: got {json.dumps(value)};")
    assert expected in problem


def test_an_integer_for_a_float_hyperparameter_becomes_a_float() -> None:
    # The pipeline parameter's type follows the value's (pipelines/factory.py): an int would make LearningRate an
    # Integer parameter, refusing 0.05 in a later execution.
    config = parses(hyperparameters({"learning_rate": 1, "max_iter": 300}))
    given = config.models[0].training.hyperparameters
    assert given == {"learning_rate": 1.0, "max_iter": 300}
    assert isinstance(given["learning_rate"], float)
    assert isinstance(given["max_iter"], int)


def test_the_allowed_hyperparameters_are_what_train_py_reads_with_its_types() -> None:
    from infra.training.settings import HYPERPARAMETER_RULES
    from pipelines.settings import DEFAULT_HYPERPARAMETERS
    from pipelines.steps import train

    assert set(HYPERPARAMETER_RULES) == set(train.HYPERPARAMETERS) == set(DEFAULT_HYPERPARAMETERS)
    for name, rule in HYPERPARAMETER_RULES.items():
        assert rule.kind is train.HYPERPARAMETERS[name], name
        default = DEFAULT_HYPERPARAMETERS[name]
        assert isinstance(default, rule.kind) and not isinstance(default, bool), name
        assert rule.problem(default) is None, name


def test_the_hyperparameter_ranges_are_the_estimators() -> None:
    # scikit-learn validates its parameters at fit time; the same bounds, read from the estimator, fail the plan.
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.utils._param_validation import Interval

    from infra.training.settings import HYPERPARAMETER_RULES

    constraints = HistGradientBoostingClassifier._parameter_constraints
    for name, rule in HYPERPARAMETER_RULES.items():
        [interval] = [c for c in constraints[name] if isinstance(c, Interval)]
        assert interval.left is not None and interval.right is None, name  # a lower bound only, like the rule's
        below = interval.left - (1 if rule.kind is int else 1e-9)
        for probe in (interval.left, below, interval.left + 1):
            inside = probe in interval
            assert (rule.problem(rule.kind(probe)) is None) == inside, (name, probe)


def test_hyperparameters_given_in_a_stack_file_reach_the_settings(tmp_path: Path) -> None:
    text = DEV.replace("learning_rate: 0.1", "learning_rate: 1")
    config = parse_stack_config(read_file(tmp_path, text), "dev")
    assert config.models[0].training.hyperparameters["learning_rate"] == 1.0


def test_the_example_stacks_round_trip_through_yaml(tmp_path: Path) -> None:
    # The reader's stricter YAML handling must not change what an ordinary stack file means.
    document = yaml.safe_load(DEV)
    assert read_file(tmp_path, yaml.safe_dump(document, sort_keys=False)) == read_stack_values("dev")


def test_a_number_written_plainly_where_a_string_belongs_is_that_string(tmp_path: Path) -> None:
    # Pulumi passes `costCenter: 4711` to the program as the string "4711": so does the offline reader.
    config = parse_stack_config(
        read_file(tmp_path, DEV.replace("mlops:costCenter: ml-rnd", "mlops:costCenter: 4711")), "dev"
    )
    assert config.cost_center == "4711"


@pytest.mark.parametrize("written", ["0755", "1_000", "1.0e+3", "0x1F"])
def test_a_number_yaml_reinterprets_where_a_string_belongs_is_refused(tmp_path: Path, written: str) -> None:
    # YAML 1.1 reads 0755 as octal 493, 1_000 as 1000 and 1.0e+3 as 1000.0: the tag would differ from the file.
    [problem] = file_problems(tmp_path, DEV.replace("mlops:costCenter: ml-rnd", f"mlops:costCenter: {written}"))
    assert problem.startswith("mlops:costCenter: got the YAML number ")
    assert f"'{written}'" in problem


def test_an_owner_aws_refuses_as_a_tag_value_is_refused() -> None:
    # The owner and cost centre become the Owner and CostCenter tags of every resource.
    [problem] = problems_for(values() | {"mlops:owner": "ml <platform>"})
    assert problem.startswith('mlops:owner: got "ml <platform>"; becomes a tag value')


def test_aliases_within_the_limit_are_read(tmp_path: Path) -> None:
    text = DEV.replace("      featureStore:\n", "      featureStore: &store\n").replace(
        "  mlops:alerts:", "  mlops:notes: *store\n  mlops:alerts:"
    )
    with pytest.raises(ConfigError) as excinfo:  # the alias is read; the key it lands in is unknown
        parse_stack_config(read_file(tmp_path, text), "dev")
    assert [p.split(";")[0] for p in excinfo.value.problems] == ["mlops:notes: unknown key"]
