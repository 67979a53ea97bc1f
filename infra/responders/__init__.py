"""Responders layer: the Lambda functions that close the loop, their triggers, dead-letter queues and state.

``settings`` (stack key ``deployment``), ``component`` (:class:`Responders`), ``iam`` (one function per
statement of their roles) and ``environment`` (what each function's environment holds, checked at preview).
The functions' code lives in ``lambdas/<function>/``.
"""

from infra.responders.component import (
    DISPATCH,
    FUNCTIONS,
    METRICS_NAMESPACE,
    NOTIFY,
    RETRAIN,
    Responders,
    RespondersArgs,
)
from infra.responders.environment import (
    LAMBDA_ENV_LIMIT_BYTES,
    REPO_ROOT,
    NewDataSource,
    ResponderConfigError,
    ResponderModel,
    check_environment_size,
    new_data_targets,
    object_created_pattern,
    retrain_targets,
)

__all__ = [
    "DISPATCH",
    "FUNCTIONS",
    "LAMBDA_ENV_LIMIT_BYTES",
    "METRICS_NAMESPACE",
    "NOTIFY",
    "REPO_ROOT",
    "RETRAIN",
    "NewDataSource",
    "ResponderConfigError",
    "ResponderModel",
    "Responders",
    "RespondersArgs",
    "check_environment_size",
    "new_data_targets",
    "object_created_pattern",
    "retrain_targets",
]
