"""Which model version each variant serves: ``modelVersion: latest | previous | <ARN>``.

Three layers are checked: the config key (its values, its errors, the old ``modelPackageArn`` key), the version
sources (the registry read through a stubbed boto3 client, and the offline answers), and the endpoint the
program builds under mocks with 0, 1 and 2 approved versions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra.config import ConfigError, parse_stack_config
from infra.model_versions import LATEST, PREVIOUS, OfflineVersions, RegistryVersions
from infra.serving import SERVERLESS_VARIANT
from tests.support.types import ALARM, CONFIG, ENDPOINT, MODEL, SCALABLE_TARGET
from verify.mock_engine import MOCK_ACCOUNT_ID, OfflinePlan, read_stack_values, run_program

REGION = "eu-west-1"
ALLOWED = (
    "allowed: latest (the latest Approved version of the model's package group), previous (the Approved version "
    "before the latest) or a model package version ARN "
    "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
)


def group_of(stack: str) -> str:
    return f"acme-mlops-{stack}-customer-churn"


def package(stack: str, version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{MOCK_ACCOUNT_ID}:model-package/{group_of(stack)}/{version}"


def models_of(stack: str) -> list[dict[str, Any]]:
    return json.loads(read_stack_values(stack)["mlops:models"])


def with_serving(stack: str, change: Any) -> dict[str, Any]:
    """Overrides with the first model's ``serving`` section changed in place by ``change``."""
    models = models_of(stack)
    change(models[0]["serving"])
    return {"models": models}


# --- the config key ------------------------------------------------------------------------------------


def config_problems(stack: str, change: Any) -> list[str]:
    values = dict(read_stack_values(stack), **{"mlops:models": json.dumps(with_serving(stack, change)["models"])})
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, stack)
    return caught.value.problems


def test_prods_ab_example_compares_the_previous_with_the_latest_version() -> None:
    serving = parse_stack_config(read_stack_values("prod"), "prod").model("customer-churn").serving
    assert serving is not None
    assert {v.name: v.model_version for v in serving.variants} == {"champion": PREVIOUS, "challenger": LATEST}


def test_an_omitted_model_version_is_the_latest() -> None:
    def omit(serving: dict[str, Any]) -> None:
        for variant in (*serving["variants"], serving["shadowVariant"]):
            variant.pop("modelVersion", None)

    values = dict(read_stack_values("staging"), **{"mlops:models": json.dumps(with_serving("staging", omit)["models"])})
    serving = parse_stack_config(values, "staging").model("customer-churn").serving
    assert serving is not None and serving.shadow_variant is not None
    assert [v.model_version for v in (*serving.variants, serving.shadow_variant)] == [LATEST, LATEST]


def test_a_pinned_model_package_arn_is_accepted() -> None:
    def pin(serving: dict[str, Any]) -> None:
        serving["variants"][1]["modelVersion"] = package("prod", 7)

    values = dict(read_stack_values("prod"), **{"mlops:models": json.dumps(with_serving("prod", pin)["models"])})
    serving = parse_stack_config(values, "prod").model("customer-churn").serving
    assert serving is not None
    assert serving.variants[1].model_version == package("prod", 7)


@pytest.mark.parametrize(
    ("stack", "where", "value"),
    [
        ("prod", ("variants", 0), "newest"),
        ("prod", ("variants", 1), None),  # null meant "latest" under the old key; not a selector any more
        ("staging", ("shadowVariant",), "Latest"),
        ("dev", ("serverless",), "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/acme"),
    ],
)
def test_an_unknown_model_version_names_the_key_the_value_and_what_is_allowed(
    stack: str, where: tuple[Any, ...], value: Any
) -> None:
    def set_version(serving: dict[str, Any]) -> None:
        section = serving
        for part in where:
            section = section[part]
        section["modelVersion"] = value

    key = "mlops:models.0.serving." + ".".join(str(p) for p in where) + ".modelVersion"
    assert config_problems(stack, set_version) == [f"{key}: got {json.dumps(value)}; {ALLOWED}"]


