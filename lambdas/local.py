"""Import a responder's ``app`` module outside Lambda (tests, the drill), the way Lambda resolves it.

In the archive, ``app.py`` and ``responder_common/`` sit side by side at the root. Here the function lives in
``lambdas/<function>/app.py``, so this puts ``lambdas/`` on ``sys.path`` (for ``import responder_common``) and
imports the module as ``lambdas.<function>.app``, which keeps the three ``app`` modules apart in one process.
Importing reads no environment variable and creates no client: the runtime is built at the first invocation.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

LAMBDAS_DIR = Path(__file__).resolve().parent
FUNCTIONS = ("retrain_on_alarm", "notify_pipeline", "dispatch_deployment", "update_online_features")


def import_app(function: str) -> ModuleType:
    """The ``app`` module of ``function`` (one of :data:`FUNCTIONS`); ``ValueError`` for any other name."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown responder {function!r}; expected one of {', '.join(FUNCTIONS)}")
    if str(LAMBDAS_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDAS_DIR))
    return importlib.import_module(f"lambdas.{function}.app")
