"""Runtime half of the generated Model Monitor record preprocessor, and the captured-request parser.

Two users:

- :func:`mlops.monitoring.record_preprocessor.build_record_preprocessor` copies this module's source into
  every generated script, after a Python version guard and before the embedded feature code and the
  :func:`load` call. Keeping it a real module lets ruff and pyright check it like any other code.
- The platform drift job (:mod:`mlops.monitoring.drift.capture`) imports :func:`request_records`, so both
  monitoring engines read a captured request exactly one way: the inference container's contract.

It therefore uses the standard library only and runs on Python 3.7 and later (Model Monitor's analyzer does
not document its interpreter): no ``from __future__ import annotations`` (it must stay a plain statement
block inside the generated script), annotations quoted, no ``X | Y`` at run time, no ``zip(strict=...)``.
The embedded feature code is newer (``mlops/features/spec.py`` uses ``datetime.UTC``, ``typing.Literal``
and ``int | float`` unions at run time); :func:`load` compiles it for the running interpreter (see
:func:`_compile_embedded`), so the very same source runs everywhere.

Model Monitor's analyzer calls ``preprocess_handler(inference_record, logger)`` once per captured request.
``inference_record.endpoint_input`` carries the request as captured (``data``, ``encoding`` ``CSV``/``JSON``
for text or ``BASE64``, and the observed content type). The handler parses the body exactly as the
inference container's ``payload.parse_records`` does (CSV with a header row, or JSON ``{"instances":
[...]}`` / one record object), applies the feature spec's ``compute_features`` (the function training and
serving use) and returns the feature values keyed by feature name in spec order: one dict for a one-record
request, a list of dicts for a batch. That is what the data-quality baseline (statistics.json and
constraints.json over the spec's feature columns) describes.

A request the container would have refused is skipped, not raised: the handler logs why (naming the
captured event and the running count of skipped requests) and returns ``[]``, which the analyzer drops (the
record-filtering contract of AWS's Model Monitor samples). One malformed request used to raise, and an
exception from a record preprocessor fails the whole monitoring execution. :func:`skipped_requests` reports
the count for the current process.
"""

import ast
import base64
import binascii
import csv
import datetime
import io
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

CSV = "text/csv"
JSON = "application/json"
ENCODING_MEDIA_TYPES = {"CSV": CSV, "JSON": JSON}
"""Media type of a capture without an observed content type, by its capture encoding."""

OLDEST_PYTHON = (3, 7)
"""Oldest interpreter the embedded feature code runs on: ``from __future__ import annotations`` is 3.7."""

_UNION_HELPER = "__mlops_type_union__"


class RecordPreprocessorError(ValueError):
    """A captured request this script cannot turn into feature values (the message says why)."""


class _Loaded:
    """The embedded feature spec and its feature function, once :func:`load` has run."""

    def __init__(self, spec: Any, compute_features: "Callable[[Any, Mapping[str, Any]], dict[str, Any]]") -> None:
        self.spec = spec
        self.compute_features = compute_features


_LOADED: "_Loaded | None" = None
_SKIPPED = [0]  # a list, so the handler counts without a ``global`` statement


def load(
    embedded_modules: "Sequence[tuple[str, str]]",
    *,
    spec_module: str,
    spec_attribute: str,
    spec_name: str,
    feature_names: "Sequence[str]",
) -> None:
    """Execute the embedded modules under their real names, then find the spec.

    ``embedded_modules`` are ``(module name, source)`` pairs, dependencies first; each becomes a module
    registered in ``sys.modules`` before its code runs (dataclasses look their module up while a class is
    built, and later modules import earlier ones by name). Parent packages are created empty, so no
    package ``__init__`` runs. Raises ``RuntimeError`` when the spec found is not the one the script was
    generated for.
    """
    global _LOADED
    _backport_standard_library()
    for name, source in embedded_modules:
        module = types.ModuleType(name)
        module.__file__ = "<record preprocessor: " + name + ">"
        module.__package__ = name.rpartition(".")[0]
        module.__dict__[_UNION_HELPER] = _type_union
        _register(name, module)
        # The embedded code is this script's own content (generated from the repository), not input data.
        exec(_compile_embedded(source, module.__file__), module.__dict__)  # noqa: S102
    spec = getattr(sys.modules[spec_module], spec_attribute)
    if spec.name != spec_name or tuple(spec.feature_names) != tuple(feature_names):
        raise RuntimeError(
            f"embedded feature spec {spec.name!r} {tuple(spec.feature_names)} is not the expected "
            f"{spec_name!r} {tuple(feature_names)}: regenerate the script"
        )
    _LOADED = _Loaded(spec, sys.modules["mlops.features.spec"].compute_features)


