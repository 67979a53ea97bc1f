"""Apply the CrossGuard policy pack (``policies/rules.py``) to an offline plan, without the Pulumi engine.

The engine's analyzer hands resource policies each resource's inputs and stack policies every
resource's outputs, wrapped in read-only proxies that refuse unknown values; this module builds the
same ``pulumi_policy`` objects (``ResourceValidationArgs``, ``PolicyResource``,
``StackValidationArgs``) from an :class:`~verify.mock_engine.OfflinePlan`, with the same proxies, calls
each policy's ``validate`` and collects what it reports.

Differences from a real ``pulumi preview --policy-pack policies``, all on the cautious side:
the mocks record no property dependencies, so stack policies tie a bucket to its sub-resources by
the ``bucket`` value (the engine can also use ``propertyDependencies``); and a value a policy could
not read (unknown at preview; never the case with ``preview=False`` mocks) fails the policy here,
where the engine would only warn. A policy pack config (the ``--policy-pack-config`` file) can be
passed to :func:`check_plan`; policies read it through ``args.get_config()`` as under the engine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError  # what args.not_applicable() raises
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies import rules
from verify.mock_engine import OfflinePlan, PlannedResource


@dataclass(frozen=True)
class PolicyResult:
    """The outcome of one policy over a whole plan.

    ``enforcement`` is the level the pack applies (``"mandatory"``, ``"advisory"``, ``"disabled"``);
    ``violations`` holds each reported message (each names the resource it is about).
    """

    policy: str
    enforcement: str
    passed: bool
    violations: list[str] = field(default_factory=list)


PolicyPackConfig = Mapping[str, Any]
"""What ``pulumi preview --policy-pack-config <file>`` reads: policy name -> ``"<enforcement level>"`` or
``{"enforcementLevel": ..., <config property>: ...}``; the key ``"all"`` sets every policy's level."""


def check_plan(
    plan: OfflinePlan, policies: Sequence[Policy] | None = None, config: PolicyPackConfig | None = None
) -> list[PolicyResult]:
    """Run every policy of the pack (or ``policies``) over ``plan``; one result per policy, in pack order.

    ``config`` is a policy pack config (see :data:`PolicyPackConfig`); without it each policy uses its
    defaults, as ``pulumi preview --policy-pack policies`` does without ``--policy-pack-config``.
    """
    return check_resources(plan.resources, policies, config)


def check_resources(
    resources: Iterable[PlannedResource],
    policies: Sequence[Policy] | None = None,
    config: PolicyPackConfig | None = None,
) -> list[PolicyResult]:
    """Run the policies over any set of planned resources (a plan's, or a synthetic or mutated set)."""
    planned = list(resources)
    return [_run(policy, planned, config or {}) for policy in (rules.POLICIES if policies is None else policies)]


def load_policy_config(path: Path) -> dict[str, Any]:
    """Read a policy pack config file (JSON, the format of ``--policy-pack-config``).

    Raises ``ValueError`` naming the file when it is not a JSON object, names a policy the pack does not
    have, or gives a policy something other than a level or an object.
    """
    try:
        raw = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a policy pack config is a JSON object of policy name -> config")
    known = {p.name for p in rules.POLICIES} | {"all"}
    for name, value in raw.items():
        if name not in known:
            raise ValueError(f"{path}: unknown policy {name!r}; the pack has {sorted(known - {'all'})}")
        if not isinstance(value, str | dict):
            raise ValueError(f"{path}: policy {name!r} takes an enforcement level or an object, not {value!r}")
    return raw


def failures(results: Iterable[PolicyResult]) -> list[PolicyResult]:
    """The results that failed and whose policy blocks (mandatory)."""
    return [r for r in results if not r.passed and r.enforcement == EnforcementLevel.MANDATORY.value]


# ---------------------------------------------------------------------------------------------


def _enforcement(policy: Policy, config: PolicyPackConfig) -> EnforcementLevel:
    for key in (policy.name, "all"):  # the policy's own entry wins over "all"
        entry = config.get(key)
        level = entry.get("enforcementLevel") if isinstance(entry, Mapping) else entry
        if isinstance(level, str):
            return EnforcementLevel(level)
    return policy.enforcement_level if policy.enforcement_level is not None else rules.PACK_ENFORCEMENT


def _properties(policy: Policy, config: PolicyPackConfig) -> dict[str, Any]:
    """The policy's config properties (what ``args.get_config()`` returns), enforcement level excluded."""
    entry = config.get(policy.name)
    if not isinstance(entry, Mapping):
        return {}
    return {k: v for k, v in entry.items() if k != "enforcementLevel"}


def _options(resource: PlannedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def resource_args(resource: PlannedResource, config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    """What the engine passes a resource policy: the resource's inputs, behind the unknown-checking proxy."""
    return ResourceValidationArgs(
        resource.type,
        unknown_checking_proxy(dict(resource.inputs)),
        resource.urn,
        resource.name,
        _options(resource),
        None,
        dict(config or {}),
    )


def stack_args(resources: Sequence[PlannedResource], config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    """What the engine passes a stack policy: every resource's outputs, parents linked by URN."""
    built = [
        PolicyResource(
            r.type,
            unknown_checking_proxy(dict(r.state)),
            r.urn,
            r.name,
            _options(r),
            None,
            None,
            [],
            {},
        )
        for r in resources
    ]
    by_urn = {p.urn: p for p in built}
    for planned, policy_resource in zip(resources, built, strict=True):
        policy_resource.parent = by_urn.get(planned.parent)
    return StackValidationArgs(built, dict(config or {}))


def _run(policy: Policy, resources: Sequence[PlannedResource], config: PolicyPackConfig) -> PolicyResult:
    level = _enforcement(policy, config)
    properties = _properties(policy, config)
    if level is EnforcementLevel.DISABLED:
        return PolicyResult(policy.name, level.value, True, [])
    violations: list[str] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        # Every message names its resource; the URN (when given) is the engine's for linking the diagnostic.
        violations.append(message)

    if isinstance(policy, StackValidationPolicy):
        _call(lambda: policy.validate(stack_args(resources, properties), report_violation), violations)
    elif isinstance(policy, ResourceValidationPolicy):
        for resource in resources:
            _call(
                lambda r=resource: policy.validate(resource_args(r, properties), report_violation),
                violations,
                resource.urn,
            )
    else:
        raise TypeError(f"policy {policy.name!r} is neither a resource nor a stack validation policy")
    return PolicyResult(policy.name, level.value, not violations, violations)


def _call(validate: Any, violations: list[str], urn: str | None = None) -> None:
    """Run one validation as the engine does: await a coroutine, map unknowns and not-applicable."""
    try:
        result = validate()
        if isinstance(result, Awaitable):
            asyncio.run(_wait(result))
    except UnknownValueError as unknown:
        where = f"{urn}: " if urn else ""
        violations.append(f"{where}could not be evaluated: {unknown.message}")
    except _NotApplicableError:
        pass


async def _wait(awaitable: Awaitable[Any]) -> None:
    await awaitable
