"""Model artifacts the inference tests serve, built once per test process and shared by the modules that read them.

:func:`serving_pipeline_run` runs the pipeline's own step scripts (:func:`pipelines.local_run.run_local`): three
Python processes that each import pandas and scikit-learn, about 6 s whatever the data size. The container test
(``tests/functional/test_inference_container.py``) and the parity test (``tests/functional/test_serving_parity.py``)
each ran it on their own seeded data; both only read what it leaves (the model archive, the raw CSV file, the
evaluation's predictions), so one run made here serves both when they run in the same process (one pytest
process, or the same pytest-xdist worker).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipelines.local_run import LocalRunResult, run_local, synthetic_customer_activity


@dataclass(frozen=True)
class PipelineData:
    """The seeded ``customer_activity`` data a run is made from (what the cache is keyed by)."""

    customers: int
    days: int
    seed: int


# Enough customers for a real test split (the parity test posts at least 50 of its rows), few enough to stay quick.
SERVING_DATA = PipelineData(customers=240, days=2, seed=17)
_RUNS: dict[tuple[str, PipelineData], LocalRunResult] = {}


def serving_pipeline_run(
    tmp_path_factory: pytest.TempPathFactory, data: PipelineData = SERVING_DATA
) -> LocalRunResult:  # fmt: skip
    """The local pipeline's artifacts on ``data``, run once per test session (keyed by the session's base temporary
    folder, which holds them for the whole session, and by the data). Callers must not change what it wrote."""
    key = (str(tmp_path_factory.getbasetemp()), data)
    if key not in _RUNS:
        raw = synthetic_customer_activity(customers=data.customers, days=data.days, seed=data.seed)
        workdir = tmp_path_factory.mktemp("pipeline")
        _RUNS[key] = run_local(workdir, raw, data_version="serving-tests", code_version="serving-tests")
    return _RUNS[key]
