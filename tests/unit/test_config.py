"""The stack config is validated before any resource exists, with errors naming key, value and rule."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError, PlatformConfig, parse_stack_config
from verify.mock_engine import read_stack_values, run_program, stack_names


def base_values() -> dict[str, str]:
    return read_stack_values("dev")


def problems_for(values: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        parse_stack_config(values, "dev")
    return excinfo.value.problems


@pytest.mark.parametrize("stack", stack_names())
def test_every_stack_file_is_valid(stack: str) -> None:
    config = parse_stack_config(read_stack_values(stack), stack)
    assert isinstance(config, PlatformConfig)
    assert config.environment == stack


def test_config_is_frozen() -> None:
    config = parse_stack_config(base_values(), "dev")
    with pytest.raises(Exception, match="frozen"):
        config.project = "other"  # type: ignore[misc]


def test_unknown_top_level_key_names_key_and_allowed_keys() -> None:
    values = base_values() | {"mlops:retention": "30"}
    [problem] = problems_for(values)
    assert problem.startswith("mlops:retention: unknown key; allowed keys:")
    assert "logRetentionDays" in problem


def test_unknown_nested_key_names_path_and_allowed_keys() -> None:
    lake = json.loads(base_values()["mlops:lake"]) | {"versioned": True}
    [problem] = problems_for(base_values() | {"mlops:lake": json.dumps(lake)})
    assert (
        problem == "mlops:lake.versioned: unknown key; allowed keys here: accessLogRetentionDays, forceDestroy, zones"
    )


def test_wrong_type_is_refused_not_coerced() -> None:
    [problem] = problems_for(base_values() | {"mlops:logRetentionDays": '"14"'})
    assert problem.startswith('mlops:logRetentionDays: got "14"')
    assert "integer" in problem


def test_boolean_must_be_boolean() -> None:
    [problem] = problems_for(base_values() | {"mlops:protectStatefulResources": "yes"})
    assert problem.startswith("mlops:protectStatefulResources: got 'yes'; expected a boolean")


def test_out_of_range_value_names_the_bound() -> None:
    kms = {"deletionWindowDays": 3}
    [problem] = problems_for(base_values() | {"mlops:kms": json.dumps(kms)})
    assert problem.startswith("mlops:kms.deletionWindowDays: got 3;")
    assert "greater than or equal to 7" in problem


def test_log_retention_must_be_a_cloudwatch_period() -> None:
    [problem] = problems_for(base_values() | {"mlops:logRetentionDays": "15"})
    assert "15 is not a CloudWatch Logs retention period" in problem
    assert "14, 30" in problem


def test_missing_required_key() -> None:
    values = base_values()
    del values["mlops:owner"]
    assert problems_for(values) == ["mlops:owner: required key is missing"]


def test_region_comes_from_aws_region_and_is_checked() -> None:
    assert problems_for(base_values() | {"aws:region": "europe"})[0].startswith('aws:region: got "europe"')
    assert "read from 'aws:region'" in problems_for(base_values() | {"mlops:region": "eu-west-1"})[0]


def test_bad_combination_protected_lake_cannot_be_force_destroyed() -> None:
    values = base_values() | {"mlops:protectStatefulResources": "true"}  # dev has forceDestroy: true
    [problem] = problems_for(values)
    assert "lake.forceDestroy=true contradicts protectStatefulResources=true" in problem


def test_bad_combination_lifecycle_order() -> None:
    lake = {"zones": {"raw": {"infrequentAccessAfterDays": 30, "glacierAfterDays": 40}}}
    values = base_values() | {"mlops:lake": json.dumps(lake)}
    [problem] = problems_for(values)
    assert problem.startswith("mlops:lake.zones.raw: glacierAfterDays=40 must be at least")


def test_expiry_must_follow_transitions() -> None:
    lake = {"zones": {"curated": {"infrequentAccessAfterDays": 60, "expireAfterDays": 30}}}
    [problem] = problems_for(base_values() | {"mlops:lake": json.dumps(lake)})
    assert "expireAfterDays=30 must be greater than the last transition day (60)" in problem


def test_unknown_zone_is_refused() -> None:
    lake = {"zones": {"bronze": {}}}
    [problem] = problems_for(base_values() | {"mlops:lake": json.dumps(lake)})
    assert problem.startswith('mlops:lake.zones.bronze: got "bronze"')
    assert "'raw', 'curated', 'features', 'artifacts' or 'monitoring'" in problem


def test_zones_left_out_get_defaults() -> None:
    config = parse_stack_config(base_values() | {"mlops:lake": json.dumps({"forceDestroy": True})}, "dev")
    assert set(config.lake.zones) == {"raw", "curated", "features", "artifacts", "monitoring"}


def test_reserved_tag_keys_are_refused() -> None:
    [problem] = problems_for(base_values() | {"mlops:tags": json.dumps({"Owner": "me"})})
    assert "tag key 'Owner' is set by the platform" in problem


def test_table_with_duplicate_columns_is_refused() -> None:
    catalog = json.loads(base_values()["mlops:catalog"])
    catalog["tables"][0]["partitionKeys"] = [{"name": "plan", "type": "string"}]
    [problem] = problems_for(base_values() | {"mlops:catalog": json.dumps(catalog)})
    assert "declares column(s) ['plan'] more than once" in problem


def test_glue_column_type_is_checked() -> None:
    catalog = json.loads(base_values()["mlops:catalog"])
    catalog["tables"][0]["columns"][0]["type"] = "varchar"
    [problem] = problems_for(base_values() | {"mlops:catalog": json.dumps(catalog)})
    assert problem.startswith('mlops:catalog.tables.0.columns.0.type: got "varchar"')


def test_crawler_schedule_must_be_cron() -> None:
    catalog = json.loads(base_values()["mlops:catalog"]) | {"crawlerSchedule": "daily"}
    [problem] = problems_for(base_values() | {"mlops:catalog": json.dumps(catalog)})
    assert "'daily' is not a cron expression" in problem


def test_every_problem_is_reported_at_once() -> None:
    values = base_values() | {"mlops:logRetentionDays": "15", "mlops:kms": json.dumps({"rotationPeriodDays": 10})}
    assert len(problems_for(values)) == 2


def test_invalid_config_fails_before_any_resource() -> None:
    with pytest.raises(ConfigError):
        run_program("dev", overrides={"logRetentionDays": 15})


def test_features_zone_is_not_crawled() -> None:
    catalog = json.loads(base_values()["mlops:catalog"]) | {"crawledZones": ["raw", "features"]}
    [problem] = problems_for(base_values() | {"mlops:catalog": json.dumps(catalog)})
    assert "crawledZones must not include 'features'" in problem


def test_source_table_must_be_a_declared_table() -> None:
    values = base_values()
    models = json.loads(values["mlops:models"])
    models[0]["sourceTable"] = "customer_activty"
    [problem] = problems_for(values | {"mlops:models": json.dumps(models)})
    assert problem.startswith('mlops:models.0.sourceTable: got "customer_activty"')
    assert "declared: customer_activity" in problem


def test_source_table_names_the_model_table() -> None:
    config = parse_stack_config(base_values(), "dev")
    assert config.models[0].source_table == "customer_activity"
