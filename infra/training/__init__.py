"""Training layer: a model's SageMaker pipeline, its model registry group, published step code, schedule.

``settings`` (stack key ``models[].training``), ``component`` (:class:`TrainingPipeline`) and ``iam``
(the execution role's statements and the registry's read policy).
"""

from infra.training.component import (
    SCHEDULED_DATA_VERSION,
    QualityGate,
    TrainingPipeline,
    TrainingPipelineArgs,
    code_version,
    pipeline_settings,
    sklearn_image_repository,
)
from infra.training.iam import output_prefix

__all__ = [
    "SCHEDULED_DATA_VERSION",
    "QualityGate",
    "TrainingPipeline",
    "TrainingPipelineArgs",
    "code_version",
    "output_prefix",
    "pipeline_settings",
    "sklearn_image_repository",
]
