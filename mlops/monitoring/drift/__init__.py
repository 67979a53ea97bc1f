"""The platform monitoring engine: drift, data quality and model quality of an endpoint's captured requests.

Modules: :mod:`.baseline` (the training-side baseline), :mod:`.sources` (files, S3, the window),
:mod:`.capture` (one data-capture line), :mod:`.profile` (feature values → histograms, shared by both sides),
:mod:`.statistics` (PSI, KS, Wasserstein with scipy), :mod:`.quality` (data and model quality),
:mod:`.groundtruth` (labels), :mod:`.analysis` (one window, streamed), :mod:`.report`, :mod:`.metrics`
(CloudWatch) and :mod:`.cli`.

Command
=======

``python -m mlops.monitoring.drift --model <feature spec> --reference <baseline .json | folder or prefix holding
drift-baseline.json | raw rows .csv/.parquet, or a folder or prefix of them> --capture <folder | s3://prefix/>
[--ground-truth <folder | s3://prefix/>] --out <report.json | s3://bucket/prefix/>`` with, optionally, ``--window-end <ISO-8601> [--window-hours N]`` (the end
rounded down to the hour; capture objects whose ``yyyy/mm/dd/hh`` path is in ``[end - N hours, end)``; ground
truth collected from the window's start on), ``--thresholds '{"feature": threshold}'``,
``--default-psi-threshold`` (0.2), ``--default-distance-threshold`` (0.1), ``--significance`` (0.001),
``--segments name[,name]`` (features, or raw request columns of rows-mode requests), ``--max-segment-values``
(10), ``--probability-threshold`` (0.5), ``--model-name`` (report and partition name; default: the ``Model`` dimension, else ``--model``), ``--metrics-namespace NS
--dimension Name=Value ...``. With ``--out s3://bucket/prefix/`` the report is
``<prefix>model=<model name>/date=<window end's day>/<window end, YYYYMMDDTHHMMSSZ>-<run id[:8]>.json``
(without ``--window-end``: the run's start).

Captures of both request modes of the inference container are read, line by line (a window may hold both, e.g.
across a switch): a rows-mode request's raw records go through the feature spec's transform; an entity-mode
request (entity ids) is analysed with the feature values its JSON response carries (``"features"``, the values the
model scored), see :mod:`.capture`. Everything after that (profiles, drift, data and model quality, segments) is
the same for both.

Exit status 0: analysed (whatever was found); 2: unusable input, one line on standard error; 1: the report
or the metrics could not be delivered.

Report (``"format": "mlops-drift-report/1"``; one JSON line on S3, indented in a local file)
=========================================================================================

=============================  ==========================================================================
field                          type and meaning
=============================  ==========================================================================
``format``                     str, ``mlops-drift-report/1``
``run_id``                     str, 32 hex digits (its first 8 end the S3 object's name)
``generated_at``               str, ISO-8601 UTC
``model``, ``feature_spec``    str; ``feature_spec_version`` int
``endpoint``                   str or null: the ``Endpoint`` dimension
``baseline``                   {``reference`` str, ``source`` str, ``rows`` int}
``capture``                    {``source`` str, ``objects`` int (read), ``skipped_objects`` int (listed but
                               outside the window; on S3 only the window's hour prefixes are listed, so 0),
                               ``lines`` int (non-blank), ``requests`` int (usable requests)}
``window_start``,              str or null (ISO-8601 UTC, no window: null); ``window_hours`` int or null
``window_end``
``settings``                   thresholds, defaults, significance, probability threshold, segments used
``dimensions``                 {name: value} of the published metrics
``records``                    int: rows analysed (a request carrying N rows counts N)
``malformed``                  int: capture lines (or unreadable objects) that could not be fully used
``malformed_by_reason``        {reason: int} for ``not_json``, ``no_input``, ``bad_request`` (unparsable
                               body), ``bad_record`` (the spec's transform refused a row: the whole request
                               is left out, as the endpoint refused it), ``bad_response`` (a rows-mode
                               request's rows are analysed, its predictions are not; an entity-mode request
                               is left out), ``entity_without_features`` (an entity-mode request answered in
                               CSV, or without ``features``: drift not measured for it), ``bad_features``
                               (the response's features do not match the spec: the request is left out),
                               ``unreadable_object``
``malformed_responses``        int: the ``bad_response`` count
``malformed_examples``         [{``location`` str (file:line), ``reason`` str, ``message`` str}], at most 10
``first_inference_time``,      str or null: ``eventMetadata.inferenceTime`` range of the usable requests
``last_inference_time``
``features``                   {feature: {``score`` float, ``threshold`` float, ``drifted`` bool, ``method``
                               ``ks`` | ``psi``, ``kind`` ``numeric`` | ``categorical``,
                               ``configured_threshold`` float, ``noise_floor`` float, ``p_value`` float,
                               ``sample_size`` int, ``baseline_size`` int, ``psi`` float, ``ks`` float or
                               null, ``wasserstein_normalised`` float or null}}; a feature without any live
                               value is absent (its data quality says why)
``drifted``                    [str]: features with ``score >= threshold``
``data_quality``               {feature: {``count``, ``missing``, ``type_errors`` int; ``missing_fraction``,
                               ``baseline_missing_fraction``, ``min``, ``max``, ``baseline_min``,
                               ``baseline_max``, ``out_of_range_fraction``, ``unknown_fraction``: float or
                               null; ``type_error_examples``, ``unknown_examples``, ``violations``: [str]}}
``data_quality_violations``    [str]: ``"<feature>:<check>"``, check in missing, type, range, unknown_category
``predictions``                {``count`` int, ``positive`` int, ``positive_rate``, ``mean_probability``,
                               ``baseline_positive_rate`` (training labels): float or null,
                               ``probability_threshold`` float}
``ground_truth``               null without ``--ground-truth``; else {``source`` str, ``files``, ``lines``,
                               ``labels``, ``malformed``, ``duplicates``, ``matched``,
                               ``label_count_mismatches`` int, ``malformed_examples`` [...], ``metrics``:
                               {``auc``, ``accuracy``, ``precision``, ``recall``, ``f1``: float or null} or
                               null when nothing matched}
``model_quality``              null without ``--ground-truth``; else {``matched`` int, ``auc``, ``accuracy``,
                               ``precision``, ``recall``, ``f1``: float or null} (a flat copy for Athena)
``segments``                   {name: {``values``: {value: {``records``, ``predictions``, ``matched`` int,
                               ``positive_rate`` float or null, ``metrics`` as above or null}},
                               ``distinct_values`` int, ``truncated`` bool}}; a name that is a feature
                               takes the value the model scored (either mode), else the raw column's
                               (rows-mode requests only; missing in entity-mode ones)
=============================  ==========================================================================

Metrics: see :mod:`mlops.monitoring.drift.metrics` (``RecordsAnalyzed`` on every run is the heartbeat;
``FeatureDriftRatio`` >= 1 means drifted). Statistics and thresholds: :mod:`mlops.monitoring.drift.statistics`.
"""

from __future__ import annotations

from mlops.monitoring.drift.baseline import BASELINE_FILE, BASELINE_FORMAT, compute_baseline, load_baseline
from mlops.monitoring.drift.errors import DriftError, DriftInputError, DriftOutputError
from mlops.monitoring.drift.report import REPORT_FORMAT

__all__ = [
    "BASELINE_FILE",
    "BASELINE_FORMAT",
    "REPORT_FORMAT",
    "DriftError",
    "DriftInputError",
    "DriftOutputError",
    "compute_baseline",
    "load_baseline",
]
