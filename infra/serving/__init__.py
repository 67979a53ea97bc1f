"""Serving layer: a model's real-time endpoint with every rollout strategy.

``settings`` (stack key ``models[].serving``, and the checks AWS would otherwise fail), ``component``
(:class:`Serving`: models, endpoint config, endpoint, rollback alarms, autoscaling) and ``iam`` (the
containers' execution role). The rollback alarms' definitions live with every other alarm in
:mod:`infra.alarms`.
"""

from infra.serving.component import SERVERLESS_VARIANT, ServedEndpoint, Serving, ServingArgs
from infra.serving.iam import CAPTURE_PREFIX
from infra.serving.settings import has_local_storage

__all__ = ["CAPTURE_PREFIX", "SERVERLESS_VARIANT", "ServedEndpoint", "Serving", "ServingArgs", "has_local_storage"]
