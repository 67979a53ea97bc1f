"""Forking the platform: a model or an environment is added by config alone, and every layer picks it up.

- A second model declared in a stack's ``mlops:models`` gets, in every per-model layer (feature store,
  training, serving, monitoring, and whatever layer lands next), the same resources as the first model
  has, and the shared layers (responders' routing tables, event rules, IAM) mention it as often as the
  first. Written over the plan generically, so a new layer is covered without editing this file.
- A new environment is a new stack file: the program runs from it alone, with names and tags derived
  from the new environment, and passes the policy pack.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from verify.mock_engine import OfflinePlan, PlannedResource, read_stack_values, run_program
from verify.policy_check import check_plan

NEW_MODEL = "fraud-risk"  # shares no substring with the stacks' model names


def models_of(stack: str) -> list[dict[str, Any]]:
    return json.loads(read_stack_values(stack)["mlops:models"])


def layer_of(plan: OfflinePlan, resource: PlannedResource) -> PlannedResource:
    """The component right under the stack that ``resource`` belongs to (itself if it is one)."""
    by_urn = {r.urn: r for r in plan.resources}
    current = resource
    while current.parent in by_urn:
        current = by_urn[current.parent]
    return current


def per_model(plan: OfflinePlan, prefix: str) -> Counter[tuple[str, str]]:
    """(layer component type, resource type) of everything under the model's own components."""
    found: Counter[tuple[str, str]] = Counter()
    for resource in plan.resources:
        layer = layer_of(plan, resource)
        if layer.name.startswith(prefix):
            found[(layer.type, resource.type)] += 1
    return found


def owned_by_a_model(resource: PlannedResource, models: tuple[str, ...]) -> bool:
    """A model's own resource inside a shared component (its stream consumer, its new-data rule): named for it."""
    return any(f"-{m}-" in resource.name or resource.name.endswith(f"-{m}") for m in models)


def mentions(plan: OfflinePlan, prefixes: tuple[str, ...], text: str, models: tuple[str, ...]) -> dict[str, int]:
    """How often the inputs of each shared resource (under no per-model component, named for no model) contain
    ``text``."""
    found: dict[str, int] = {}
    for resource in plan.resources:
        if layer_of(plan, resource).name.startswith(prefixes) or owned_by_a_model(resource, models):
            continue
        count = json.dumps(resource.inputs, sort_keys=True, default=str).count(text)
        if count:
            found[resource.urn] = count
    return found


@pytest.fixture(scope="module", params=["dev", "prod"])
def two_models(request: pytest.FixtureRequest) -> tuple[str, str, OfflinePlan]:
    stack: str = request.param
    [first] = models_of(stack)
    second = {**first, "name": NEW_MODEL}
    return stack, first["name"], run_program(stack, overrides={"models": [first, second]})


def model_prefix(plan: OfflinePlan, stack: str, model: str) -> str:
    values = read_stack_values(stack)
    return f"{values['mlops:project']}-{values['mlops:environment']}-{model}-"


def test_second_model_gets_every_per_model_resource_of_the_first(two_models: tuple[str, str, OfflinePlan]) -> None:
    stack, first, plan = two_models
    existing = per_model(plan, model_prefix(plan, stack, first))
    added = per_model(plan, model_prefix(plan, stack, NEW_MODEL))
    assert existing, f"no per-model components found for {first} in {stack}"
    assert added == existing


def test_per_model_layers_cover_the_documented_layers(two_models: tuple[str, str, OfflinePlan]) -> None:
    stack, _, plan = two_models
    layers = {layer for layer, _ in per_model(plan, model_prefix(plan, stack, NEW_MODEL))}
    assert {"mlops:features:FeatureStore", "mlops:training:TrainingPipeline", "mlops:serving:Serving"} <= layers


def test_shared_layers_route_the_second_model_like_the_first(two_models: tuple[str, str, OfflinePlan]) -> None:
    # e.g. the responders' RETRAIN_TARGETS / PIPELINES / MODEL_PACKAGE_GROUPS, event rule patterns, IAM scopes
    stack, first, plan = two_models
    prefixes = (model_prefix(plan, stack, first), model_prefix(plan, stack, NEW_MODEL))
    models = (first, NEW_MODEL)
    routed = mentions(plan, prefixes, NEW_MODEL, models)
    assert routed, "no shared resource (responder routing, event rule) mentions the new model"
    assert routed == mentions(plan, prefixes, first, models)
    # and each model owns the same kinds of resources in the shared components
    owned = {m: Counter(r.type for r in plan.resources if owned_by_a_model(r, (m,))) for m in models}
    assert owned[NEW_MODEL] == owned[first]


def test_second_model_passes_the_policy_pack(two_models: tuple[str, str, OfflinePlan]) -> None:
    _, _, plan = two_models
    assert {r.policy: r.violations for r in check_plan(plan) if not r.passed} == {}


# ---------------------------------------------------------------------------------------------
# A new environment is a new stack file


@pytest.fixture(scope="module")
def qa_plan(tmp_path_factory: pytest.TempPathFactory) -> OfflinePlan:
    path: Path = tmp_path_factory.mktemp("stacks") / "Pulumi.qa.yaml"
    document = yaml.safe_load(Path("stacks/Pulumi.staging.yaml").read_text())
    document["config"]["mlops:environment"] = "qa"
    path.write_text(yaml.safe_dump(document))
    return run_program("qa", values=read_stack_values("qa", path=path))


def test_new_environment_creates_what_its_template_creates(
    qa_plan: OfflinePlan, stack_plans: dict[str, OfflinePlan]
) -> None:
    assert Counter(r.type for r in qa_plan.resources) == Counter(r.type for r in stack_plans["staging"].resources)


def test_new_environment_names_and_tags_derive_from_it(qa_plan: OfflinePlan) -> None:
    tagged = [r for r in qa_plan.custom() if isinstance(r.inputs.get("tags"), dict)]
    assert tagged and {r.inputs["tags"]["Environment"] for r in tagged} == {"qa"}
    assert not [r.name for r in qa_plan.resources if "staging" in r.name]


def test_new_environment_passes_the_policy_pack(qa_plan: OfflinePlan) -> None:
    assert {r.policy: r.violations for r in check_plan(qa_plan) if not r.passed} == {}
