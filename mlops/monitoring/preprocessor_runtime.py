"""Runtime half of the generated Model Monitor record preprocessor (standard library only).

Nothing imports this module: :func:`mlops.monitoring.record_preprocessor.build_record_preprocessor` copies
its source into every generated script, after a Python version guard and before the embedded feature code
and the :func:`load` call. Keeping it a real module lets ruff and pyright check it like any other code.

Model Monitor's analyzer calls ``preprocess_handler(inference_record, logger)`` once per captured request.
``inference_record.endpoint_input`` carries the request as captured (``data``, ``encoding`` ``CSV``/``JSON``
for text or ``BASE64``, and the observed content type). The handler parses the body exactly as the
inference container's ``payload.parse_records`` does (CSV with a header row, or JSON ``{"instances":
[...]}`` / one record object), applies the feature spec's ``compute_features`` (the function training and
serving use) and returns the feature values keyed by feature name in spec order: one dict for a one-record
request, a list of dicts for a batch. That is what the data-quality baseline (statistics.json and
constraints.json over the spec's feature columns) describes.

A request the container would have refused raises :class:`RecordPreprocessorError` naming the captured
event and the problem (also logged: the analyzer does not surface a script's exception text).
"""

import base64
import binascii
import csv
import io
import json
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CSV = "text/csv"
JSON = "application/json"
ENCODING_MEDIA_TYPES = {"CSV": CSV, "JSON": JSON}
"""Media type of a capture without an observed content type, by its capture encoding."""


class RecordPreprocessorError(ValueError):
    """A captured request this script cannot turn into feature values (the message says why)."""


class _Loaded:
    """The embedded feature spec and its feature function, once :func:`load` has run."""

    def __init__(self, spec: Any, compute_features: Callable[[Any, Mapping[str, Any]], dict[str, Any]]) -> None:
        self.spec = spec
        self.compute_features = compute_features


_LOADED: _Loaded | None = None


