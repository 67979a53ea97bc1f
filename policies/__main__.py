"""Entry point Pulumi runs for ``pulumi preview --policy-pack policies``: serve the rules to the engine.

How Pulumi loads it: the CLI reads ``PulumiPolicy.yaml`` (runtime ``python``) and starts
``pulumi-analyzer-policy-python <engine> . -virtualenv=venv`` with this directory as its working
directory; that shim runs ``venv/bin/python -u -m pulumi.policy <engine> .``, which executes this
file with ``runpy.run_path(".")``. So this directory, not the repository root, is on ``sys.path``,
and the rules are imported as the top-level module ``rules`` (tests import the same file as
``policies.rules``). The ``sys.path`` line below makes the import independent of the working
directory too (for example ``python policies/__main__.py`` from the repository root).

Constructing ``PolicyPack`` starts the gRPC server the engine talks to and blocks: nothing may
import this module.
"""

import sys
from pathlib import Path

_PACK_DIR = str(Path(__file__).resolve().parent)
if _PACK_DIR not in sys.path:
    sys.path.insert(0, _PACK_DIR)

import rules  # noqa: E402  (the sibling rules.py, see the module docstring)
from pulumi_policy import PolicyPack  # noqa: E402

PolicyPack(
    name=rules.PACK_NAME,
    enforcement_level=rules.PACK_ENFORCEMENT,
    policies=rules.POLICIES,
)
