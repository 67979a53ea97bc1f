"""Queries over an offline plan that several test modules ask."""

from __future__ import annotations

import json
from typing import Any

from infra.config import ModelSettings
from tests.support.types import KMS_KEY
from verify.mock_engine import MOCK_ACCOUNT_ID, OfflinePlan, PlannedResource


def synthetic_resource(type_token: str, name: str, inputs: dict[str, Any], **computed: Any) -> PlannedResource:
    """A custom resource as the mocks would record it (state = inputs + computed outputs, ``id`` the name unless
    given): what the policy tests feed the rules without running a program."""
    return PlannedResource(
        urn=f"urn:pulumi:test::mlops::{type_token}::{name}",
        type=type_token,
        name=name,
        custom=True,
        parent="",
        inputs=inputs,
        state={**inputs, "id": computed.pop("id", name), **computed},
        protect=False,
        retain_on_delete=False,
    )


def prefix(plan: OfflinePlan) -> str:
    """``<project>-<env>``: the start of every physical and logical name of the stack."""
    return f"{plan.config.project}-{plan.config.environment}"


def platform_key_arn(plan: OfflinePlan) -> str:
    """The ARN of the stack's one platform KMS key."""
    (key,) = plan.of_type(KMS_KEY)
    return key.state["arn"]


def served(plan: OfflinePlan) -> list[ModelSettings]:
    """The models with an endpoint."""
    return [m for m in plan.config.models if m.serving is not None]


def topic_arn(plan: OfflinePlan, thing: str) -> str:
    """The ARN of the stack's ``alerts`` or ``retrain`` topic."""
    return f"arn:aws:sns:{plan.config.region}:{MOCK_ACCOUNT_ID}:{prefix(plan)}-{thing}"


def policy_document(resource: PlannedResource, key: str = "policy") -> dict[str, Any]:
    """A policy input (a JSON string) of ``resource``, parsed."""
    return json.loads(resource.inputs[key])


def statements_by_sid(resource: PlannedResource, key: str = "policy") -> dict[str, dict[str, Any]]:
    """The statements of a policy input, keyed by ``Sid``."""
    return {s["Sid"]: s for s in policy_document(resource, key)["Statement"]}
