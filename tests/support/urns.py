"""The guard against accidental renames: every stack's resource URNs, committed under ``tests/urns/``.

A resource's URN is its identity in a user's stack: it is made of the type tokens of its component chain and
its logical name. Moving code between modules must leave every URN as it is; renaming a component type, a
logical name or a parent replaces live infrastructure unless the resource gets ``aliases``.
``tests/unit/test_urns.py`` compares each stack's plan with its file. After an intended change (a new
resource, or a rename that carries ``aliases``), refresh the files and review the diff::

    python -m tests.support.urns --update
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

URNS_DIR = Path(__file__).resolve().parent.parent / "urns"


def urn_file(stack: str) -> Path:
    return URNS_DIR / f"{stack}.txt"


def plan_urns(plan: object) -> list[str]:
    """The sorted URNs of an offline plan (components and resources)."""
    return sorted(r.urn for r in plan.resources)  # type: ignore[attr-defined]


def committed_urns(stack: str) -> list[str]:
    path = urn_file(stack)
    return path.read_text().splitlines() if path.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write tests/urns/<stack>.txt from each stack's offline plan.")
    parser.add_argument("--update", action="store_true", help="rewrite the files (default: only report changes)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    from verify.mock_engine import run_program, stack_names

    changed = 0
    for stack in stack_names():
        urns = plan_urns(run_program(stack))
        before = committed_urns(stack)
        if urns != before:
            changed += 1
            added, removed = sorted(set(urns) - set(before)), sorted(set(before) - set(urns))
            print(f"{stack}: +{len(added)} -{len(removed)}")
            for urn in removed:
                print(f"  - {urn}")
            for urn in added:
                print(f"  + {urn}")
            if args.update:
                URNS_DIR.mkdir(exist_ok=True)
                urn_file(stack).write_text("\n".join(urns) + "\n")
    return 0 if args.update or not changed else 1


if __name__ == "__main__":
    sys.exit(main())