def _backport_standard_library() -> None:
    """Add the two standard-library names the feature code imports that older interpreters lack.

    Only missing names are added, with the meaning they have in newer Pythons: ``datetime.UTC`` (3.11) is
    ``datetime.timezone.utc``; ``typing.Literal`` (3.8) is used by the feature code in type aliases only.
    """
    if not hasattr(datetime, "UTC"):
        setattr(datetime, "UTC", datetime.timezone.utc)  # noqa: B010, UP017 (datetime.UTC is what is missing)
    if not hasattr(typing, "Literal"):
        setattr(typing, "Literal", _AliasOnly())  # noqa: B010


class _AliasOnly:
    """Stands in for ``typing.Literal`` on Python 3.7: ``Literal["a", "b"]`` only ever names a type."""

    def __getitem__(self, _parameters: Any) -> "_AliasOnly":
        return self


def _compile_embedded(source: str, filename: str) -> Any:
    """``source`` compiled for this interpreter; before 3.10, ``X | Y`` goes through :func:`_type_union`.

    Annotations are left alone (the feature code postpones them with ``from __future__ import
    annotations``, so they are never evaluated); only expressions that run are rewritten.
    """
    if sys.version_info >= (3, 10):  # noqa: UP036 (this code runs on older interpreters too)
        return compile(source, filename, "exec", dont_inherit=True)
    tree = ast.fix_missing_locations(_UnionRewriter().visit(ast.parse(source, filename)))
    return compile(tree, filename, "exec", dont_inherit=True)


