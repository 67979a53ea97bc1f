"""Model Monitor support code: the record preprocessor that gives drift monitoring training/serving parity."""

from mlops.monitoring.record_preprocessor import RecordPreprocessorError, build_record_preprocessor

__all__ = ["RecordPreprocessorError", "build_record_preprocessor"]
