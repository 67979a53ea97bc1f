"""Monitoring code shared by the platform's two engines.

- :mod:`mlops.monitoring.drift`: the platform engine, the drift, data-quality and model-quality job on an
  endpoint's data capture (``python -m mlops.monitoring.drift``) and the baseline the training pipeline writes;
- :mod:`mlops.monitoring.record_preprocessor`: SageMaker Model Monitor's record preprocessor (existing Model
  Monitor accounts), generated from the feature spec for training/serving parity;
- :mod:`mlops.monitoring.preprocessor_runtime`: the captured-request parser both use (the inference
  container's request contract, standard library only).
"""

from mlops.monitoring.record_preprocessor import RecordPreprocessorError, build_record_preprocessor

__all__ = ["RecordPreprocessorError", "build_record_preprocessor"]