class _UnionRewriter(ast.NodeTransformer):
    """Rewrites every evaluated ``a | b`` into ``__mlops_type_union__(a, b)`` (which still ORs non-types)."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.BitOr):
            return node
        call = ast.Call(func=ast.Name(id=_UNION_HELPER, ctx=ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.copy_location(call, node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return node  # an argument's annotation: never evaluated

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        node.target = self.visit(node.target)
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        returns, node.returns = node.returns, None
        self.generic_visit(node)
        node.returns = returns
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        returns, node.returns = node.returns, None
        self.generic_visit(node)
        node.returns = returns
        return node


def _type_union(left: Any, right: Any) -> Any:
    """``left | right``; for types on Python < 3.10, the tuple ``isinstance`` accepts (``int | float``)."""
    try:
        return left | right
    except TypeError:
        if _is_type_operand(left) and _is_type_operand(right):
            return _type_tuple(left) + _type_tuple(right)
        raise


def _is_type_operand(value: Any) -> bool:
    return value is None or isinstance(value, type) or (isinstance(value, tuple) and all(map(_is_type_operand, value)))


def _type_tuple(value: Any) -> "tuple[Any, ...]":
    if value is None:
        return (type(None),)
    return value if isinstance(value, tuple) else (value,)


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


def preprocess_handler(inference_record: Any, logger: Any = None) -> "dict[str, Any] | list[dict[str, Any]]":
    """The feature values of one captured request: a dict for one record, a list of dicts for a batch.

    A request that cannot be parsed the way the endpoint parses it, or whose features cannot be computed,
    is skipped: the reason is logged (``logger.warning``, or standard error without a logger) and the
    handler returns ``[]``. Raises ``RuntimeError`` only when :func:`load` has not run.
    """
    if _LOADED is None:
        raise RuntimeError("the embedded feature code is not loaded: load() must run first")
    try:
        records = _raw_records(inference_record)
        features = [_features(_LOADED, position, record) for position, record in enumerate(records)]
    except RecordPreprocessorError as exc:
        _SKIPPED[0] += 1
        message = f"skipped {_event_label(inference_record)}: {exc} ({_SKIPPED[0]} skipped by this process)"
        if logger is not None:
            logger.warning(message)
        else:
            print(message, file=sys.stderr, flush=True)
        return []
    return features[0] if len(features) == 1 else features


def skipped_requests() -> int:
    """How many captured requests :func:`preprocess_handler` has skipped in this process."""
    return _SKIPPED[0]


def _event_label(inference_record: Any) -> str:
    metadata = getattr(inference_record, "event_metadata", None)
    event_id = getattr(metadata, "event_id", None)
    return f"captured event {event_id!r}" if event_id else "captured event"


def _features(loaded: _Loaded, position: int, record: "Mapping[str, Any]") -> "dict[str, Any]":
    try:
        return loaded.compute_features(loaded.spec, record)
    except (ValueError, TypeError, ArithmeticError) as exc:  # what the container answers 400 for
        raise RecordPreprocessorError(f"record {position}: {exc}") from None


def _raw_records(inference_record: Any) -> "list[Mapping[str, Any]]":
    """The raw records of the captured request, parsed as the endpoint parsed them."""
    endpoint_input = getattr(inference_record, "endpoint_input", None)
    if endpoint_input is None:
        raise RecordPreprocessorError("no captureData.endpointInput: the endpoint's data capture must include Input")
    # The analyzer's record object names it observedContentType; accept the snake_case spelling too.
    observed = getattr(endpoint_input, "observed_content_type", None) or getattr(
        endpoint_input, "observedContentType", None
    )
    return request_records(getattr(endpoint_input, "data", None), getattr(endpoint_input, "encoding", None), observed)


def request_records(data: Any, encoding: Any, observed_content_type: Any) -> "list[Mapping[str, Any]]":
    """The raw records of one captured request (``captureData.endpointInput``), as the endpoint parsed them.

    ``data`` and ``encoding`` are the capture's fields (``CSV``/``JSON``: the body as text; ``BASE64``: the
    body's bytes in base64); ``observed_content_type`` is the request's Content-Type (when absent, the
    encoding's media type). Raises :class:`RecordPreprocessorError` saying why the container would have
    refused the request (or why the capture cannot be decoded).
    """
    if not isinstance(data, (str, bytes)):
        raise RecordPreprocessorError("captureData.endpointInput has no data")
    encoding_name = str(encoding or "").upper()
    content_type = media_type(observed_content_type) or ENCODING_MEDIA_TYPES.get(encoding_name, "")
    body = capture_body(data, encoding_name, "captureData.endpointInput")
    if not body.strip():
        raise RecordPreprocessorError("request body is empty")
    if content_type == CSV:
        return _parse_csv(body)
    if content_type == JSON:
        return _parse_json(body)
    shown = content_type or "none"
    raise RecordPreprocessorError(f"content type {shown!r} is not one the endpoint accepts: use {CSV} or {JSON}")


def media_type(header_value: Any) -> str:
    """``text/csv; charset=utf-8`` → ``text/csv`` (as the container reads Content-Type)."""
    if not header_value:
        return ""
    return str(header_value).split(";", 1)[0].strip().lower()


def capture_body(data: "str | bytes", encoding: str, field: str) -> bytes:
    """The body bytes of a captured payload: base64-decoded for ``BASE64``, the UTF-8 text otherwise.

    ``field`` names the capture field in error messages (``captureData.endpointInput``).
    """
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise RecordPreprocessorError(f"{field}.data is not valid base64 (encoding BASE64)") from None
    if encoding in ENCODING_MEDIA_TYPES:
        return data if isinstance(data, bytes) else data.encode("utf-8")
    raise RecordPreprocessorError(f"{field}.encoding {encoding or 'none'!r} is unknown: expected CSV, JSON or BASE64")


def _parse_csv(body: bytes) -> "list[Mapping[str, Any]]":
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
            records.append({name: row[column] for column, name in enumerate(names)})
    except csv.Error as exc:
        raise RecordPreprocessorError(f"malformed CSV at line {rows.line_num}: {exc}") from None
    if not records:
        raise RecordPreprocessorError("CSV body has a header row but no records")
    return records


def _refuse_constant(name: str) -> Any:
    # The container parses JSON with orjson, which refuses NaN and Infinity; so does this script.
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> "list[Mapping[str, Any]]":
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