def test_the_old_model_package_arn_key_says_which_key_replaced_it() -> None:
    def old_key(serving: dict[str, Any]) -> None:
        serving["variants"][0]["modelPackageArn"] = package("prod", 7)

    assert config_problems("prod", old_key) == [
        f'mlops:models.0.serving.variants.0: modelPackageArn="{package("prod", 7)}" is no longer read: it was '
        "replaced by modelVersion (latest, previous or a model package version ARN); "
        f"write modelVersion: {package('prod', 7)}"
    ]


def test_the_old_key_with_null_is_translated_to_latest() -> None:
    def old_null(serving: dict[str, Any]) -> None:
        serving["serverless"]["modelPackageArn"] = None

    (problem,) = config_problems("dev", old_null)
    assert problem.startswith("mlops:models.0.serving.serverless: modelPackageArn=null is no longer read")
    assert problem.endswith("write modelVersion: latest")


# --- the offline registry ----------------------------------------------------------------------------------


def test_offline_latest_and_previous_differ_by_default() -> None:
    versions = OfflineVersions(region=REGION, account_id=MOCK_ACCOUNT_ID)
    latest, previous = versions.resolve("g", LATEST), versions.resolve("g", PREVIOUS)
    assert latest is not None and previous is not None
    assert (latest.version, previous.version) == (2, 1)
    assert versions.resolve("g", None) == latest  # None is the latest (what the monitoring layer may pass)
    # Each version has its own baselines, so a monitor of the wrong version would show.
    assert latest.data_statistics_uri != previous.data_statistics_uri


def test_offline_counts_per_group() -> None:
    versions = OfflineVersions(
        region=REGION,
        account_id=MOCK_ACCOUNT_ID,
        approved=3,
        approved_by_group={"one": 1},
        unapproved=frozenset({"none"}),
    )
    assert [v and v.version for v in (versions.resolve("g", LATEST), versions.resolve("g", PREVIOUS))] == [3, 2]
    assert versions.resolve("one", PREVIOUS) is None  # a single approved version has no previous one
    assert [v and v.version for v in (versions.resolve("one", LATEST),)] == [1]
    assert versions.resolve("none", LATEST) is None and versions.resolve("none", PREVIOUS) is None


def test_offline_pinned_arn_resolves_to_itself_even_without_approvals() -> None:
    versions = OfflineVersions(region=REGION, account_id=MOCK_ACCOUNT_ID, unapproved=frozenset({"g"}))
    pinned = versions.resolve("g", package("prod", 7))
    assert pinned is not None and (pinned.arn, pinned.version) == (package("prod", 7), 7)


def test_offline_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"approved version counts must be >= 0, got \[2, -1\]"):
        OfflineVersions(region=REGION, account_id=MOCK_ACCOUNT_ID, approved_by_group={"g": -1})


# --- the real registry, through a stubbed SageMaker client -------------------------------------------------

GROUP = "acme-mlops-prod-customer-churn"
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{MOCK_ACCOUNT_ID}:model-package/{GROUP}/{version}"


@pytest.fixture
def stub() -> Iterator[tuple[Any, Stubber]]:
    """A real SageMaker client whose calls are answered (and their parameters checked) by botocore's Stubber."""
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()  # every stubbed answer was asked for


def expect_group(stubber: Stubber) -> None:
    stubber.add_response(
        "describe_model_package_group",
        {
            "ModelPackageGroupName": GROUP,
            "ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{MOCK_ACCOUNT_ID}:model-package-group/{GROUP}",
            "CreationTime": NOW,
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
        },
        {"ModelPackageGroupName": GROUP},
    )


def expect_page(stubber: Stubber, versions: list[int], token: str | None = None, next_token: str | None = None) -> None:
    """One ListModelPackages page of approved versions; the request must ask for Approved versions only."""
    request: dict[str, Any] = {
        "ModelPackageGroupName": GROUP,
        "ModelPackageType": "Versioned",
        "MaxResults": 100,
        "ModelApprovalStatus": "Approved",
    }
    if token:
        request["NextToken"] = token
    page: dict[str, Any] = {
        "ModelPackageSummaryList": [
            {
                "ModelPackageArn": arn(v),
                "ModelPackageGroupName": GROUP,
                "ModelPackageVersion": v,
                "CreationTime": NOW,
                "ModelPackageStatus": "Completed",
                "ModelApprovalStatus": "Approved",
            }
            for v in versions
        ]
    }
    if next_token:
        page["NextToken"] = next_token
    stubber.add_response("list_model_packages", page, request)


