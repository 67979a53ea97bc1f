"""Invalid serving combinations fail validation, naming the model and the key, before any resource exists."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ConfigError
from verify import mock_engine as offline
from verify.mock_engine import read_stack_values, run_program

Model = dict[str, Any]
WHERE = "mlops:models.0: model 'customer-churn'"


def _models(stack: str) -> list[Model]:
    return json.loads(read_stack_values(stack)["mlops:models"])


def _variant(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "instanceType": "ml.m5.large", "instanceCount": 2, **extra}


def _shadow_with_two_production_variants(m: Model) -> None:
    m["serving"]["variants"].append(_variant("other"))


def _zero_weight(m: Model) -> None:
    m["serving"]["variants"][1]["weight"] = 0.0


def _negative_weight(m: Model) -> None:
    m["serving"]["variants"][0]["weight"] = -0.5


def _big_canary(m: Model) -> None:
    m["serving"]["rollout"]["canaryPercent"] = 60


def _serverless_with_variants(m: Model) -> None:
    m["serving"]["variants"] = [_variant("main")]


def _serverless_with_autoscaling(m: Model) -> None:
    m["serving"]["variants"] = [_variant("main", autoscaling={"minCapacity": 1, "maxCapacity": 2})]


def _serverless_with_capture(m: Model) -> None:
    m["serving"]["dataCapture"]["enabled"] = True


def _subnets_without_groups(m: Model) -> None:
    m["serving"]["network"] = {"subnetIds": ["subnet-0123456789abcdef0"]}


def _ab_with_one_variant(m: Model) -> None:
    m["serving"]["variants"] = m["serving"]["variants"][:1]


def _capture_off_monitors_on(m: Model) -> None:
    m["serving"]["dataCapture"]["enabled"] = False


def _small_linear_step(m: Model) -> None:
    m["serving"]["rollout"]["linearStepPercent"] = 5
    m["serving"]["rollout"]["maximumExecutionTimeoutSeconds"] = 14400  # room for 20 steps: only the step is wrong


def _too_many_alarmed_variants(m: Model) -> None:
    m["serving"]["variants"] = [_variant(f"v{i}") for i in range(6)]


def _autoscaled_shadow(m: Model) -> None:
    m["serving"]["shadowVariant"]["autoscaling"] = {"minCapacity": 1, "maxCapacity": 2}


def _instance_count_outside_autoscaling(m: Model) -> None:
    m["serving"]["variants"][0]["instanceCount"] = 9


def _guarded_without_rollback_alarms(m: Model) -> None:
    m["serving"]["rollout"]["rollbackAlarms"] = False


def _timeout_not_above_the_waits(m: Model) -> None:
    m["serving"]["rollout"]["maximumExecutionTimeoutSeconds"] = 3600


def _linear_on_one_instance(m: Model) -> None:
    m["serving"]["variants"][0]["instanceCount"] = 1


def _canary_on_serverless(m: Model) -> None:
    m["serving"]["rollout"]["mode"] = "canary"


CASES: dict[str, tuple[str, Callable[[Model], None], str]] = {
    "deployment timeout not above its waits": (
        "prod",
        _timeout_not_above_the_waits,
        f"{WHERE}: serving.rollout.maximumExecutionTimeoutSeconds=3600 must be larger than the deployment's waiting "
        "time, 3600 s (2 baking periods of waitIntervalSeconds=900 plus terminationWaitSeconds=1800); raise it "
        "(at most 28800) or shorten the waits",
    ),
    "linear rollout of a one-instance variant": (
        "staging",
        _linear_on_one_instance,
        f"{WHERE}: serving.rollout.mode=linear on serving.variants[0] ('current') with 1 instance: the first "
        "traffic step is a percentage of the variant's instances, and one instance is the whole fleet (everything "
        "shifts at once); give the variant instanceCount >= 2 (and autoscaling minCapacity >= 2) or use mode "
        "all-at-once",
    ),
    "canary rollout of a serverless endpoint": (
        "dev",
        _canary_on_serverless,
        f"{WHERE}: serving.rollout.mode=canary shifts a percentage of the variant's instances, and a serverless "
        "endpoint has none; allowed with strategy serverless: all-at-once",
    ),
    "shadow with two production variants": (
        "staging",
        _shadow_with_two_production_variants,
        f"{WHERE}: serving.strategy=shadow needs exactly 1 production variant(s) in serving.variants, got 2 "
        "(AWS accepts one production variant beside a shadow variant)",
    ),
    "zero weight": (
        "prod",
        _zero_weight,
        f"{WHERE}: serving.variants[1].weight=0.0 must be positive (weights are traffic shares)",
    ),
    "negative weight": (
        "prod",
        _negative_weight,
        f"{WHERE}: serving.variants[0].weight=-0.5 must be positive (weights are traffic shares)",
    ),
    "canary above half the fleet": (
        "prod",
        _big_canary,
        f"{WHERE}: serving.rollout.canaryPercent=60 is larger than half the fleet; allowed: 1..50 "
        "(a canary must be the smaller part)",
    ),
    "serverless with variants": (
        "dev",
        _serverless_with_variants,
        f"{WHERE}: serving.strategy=serverless takes no serving.variants (serverless endpoints have one variant "
        "and no instances, so no instance autoscaling); use serving.serverless",
    ),
    "serverless with autoscaling": (
        "dev",
        _serverless_with_autoscaling,
        f"{WHERE}: serving.strategy=serverless takes no serving.variants (serverless endpoints have one variant "
        "and no instances, so no instance autoscaling); use serving.serverless",
    ),
    "serverless with data capture": (
        "dev",
        _serverless_with_capture,
        f"{WHERE}: serving.dataCapture.enabled=true is not supported by serverless endpoints; "
        "set serving.dataCapture.enabled=false",
    ),
    "subnets without security groups": (
        "prod",
        _subnets_without_groups,
        f"{WHERE}: serving.network needs both subnetIds and securityGroupIds, or neither",
    ),
    "ab with one variant": (
        "prod",
        _ab_with_one_variant,
        f"{WHERE}: serving.strategy=ab needs 2 to 10 production variant(s) in serving.variants, got 1",
    ),
    "capture off with monitors on": (
        "staging",
        _capture_off_monitors_on,
        f"{WHERE}: monitoring.dataQuality.enabled=true needs serving.dataCapture.enabled=true (the platform's "
        f"drift job reads the captured requests); model 'customer-churn': monitoring.modelQuality.enabled=true "
        "needs serving.dataCapture.enabled=true (the platform's drift job reads the captured requests)",
    ),
    "linear step below the minimum": (
        "staging",
        _small_linear_step,
        f"{WHERE}: serving.rollout.linearStepPercent=5 is below SageMaker's minimum linear step; allowed: 10..50",
    ),
    "more variants than the rollback alarm can read": (
        "prod",
        _too_many_alarmed_variants,
        f"{WHERE}: serving.rollout.rollbackAlarms=true with 6 production variants: the endpoint's 5xx-rate rollback "
        "alarm reads 2 metrics per variant (12) and a CloudWatch alarm reads at most 10; allowed: at most 5 "
        "production variants",
    ),
    "autoscaled shadow variant": (
        "staging",
        _autoscaled_shadow,
        f"{WHERE}: serving.shadowVariant.autoscaling is not supported (only production variants scale); "
        "size the shadow with serving.shadowVariant.instanceCount",
    ),
    "instance count outside the autoscaling range": (
        "prod",
        _instance_count_outside_autoscaling,
        f"{WHERE}: serving.variants[0].instanceCount=9 must lie within autoscaling minCapacity..maxCapacity (2..8)",
    ),
    "guarded rollout without rollback alarms": (
        "staging",
        _guarded_without_rollback_alarms,
        f"{WHERE}: serving.rollout.mode=linear without rollbackAlarms cannot roll back; "
        "set serving.rollout.rollbackAlarms=true",
    ),
}


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of resources the mock engine is asked to create during the test."""
    created: list[str] = []
    original = offline.PlatformMocks.new_resource

    def spy(self: offline.PlatformMocks, args: Any) -> Any:
        created.append(args.name)
        return original(self, args)

    monkeypatch.setattr(offline.PlatformMocks, "new_resource", spy)
    return created


