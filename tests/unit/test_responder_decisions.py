"""The responders' pure parts: event parsing, decisions, ledger arithmetic, settings and message formatting."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.local import import_app

retrain = import_app("retrain_on_alarm")
notify = import_app("notify_pipeline")
dispatch = import_app("dispatch_deployment")

from responder_common.errors import ConfigurationError, InvalidSecretError, MalformedEventError  # noqa: E402
from responder_common.events import Origin  # noqa: E402
from responder_common.notify import sns_subject  # noqa: E402
from responder_common.redact import RedactingFilter, redact, register_secret  # noqa: E402
from responder_common.retry import Backoff, retry_after_seconds  # noqa: E402

EVENTS = Path(__file__).resolve().parents[1] / "functional" / "events"
ALARM = "acme-dev-customer-churn-drift"
TARGET = retrain.RetrainTarget(
    model="customer-churn", pipeline_name="acme-dev-customer-churn", cooldown_minutes=360, max_per_day=2
)


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def change(state: str = "ALARM", alarm: str = ALARM) -> Any:
    return retrain.AlarmStateChange(
        alarm_name=alarm,
        state=state,
        previous_state="OK",
        reason="drift",
        changed_at=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
    )


# ------------------------------------------------------------------------------------------ alarm events
def test_sns_and_eventbridge_deliveries_of_one_transition_share_the_idempotency_key() -> None:
    (via_sns,) = retrain.parse_event(event("cloudwatch_alarm_sns"))
    (via_eventbridge,) = retrain.parse_event(event("cloudwatch_alarm_state_change"))
    assert via_sns.idempotency_key == via_eventbridge.idempotency_key == {"alarm": ALARM, "at": "20240501T120000123Z"}


def test_sns_alarm_message_is_parsed_into_a_state_change() -> None:
    (parsed,) = retrain.parse_event(event("cloudwatch_alarm_sns"))
    assert (parsed.alarm_name, parsed.state, parsed.previous_state) == (ALARM, "ALARM", "OK")


def test_sns_message_that_is_not_json_is_malformed() -> None:
    bad = event("cloudwatch_alarm_sns")
    bad["Records"][0]["Sns"]["Message"] = "{not json"
    with pytest.raises(MalformedEventError, match=r"^Records\[\]\.Sns\.Message is not JSON"):
        retrain.parse_event(bad)


def test_sns_message_without_alarm_name_is_malformed() -> None:
    bad = event("cloudwatch_alarm_sns")
    message = json.loads(bad["Records"][0]["Sns"]["Message"])
    del message["AlarmName"]
    bad["Records"][0]["Sns"]["Message"] = json.dumps(message)
    with pytest.raises(MalformedEventError, match=r"^Sns\.Message\.AlarmName must be a non-empty string, got None$"):
        retrain.parse_event(bad)


def test_alarm_event_with_the_wrong_detail_type_is_malformed() -> None:
    bad = event("cloudwatch_alarm_state_change")
    bad["detail-type"] = "CloudWatch Alarm Configuration Change"
    with pytest.raises(MalformedEventError, match="detail-type must be 'CloudWatch Alarm State Change'"):
        retrain.parse_event(bad)


def test_alarm_event_with_a_timestamp_without_offset_is_malformed() -> None:
    bad = event("cloudwatch_alarm_state_change")
    bad["detail"]["state"]["timestamp"] = "2024-05-01T12:00:00"
    with pytest.raises(MalformedEventError, match=r"detail\.state\.timestamp has no UTC offset"):
        retrain.parse_event(bad)


def test_an_unrelated_event_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match="neither an SNS notification nor a CloudWatch Alarm"):
        retrain.parse_event({"hello": "world"})


# ------------------------------------------------------------------------------------------ retrain decisions
def test_alarm_entering_ok_is_ignored() -> None:
    decision = retrain.decide(change("OK"), {ALARM: TARGET})
    assert decision == retrain.Ignore(retrain.Outcome.NOT_IN_ALARM, f"alarm {ALARM} is now OK, not ALARM")


def test_unknown_alarm_is_ignored() -> None:
    decision = retrain.decide(change(alarm="someone-elses-alarm"), {ALARM: TARGET})
    assert isinstance(decision, retrain.Ignore) and decision.outcome is retrain.Outcome.UNKNOWN_ALARM


def test_known_alarm_in_alarm_asks_to_retrain_its_target() -> None:
    assert retrain.decide(change(), {ALARM: TARGET}) == retrain.Retrain(TARGET)


def test_ledger_claim_expires_after_both_the_cooldown_and_the_utc_day() -> None:
    now = datetime(2024, 5, 1, 23, 0, tzinfo=UTC)
    claim = retrain.ledger_claim(TARGET, now, "t")
    cooldown_end = int(now.timestamp()) + 360 * 60
    assert claim.today == "2024-05-01"
    assert claim.expires_at == cooldown_end + 24 * 3600
    assert claim.cutoff == int(now.timestamp()) - 360 * 60


def test_refusal_is_cooldown_within_the_cooldown() -> None:
    claim = retrain.ledger_claim(TARGET, datetime(2024, 5, 1, 12, tzinfo=UTC), "t")
    item = {"last_started_at": claim.now - 60, "utc_day": "2024-05-01", "day_count": 1}
    assert retrain.refusal(item, claim) is retrain.Outcome.COOLDOWN


def test_refusal_is_daily_cap_once_the_cap_is_reached() -> None:
    claim = retrain.ledger_claim(TARGET, datetime(2024, 5, 1, 20, tzinfo=UTC), "t")
    item = {"last_started_at": claim.cutoff - 1, "utc_day": "2024-05-01", "day_count": 2}
    assert retrain.refusal(item, claim) is retrain.Outcome.DAILY_CAP


def test_yesterdays_count_does_not_refuse_today() -> None:
    claim = retrain.ledger_claim(TARGET, datetime(2024, 5, 2, 9, tzinfo=UTC), "t")
    item = {"last_started_at": claim.cutoff - 1, "utc_day": "2024-05-01", "day_count": 2}
    assert retrain.refusal(item, claim) is None


def test_client_request_token_is_stable_and_within_limits() -> None:
    token = retrain.client_request_token(change())
    assert token == retrain.client_request_token(change())
    assert 32 <= len(token) <= 128
    assert token != retrain.client_request_token(change(alarm="other"))


def test_display_name_matches_sagemakers_pattern() -> None:
    name = retrain.display_name(change(alarm="Weird name: drift/quality__" + "x" * 100))
    assert len(name) <= 82
    assert all(c.isalnum() or c == "-" for c in name) and name[0].isalnum() and name[-1].isalnum()


def test_data_version_is_passed_only_when_the_pipeline_defines_it() -> None:
    assert retrain.pipeline_parameters({"DataVersion", "CodeVersion"}, change()) == [
        {"Name": "DataVersion", "Value": f"alarm-{ALARM}-20240501T120000123Z"}
    ]
    assert retrain.pipeline_parameters({"CodeVersion"}, change()) == []


# ------------------------------------------------------------------------------------------ settings
def test_retrain_targets_with_a_missing_pipeline_name_are_refused() -> None:
    env = {
        "ALERTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "STATE_TABLE": "state",
        "RETRAIN_TARGETS": json.dumps({ALARM: {"model": "m", "cooldownMinutes": 1, "maxPerDay": 1}}),
    }
    with pytest.raises(ConfigurationError, match=rf"^RETRAIN_TARGETS\['{ALARM}'\]\.pipelineName must be"):
        retrain.Settings.from_env(env)


def test_missing_state_table_is_refused() -> None:
    env = {"ALERTS_TOPIC_ARN": "arn", "RETRAIN_TARGETS": "{}"}
    with pytest.raises(ConfigurationError, match=r"^environment variable STATE_TABLE is required"):
        retrain.Settings.from_env(env)


def test_github_hook_without_secret_is_refused() -> None:
    hook = {"kind": "github-workflow", "repository": "acme/platform", "workflow": "deploy.yml"}
    with pytest.raises(ConfigurationError, match=r"^DEPLOY_HOOK with kind github-workflow needs tokenSecretName$"):
        dispatch.DeployHook.parse(hook)


def test_dispatch_without_a_state_table_is_refused() -> None:
    """The approval ledger (at most one deployment per approval) lives in the state table."""
    env = {"ALERTS_TOPIC_ARN": "arn", "DEPLOY_HOOK": '{"kind": "none"}', "MODEL_PACKAGE_GROUPS": "{}"}
    with pytest.raises(ConfigurationError, match=r"^environment variable STATE_TABLE is required"):
        dispatch.Settings.from_env(env)


def test_plain_http_github_api_url_is_refused_unless_loopback() -> None:
    env = {"ALERTS_TOPIC_ARN": "arn", "DEPLOY_HOOK": '{"kind": "none"}', "MODEL_PACKAGE_GROUPS": "{}"}
    env["STATE_TABLE"] = "state"
    assert dispatch.Settings.from_env({**env, "GITHUB_API_URL": "http://127.0.0.1:8080/"}).github_api_url == (
        "http://127.0.0.1:8080"
    )
    with pytest.raises(ConfigurationError, match=r"^GITHUB_API_URL must be an https URL"):
        dispatch.Settings.from_env({**env, "GITHUB_API_URL": "http://example.com"})


# ------------------------------------------------------------------------------------------ notify_pipeline
NOTIFY_SETTINGS = notify.Settings(alerts_topic_arn="arn", pipelines={"acme-dev-customer-churn": "customer-churn"})


def pipeline_change(status: str) -> Any:
    raw = event("pipeline_execution_status_change")
    raw["detail"]["currentPipelineExecutionStatus"] = status
    return notify.parse_event(raw)


def test_pipeline_name_comes_from_the_pipeline_arn() -> None:
    assert pipeline_change("Succeeded").pipeline_name == "acme-dev-customer-churn"


def test_executing_status_is_not_notified() -> None:
    decision = notify.decide(pipeline_change("Executing"), NOTIFY_SETTINGS)
    assert isinstance(decision, notify.Ignore) and decision.outcome is notify.Outcome.NOT_FINAL


def test_failed_execution_asks_for_the_failure_reason() -> None:
    assert notify.decide(pipeline_change("Failed"), NOTIFY_SETTINGS) == notify.Notify("customer-churn", True)


def test_failure_message_names_pipeline_model_status_execution_and_reason() -> None:
    changed = pipeline_change("Failed")
    message = notify.format_message(changed, "customer-churn", "Step Train failed: OOM")
    assert "acme-dev-customer-churn (model customer-churn) finished: Failed" in message.body
    assert changed.execution_arn in message.body
    assert "Failure reason: Step Train failed: OOM" in message.body


def test_pipeline_event_without_execution_arn_is_malformed() -> None:
    raw = event("pipeline_execution_status_change")
    del raw["detail"]["pipelineExecutionArn"]
    with pytest.raises(MalformedEventError, match=r"^detail\.pipelineExecutionArn must be a non-empty string"):
        notify.parse_event(raw)


# ------------------------------------------------------------------------------------------ dispatch_deployment
GROUPS = {"acme-dev-customer-churn": "customer-churn"}
HOOK = dispatch.DeployHook(
    kind="github-workflow", repository="acme/platform", workflow="deploy.yml", ref="main", token_secret_name="s"
)


def package_change(status: str = "Approved") -> Any:
    raw = copy.deepcopy(event("model_package_state_change"))
    raw["detail"]["ModelApprovalStatus"] = status
    return dispatch.parse_event(raw)


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_only_approved_packages_deploy(status: str) -> None:
    decision = dispatch.decide(package_change(status), GROUPS)
    assert isinstance(decision, dispatch.Ignore) and decision.outcome is dispatch.Outcome.NOT_APPROVED


def test_workflow_dispatch_request_has_the_documented_path_and_body() -> None:
    decision = dispatch.decide(package_change(), GROUPS)
    assert isinstance(decision, dispatch.Deploy)
    url, body = dispatch.dispatch_request(HOOK, "https://api.github.com", decision)
    assert url == "https://api.github.com/repos/acme/platform/actions/workflows/deploy.yml/dispatches"
    assert body == {
        "ref": "main",
        "inputs": {"model": "customer-churn", "model_package_arn": decision.change.package_arn},
    }


def test_workflow_dispatch_names_the_stack_of_the_hook() -> None:
    hook = dispatch.DeployHook.parse(
        {"kind": "github-workflow", "repository": "acme/platform", "workflow": "deploy.yml"}
        | {"tokenSecretName": "s", "stack": "staging"}
    )
    decision = dispatch.decide(package_change(), GROUPS)
    assert isinstance(decision, dispatch.Deploy)
    _, body = dispatch.dispatch_request(hook, "https://api.github.com", decision)
    assert body["inputs"]["stack"] == "staging"
    assert "on main for stack staging." in dispatch.describe_approval(decision, hook).body


# ------------------------------------------------------------------------------------------ shared helpers
@given(retry=st.integers(min_value=0, max_value=60), draw=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_backoff_has_full_jitter_under_an_exponential_cap(retry: int, draw: float) -> None:
    backoff = Backoff(attempts=5, base_seconds=0.5, max_seconds=4)
    ceiling = min(4, 0.5 * 2**retry)
    assert 0 <= backoff.delay(retry, rand=lambda: draw) <= ceiling
    assert backoff.delay(retry, rand=lambda: draw) == pytest.approx(draw * ceiling)


def test_a_retry_after_is_a_floor_for_the_delay() -> None:
    backoff = Backoff(attempts=4, base_seconds=0.5, max_seconds=4, max_retry_after_seconds=10)
    assert backoff.delay(0, retry_after=7.0, rand=lambda: 0.1) == 7.0
    assert backoff.delay(3, retry_after=0.0, rand=lambda: 0.9) == pytest.approx(0.9 * 4)


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now=now) == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None, now=now) is None
    assert retry_after_seconds("-5", now=now) is None


# ------------------------------------------------------------------------------------------ origin
def test_origin_comes_from_the_invoked_function_arn_with_or_without_a_qualifier() -> None:
    for arn in (
        "arn:aws:lambda:eu-west-1:123456789012:function:acme-dev-retrain-on-alarm",
        "arn:aws:lambda:eu-west-1:123456789012:function:acme-dev-retrain-on-alarm:live",
    ):
        assert Origin.of_context(SimpleNamespace(invoked_function_arn=arn)) == Origin("123456789012", "eu-west-1")
    assert Origin.of_context(None) is None


def test_a_context_without_a_function_arn_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^the Lambda context's invoked_function_arn is not a function ARN"):
        Origin.of_context(SimpleNamespace(invoked_function_arn="nope"))


def test_origin_admits_only_its_own_account_and_region() -> None:
    origin = Origin("123456789012", "eu-west-1")
    assert origin.admits("123456789012", "eu-west-1")
    assert not origin.admits("210987654321", "eu-west-1")
    assert not origin.admits("123456789012", "us-east-1")
    assert not origin.admits("", "")


# ------------------------------------------------------------------------------------------ the token
@pytest.mark.parametrize(
    ("stored", "token"),
    [
        ("ghp_abc123DEF456ghi789", "ghp_abc123DEF456ghi789"),
        ("  ghp_abc123DEF456ghi789\n", "ghp_abc123DEF456ghi789"),
        ('{"token": " ghp_abc123DEF456ghi789 "}', "ghp_abc123DEF456ghi789"),
    ],
)
def test_the_stored_token_is_used_without_surrounding_whitespace(stored: str, token: str) -> None:
    assert dispatch.token_from_secret(stored, "acme/github-token") == token


@pytest.mark.parametrize(
    "stored",
    [
        "ghp_abc123DEF456ghi789\n# comment",
        "ghp_abc\tDEF",
        "ghp_abc\x7fDEF",
        "ghp_abc\u2028DEF",
        "ghp_abcé",
        '{"token": "ghp_abc123\\nDEF"}',
    ],
)
def test_a_token_with_inner_whitespace_or_control_characters_is_refused_without_its_value(stored: str) -> None:
    with pytest.raises(InvalidSecretError) as raised:
        dispatch.token_from_secret(stored, "acme/github-token")
    assert "ghp_abc" not in str(raised.value)
    assert str(raised.value).startswith("secret acme/github-token holds a token with whitespace or control characters")


@pytest.mark.parametrize("stored", ["", "   ", '{"token": ""}', '{"other": "x"}', '{"token": 5}', "{not json"])
def test_a_secret_without_a_token_is_refused(stored: str) -> None:
    with pytest.raises(InvalidSecretError, match=r"^secret acme/github-token holds no token"):
        dispatch.token_from_secret(stored, "acme/github-token")


def test_registered_secrets_are_scrubbed_from_every_part_of_a_log_record() -> None:
    secret = "ghp_redactionTest0123456789"
    register_secret(f"{secret}\n# a comment line")
    try:
        raise ValueError(f"Invalid header value b'Bearer {secret}'")
    except ValueError as error:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "sent %s", (secret,), (ValueError, error, None))
    record.__dict__["event"] = {"nested": [f"x {secret} y"]}
    assert RedactingFilter().filter(record)
    rendered = record.getMessage() + repr(record.__dict__) + logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
    assert secret not in rendered
    assert "***" in record.getMessage()
    assert redact(f"a {secret} b") == "a *** b"


def test_sns_subject_is_one_ascii_line_of_at_most_100_characters() -> None:
    subject = sns_subject("retraining → started\n" + "x" * 200)
    assert len(subject) == 100 and subject.isascii() and "\n" not in subject


# ------------------------------------------------------------------------------------------ hostile events
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
SAMPLES = {
    "retrain": ["cloudwatch_alarm_sns", "cloudwatch_alarm_state_change"],
    "notify": ["pipeline_execution_status_change"],
    "dispatch": ["model_package_state_change"],
}
PARSERS = {"retrain": retrain.parse_event, "notify": notify.parse_event, "dispatch": dispatch.parse_event}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (and, for the SNS message, inside its embedded JSON)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


@settings(max_examples=300, deadline=None)
@given(responder=st.sampled_from(sorted(PARSERS)), data=st.data())
def test_any_field_of_a_real_event_replaced_by_any_json_parses_or_is_malformed(responder: str, data: Any) -> None:
    """Hostile or broken events end as a parsed event or MalformedEventError (which the handler logs and
    dead-letters), never as a KeyError or TypeError that bypasses the responder's failure path."""
    sample = event(data.draw(st.sampled_from(SAMPLES[responder])))
    path = data.draw(st.sampled_from(paths(sample)))
    hostile = replaced(sample, path, data.draw(JSON))
    with contextlib.suppress(MalformedEventError):
        PARSERS[responder](hostile)