def expect_describe(stubber: Stubber, version: int) -> None:
    baseline = f"s3://artifacts/{GROUP}/{version}"
    stubber.add_response(
        "describe_model_package",
        {
            "ModelPackageName": GROUP,
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn(version),
            "CreationTime": NOW,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {
                "Containers": [{"Image": "repo@sha256:" + "0" * 64}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "DriftCheckBaselines": {
                "ModelDataQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"{baseline}/statistics.json"},
                    "Constraints": {"ContentType": "application/json", "S3Uri": f"{baseline}/constraints.json"},
                }
            },
        },
        {"ModelPackageName": arn(version)},
    )


def test_registry_previous_is_the_second_highest_approved_version_across_pages(stub: tuple[Any, Stubber]) -> None:
    client, stubber = stub
    expect_group(stubber)
    expect_page(stubber, [5, 2], next_token="page-2")  # pages need not be in version order
    expect_page(stubber, [4], token="page-2")
    expect_describe(stubber, 5)
    expect_describe(stubber, 4)
    versions = RegistryVersions(region=REGION, client=client)
    latest, previous = versions.resolve(GROUP, LATEST), versions.resolve(GROUP, PREVIOUS)
    assert latest is not None and (latest.arn, latest.version) == (arn(5), 5)
    # 4 is on the second page: a reader that stopped after the first page would answer 2.
    assert previous is not None and (previous.arn, previous.version) == (arn(4), 4)
    assert previous.data_statistics_uri == f"s3://artifacts/{GROUP}/4/statistics.json"


def test_registry_answers_each_group_and_selector_once(stub: tuple[Any, Stubber]) -> None:
    client, stubber = stub
    expect_group(stubber)
    expect_page(stubber, [2, 1])
    expect_describe(stubber, 2)
    expect_describe(stubber, 1)
    versions = RegistryVersions(region=REGION, client=client)
    first = [versions.resolve(GROUP, s) for s in (LATEST, PREVIOUS)]
    # Asked again (None is the latest): the Stubber raises on any call beyond the ones queued above.
    again = [versions.resolve(GROUP, s) for s in (LATEST, PREVIOUS, None)]
    assert again == [*first, first[0]]


def test_registry_with_one_approved_version_has_no_previous(stub: tuple[Any, Stubber]) -> None:
    client, stubber = stub
    expect_group(stubber)
    expect_page(stubber, [1])
    expect_describe(stubber, 1)
    versions = RegistryVersions(region=REGION, client=client)
    assert versions.resolve(GROUP, PREVIOUS) is None
    latest = versions.resolve(GROUP, LATEST)
    assert latest is not None and latest.version == 1


def test_registry_group_that_does_not_exist_yet_serves_nothing(stub: tuple[Any, Stubber]) -> None:
    client, stubber = stub
    stubber.add_client_error(
        "describe_model_package_group", service_error_code="ValidationException", http_status_code=400
    )
    versions = RegistryVersions(region=REGION, client=client)
    assert versions.resolve(GROUP, LATEST) is None
    assert versions.resolve(GROUP, PREVIOUS) is None  # answered from the first look-up: no second call


def test_registry_pinned_arn_is_described_without_listing(stub: tuple[Any, Stubber]) -> None:
    client, stubber = stub
    expect_describe(stubber, 3)
    pinned = RegistryVersions(region=REGION, client=client).resolve(GROUP, arn(3))
    assert pinned is not None and (pinned.arn, pinned.version) == (arn(3), 3)


# --- the endpoint under mocks: 0, 1 and 2+ approved versions ----------------------------------------------


@dataclass(frozen=True)
class Run:
    plan: OfflinePlan
    warnings: list[str]

    def served(self) -> dict[str, str]:
        """Variant → model package ARN, read from the SageMaker models the plan creates."""
        prefix = f"{self.plan.config.project}-{self.plan.config.environment}-customer-churn-serving-model-"
        return {
            m.name.removeprefix(prefix): m.inputs["primaryContainer"]["modelPackageName"]
            for m in self.plan.of_type(MODEL)
        }

    def warned(self, text: str) -> list[str]:
        return [w for w in self.warnings if text in w]


def run(stack: str, approved: int = 2, unapproved: bool = False, overrides: dict[str, Any] | None = None) -> Run:
    """The program for ``stack`` with ``approved`` approved versions in its group, and the warnings it logged."""
    versions = OfflineVersions(
        region=REGION,
        account_id=MOCK_ACCOUNT_ID,
        approved=approved,
        unapproved=frozenset({group_of(stack)}) if unapproved else frozenset(),
    )
    warnings: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.WARNING:
                warnings.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)  # the mock engine logs pulumi.log.warn to the root logger
    try:
        plan = run_program(stack, overrides=overrides, versions=versions)
    finally:
        logging.getLogger().removeHandler(handler)
    return Run(plan, warnings)


