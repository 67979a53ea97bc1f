"""Every stack's resources keep their URNs: a rename of a component type, a logical name or a parent is caught.

The committed lists live in ``tests/urns/<stack>.txt`` (``python -m tests.support.urns --update`` refreshes them
after an intended change; a rename of live infrastructure also needs ``aliases``).
"""

from __future__ import annotations

from tests.support.urns import committed_urns, plan_urns
from verify.mock_engine import OfflinePlan


def test_every_resource_keeps_its_urn(plan: OfflinePlan) -> None:
    urns, committed = plan_urns(plan), committed_urns(plan.stack)
    assert committed, f"tests/urns/{plan.stack}.txt is missing: run python -m tests.support.urns --update"
    removed = sorted(set(committed) - set(urns))
    added = sorted(set(urns) - set(committed))
    assert not removed and not added, (
        "URNs changed (a changed URN replaces live infrastructure unless the resource has aliases); "
        f"gone: {removed[:5]}, new: {added[:5]}. If intended: python -m tests.support.urns --update"
    )
