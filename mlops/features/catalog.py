"""The bundled feature specifications (import registers them). Add a model's spec here."""

from mlops.features import customer_churn  # noqa: F401
