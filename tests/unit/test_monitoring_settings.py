"""Monitoring settings: the engine switch, the platform job's settings and Model Monitor's runtime caps.

Every bad value is refused before any resource exists, with a message that names the key, the bad value and
what is allowed (tests assert the exact message). Cadences are checked against AWS's documented forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ConfigError, PlatformConfig, parse_stack_config
from infra.monitoring.cadence import CadenceError, describe, period_seconds
from infra.monitoring.settings import raw_columns
from mlops.features import get_spec
from tests.support.monitoring import stack_models, to_model_monitor, to_rows_mode
from verify.mock_engine import apply_overrides, read_stack_values

WHERE = "mlops:models.0"


def parse(stack: str, change: Callable[[dict[str, Any]], None]) -> PlatformConfig:
    """The stack's config with ``change`` applied to its (only) model's settings."""
    models = stack_models(stack)
    change(models[0])
    return parse_stack_config(apply_overrides(read_stack_values(stack), {"models": models}), stack)


def problems(stack: str, change: Callable[[dict[str, Any]], None]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse(stack, change)
    return error.value.problems


def platform(**keys: Any) -> Callable[[dict[str, Any]], None]:
    def change(model: dict[str, Any]) -> None:
        model["monitoring"]["platform"].update(keys)

    return change


def model_monitor(section: str, **keys: Any) -> Callable[[dict[str, Any]], None]:
    def change(model: dict[str, Any]) -> None:
        to_model_monitor(model)
        model["monitoring"][section].update(keys)

    return change


# --- cadences -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("cron(0 * ? * * *)", 3600),
        ("cron(15 * ? * * *)", 3600),
        ("cron(0 4 ? * * *)", 86400),
        ("cron(0 0/6 ? * * *)", 6 * 3600),
        ("cron(30 */12 * * ? *)", 12 * 3600),
        ("rate(1 hour)", 3600),
        ("rate(15 minutes)", 900),
        ("rate(1 day)", 86400),
    ],
)
def test_regular_schedules_have_their_period(expression: str, seconds: int) -> None:
    assert period_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 9 ? * MON-FRI *)",  # weekdays only: the gap over the weekend is 3 days
        "cron(0 0/5 ? * * *)",  # 0, 5, 10, 15, 20, then 0: a 4-hour gap
        "cron(0/10 * ? * * *)",
        "cron(0 * * * * *)",  # EventBridge needs '?' in day-of-month or day-of-week
        "rate(1 hours)",
        "rate(2 hour)",
        "at(2030-01-01T00:00:00)",
    ],
)
def test_irregular_schedules_are_refused(expression: str) -> None:
    with pytest.raises(CadenceError):
        period_seconds(expression)


def test_model_monitor_takes_only_its_documented_cron_forms() -> None:
    assert period_seconds("cron(0 0/2 ? * * *)", model_monitor=True) == 7200
    for expression in ("rate(1 hour)", "cron(30 * ? * * *)", "cron(0 * * * ? *)"):
        with pytest.raises(CadenceError) as error:
            period_seconds(expression, model_monitor=True)
        assert str(error.value).endswith(
            "allowed: cron(0 * ? * * *) hourly, cron(0 H ? * * *) daily or cron(0 H/K ? * * *) every K hours"
        )


def test_periods_read_as_words() -> None:
    assert [describe(s) for s in (900, 3600, 7200, 86400, 90)] == [
        "15 minutes",
        "1 hour",
        "2 hours",
        "1 day",
        "90 seconds",
    ]


# --- engine ---------------------------------------------------------------------------------------


def test_the_platform_engine_is_the_default() -> None:
    config = parse("staging", lambda model: model["monitoring"].pop("engine"))
    assert config.models[0].monitoring.engine == "platform"


def test_an_unknown_engine_is_refused() -> None:
    assert problems("staging", lambda model: model["monitoring"].update(engine="sagemaker")) == [
        f"{WHERE}.monitoring.engine: got \"sagemaker\"; Input should be 'platform' or 'model-monitor'"
    ]


def test_model_monitor_keys_are_refused_with_the_platform_engine() -> None:
    def change(model: dict[str, Any]) -> None:
        model["monitoring"]["dataQuality"] = {"schedule": "cron(0 * ? * * *)", "driftThreshold": 0.2}
        model["monitoring"]["modelQuality"]["maxRuntimeSeconds"] = 1800

    assert problems("staging", change) == [
        f"{WHERE}.monitoring: monitoring.dataQuality.schedule, monitoring.dataQuality.driftThreshold, "
        "monitoring.modelQuality.maxRuntimeSeconds configure(s) Model Monitor, but monitoring.engine='platform': "
        "remove them (the platform job runs on monitoring.platform.schedule, instanceType and maxRuntimeSeconds, "
        "with per-feature monitoring.platform.driftThresholds) or set monitoring.engine=model-monitor"
    ]


def test_platform_keys_are_refused_with_the_model_monitor_engine() -> None:
    def change(model: dict[str, Any]) -> None:
        to_model_monitor(model)
        model["monitoring"]["platform"] = {"windowHours": 2}

    assert problems("staging", change) == [
        f"{WHERE}.monitoring: monitoring.platform configures engine=platform, but monitoring.engine='model-monitor'; "
        "remove monitoring.platform or set monitoring.engine=platform"
    ]


def test_shared_keys_serve_both_engines() -> None:
    def change(model: dict[str, Any]) -> None:
        model["monitoring"]["dataQuality"] = {"driftAlarmFeatures": ["sessions"]}
        model["monitoring"]["modelQuality"] = {"probabilityThreshold": 0.4, "metricThreshold": 0.7}

    monitoring = parse("staging", change).models[0].monitoring
    assert monitoring.data_quality.drift_alarm_features == ("sessions",)
    assert monitoring.model_quality.probability_threshold == 0.4


def test_the_capture_requirement_names_the_engine_that_reads_it() -> None:
    def capture_off(model: dict[str, Any]) -> None:
        model["serving"]["dataCapture"]["enabled"] = False
        model["monitoring"]["modelQuality"]["enabled"] = False

    assert problems("staging", capture_off) == [
        f"{WHERE}: model 'customer-churn': monitoring.dataQuality.enabled=true needs serving.dataCapture.enabled=true "
        "(the platform's drift job reads the captured requests)"
    ]


# --- the platform job -----------------------------------------------------------------------------


def test_an_irregular_schedule_is_refused_with_the_allowed_forms() -> None:
    assert problems("staging", platform(schedule="cron(0 9 ? * MON-FRI *)")) == [
        f"{WHERE}.monitoring.platform: schedule 'cron(0 9 ? * MON-FRI *)' does not run at a fixed interval; "
        "allowed: rate(N minutes|hours|days), cron(M * ? * * *) hourly, cron(M H ? * * *) daily or "
        "cron(M H/K ? * * *) every K hours (K dividing 24)"
    ]


def test_a_schedule_faster_than_every_15_minutes_is_refused() -> None:
    assert problems("staging", platform(schedule="rate(5 minutes)")) == [
        f"{WHERE}.monitoring.platform: schedule 'rate(5 minutes)' runs every 5 minutes; allowed: every "
        "15 minutes to every 1 day"
    ]


def test_a_schedule_slower_than_daily_is_refused() -> None:
    assert problems("staging", platform(schedule="rate(2 days)", windowHours=48))[0].endswith(
        "schedule 'rate(2 days)' runs every 2 days; allowed: every 15 minutes to every 1 day"
    )


def test_a_runtime_longer_than_the_period_is_refused() -> None:
    assert problems("staging", platform(schedule="rate(30 minutes)", maxRuntimeSeconds=1801)) == [
        f"{WHERE}.monitoring.platform: maxRuntimeSeconds=1801 is longer than the schedule's period "
        "('rate(30 minutes)': every 30 minutes); a run must end before the next starts; allowed: 60..1800"
    ]


def test_a_daily_job_may_run_for_hours() -> None:
    config = parse("staging", platform(schedule="cron(0 2 ? * * *)", windowHours=24, maxRuntimeSeconds=7200))
    assert config.models[0].monitoring.platform.period_seconds == 86400


def test_a_window_shorter_than_the_period_is_refused() -> None:
    assert problems("staging", platform(schedule="cron(0 2 ? * * *)", windowHours=6)) == [
        f"{WHERE}.monitoring.platform: windowHours=6 is shorter than the schedule's period ('cron(0 2 ? * * *)': "
        "every 1 day): requests captured between two windows would never be analyzed; allowed: 24..168"
    ]


def test_a_threshold_for_an_unknown_feature_is_refused() -> None:
    features = list(get_spec("customer-churn").feature_names)
    assert problems("staging", platform(driftThresholds=[{"feature": "plan", "threshold": 0.3}])) == [
        f"{WHERE}: model 'customer-churn': monitoring.platform.driftThresholds names ['plan'], not features of "
        f"featureSpec 'customer-churn'; allowed: {features}"
    ]


def test_a_feature_with_two_thresholds_is_refused() -> None:
    twice = [{"feature": "sessions", "threshold": 0.2}, {"feature": "sessions", "threshold": 0.3}]
    assert problems("staging", platform(driftThresholds=twice)) == [
        f"{WHERE}.monitoring.platform: driftThresholds lists feature(s) ['sessions'] more than once; "
        "give each feature once"
    ]


@pytest.mark.parametrize("threshold", [0, -0.1, 10.5])
def test_a_threshold_outside_its_range_is_refused(threshold: float) -> None:
    (problem,) = problems("staging", platform(driftThresholds=[{"feature": "sessions", "threshold": threshold}]))
    assert problem.startswith(f"{WHERE}.monitoring.platform.driftThresholds.0.threshold: got {threshold}; ")


def test_thresholds_reach_the_job_sorted_by_feature() -> None:
    thresholds = [{"feature": "sessions", "threshold": 0.3}, {"feature": "monthly_spend", "threshold": 0.2}]
    monitoring = parse("staging", platform(driftThresholds=thresholds)).models[0].monitoring
    assert list(monitoring.platform.threshold_overrides().items()) == [("monthly_spend", 0.2), ("sessions", 0.3)]


def rows_mode(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``change`` on the model switched to rows mode (the staging example serves entity ids)."""

    def both(model: dict[str, Any]) -> None:
        to_rows_mode(model)
        change(model)

    return both