STAND_IN = "asks for the previous Approved version"
SHARED = "compares that version with itself"


@pytest.fixture(scope="module")
def prod_two() -> Run:
    return run("prod", approved=2)


@pytest.fixture(scope="module")
def prod_one() -> Run:
    return run("prod", approved=1)


def test_two_approved_versions_ab_test_previous_against_latest(prod_two: Run) -> None:
    assert prod_two.served() == {"champion": package("prod", 1), "challenger": package("prod", 2)}
    assert not prod_two.warned(STAND_IN) and not prod_two.warned(SHARED)


def test_one_approved_version_keeps_both_variants_on_that_version(prod_one: Run) -> None:
    """The first approval must produce an endpoint (it starts the approval → deploy loop) with the same variant
    names as later ones (blue/green updates refuse new variant names)."""
    assert prod_one.served() == {"champion": package("prod", 1), "challenger": package("prod", 1)}
    (config,) = prod_one.plan.of_type(CONFIG)
    variants = config.inputs["productionVariants"]
    assert [v["variantName"] for v in variants] == ["champion", "challenger"]
    assert [v["initialVariantWeight"] for v in variants] == [0.9, 0.1]  # weights unchanged
    assert len(prod_one.plan.of_type(ENDPOINT)) == 1


def test_one_approved_version_keeps_alarms_and_autoscaling_on_both_variants(prod_one: Run) -> None:
    targets = {t.inputs["resourceId"].rsplit("/", 1)[-1] for t in prod_one.plan.of_type(SCALABLE_TARGET)}
    assert targets == {"champion", "challenger"}
    rollback = [a for a in prod_one.plan.of_type(ALARM) if "-rollback-" in a.inputs["name"]]
    assert rollback
    for alarm in rollback:
        read = {q["metric"]["dimensions"]["VariantName"] for q in alarm.inputs["metricQueries"] if "metric" in q}
        assert read == {"champion", "challenger"}, alarm.inputs["name"]


def test_one_approved_version_warns_which_variant_stands_in_and_why(prod_one: Run) -> None:
    (warning,) = prod_one.warned(STAND_IN)
    assert "variant 'champion'" in warning and "(serving.variants[0].modelVersion=previous)" in warning
    assert f"model package group '{group_of('prod')}' has only one Approved version" in warning
    assert f"version 1 ({package('prod', 1)}), until a second version is approved" in warning


def test_one_approved_version_warns_that_the_ab_test_compares_a_version_with_itself(prod_one: Run) -> None:
    (warning,) = prod_one.warned(SHARED)
    assert "variants champion and challenger both serve version 1" in warning
    assert "the A/B test compares that version with itself until a second version is approved." in warning


