"""The Pulumi program of the MLOps platform: one home per layer (README, "Architecture").

Stack-wide layers, one module each with their settings at the top: :mod:`infra.security`, :mod:`infra.datalake`,
:mod:`infra.catalog`, :mod:`infra.notifications`. Per-model layers, one package each (settings, component, IAM):
:mod:`infra.featurestore`, :mod:`infra.training`, :mod:`infra.serving`, :mod:`infra.monitoring`, and the
stack's :mod:`infra.responders`. Shared: :mod:`infra.alarms` (every alarm's definition), :mod:`infra.foundation`
(the handle the per-model layers build on), :mod:`infra.naming`, :mod:`infra.iam`, :mod:`infra.types`.
:mod:`infra.config` composes the settings; :mod:`infra.platform` composes the layers.
"""