def test_a_segment_that_is_neither_a_feature_nor_a_raw_column_is_refused() -> None:
    assert problems("staging", rows_mode(platform(segments=["region"]))) == [
        f"{WHERE}: model 'customer-churn': monitoring.platform.segments lists ['region'], neither features nor raw "
        "columns of featureSpec 'customer-churn'; allowed: features ['sessions', 'minutes_per_session', "
        "'support_tickets', 'monthly_spend', 'plan_tier'] or raw columns ['sessions', 'minutes_active', 'plan', "
        "'support_tickets', 'monthly_spend']"
    ]


def test_a_rows_mode_model_may_segment_by_a_feature_or_a_raw_column() -> None:
    (model,) = parse("staging", rows_mode(platform(segments=["plan_tier", "plan"]))).models
    assert model.monitoring.platform.segments == ("plan_tier", "plan")


def entity_mode(*segments: str) -> Callable[[dict[str, Any]], None]:
    def change(model: dict[str, Any]) -> None:
        model["serving"] = {**model["serving"], "requestMode": "entity", "network": {"networkIsolation": False}}
        model["monitoring"]["platform"]["segments"] = list(segments)

    return change


def test_an_entity_mode_model_segments_by_features() -> None:
    (model,) = parse("staging", entity_mode("plan_tier")).models
    assert model.monitoring.platform.segments == ("plan_tier",)