def test_the_second_approval_is_an_update_of_the_same_endpoint(prod_one: Run, prod_two: Run) -> None:
    """1 → 2 approved: champion keeps its model (version 1), only challenger's model is new, the endpoint
    config is new under a new name, and the endpoint, its variant names and scaling targets stay."""
    before = {m.name: m.inputs["name"] for m in prod_one.plan.of_type(MODEL)}
    after = {m.name: m.inputs["name"] for m in prod_two.plan.of_type(MODEL)}
    champion, challenger = (f"acme-mlops-prod-customer-churn-serving-model-{v}" for v in ("champion", "challenger"))
    assert after[champion] == before[champion]
    assert after[challenger] != before[challenger]
    (old_config,), (new_config,) = prod_one.plan.of_type(CONFIG), prod_two.plan.of_type(CONFIG)
    assert new_config.inputs["name"] != old_config.inputs["name"]
    names = [[v["variantName"] for v in c.inputs["productionVariants"]] for c in (old_config, new_config)]
    assert names[0] == names[1]
    (old_endpoint,), (new_endpoint,) = prod_one.plan.of_type(ENDPOINT), prod_two.plan.of_type(ENDPOINT)
    assert new_endpoint.inputs["name"] == old_endpoint.inputs["name"]
    assert {t.inputs["resourceId"] for t in prod_two.plan.of_type(SCALABLE_TARGET)} == {
        t.inputs["resourceId"] for t in prod_one.plan.of_type(SCALABLE_TARGET)
    }


def test_no_approved_version_means_no_endpoint_and_no_stand_in() -> None:
    result = run("prod", unapproved=True)
    assert not result.plan.of_type(ENDPOINT) and not result.plan.of_type(MODEL)
    (warning,) = result.warned("no endpoint yet")
    assert "has no Approved version for variant(s) champion, challenger" in warning
    assert not result.warned(STAND_IN)  # `previous` falls back to `latest` only when that exists


def test_a_pinned_version_equal_to_the_latest_is_warned_about() -> None:
    def pin_champion(serving: dict[str, Any]) -> None:
        serving["variants"][0]["modelVersion"] = package("prod", 2)

    result = run("prod", overrides=with_serving("prod", pin_champion))
    assert result.served() == {"champion": package("prod", 2), "challenger": package("prod", 2)}
    (warning,) = result.warned(SHARED)
    assert f"variants champion and challenger both serve version 2 ({package('prod', 2)})" in warning
    assert "Give them different modelVersion values" in warning  # a config mistake: say what to change
    assert not result.warned(STAND_IN)


def test_a_shadow_variant_can_serve_the_previous_version() -> None:
    def shadow_previous(serving: dict[str, Any]) -> None:
        serving["variants"][0]["modelVersion"] = "latest"
        serving["shadowVariant"]["modelVersion"] = "previous"

    result = run("staging", overrides=with_serving("staging", shadow_previous))
    assert result.served() == {"current": package("staging", 2), "candidate": package("staging", 1)}
    assert not result.warned(SHARED)


def test_staging_shadows_the_latest_version_beside_the_previous_one() -> None:
    result = run("staging")
    assert result.served() == {"current": package("staging", 1), "candidate": package("staging", 2)}
    assert not result.warned(SHARED)


def test_a_shadow_test_of_one_version_against_itself_is_warned_about() -> None:
    def both_latest(serving: dict[str, Any]) -> None:
        for variant in (*serving["variants"], serving["shadowVariant"]):
            variant["modelVersion"] = "latest"

    (warning,) = run("staging", overrides=with_serving("staging", both_latest)).warned(SHARED)
    assert "variants current and candidate both serve version 2" in warning
    assert "the shadow test compares that version with itself" in warning


def test_serverless_serves_the_previous_version_and_stands_in_with_one() -> None:
    def serverless_previous(serving: dict[str, Any]) -> None:
        serving["serverless"]["modelVersion"] = "previous"

    overrides = with_serving("dev", serverless_previous)
    assert run("dev", overrides=overrides).served() == {SERVERLESS_VARIANT: package("dev", 1)}
    single = run("dev", approved=1, overrides=overrides)
    assert single.served() == {SERVERLESS_VARIANT: package("dev", 1)}
    (warning,) = single.warned(STAND_IN)
    assert "(serving.serverless.modelVersion=previous)" in warning
    assert not single.warned(SHARED)  # one variant: nothing to compare