@settings(max_examples=200, deadline=None)
@given(responder=st.sampled_from(sorted(PARSERS)), value=JSON)
def test_any_json_document_parses_or_is_malformed(responder: str, value: Any) -> None:
    with contextlib.suppress(MalformedEventError):
        PARSERS[responder](value)


@settings(max_examples=200, deadline=None)
@given(message=JSON, as_text=st.text(max_size=40))
def test_any_sns_message_body_parses_or_is_malformed(message: Any, as_text: str) -> None:
    for body in (json.dumps(message), as_text):
        envelope = event("cloudwatch_alarm_sns")
        envelope["Records"][0]["Sns"]["Message"] = body
        with contextlib.suppress(MalformedEventError):
            retrain.parse_event(envelope)


def test_the_words_of_a_pasted_comment_line_do_not_mask_ordinary_log_text() -> None:
    """A token pasted with "# rotated 2024-05-01 by the platform team" must not turn every date into ***."""
    secret = "ghp_commentLineTest0123456789abcdef"
    register_secret(f"{secret}\n# rotated 2024-05-01 by the platform team")
    assert redact(f"token {secret}") == "token ***"
    assert (
        redact("Timestamp 2024-05-01T12:00:00Z from the platform") == "Timestamp 2024-05-01T12:00:00Z from the platform"
    )