def test_an_entity_mode_model_may_not_segment_by_a_raw_column() -> None:
    # Its captured requests hold entity ids: the features in the endpoint's answers are all there is.
    assert problems("staging", entity_mode("plan_tier", "plan")) == [
        f"{WHERE}: model 'customer-churn': monitoring.platform.segments lists ['plan'], not features of featureSpec "
        "'customer-churn': with serving.requestMode=entity the captured requests hold entity ids, not raw columns, "
        "so segments name features (read from the endpoint's answers); allowed: ['sessions', 'minutes_per_session', "
        "'support_tickets', 'monthly_spend', 'plan_tier']"
    ]


def test_a_segment_given_twice_is_refused() -> None:
    assert problems("staging", platform(segments=["plan", "plan"])) == [
        f"{WHERE}.monitoring.platform: segments lists column(s) ['plan'] more than once"
    ]


def test_the_raw_columns_are_what_the_transform_reads() -> None:
    assert raw_columns(get_spec("customer-churn")) == (
        "sessions",
        "minutes_active",
        "plan",
        "support_tickets",
        "monthly_spend",
    )


# --- engine model-monitor: runtime caps (AWS: the period; hourly model quality: 1800 s) --------------


def test_an_hourly_data_quality_job_may_run_at_most_an_hour() -> None:
    assert problems("staging", model_monitor("dataQuality", maxRuntimeSeconds=3601)) == [
        f"{WHERE}.monitoring.dataQuality: maxRuntimeSeconds=3601 is longer than a data-quality job on schedule "
        "'cron(0 * ? * * *)' (every 1 hour) may run: AWS caps a monitoring job at its schedule's period and the "
        "provider caps data-quality jobs at 3600 s; allowed: 60..3600"
    ]


