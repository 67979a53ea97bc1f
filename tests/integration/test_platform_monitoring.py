"""The platform monitoring engine closes the loop on the emulators: capture → drift job → metrics → alarms → SNS.

The drift job runs as its monitoring pipeline's processing step would (the step's own arguments, the published
code bundle, S3 on moto's server, CloudWatch on LocalStack); LocalStack evaluates alarms put from
``infra/alarms.py``'s specs against the metrics the job published. Nothing here sets an alarm's state by hand:
every state asserted was computed by LocalStack from datapoints (``StateReasonData.recentDatapoints``).
The scenarios (drifted, steady, idle, silent) are set up once per module: see ``platform_monitoring``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from infra.alarms import FEATURE_DRIFT_RATIO, PLATFORM_METRICS_NAMESPACE, RECORDS_ANALYZED
from mlops.features import get_spec
from tools.loop_harness import (
    alarm_notifications,
    is_alarm_notification,
    lambda_sns_event,
    metric_values,
    recent_datapoints,
    responder,
)

if TYPE_CHECKING:
    from tests.integration.conftest import MonitoringScenario, PlatformMonitoringRig

pytestmark = pytest.mark.integration

SPEC = get_spec("customer-churn")
SHIFTED = "monthly_spend"  # conftest.SHIFT's column, a feature of the spec


def published(rig: PlatformMonitoringRig, scenario: MonitoringScenario, metric: str, **extra: str) -> list[float]:
    """What LocalStack's CloudWatch holds for one of the scenario's metrics (newest first)."""
    dimensions = {"Model": scenario.model, "Endpoint": scenario.endpoint, **extra}
    return metric_values(rig.localstack("cloudwatch"), PLATFORM_METRICS_NAMESPACE, metric, dimensions)


def report(scenario: MonitoringScenario) -> dict[str, Any]:
    assert scenario.run is not None and scenario.run.report is not None, scenario.run
    return scenario.run.report


def notifications(envelopes: list[dict[str, Any]], alarm: str | None, state: str) -> list[dict[str, Any]]:
    return [m for m in alarm_notifications(envelopes) if (m["AlarmName"], m["NewStateValue"]) == (alarm, state)]


# --- the job, as the monitoring pipeline runs it -----------------------------------------------------------------


def test_the_job_reads_the_windows_capture_from_the_monitoring_bucket(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    drifted = platform_monitoring.scenarios["drifted"]
    analysed = report(drifted)
    # One capture object, in the hour before the execution's start: the window the pipeline's arguments give.
    assert analysed["capture"]["source"].startswith("s3://")
    assert (analysed["capture"]["objects"], analysed["records"], analysed["malformed"]) == (1, 300, 0)
    assert analysed["dimensions"] == {"Model": drifted.model, "Endpoint": drifted.endpoint}


def test_shifted_capture_publishes_a_drift_ratio_of_at_least_1_for_the_shifted_feature_only(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    drifted = platform_monitoring.scenarios["drifted"]
    ratios = {f: published(platform_monitoring, drifted, FEATURE_DRIFT_RATIO, Feature=f) for f in SPEC.feature_names}
    assert all(len(values) == 1 for values in ratios.values()), ratios  # one run, one datapoint per feature
    assert {f for f, (ratio,) in ratios.items() if ratio >= 1} == {SHIFTED}
    assert report(drifted)["drifted"] == [SHIFTED]


def test_the_shifted_features_alarm_is_in_alarm_on_the_published_ratio(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    drifted = platform_monitoring.scenarios["drifted"]
    alarm = drifted.alarms[drifted.feature_alarms[SHIFTED]]
    (ratio,) = published(platform_monitoring, drifted, FEATURE_DRIFT_RATIO, Feature=SHIFTED)
    assert alarm["StateValue"] == "ALARM"
    # Computed by LocalStack's evaluation from the job's datapoint, not set by hand.
    assert recent_datapoints(alarm) == [pytest.approx(ratio)]


def test_the_unshifted_features_alarms_of_the_drifted_model_stay_ok(platform_monitoring: PlatformMonitoringRig) -> None:
    drifted = platform_monitoring.scenarios["drifted"]
    others = {f: drifted.alarms[name] for f, name in drifted.feature_alarms.items() if f != SHIFTED}
    assert {f: a["StateValue"] for f, a in others.items()} == dict.fromkeys(others, "OK")
    assert all(recent_datapoints(a) and max(recent_datapoints(a)) < 1 for a in others.values())


def test_model_drift_notifies_the_retrain_topic_once_naming_the_shifted_features_alarm(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    drifted = platform_monitoring.scenarios["drifted"]
    (message,) = notifications(platform_monitoring.retrain_messages, drifted.model_drift_alarm, "ALARM")
    envelope = next(e for e in platform_monitoring.retrain_messages if is_alarm_notification(message["AlarmName"])(e))
    assert envelope["TopicArn"] == platform_monitoring.retrain_topic_arn
    children = [child["Arn"].rsplit(":", 1)[-1] for child in message["TriggeringChildren"]]
    assert children == [drifted.feature_alarms[SHIFTED]]


def test_the_delivered_notification_starts_exactly_one_execution(platform_monitoring: PlatformMonitoringRig) -> None:
    drifted = platform_monitoring.scenarios["drifted"]
    envelope = next(
        e for e in platform_monitoring.retrain_messages if is_alarm_notification(str(drifted.model_drift_alarm))(e)
    )
    environment = {
        "ALERTS_TOPIC_ARN": platform_monitoring.alerts_topic_arn,
        "STATE_TABLE": platform_monitoring.state_table,
        "RETRAIN_TARGETS": json.dumps(
            {
                str(drifted.model_drift_alarm): {
                    "model": drifted.model,
                    "pipelineName": platform_monitoring.pipeline,
                    "cooldownMinutes": 360,
                    "maxPerDay": 2,
                }
            }
        ),
    }
    with responder("retrain_on_alarm", environment, platform_monitoring.endpoints) as invoke:
        invoke(lambda_sns_event(envelope, platform_monitoring.retrain_subscription_arn))
    executions = platform_monitoring.moto("sagemaker").list_pipeline_executions(
        PipelineName=platform_monitoring.pipeline
    )["PipelineExecutionSummaries"]
    assert len(executions) == 1
    assert invoke.metrics == ["RetrainStarted"]


# --- no drift: the negative check ---------------------------------------------------------------------------------


def test_unshifted_capture_publishes_a_drift_ratio_below_1_for_every_feature(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    steady = platform_monitoring.scenarios["steady"]
    ratios = {f: published(platform_monitoring, steady, FEATURE_DRIFT_RATIO, Feature=f) for f in SPEC.feature_names}
    assert all(len(values) == 1 and values[0] < 1 for values in ratios.values()), ratios
    assert report(steady)["drifted"] == []


def test_unshifted_capture_leaves_every_drift_alarm_ok_after_evaluation(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    steady = platform_monitoring.scenarios["steady"]
    states = {f: steady.alarms[name]["StateValue"] for f, name in steady.feature_alarms.items()}
    assert states == dict.fromkeys(SPEC.feature_names, "OK")
    assert all(recent_datapoints(steady.alarms[name]) for name in steady.feature_alarms.values())
    assert steady.alarms[str(steady.model_drift_alarm)]["StateValue"] != "ALARM"


def test_unshifted_capture_sends_nothing_to_the_retrain_topic(platform_monitoring: PlatformMonitoringRig) -> None:
    steady = platform_monitoring.scenarios["steady"]
    from_steady = [
        m for m in alarm_notifications(platform_monitoring.retrain_messages) if m["AlarmName"].startswith(steady.model)
    ]
    assert from_steady == []


# --- "monitor not reporting" ----------------------------------------------------------------------------------------


def test_a_reporting_monitor_keeps_its_heartbeat_ok(platform_monitoring: PlatformMonitoringRig) -> None:
    steady = platform_monitoring.scenarios["steady"]
    heartbeat = steady.alarms[steady.heartbeat_alarm]
    assert heartbeat["StateValue"] == "OK"
    assert recent_datapoints(heartbeat) == [float(report(steady)["records"])]


def test_an_empty_window_publishes_zero_records_analyzed(platform_monitoring: PlatformMonitoringRig) -> None:
    idle = platform_monitoring.scenarios["idle"]
    assert (report(idle)["records"], report(idle)["features"]) == (0, {})
    assert published(platform_monitoring, idle, RECORDS_ANALYZED) == [0.0]


def test_a_monitor_analysing_nothing_raises_its_heartbeat_alarm_to_the_alerts_topic(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    idle = platform_monitoring.scenarios["idle"]
    heartbeat = idle.alarms[idle.heartbeat_alarm]
    assert heartbeat["StateValue"] == "ALARM"
    assert recent_datapoints(heartbeat) == [0.0]  # the run's RecordsAnalyzed, with two missing periods
    assert len(notifications(platform_monitoring.alert_messages, idle.heartbeat_alarm, "ALARM")) == 1


def test_a_monitor_that_never_published_raises_its_heartbeat_alarm_to_the_alerts_topic(
    platform_monitoring: PlatformMonitoringRig,
) -> None:
    silent = platform_monitoring.scenarios["silent"]
    heartbeat = silent.alarms[silent.heartbeat_alarm]
    # Missing data is breaching for this alarm alone: nothing published for 3 periods is "not reporting".
    assert (heartbeat["StateValue"], recent_datapoints(heartbeat)) == ("ALARM", [])
    assert "Breaching" in heartbeat["StateReason"]
    assert len(notifications(platform_monitoring.alert_messages, silent.heartbeat_alarm, "ALARM")) == 1


def test_heartbeat_alarms_never_reach_the_retrain_topic(platform_monitoring: PlatformMonitoringRig) -> None:
    heartbeats = {s.heartbeat_alarm for s in platform_monitoring.scenarios.values() if s.heartbeat_alarm}
    assert not [m for m in alarm_notifications(platform_monitoring.retrain_messages) if m["AlarmName"] in heartbeats]