def load(
    embedded_modules: Sequence[tuple[str, str]],
    *,
    spec_module: str,
    spec_attribute: str,
    spec_name: str,
    feature_names: Sequence[str],
) -> None:
    """Execute the embedded modules under their real names, then find the spec.

    ``embedded_modules`` are ``(module name, source)`` pairs, dependencies first; each becomes a module
    registered in ``sys.modules`` before its code runs (dataclasses look their module up while a class is
    built, and later modules import earlier ones by name). Parent packages are created empty, so no
    package ``__init__`` runs. Raises ``RuntimeError`` when the spec found is not the one the script was
    generated for.
    """
    global _LOADED
    for name, source in embedded_modules:
        module = types.ModuleType(name)
        module.__file__ = f"<record preprocessor: {name}>"
        module.__package__ = name.rpartition(".")[0]
        _register(name, module)
        # The embedded code is this script's own content (generated from the repository), not input data.
        exec(compile(source, module.__file__, "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    spec = getattr(sys.modules[spec_module], spec_attribute)
    if spec.name != spec_name or tuple(spec.feature_names) != tuple(feature_names):
        raise RuntimeError(
            f"embedded feature spec {spec.name!r} {tuple(spec.feature_names)} is not the expected "
            f"{spec_name!r} {tuple(feature_names)}: regenerate the script"
        )
    _LOADED = _Loaded(spec, sys.modules["mlops.features.spec"].compute_features)


def _register(name: str, module: types.ModuleType) -> None:
    """Put ``module`` in ``sys.modules`` as ``name``, creating empty parent packages as needed."""
    parent_name, _, leaf = name.rpartition(".")
    if parent_name:
        if parent_name not in sys.modules:
            package = types.ModuleType(parent_name)
            package.__path__ = []
            package.__package__ = parent_name
            _register(parent_name, package)
        setattr(sys.modules[parent_name], leaf, module)
    sys.modules[name] = module


def preprocess_handler(inference_record: Any, logger: Any = None) -> dict[str, Any] | list[dict[str, Any]]:
    """The feature values of one captured request: a dict for one record, a list of dicts for a batch.

    Raises :class:`RecordPreprocessorError` (after logging it) when the request cannot be parsed the
    way the endpoint parses it, or a record's features cannot be computed.
    """
    if _LOADED is None:
        raise RuntimeError("the embedded feature code is not loaded: load() must run first")
    try:
        records = _raw_records(inference_record)
        features = [_features(_LOADED, position, record) for position, record in enumerate(records)]
    except RecordPreprocessorError as exc:
        message = f"{_event_label(inference_record)}: {exc}"
        if logger is not None:
            logger.error(message)
        else:
            print(message, file=sys.stderr, flush=True)
        raise RecordPreprocessorError(message) from None
    return features[0] if len(features) == 1 else features


def _event_label(inference_record: Any) -> str:
    metadata = getattr(inference_record, "event_metadata", None)
    event_id = getattr(metadata, "event_id", None)
    return f"captured event {event_id!r}" if event_id else "captured event"


def _features(loaded: _Loaded, position: int, record: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return loaded.compute_features(loaded.spec, record)
    except (ValueError, TypeError, ArithmeticError) as exc:  # what the container answers 400 for
        raise RecordPreprocessorError(f"record {position}: {exc}") from None


def _raw_records(inference_record: Any) -> list[Mapping[str, Any]]:
    """The raw records of the captured request, parsed as the endpoint parsed them."""
    endpoint_input = getattr(inference_record, "endpoint_input", None)
    if endpoint_input is None:
        raise RecordPreprocessorError("no captureData.endpointInput: the endpoint's data capture must include Input")
    data = getattr(endpoint_input, "data", None)
    if not isinstance(data, str | bytes):
        raise RecordPreprocessorError("captureData.endpointInput has no data")
    encoding = str(getattr(endpoint_input, "encoding", None) or "").upper()
    # The analyzer's record object names it observedContentType; accept the snake_case spelling too.
    observed = getattr(endpoint_input, "observed_content_type", None) or getattr(
        endpoint_input, "observedContentType", None
    )
    content_type = _media_type(observed) or ENCODING_MEDIA_TYPES.get(encoding, "")
    body = _body(data, encoding)
    if not body.strip():
        raise RecordPreprocessorError("request body is empty")
    if content_type == CSV:
        return _parse_csv(body)
    if content_type == JSON:
        return _parse_json(body)
    shown = content_type or "none"
    raise RecordPreprocessorError(f"content type {shown!r} is not one the endpoint accepts: use {CSV} or {JSON}")


def _media_type(header_value: Any) -> str:
    """``text/csv; charset=utf-8`` → ``text/csv`` (as the container reads Content-Type)."""
    if not header_value:
        return ""
    return str(header_value).split(";", 1)[0].strip().lower()


def _body(data: str | bytes, encoding: str) -> bytes:
    """The request body bytes: base64-decoded for ``BASE64`` captures, the UTF-8 text otherwise."""
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise RecordPreprocessorError(
                "captureData.endpointInput.data is not valid base64 (encoding BASE64)"
            ) from None
    if encoding in ENCODING_MEDIA_TYPES:
        return data if isinstance(data, bytes) else data.encode("utf-8")
    raise RecordPreprocessorError(
        f"captureData.endpointInput.encoding {encoding or 'none'!r} is unknown: expected CSV, JSON or BASE64"
    )


def _parse_csv(body: bytes) -> list[Mapping[str, Any]]:
    """A header row naming the raw columns, then one record per row (blank lines skipped)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordPreprocessorError("CSV body is not UTF-8") from None
    rows = csv.reader(io.StringIO(text))
    try:
        header = next((row for row in rows if row), None)
        if header is None:
            raise RecordPreprocessorError("CSV body has no header row")
        names = [name.strip() for name in header]
        if "" in names or len(set(names)) != len(names):
            raise RecordPreprocessorError("CSV header must name every column once (a header row is required)")
        width = len(names)
        records: list[Mapping[str, Any]] = []
        for row in rows:
            if not row:
                continue
            if len(row) != width:
                raise RecordPreprocessorError(f"CSV line {rows.line_num} has {len(row)} fields, the header has {width}")
            records.append(dict(zip(names, row, strict=True)))
    except csv.Error as exc:
        raise RecordPreprocessorError(f"malformed CSV at line {rows.line_num}: {exc}") from None
    if not records:
        raise RecordPreprocessorError("CSV body has a header row but no records")
    return records


def _refuse_constant(name: str) -> Any:
    # The container parses JSON with orjson, which refuses NaN and Infinity; so does this script.
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> list[Mapping[str, Any]]:
    """``{"instances": [record, ...]}`` or one record object."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise RecordPreprocessorError(f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RecordPreprocessorError('JSON body must be an object: {"instances": [record, ...]} or one record')
    if "instances" not in document:
        return [document]
    instances = document["instances"]
    if not isinstance(instances, list) or not instances:
        raise RecordPreprocessorError('"instances" must be a non-empty list of record objects')
    for position, record in enumerate(instances):
        if not isinstance(record, dict):
            raise RecordPreprocessorError(f'"instances"[{position}] is not an object')
    return instances