def test_a_daily_data_quality_job_is_still_capped_by_the_provider() -> None:
    (problem,) = problems("staging", model_monitor("dataQuality", schedule="cron(0 3 ? * * *)", maxRuntimeSeconds=7200))
    assert problem.endswith("(every 1 day) may run: AWS caps a monitoring job at its schedule's period and the "
                            "provider caps data-quality jobs at 3600 s; allowed: 60..3600")  # fmt: skip


def test_an_hourly_model_quality_job_may_run_at_most_half_an_hour() -> None:
    assert problems("staging", model_monitor("modelQuality", schedule="cron(0 * ? * * *)", maxRuntimeSeconds=3600)) == [
        f"{WHERE}.monitoring.modelQuality: maxRuntimeSeconds=3600 is longer than a model-quality job on schedule "
        "'cron(0 * ? * * *)' (every 1 hour) may run: AWS splits the period between the ground-truth merge job and "
        "the monitoring job; allowed: 60..1800"
    ]


def test_a_daily_model_quality_job_may_run_for_hours() -> None:
    config = parse("staging", model_monitor("modelQuality", schedule="cron(0 1 ? * * *)", maxRuntimeSeconds=14400))
    assert config.models[0].monitoring.model_quality.max_runtime_seconds == 14400


def test_a_schedule_model_monitor_does_not_take_is_refused() -> None:
    assert problems("staging", model_monitor("dataQuality", schedule="cron(30 * ? * * *)")) == [
        f'{WHERE}.monitoring.dataQuality.schedule: got "cron(30 * ? * * *)"; Model Monitor schedule '
        "'cron(30 * ? * * *)' does not run at a fixed interval; allowed: cron(0 * ? * * *) hourly, "
        "cron(0 H ? * * *) daily or cron(0 H/K ? * * *) every K hours"
    ]


def test_the_default_model_quality_runtime_fits_an_hourly_schedule() -> None:
    config = parse("staging", model_monitor("modelQuality", schedule="cron(0 * ? * * *)"))
    assert config.models[0].monitoring.model_quality.max_runtime_seconds == 1800
