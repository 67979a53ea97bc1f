"""Service roles: trust only their service, only for this account, and are usable only once their policy exists."""

from __future__ import annotations

import json

from verify.mock_engine import OfflinePlan


def roles(plan: OfflinePlan) -> list:
    return plan.of_type("aws:iam/role:Role")


# Lambda assumes an execution role without sending aws:SourceAccount (a condition on it would make every
# invocation fail); the role is only usable as the execution role of this account's functions anyway.
SERVICES_WITHOUT_SOURCE_ACCOUNT = {"lambda.amazonaws.com", "firehose.amazonaws.com"}
# Firehose: the trust policy in its guide ("Allow Firehose to assume an IAM role") has no condition, and no AWS page
# says Firehose sends aws:SourceAccount; a condition on a key the service never sends would stop every delivery.
# Feature Store assumes its role as sagemaker.amazonaws.com but is not among the SageMaker features AWS documents
# as sending aws:SourceAccount: its roles (named <prefix>-<model>-fs) carry no condition.
ROLES_WITHOUT_SOURCE_ACCOUNT_SUFFIX = "-fs"


def test_every_role_trusts_a_service_only_for_this_account(plan: OfflinePlan) -> None:
    assert roles(plan)
    for role in roles(plan):
        [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Action"] == "sts:AssumeRole"
        assert set(trust["Principal"]) == {"Service"}, role.name
        services = trust["Principal"]["Service"]
        services = {services} if isinstance(services, str) else set(services)
        if services <= SERVICES_WITHOUT_SOURCE_ACCOUNT or role.inputs["name"].endswith(
            ROLES_WITHOUT_SOURCE_ACCOUNT_SUFFIX
        ):
            assert "Condition" not in trust, role.name
            continue
        assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012", role.name


def test_every_role_has_exactly_one_inline_policy_and_no_managed_policy(plan: OfflinePlan) -> None:
    policies = plan.of_type("aws:iam/rolePolicy:RolePolicy")
    for role in roles(plan):
        assert sum(1 for p in policies if p.inputs["role"] == role.state["id"]) == 1, role.name
    assert not plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_services_wait_for_their_role_policy(plan: OfflinePlan) -> None:
    policy_urns = {p.urn for p in plan.of_type("aws:iam/rolePolicy:RolePolicy")}
    users = plan.of_type("aws:glue/crawler:Crawler") + plan.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert users
    for user in users:
        assert policy_urns & set(user.dependencies), f"{user.name} does not wait for its role policy"