def refused(stack: str, change: Callable[[Model], None] | None = None, **overrides: Any) -> list[str]:
    """The problems ``run_program`` reports for ``stack`` with its first model changed by ``change``."""
    models = _models(stack)
    if change is not None:
        change(models[0])
        overrides["models"] = models
    with pytest.raises(ConfigError) as caught:
        run_program(stack, overrides=overrides)
    return caught.value.problems


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_invalid_serving_is_refused_with_the_model_and_the_key(case: tuple, registrations: list[str]) -> None:
    stack, change, message = case
    assert refused(stack, change) == [message]
    assert registrations == []  # refused before any resource exists


def test_production_endpoint_must_keep_rollback_alarms(registrations: list[str]) -> None:
    def no_alarms(m: Model) -> None:
        m["serving"]["rollout"].update(mode="all-at-once", rollbackAlarms=False)

    assert refused("prod", no_alarms) == [
        "mlops: model 'customer-churn': serving.rollout.rollbackAlarms=false is not allowed with production=true "
        "(a production endpoint update must roll back on errors and latency)"
    ]
    assert registrations == []


def test_the_same_endpoint_without_production_is_accepted() -> None:
    """The counterpart of the test above: the rule comes from ``production``, not from the stack's name."""
    models = _models("prod")
    models[0]["serving"]["rollout"].update(mode="all-at-once", rollbackAlarms=False)
    plan = run_program("prod", overrides={"models": models, "production": False})
    endpoint = next(r for r in plan.of_type("aws:sagemaker/endpoint:Endpoint"))
    assert "autoRollbackConfiguration" not in endpoint.inputs["deploymentConfig"]


def test_every_problem_is_listed_at_once() -> None:
    def two_problems(m: Model) -> None:
        _big_canary(m)
        _subnets_without_groups(m)

    (problem,) = refused("prod", two_problems)
    assert "canaryPercent=60" in problem
    assert "serving.network needs both subnetIds and securityGroupIds" in problem
